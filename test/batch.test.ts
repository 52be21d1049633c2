import type { FormattedExecutionResult } from 'graphql';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { BatchDetails, BatchProgress, Batches } from './documents.ts';
import type { BatchProgressSubscription } from './gql/graphql.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';

type ProgressEvents = FormattedExecutionResult<BatchProgressSubscription>[];

async function fiveImagesAndACorruptFile() {
  return [
    { name: 'red.png', data: await images.png({ color: 'red' }), type: 'image/png' },
    { name: 'big.jpg', data: await images.jpeg({ width: 1200, height: 800, color: 'blue' }), type: 'image/jpeg' },
    { name: 'green.webp', data: await images.webp({ color: 'green' }), type: 'image/webp' },
    { name: 'anim.gif', data: await images.gif({ color: 'red' }), type: 'image/gif' },
    { name: 'rotated.jpg', data: await images.jpegWithOrientation({ width: 300, height: 200, orientation: 6 }) },
    // Claims to be a PNG by name and MIME type; its bytes say otherwise.
    { name: 'notes.png', data: images.corruptFile(), type: 'image/png' },
  ];
}

function assertCompleteStream(events: ProgressEvents, uploadIds: string[]) {
  expect(events.every((e) => !e.errors)).toBe(true);
  const items = events.map((e) => e.data!.batchProgress);
  // A snapshot first, the terminal state last.
  expect(items[0]!.__typename).toBe('BatchProgress');
  const last = items.at(-1)!;
  expect(last.__typename === 'BatchProgress' && last.batch.status).toBe('COMPLETED');
  // Every upload went through started → ... → completed, in upload order.
  const files = items.flatMap((i) => (i.__typename === 'FileProgress' ? [i] : []));
  for (const id of uploadIds) {
    const stages = files.filter((f) => f.upload.id === id).map((f) => f.stage);
    expect(stages[0]).toBe('started');
    expect(stages).toContain('thumbnail');
    expect(stages.at(-1)).toBe('completed');
  }
  // Each event resolves against its own upload's row, read after the change it announces
  // (events arriving together are read in one statement).
  for (const f of files) if (f.stage === 'completed') expect(f.upload.status).toBe('COMPLETED');
  // One upload at a time: its events all come before the next upload's first.
  const runs = files.map((f) => f.upload.id).filter((id, i, all) => id !== all[i - 1]);
  expect(runs).toEqual(uploadIds);
  // Progress only ever goes forward.
  const processed = items.map((i) => i.batch.processedUploads);
  expect(processed).toEqual([...processed].sort((a, b) => a - b));
}

describe('createBatch → worker → batchProgress', () => {
  let app: TestApp;
  let api: ReturnType<typeof client>;
  beforeAll(async () => {
    // The worker starts only after the subscription is open, so every event is observable.
    // Every stage is published, so the stream shows each upload's full path.
    app = await startTestApp({ worker: false, env: { PROGRESS_INTERVAL_MS: '0' } });
    api = client(app);
  });
  afterAll(() => app?.close());

  for (const transport of ['graphql-ws', 'SSE'] as const) {
    it(`processes a batch and streams its progress over ${transport}`, async () => {
      const { token } = await api.signUp();
      const created = await api.upload(token, await fiveImagesAndACorruptFile());
      const result = created.data!.createBatch;
      expect(result.__typename).toBe('CreateBatchSuccess');
      if (result.__typename !== 'CreateBatchSuccess') return;
      expect(result.batch.totalUploads).toBe(5);
      expect(result.rejectedFiles).toEqual([
        { filename: 'notes.png', code: 'UNSUPPORTED_TYPE', message: expect.stringMatching(/unrecogni[sz]ed|detected/i) },
      ]);

      const vars = { batchId: result.batch.id };
      const sub = transport === 'SSE' ? await api.subscribeSse(BatchProgress, vars, token) : api.subscribeWs(BatchProgress, vars, token);
      await sub.first; // the snapshot
      expect(sub.events[0]!.data!.batchProgress.__typename).toBe('BatchProgress');
      await app.startWorker();
      const events = await sub.done;
      await app.stopWorker();

      const details = await api.request(BatchDetails, { id: result.batch.id }, token);
      const batch = details.data!.batch!;
      expect(batch).toMatchObject({ status: 'COMPLETED', totalUploads: 5, processedUploads: 5, successfulUploads: 5, failedUploads: 0, progressPercent: 100 });
      expect(batch.startedAt).toBeTruthy();
      expect(batch.completedAt).toBeTruthy();
      const uploads = batch.uploads.edges.map((e) => e.node);
      expect(uploads.map((u) => u.filename)).toEqual(['red.png', 'big.jpg', 'green.webp', 'anim.gif', 'rotated.jpg']);
      expect(uploads.map((u) => u.mimeType)).toEqual(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/jpeg']);
      assertCompleteStream(events, uploads.map((u) => u.id));

      for (const u of uploads) {
        expect(u).toMatchObject({ status: 'COMPLETED', attempts: 1, errorMessage: null, analysisStatus: 'SKIPPED' });
        // The URL works with no Authorization header, as an <img> would load it.
        const res = await fetch(u.thumbnailUrl!);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/webp');
        const thumb = Buffer.from(await res.arrayBuffer());
        const meta = await sharp(thumb).metadata();
        expect(meta.format).toBe('webp');
        expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(256);
        expect(meta.exif).toBeUndefined();
      }
      expect(uploads[1]).toMatchObject({ width: 1200, height: 800, format: 'jpeg' });

      // Stored 300×200 with EXIF orientation 6: displayed portrait, red half on top.
      const rotated = uploads[4]!;
      expect(rotated).toMatchObject({ width: 200, height: 300 });
      const thumb = Buffer.from(await (await fetch(rotated.thumbnailUrl!)).arrayBuffer());
      const meta = await sharp(thumb).metadata();
      expect(meta.height).toBeGreaterThan(meta.width!);
      expect(await images.dominantColorAt(thumb, 0.5, 0.15)).toBe('red');
      expect(await images.dominantColorAt(thumb, 0.5, 0.85)).toBe('blue');
    });
  }

  it('a late subscriber gets the final state at once and completes', async () => {
    const { token } = await api.signUp();
    const created = await api.upload(token, [{ name: 'a.png', data: await images.png({}) }]);
    const batchId = created.data!.createBatch.__typename === 'CreateBatchSuccess' ? created.data!.createBatch.batch.id : '';
    await app.startWorker();
    await api.subscribeWs(BatchProgress, { batchId }, token).done; // wait for the end
    await app.stopWorker();
    const late = await api.subscribeWs(BatchProgress, { batchId }, token).done;
    expect(late).toHaveLength(1);
    const only = late[0]!.data!.batchProgress;
    expect(only.__typename === 'BatchProgress' && only.batch).toMatchObject({ status: 'COMPLETED', successfulUploads: 1 });
  });

  it('rejects a request with no acceptable file and creates nothing', async () => {
    const { token } = await api.signUp();
    const r = await api.upload(token, [
      { name: 'empty.jpg', data: Buffer.alloc(0) },
      { name: 'text.gif', data: images.corruptFile() },
    ]);
    const result = r.data!.createBatch;
    expect(result.__typename).toBe('NoAcceptableFilesError');
    if (result.__typename !== 'NoAcceptableFilesError') return;
    expect(result.code).toBe('NO_ACCEPTABLE_FILES');
    expect(result.rejectedFiles.map((f) => f.code)).toEqual(['EMPTY_FILE', 'UNSUPPORTED_TYPE']);
    const count = await app.ctx.db.selectFrom('batches').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    const batches = await app.ctx.db.selectFrom('batches').innerJoin('users', 'users.id', 'batches.userId').select('batches.id').where('users.email', 'like', '%').execute();
    expect(Number(count.n)).toBe(batches.length);
  });
});

describe('reading', () => {
  it('pages batches newest first and uploads in order, and refuses malformed cursors and ids', async () => {
    const app = await startTestApp({ worker: false });
    try {
      const api = client(app);
      const { token } = await api.signUp();
      const ids: string[] = [];
      for (const color of ['red', 'green', 'blue'] as const) {
        const r = await api.upload(token, [
          { name: `${color}-1.png`, data: await images.png({ color, width: 20 + ids.length }) },
          { name: `${color}-2.png`, data: await images.png({ color, width: 30 + ids.length }) },
        ]);
        const b = r.data!.createBatch;
        if (b.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(r));
        ids.push(b.batch.id);
      }
      const first = (await api.request(Batches, { first: 2 }, token)).data!.batches;
      expect(first.edges.map((e) => e.node.id)).toEqual([ids[2], ids[1]]);
      expect(first.pageInfo.hasNextPage).toBe(true);
      const rest = (await api.request(Batches, { first: 2, after: first.pageInfo.endCursor }, token)).data!.batches;
      expect(rest.edges.map((e) => e.node.id)).toEqual([ids[0]]);
      expect(rest.pageInfo.hasNextPage).toBe(false);

      const details = (await api.request(BatchDetails, { id: ids[0]! }, token)).data!.batch!;
      expect(details.uploads.edges.map((e) => e.node.filename)).toEqual(['red-1.png', 'red-2.png']);

      const bad = await api.request(Batches, { first: 2, after: 'not-a-cursor' }, token);
      expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const badId = await api.request(BatchDetails, { id: encodeGlobalID('Batch', 'not-a-uuid') }, token);
      expect(badId.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    } finally {
      await app.close();
    }
  });
});
