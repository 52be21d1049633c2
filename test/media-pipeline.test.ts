import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { FormattedExecutionResult } from 'graphql';
import exifr from 'exifr';
import { sql } from 'kysely';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockOwnerContent } from '../src/db/duplicates.ts';
import { BatchProgress } from './documents.ts';
import { BatchMedia, CreateBatchMedia, UploadMedia } from './documents-media.ts';
import type { BatchProgressSubscription, UploadMediaFieldsFragment } from './gql/graphql.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { dbId } from './helpers/batches.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import * as media from './helpers/media.ts';
import { DEFAULT_DESCRIPTION, fakeEmbedding, type ModelServer, startModelServer } from './helpers/model-server.ts';

type Api = ReturnType<typeof client>;
type Events = FormattedExecutionResult<BatchProgressSubscription>[];

/**
 * Uploads through the real multipart endpoint and waits for the batch to finish. The worker
 * runs only once the subscription is open, so every progress event is seen.
 */
async function uploadAndWait(app: TestApp, api: Api, token: string, files: { name: string; data: Buffer }[]) {
  await app.stopWorker();
  const r = await media.uploadWith(app, CreateBatchMedia, token, files);
  const result = r.data?.createBatch;
  if (result?.__typename !== 'CreateBatchSuccess') throw new Error(`createBatch failed: ${JSON.stringify(r)}`);
  const sub = api.subscribeWs(BatchProgress, { batchId: result.batch.id }, token, 120_000);
  await sub.first;
  await app.startWorker();
  const events: Events = await sub.done;
  const batch = (await api.request(BatchMedia, { id: result.batch.id }, token)).data!.batch!;
  expect(batch.status).toBe('COMPLETED');
  const uploads = batch.uploads.edges.map((e) => e.node);
  return { result, events, uploads, byName: (name: string) => uploads.find((u) => u.filename === name)! };
}

function stagesOf(events: Events, uploadId: string) {
  return events.flatMap((e) => {
    const p = e.data?.batchProgress;
    return p?.__typename === 'FileProgress' && p.upload.id === uploadId ? [{ stage: p.stage, percent: p.percent }] : [];
  });
}

async function expectRenditions(u: UploadMediaFieldsFragment) {
  const thumb = await media.fetchImage(u.thumbnailUrl!);
  const preview = await media.fetchImage(u.previewUrl!);
  for (const [r, max, format] of [[thumb, 256, 'webp'], [preview, 1440, 'jpeg']] as const) {
    expect(r).toMatchObject({ status: 200, type: `image/${format}` });
    const meta = await sharp(r.body).metadata();
    expect(meta.format).toBe(format);
    expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(max);
    expect(meta.exif).toBeUndefined();
    expect(await exifr.gps(r.body).catch(() => undefined)).toBeFalsy();
  }
  expect(u.placeholderHash).toMatch(/^[A-Za-z0-9+/]+=*$/);
  return { thumb: thumb.body, preview: preview.body };
}

// These tests follow every stage; by default a fast stage is not published (see the last block).
const EVERY_STAGE = { PROGRESS_INTERVAL_MS: '0' };

describe('without a model server', () => {
  let app: TestApp;
  let api: Api;
  beforeAll(async () => {
    app = await startTestApp({ env: EVERY_STAGE });
    api = client(app);
  });
  afterAll(() => app?.close());

  it('turns photos, an iPhone HEIC and a video into renditions and metadata', async () => {
    const { token } = await api.signUp();
    const files = [
      { name: 'exif.jpg', data: await media.jpegWithExif() },
      { name: 'rotated.jpg', data: await images.jpegWithOrientation({ width: 300, height: 200, orientation: 6 }) },
      { name: 'cmyk.jpg', data: await media.cmykJpeg() },
      { name: 'p3-16bit.png', data: await media.p3Png16() },
      { name: 'anim.gif', data: await media.animatedGif() },
      { name: 'IMG_0001.HEIC', data: await readFile(media.HEIC_FIXTURE) },
      { name: 'clip.mp4', data: await media.blackStartVideo('mp4') },
    ];
    const { uploads, byName, events } = await uploadAndWait(app, api, token, files);
    expect(uploads.map((u) => [u.filename, u.status, u.errorMessage])).toEqual(files.map((f) => [f.name, 'COMPLETED', null]));

    for (const [i, u] of uploads.entries()) {
      expect(u.sha256).toBe(createHash('sha256').update(files[i]!.data).digest('hex'));
      expect(u).toMatchObject({ analysisStatus: 'SKIPPED', description: null });
      // No model server: the analysis stages never run, and the percentages still end at 100.
      const stages = stagesOf(events, u.id);
      expect(stages.map((s) => s.stage)).toEqual(['started', 'thumbnail', 'metadata', 'indexing', 'completed']);
      expect(stages.map((s) => s.percent)).toEqual([...stages.map((s) => s.percent)].sort((a, b) => a - b));
      expect(stages.at(-1)!.percent).toBe(100);
    }

    const exif = byName('exif.jpg');
    expect(exif).toMatchObject({
      kind: 'IMAGE',
      format: 'jpeg',
      takenAt: '2023-06-01T10:34:56.000Z',
      camera: { make: 'Canon', model: 'Canon EOS R5', lens: 'RF24-70mm F2.8 L IS USM', exposureTime: 0.004, fNumber: 2.8, iso: 400, focalLength: 50 },
      location: { latitude: expect.closeTo(media.GPS.latitude, 5), longitude: expect.closeTo(media.GPS.longitude, 5) },
      video: null,
    });
    await expectRenditions(exif);

    const rotated = byName('rotated.jpg');
    expect(rotated).toMatchObject({ width: 200, height: 300, camera: null, location: null, takenAt: null });
    const { preview: rotatedPreview } = await expectRenditions(rotated);
    expect(await images.dominantColorAt(rotatedPreview, 0.5, 0.15)).toBe('red');

    const cmyk = await expectRenditions(byName('cmyk.jpg'));
    expect(await media.shareOf(cmyk.preview, [232, 0, 0])).toBeGreaterThan(0.9);

    const p3 = await expectRenditions(byName('p3-16bit.png'));
    expect(await media.shareOf(p3.preview, [0, 255, 0], 40)).toBeGreaterThan(0.9);

    const anim = await expectRenditions(byName('anim.gif'));
    expect(byName('anim.gif')).toMatchObject({ width: 240, height: 160 });
    expect(await media.shareOf(anim.thumb, [255, 0, 0])).toBeGreaterThan(0.9);

    const heic = byName('IMG_0001.HEIC');
    expect(heic).toMatchObject({ kind: 'IMAGE', format: 'heif', mimeType: 'image/heic', width: 320, height: 240, camera: { make: 'Apple' } });
    expect(heic.location).toMatchObject({ latitude: expect.closeTo(37.775, 3) });
    const heicRenditions = await expectRenditions(heic);
    const [r, g, b] = await media.pixelAt(heicRenditions.preview, 0.25, 0.5);
    expect([r < 40, g > 230, b < 40]).toEqual([true, true, true]);

    const clip = byName('clip.mp4');
    expect(clip).toMatchObject({ kind: 'VIDEO', format: 'mp4', mimeType: 'video/mp4', width: 320, height: 240, video: { codec: 'h264', frameRate: 25 } });
    expect(clip.video!.durationSeconds).toBeCloseTo(3, 1);
    const clipRenditions = await expectRenditions(clip);
    // The first second is black; the poster is not.
    expect(await media.shareOf(clipRenditions.thumb, [255, 0, 0], 90)).toBeGreaterThan(0.5);
  });

  it('serves renditions and location to the owner only', async () => {
    const owner = await api.signUp();
    const other = await api.signUp();
    const { uploads } = await uploadAndWait(app, api, owner.token, [{ name: 'gps.jpg', data: await media.jpegWithExif([10, 200, 10]) }]);
    const u = uploads[0]!;
    expect(u.location).not.toBeNull();
    expect((await api.request(UploadMedia, { id: u.id }, other.token)).data!.upload).toBeNull();
    // A thumbnail's signature does not open the preview.
    const forged = u.thumbnailUrl!.replace('/files/thumbnail/', '/files/preview/');
    expect((await fetch(forged)).status).toBe(403);
    expect((await fetch(u.previewUrl!.replace(/sig=[^&]+/, 'sig=x'))).status).toBe(403);
  });

  it('fails only the video, with a clear reason, when ffprobe is not installed', async () => {
    const noVideo = await startTestApp({ env: { FFPROBE_PATH: '/nonexistent/ffprobe', FFMPEG_PATH: '/nonexistent/ffmpeg' } });
    try {
      const api2 = client(noVideo);
      const { token } = await api2.signUp();
      const r = await media.uploadWith(noVideo, CreateBatchMedia, token, [
        { name: 'clip.mp4', data: await media.blackStartVideo('mp4', { seconds: 1 }) },
        { name: 'photo.png', data: await images.png() },
      ]);
      if (r.data?.createBatch.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(r));
      await api2.subscribeWs(BatchProgress, { batchId: r.data.createBatch.batch.id }, token).done;
      const batch = (await api2.request(BatchMedia, { id: r.data.createBatch.batch.id }, token)).data!.batch!;
      const [clip, photo] = batch.uploads.edges.map((e) => e.node);
      expect(clip).toMatchObject({ status: 'FAILED', kind: 'VIDEO', thumbnailUrl: null, previewUrl: null });
      expect(clip!.errorMessage).toMatch(/^Video processing unavailable: ffprobe was not found/);
      expect(photo).toMatchObject({ status: 'COMPLETED' });
    } finally {
      await noVideo.close();
    }
  });
});

describe('duplicates', () => {
  let app: TestApp;
  let api: Api;
  beforeAll(async () => {
    app = await startTestApp();
    api = client(app);
  });
  afterAll(() => app?.close());

  const countBatches = async () =>
    Number((await app.ctx.db.selectFrom('batches').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

  it('reports content the viewer already has, or sent twice, with the existing upload, and does not store it again', async () => {
    const { token } = await api.signUp();
    const a = await images.png({ width: 50, height: 40, color: 'green' });
    const b = await images.png({ width: 51, height: 40, color: 'blue' });
    const first = await uploadAndWait(app, api, token, [{ name: 'a.png', data: a }]);
    const aId = first.uploads[0]!.id;

    const r = await media.uploadWith(app, CreateBatchMedia, token, [
      { name: 'a-again.png', data: a },
      { name: 'b.png', data: b },
      { name: 'b-copy.png', data: b },
    ]);
    const result = r.data!.createBatch;
    if (result.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(r));
    expect(result.batch.totalUploads).toBe(1);
    const done = await uploadAndWaitFor(result.batch.id, token);
    const bId = done.uploads[0]!.id;
    expect(done.uploads.map((u) => u.filename)).toEqual(['b.png']);
    expect(result.duplicates).toEqual([
      { filename: 'a-again.png', existingUploadId: aId, existingUpload: { id: aId, filename: 'a.png' } },
      { filename: 'b-copy.png', existingUploadId: bId, existingUpload: { id: bId, filename: 'b.png' } },
    ]);
    // Not stored again: one original per content on disk.
    const originals = await app.ctx.db.selectFrom('uploads').select('originalKey').execute();
    expect(new Set(originals.map((o) => o.originalKey)).size).toBe(originals.length);

    // Nothing new at all: no batch, and the error says why.
    const before = await countBatches();
    const all = await media.uploadWith(app, CreateBatchMedia, token, [{ name: 'again.png', data: a }]);
    expect(all.data!.createBatch).toEqual({
      __typename: 'NoAcceptableFilesError',
      code: 'NO_ACCEPTABLE_FILES',
      message: 'Every file is already uploaded',
      duplicates: [{ filename: 'again.png', existingUploadId: aId }],
    });
    expect(await countBatches()).toBe(before);
  });

  it('is per owner, and lets a failed upload be sent again', async () => {
    const one = await api.signUp();
    const two = await api.signUp();
    const photo = await images.png({ width: 52, height: 40, color: 'white' });
    await uploadAndWait(app, api, one.token, [{ name: 'p.png', data: photo }]);
    const theirs = await media.uploadWith(app, CreateBatchMedia, two.token, [{ name: 'p.png', data: photo }]);
    expect(theirs.data!.createBatch).toMatchObject({ __typename: 'CreateBatchSuccess', duplicates: [] });

    const broken = await images.truncatedPng();
    const failed = await uploadAndWait(app, api, one.token, [{ name: 'broken.png', data: broken }]);
    expect(failed.uploads[0]!.status).toBe('FAILED');
    const again = await media.uploadWith(app, CreateBatchMedia, one.token, [{ name: 'broken.png', data: broken }]);
    expect(again.data!.createBatch).toMatchObject({ __typename: 'CreateBatchSuccess', duplicates: [] });
  });

  it('lets a request of the owner go on while another holds different content, and makes one with the same content wait', async () => {
    const { token, userId } = await api.signUp();
    const held = await images.png({ width: 54, height: 40, color: 'black' });
    const other = await images.png({ width: 55, height: 40, color: 'black' });
    // Another request of this owner, midway through storing `held`: its transaction holds that content.
    let release!: () => void;
    const locked = Promise.withResolvers<void>();
    const holder = app.ctx.db.transaction().execute(async (trx) => {
      await lockOwnerContent(trx, dbId(userId), [createHash('sha256').update(held).digest('hex')]);
      locked.resolve();
      await new Promise<void>((r) => (release = r));
    });
    await locked.promise;
    try {
      const same = media.uploadWith(app, CreateBatchMedia, token, [{ name: 'held.png', data: held }]);
      const different = await Promise.race([
        media.uploadWith(app, CreateBatchMedia, token, [{ name: 'other.png', data: other }]),
        delay(20_000, 'still waiting' as const, { ref: false }),
      ]);
      expect(different).not.toBe('still waiting');
      expect((different as Awaited<typeof same>).data!.createBatch).toMatchObject({ __typename: 'CreateBatchSuccess', duplicates: [] });
      // The one with the same content waits for the lock (PostgreSQL says so), then goes on.
      await expect.poll(() => advisoryWaiters(), { timeout: 20_000 }).toBeGreaterThan(0);
      release();
      await holder;
      expect((await same).data!.createBatch).toMatchObject({ __typename: 'CreateBatchSuccess', duplicates: [] });
    } finally {
      release();
      await holder;
    }
  });

  const advisoryWaiters = async () =>
    Number(
      (
        await sql<{ n: string }>`
          select count(*) as n from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`.execute(app.ctx.db)
      ).rows[0]!.n,
    );

  it('stores a new file once when two requests race with it', async () => {
    const { token } = await api.signUp();
    const photo = await images.png({ width: 53, height: 40, color: 'red' });
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => media.uploadWith(app, CreateBatchMedia, token, [{ name: `race-${i}.png`, data: photo }])),
    );
    const kinds = results.map((r) => r.data!.createBatch.__typename).sort();
    expect(kinds).toEqual(['CreateBatchSuccess', 'NoAcceptableFilesError', 'NoAcceptableFilesError', 'NoAcceptableFilesError']);
  });

  async function uploadAndWaitFor(batchId: string, token: string) {
    await api.subscribeWs(BatchProgress, { batchId }, token).done;
    const batch = (await api.request(BatchMedia, { id: batchId }, token)).data!.batch!;
    return { uploads: batch.uploads.edges.map((e) => e.node) };
  }
});

describe('with a model server', () => {
  let model: ModelServer;
  let app: TestApp;
  let api: Api;
  beforeAll(async () => {
    model = await startModelServer();
    app = await startTestApp({ env: { ...EVERY_STAGE, OLLAMA_URL: model.url, OLLAMA_TIMEOUT_MS: '5000' } });
    api = client(app);
  });
  afterAll(async () => {
    await app?.close();
    await model?.close();
  });

  it('analyses as stages with rising percentages: thumbnail → metadata → describing → embedding → indexing', async () => {
    model.setBehavior(() => undefined);
    const { token } = await api.signUp();
    const { uploads, events } = await uploadAndWait(app, api, token, [{ name: 'red.png', data: await images.png({ width: 70 }) }]);
    expect(uploads[0]).toMatchObject({ status: 'COMPLETED', attempts: 1, analysisStatus: 'COMPLETED', description: DEFAULT_DESCRIPTION });
    const stages = stagesOf(events, uploads[0]!.id);
    expect(stages.map((s) => s.stage)).toEqual(['started', 'thumbnail', 'metadata', 'describing', 'embedding', 'indexing', 'completed']);
    // Each stage reports the share of the work done as it starts: nothing yet for the first.
    const percents = stages.map((s) => s.percent);
    expect(percents.slice(0, 2)).toEqual([0, 0]);
    expect(new Set(percents.slice(1)).size).toBe(percents.length - 1);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBe(100);
  });

  it('absorbs one model failure inside the stage, without retrying the upload', async () => {
    let calls = 0;
    model.setBehavior(({ path }) => (path === '/api/generate' && ++calls === 1 ? { status: 500, body: { error: 'model crashed' } } : undefined));
    const { token } = await api.signUp();
    const { uploads, events } = await uploadAndWait(app, api, token, [{ name: 'r.png', data: await images.png({ width: 71 }) }]);
    expect(uploads[0]).toMatchObject({ status: 'COMPLETED', attempts: 1, description: DEFAULT_DESCRIPTION });
    expect(calls).toBe(2);
    expect(stagesOf(events, uploads[0]!.id).map((s) => s.stage)).not.toContain('retrying');
  });

  it('rejects an unusable description; when the retry is unusable too, the attempt fails', async () => {
    let calls = 0;
    model.setBehavior(({ path }) =>
      path === '/api/generate' && ++calls <= 2 ? { status: 200, body: { response: 'red red red red red red red red', done: true } } : undefined,
    );
    const { token } = await api.signUp();
    const { uploads, events } = await uploadAndWait(app, api, token, [{ name: 'loop.png', data: await images.png({ width: 72 }) }]);
    expect(uploads[0]).toMatchObject({ status: 'COMPLETED', attempts: 2, description: DEFAULT_DESCRIPTION });
    expect(stagesOf(events, uploads[0]!.id).map((s) => s.stage)).toContain('retrying');
  });

  it('describes a video from several frames', async () => {
    model.setBehavior(() => undefined);
    const before = model.requests.length;
    const { token } = await api.signUp();
    const { uploads } = await uploadAndWait(app, api, token, [{ name: 'clip.webm', data: await media.blackStartVideo('webm') }]);
    expect(uploads[0]).toMatchObject({ status: 'COMPLETED', kind: 'VIDEO', analysisStatus: 'COMPLETED', video: { codec: 'vp9' } });
    const generate = model.requests.slice(before).find((r) => r.path === '/api/generate')!;
    expect(generate.body.prompt).toMatch(/video/);
    expect(generate.body.images.length).toBeGreaterThan(1);
    const first = Buffer.from(generate.body.images[0], 'base64');
    expect(await media.shareOf(first, [255, 0, 0], 90)).toBeGreaterThan(0.5);
  });
});

describe('progress at the default PROGRESS_INTERVAL_MS (250 ms)', () => {
  let model: ModelServer;
  let app: TestApp;
  let api: Api;
  beforeAll(async () => {
    model = await startModelServer();
    app = await startTestApp({ env: { OLLAMA_URL: model.url, OLLAMA_TIMEOUT_MS: '5000' } });
    api = client(app);
  });
  afterAll(async () => {
    await app?.close();
    await model?.close();
  });

  it('publishes only the milestones of stages that pass at once, and every stage that lasts', async () => {
    // The photo's own stages take milliseconds; describing and embedding take 600 ms each.
    model.setBehavior(({ path }) => (path === '/api/generate' || path === '/api/embed' ? { ...slowly(path), delayMs: 600 } : undefined));
    const { token } = await api.signUp();
    const { uploads, events } = await uploadAndWait(app, api, token, [
      { name: 'a.png', data: await images.png({ width: 73 }) },
      { name: 'b.png', data: await images.png({ width: 74 }) },
    ]);
    for (const u of uploads) {
      expect(u).toMatchObject({ status: 'COMPLETED', analysisStatus: 'COMPLETED' });
      const stages = stagesOf(events, u.id);
      // thumbnail and metadata were superseded by describing within the interval; embedding and
      // indexing began more than an interval after the stage before them, so went out at once.
      expect(stages.map((s) => s.stage)).toEqual(['started', 'describing', 'embedding', 'indexing', 'completed']);
      const percents = stages.map((s) => s.percent);
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      expect(percents.at(-1)).toBe(100);
    }
  });
});

function slowly(path: string) {
  return path === '/api/generate'
    ? { status: 200, body: { response: DEFAULT_DESCRIPTION, done: true } }
    : { status: 200, body: { embeddings: [fakeEmbedding(DEFAULT_DESCRIPTION)] } };
}
