/**
 * A batch is processed while its createBatch request is still arriving: the worker starts on
 * the first file, not after the last byte. Until the request ends the batch is its own: hidden
 * from its owner, never completed. A request that fails midway keeps what it stored.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { print } from 'graphql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { extendReceiving, finishReceiving, idleWhileReceiving, insertBatch, startBatch } from '../src/db/batches.ts';
import { listRuns } from '../src/db/upload-runs.ts';
import { insertUploads } from '../src/db/uploads.ts';
import { insertUser } from '../src/db/users.ts';
import { ReceivedFile } from '../src/http/multipart.ts';
import { sweepStorage } from '../src/jobs/sweep-storage.ts';
import { detectImageType } from '../src/services/filetype.ts';
import { batchIntake } from '../src/services/intake.ts';
import { BatchDetails, BatchProgress, Batches, CreateBatch } from './documents.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { dbId, expectCountsMatchRows, expectNoOverlap, uploadBatch, waitForBatch } from './helpers/batches.ts';
import { client } from './helpers/client.ts';
import { closingBoundary, multipartHeaders, partBytes, partData, partHead, type RawPart, uploadParts } from './helpers/http.ts';
import * as images from './helpers/images.ts';
import { spawnService } from './helpers/process.ts';

const CREATE = print(CreateBatch);

let app: TestApp;
let api: ReturnType<typeof client>;
let token: string;
let userId: string;
beforeAll(async () => {
  app = await startTestApp();
  api = client(app);
  ({ token } = await api.signUp());
  userId = (await app.ctx.db.selectFrom('sessions').select('userId').executeTakeFirstOrThrow()).userId;
});
afterAll(() => app?.close());

let made = 0;
const photo = async (name: string): Promise<RawPart> => ({
  name,
  filename: `${name}.png`,
  contentType: 'image/png',
  data: await images.png({ width: 50 + made++ }),
});

/** A createBatch request of `count` files, sent part by part as the test says. */
function streamingUpload(url: string, count: number) {
  const req = http.request(url, { method: 'POST', headers: multipartHeaders(token) });
  const response = new Promise<{ status: number; body: any; at: number }>((resolve, reject) => {
    req.on('response', async (res) => {
      let text = '';
      for await (const chunk of res) text += chunk;
      resolve({ status: res.statusCode!, body: JSON.parse(text), at: Date.now() });
    });
    req.on('error', reject);
  });
  response.catch(() => {});
  req.write(Buffer.concat(uploadParts(CREATE, count).map(partBytes)));
  // A file has arrived once the next part's delimiter has: each step sends one file's content
  // and the next one's headers.
  return {
    response,
    send: (...bytes: Buffer[]) => req.write(Buffer.concat(bytes)),
    end: () => req.end(closingBoundary()),
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A file as the multipart parser hands it to the intake: stored, hashed and typed. */
async function receivedFile(i: number, width: number) {
  const data = await images.png({ width });
  const { path, write } = app.ctx.storage.createIncoming();
  await write(data);
  const sha256 = createHash('sha256').update(data).digest('hex');
  return new ReceivedFile({ filename: `${i}.png`, clientMimeType: 'image/png', tempPath: path, byteSize: data.length, sha256, detected: await detectImageType(data), rejection: null });
}

/** The user's batch still being received, once `ready` holds for it and its upload rows. */
async function receivingBatch(ready: (b: { receivingPlace: Date | null }, uploads: { status: string; position: number }[]) => boolean) {
  const until = Date.now() + 30_000;
  for (;;) {
    const batch = await app.ctx.db
      .selectFrom('batches')
      .selectAll()
      .where('userId', '=', userId)
      .where('receivingUntil', 'is not', null)
      .orderBy('createdAt', 'desc')
      .executeTakeFirst();
    const uploads = batch
      ? await app.ctx.db.selectFrom('uploads').select(['status', 'position']).where('batchId', '=', batch.id).orderBy('position').execute()
      : [];
    if (batch && ready(batch, uploads)) return { batch, uploads };
    if (Date.now() > until) throw new Error(`no receiving batch got ready: ${JSON.stringify({ batch, uploads })}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('processes the first file while the rest is still arriving; the batch appears when the request ends', async () => {
  const [p0, p1, p2] = [await photo('0'), await photo('1'), await photo('2')];
  const upload = streamingUpload(app.graphqlUrl, 3);
  upload.send(partBytes(p0), partHead(p1));
  // The worker finishes the first file, finds nothing more yet, and ends its job.
  const { batch } = await receivingBatch((b, uploads) => b.receivingPlace !== null && uploads[0]?.status === 'COMPLETED');
  expect(batch).toMatchObject({ status: 'PROCESSING', totalUploads: 1, successfulUploads: 1, completedAt: null });
  // Meanwhile it is not the owner's yet.
  expect((await api.request(Batches, { first: 10 }, token)).data!.batches.edges).toEqual([]);

  // The next file enqueues a new job.
  upload.send(partData(p1), partHead(p2));
  await receivingBatch((_, uploads) => uploads[1]?.status === 'COMPLETED');
  upload.send(partData(p2));
  upload.end();
  const { status, body, at } = await upload.response;
  expect(status).toBe(200);
  const created = body.data.createBatch;
  expect(created).toMatchObject({ __typename: 'CreateBatchSuccess', batch: { totalUploads: 3 }, rejectedFiles: [] });
  expect(dbId(created.batch.id)).toBe(batch.id);

  // The job ended by the request completes the batch.
  const events = await api.subscribeWs(BatchProgress, { batchId: created.batch.id }, token).done;
  expect(events.at(-1)?.data?.batchProgress).toMatchObject({ __typename: 'BatchProgress', batch: { status: 'COMPLETED', successfulUploads: 3 } });
  const { rows } = await expectCountsMatchRows(app.ctx.db, batch.id);
  expect(rows.map((r) => r.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
  const runs = await app.ctx.db.selectFrom('uploadRuns').selectAll().where('batchId', '=', batch.id).orderBy('startedAt').execute();
  expect(runs.map((r) => r.outcome)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
  // The first two were done before the request had ended.
  expect(runs.slice(0, 2).every((r) => r.finishedAt!.getTime() < at)).toBe(true);
  expectNoOverlap(runs);
});

it('a batch whose worker caught up with its request keeps its place in the queue when more files come', async () => {
  const [p0, p1] = [await photo('0'), await photo('1')];
  const upload = streamingUpload(app.graphqlUrl, 2);
  upload.send(partBytes(p0), partHead(p1));
  const { batch: first } = await receivingBatch((b, uploads) => b.receivingPlace !== null && uploads[0]?.status === 'COMPLETED');
  // Two batches are created while the slot is taken (here: while no worker runs), then the
  // first batch's next file arrives.
  await app.stopWorker();
  try {
    const later = [await uploadBatch(api, token, 2), await uploadBatch(api, token, 2)];
    upload.send(partData(p1));
    upload.end();
    expect((await upload.response).status).toBe(200);
    await app.startWorker();
    for (const id of [first.id, ...later.map((b) => b.dbId)]) await waitForBatch(app.ctx.db, id, ['COMPLETED']);
    const runs = await listRuns(app.ctx.db, [first.id, ...later.map((b) => b.dbId)]);
    // The first batch was created first: its second file goes before the later batches, not after them.
    expect(runs.map((r) => r.batchId)).toEqual([first.id, first.id, later[0]!.dbId, later[0]!.dbId, later[1]!.dbId, later[1]!.dbId]);
  } finally {
    await app.startWorker();
  }
});

it('files arriving in bursts and pauses, shorter and longer than a group waits, all join the batch in order', async () => {
  const parts = await Promise.all(Array.from({ length: 8 }, (_, i) => photo(String(i))));
  const upload = streamingUpload(app.graphqlUrl, parts.length);
  // The intake commits the first file at once, then groups that fill up, or wait 100 ms.
  for (const [i, pause] of [0, 40, 20, 250, 10, 10, 150, 30].entries()) {
    await new Promise((r) => setTimeout(r, pause));
    upload.send(i === 0 ? partHead(parts[0]!) : Buffer.alloc(0), i > 0 ? partData(parts[i - 1]!) : Buffer.alloc(0), i > 0 ? partHead(parts[i]!) : Buffer.alloc(0));
  }
  upload.send(partData(parts.at(-1)!));
  upload.end();
  const { status, body } = await upload.response;
  expect(status).toBe(200);
  const created = body.data.createBatch;
  expect(created.batch.totalUploads).toBe(parts.length);
  await api.subscribeWs(BatchProgress, { batchId: created.batch.id }, token).done;
  const done = (await api.request(BatchDetails, { id: created.batch.id }, token)).data!.batch!;
  expect(done).toMatchObject({ status: 'COMPLETED', successfulUploads: parts.length });
  expect(done.uploads.edges.map((e) => e.node.filename)).toEqual(parts.map((p) => p.filename));
});

it('the intake commits every file whatever the timing of arrivals, timers and commits', async () => {
  const files = await Promise.all(Array.from({ length: 9 }, (_, i) => receivedFile(i, 200 + i)));
  const intake = batchIntake(app.ctx, userId);
  // A file that arrives during a commit sets the group timer; the files after it fill the
  // group, which commits before the timer fires: the timer then finds nothing to do.
  intake.add(files[0]!);
  intake.add(files[1]!);
  await pause(20);
  intake.add(files[2]!);
  for (const f of files.slice(3, 7)) intake.add(f);
  await pause(250);
  // Later files must still find their way in, by a group or by the timer.
  intake.add(files[7]!);
  await pause(150);
  intake.add(files[8]!);
  const { batch } = await intake.finish();
  expect(batch).toMatchObject({ totalUploads: 9, receivingUntil: null });
  const rows = await app.ctx.db.selectFrom('uploads').select(['filename', 'position']).where('batchId', '=', batch!.id).orderBy('position').execute();
  expect(rows.map((r) => r.filename)).toEqual(files.map((f) => f.filename));
  await waitForBatch(app.ctx.db, batch!.id, ['COMPLETED']);
});

it('files that arrive while a group commits after its timer wait for a group of their own', async () => {
  const files = await Promise.all(Array.from({ length: 6 }, (_, i) => receivedFile(i, 300 + i)));
  const { db } = app.ctx;
  const intake = batchIntake(app.ctx, userId);
  intake.add(files[0]!); // committed at once: the batch
  const { batch } = await receivingBatch((_, uploads) => uploads.some((u) => u.position === 0));
  // The next file waits for the group timer, whose commit the test holds on the batch row.
  const locked = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const holding = db.transaction().execute(async (trx) => {
    await trx.selectFrom('batches').select('id').where('id', '=', batch.id).forUpdate().execute();
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  intake.add(files[1]!);
  await pause(150);
  // One file arrives during that commit, three more soon after it: one group, not two.
  intake.add(files[2]!);
  release.resolve();
  await holding;
  await pause(30);
  for (const f of files.slice(3)) intake.add(f);
  const { batch: done } = await intake.finish();
  expect(done).toMatchObject({ id: batch.id, totalUploads: 6 });
  // Rows inserted by one transaction share its start time.
  const rows = await db.selectFrom('uploads').select(['position', 'createdAt']).where('batchId', '=', batch.id).orderBy('position').execute();
  const groups = Map.groupBy(rows, (r) => r.createdAt.getTime());
  expect([...groups.values()].map((g) => g.map((r) => r.position))).toEqual([[0], [1], [2, 3, 4, 5]]);
  await waitForBatch(db, batch.id, ['COMPLETED']);
});

it('a worker that runs out of uploads just as a group commits goes on with that group instead of ending', async () => {
  const { db } = app.ctx;
  const until = new Date(Date.now() + 60_000);
  const { id } = await insertBatch(db, { userId, totalUploads: 0, receivingUntil: until });
  await startBatch(db, id);
  const locked = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const group = db.transaction().execute(async (trx) => {
    await insertUploads(trx, [{ batchId: id, userId, position: 0, filename: 'late.png', mimeType: 'image/png', byteSize: 1, originalKey: `originals/${userId}/late.png` }]);
    const extended = await extendReceiving(trx, id, 1, until);
    locked.resolve();
    await release.promise;
    return extended;
  });
  await locked.promise;
  // The worker decides while the group holds the batch row: it must wait for it, and see it.
  const place = new Date(Date.now() - 5_000);
  const deciding = idleWhileReceiving(db, id, place);
  await new Promise((r) => setTimeout(r, 100));
  release.resolve();
  expect(await group).toEqual({ idlePlace: null });
  expect(await deciding).toBe('more');
  const placeOf = async () => (await db.selectFrom('batches').select('receivingPlace').where('id', '=', id).executeTakeFirstOrThrow()).receivingPlace;
  expect(await placeOf()).toBeNull();
  // With nothing left, it does end idle, and the next group learns it must enqueue a job.
  await db.updateTable('uploads').set({ status: 'COMPLETED' }).where('batchId', '=', id).execute();
  expect(await idleWhileReceiving(db, id, place)).toBe('idle');
  // A heartbeat (no files) leaves it idle.
  expect(await extendReceiving(db, id, 0, until)).toEqual({ idlePlace: null });
  expect(await placeOf()).toEqual(place);
  // Its new job goes where the ended one stood in the queue; once, not again at the request's end.
  expect(await extendReceiving(db, id, 1, until)).toEqual({ idlePlace: place });
  expect(await placeOf()).toBeNull();
  expect(await finishReceiving(db, id)).toMatchObject({ batch: { id }, idlePlace: null });
  await db.deleteFrom('batches').where('id', '=', id).execute(); // no job was ever enqueued for it
});

it('a group whose files cannot be moved into place commits none of its rows', async () => {
  const { db, storage } = app.ctx;
  // A user of its own, whose originals/ entry is a file: no file of theirs can be renamed into it.
  const owner = (await insertUser(db, { email: `blocked-${Date.now()}@example.com`, passwordHash: 'x' }))!;
  await mkdir(path.join(storage.root, 'originals'), { recursive: true });
  await writeFile(path.join(storage.root, 'originals', owner.id), 'not a directory');
  const files = await Promise.all(Array.from({ length: 3 }, (_, i) => receivedFile(i, 400 + i)));
  const intake = batchIntake(app.ctx, owner.id);
  for (const f of files) intake.add(f);
  // The rows go in while the files are being moved: the failed move must still roll them back.
  await expect(intake.finish()).rejects.toThrow(/not a directory/);
  expect(await db.selectFrom('batches').select('id').where('userId', '=', owner.id).execute()).toEqual([]);
  expect(await db.selectFrom('uploads').select('id').where('userId', '=', owner.id).execute()).toEqual([]);
  // Nothing received is lost: the files are still where the request's cleanup finds them.
  for (const f of files) expect(f.claimed).toBe(false);
  await Promise.all(files.map((f) => access(f.tempPath!)));
});

it('a request that fails midway keeps the files it stored, processes them, and says where they are', async () => {
  const upload = streamingUpload(app.graphqlUrl, 3);
  // The next part's header has a raw control character: the body is malformed from there on.
  upload.send(partBytes(await photo('0')), partHead({ name: '1', filename: 'bell\x07.png' }));
  upload.end();
  const { status, body } = await upload.response;
  expect(status).toBe(400);
  const error = body.errors[0];
  expect(error.extensions).toMatchObject({ code: 'BAD_MULTIPART_REQUEST', keptUploads: 1 });
  expect(error.message).toContain(error.extensions.batchId);

  const kept = (await api.request(BatchDetails, { id: error.extensions.batchId }, token)).data!.batch!;
  expect(kept.totalUploads).toBe(1);
  await api.subscribeWs(BatchProgress, { batchId: kept.id }, token).done;
  const done = (await api.request(BatchDetails, { id: kept.id }, token)).data!.batch!;
  expect(done).toMatchObject({ status: 'COMPLETED', successfulUploads: 1 });
  expect(done.uploads.edges.map((e) => e.node.filename)).toEqual(['0.png']);
});

it('the batch of a request whose API process died is ended by the storage sweep once its lease runs out', async () => {
  const proc = spawnService('api', { ...app.env, PORT: '0', LOG_LEVEL: 'info' });
  let batch: { id: string };
  try {
    const line = await proc.waitFor(/listening on (http:\/\/[^\s"]+)\/graphql/);
    const upload = streamingUpload(/http:\/\/[^\s"]+\/graphql/.exec(line)![0], 2);
    upload.send(partBytes(await photo('0')), partHead(await photo('1')));
    ({ batch } = await receivingBatch((b, uploads) => b.receivingPlace !== null && uploads[0]?.status === 'COMPLETED'));
    await proc.stop('SIGKILL');
    await expect(upload.response).rejects.toThrow();
  } finally {
    await proc.stop('SIGKILL');
  }

  // Before its lease ends, the sweep leaves it alone: its request might still be arriving.
  await sweepStorage(app.ctx);
  expect((await api.request(BatchDetails, { id: globalId(batch.id) }, token)).data!.batch).toBeNull();
  await app.ctx.db.updateTable('batches').set({ receivingUntil: new Date(Date.now() - 1000) }).where('id', '=', batch.id).execute();
  await sweepStorage(app.ctx);
  const done = await waitForBatch(app.ctx.db, batch.id, ['COMPLETED']);
  expect(done).toMatchObject({ totalUploads: 1, successfulUploads: 1, receivingUntil: null });
  expect((await api.request(BatchDetails, { id: globalId(batch.id) }, token)).data!.batch).toMatchObject({ status: 'COMPLETED' });
});

const globalId = (id: string) => Buffer.from(`Batch:${id}`).toString('base64');
