/**
 * BATCH_PARALLELISM: a batch processes several uploads at once, but only on worker slots that no
 * other batch needs. Durability holds as with one lane: every upload processed once, counts
 * exact, a crash redoes what was in flight.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRuns } from '../../src/db/upload-runs.ts';
import { laneBudget } from '../../src/jobs/lanes.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { expectCountsMatchRows, slowModel, uploadBatch, waitForBatch, waitForUploads } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { spawnService } from '../helpers/process.ts';
import { CancelBatch } from './documents.ts';

type Run = Awaited<ReturnType<typeof listRuns>>[number];

/** The most runs in flight at once (a run cut short by a crash ends when the next one starts). */
function maxInFlight(runs: Run[]) {
  const edges = runs.flatMap((r) => {
    const end = r.finishedAt ?? runs.filter((n) => n.startedAt > r.startedAt).sort((a, b) => +a.startedAt - +b.startedAt)[0]?.startedAt;
    return [
      { at: +r.startedAt, d: 1 },
      { at: end ? +end : Infinity, d: -1 },
    ];
  });
  // An end and a start at the same millisecond do not overlap.
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

/** Every upload of the batch completed by exactly one run that counted. */
async function expectEachUploadOnce(app: TestApp, batchId: string, n: number) {
  const { batch, rows } = await expectCountsMatchRows(app.ctx.db, batchId);
  expect(batch).toMatchObject({ status: 'COMPLETED', totalUploads: n, successfulUploads: n, failedUploads: 0 });
  expect(rows.every((r) => r.status === 'COMPLETED')).toBe(true);
  const runs = await listRuns(app.ctx.db, [batchId]);
  const completed = runs.filter((r) => r.outcome === 'COMPLETED').map((r) => r.uploadId);
  expect(completed.sort()).toEqual([...new Set(completed)].sort());
  expect(completed).toHaveLength(n);
  for (const [, own] of Map.groupBy(runs, (r) => r.uploadId)) expect(maxInFlight(own), 'one upload processed twice at once').toBe(1);
  const uploads = await app.ctx.db.selectFrom('uploads').select(['thumbnailKey', 'attempts']).where('batchId', '=', batchId).execute();
  for (const u of uploads) {
    expect(u.attempts).toBe(1);
    expect(await app.ctx.storage.exists(u.thumbnailKey!)).toBe(true);
  }
  return runs;
}

describe('laneBudget', () => {
  it('lends idle slots only, and wants them back once a job needs one', () => {
    const slots = laneBudget(2);
    const endA = slots.job();
    const lane = slots.borrow();
    expect(lane).toBeTypeOf('function');
    expect(slots.borrow(), 'both slots are taken').toBeUndefined();
    expect(slots.crowded).toBe(false);
    const endB = slots.job();
    expect(slots.crowded, 'a second job started: the lane must give its slot back').toBe(true);
    lane!();
    lane!(); // giving back twice counts once
    expect(slots.crowded).toBe(false);
    expect(slots.borrow()).toBeUndefined();
    endB();
    expect(slots.borrow()).toBeTypeOf('function');
    endA();
  });

  it('tells the jobs watching when a slot finds no job, until they stop watching', () => {
    const slots = laneBudget(2);
    const told: string[] = [];
    const stopA = slots.watchIdle(() => told.push('a'));
    slots.watchIdle(() => told.push('b'));
    slots.slotIdle();
    stopA();
    slots.slotIdle();
    expect(told).toEqual(['a', 'b', 'b']);
  });
});

describe('a batch with BATCH_PARALLELISM=2 on two worker slots', () => {
  let model: ModelServer;
  let app: TestApp;
  let env: Record<string, string | undefined>;
  beforeAll(async () => {
    model = await startModelServer();
    app = await startTestApp({ mode: 'api', env: { OLLAMA_URL: model.url } });
    env = { ...app.env, OLLAMA_URL: model.url, WORKER_CONCURRENCY: '2', BATCH_PARALLELISM: '2', UPLOAD_WATCH_INTERVAL_MS: '50', LOG_LEVEL: 'warn' };
  });
  afterAll(async () => {
    await app?.close();
    await model?.close();
  });

  it('alone, processes two uploads at once, each exactly once', async () => {
    slowModel(model, 150);
    const api = client(app);
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 10);
    const worker = spawnService('worker', env);
    try {
      await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED'], 60_000);
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    const runs = await expectEachUploadOnce(app, batch.dbId, 10);
    expect(maxInFlight(runs)).toBe(2);
  }, 90_000);

  it('gives the borrowed slot back once another batch needs it', async () => {
    slowModel(model, 200);
    const api = client(app);
    const { token } = await api.signUp();
    const first = await uploadBatch(api, token, 40);
    const worker = spawnService('worker', env);
    let second: Awaited<ReturnType<typeof uploadBatch>>;
    try {
      await waitForUploads(app.ctx.db, first.dbId, (rows) => rows.filter((r) => r.status === 'COMPLETED').length >= 4);
      second = await uploadBatch(api, token, 12);
      await waitForBatch(app.ctx.db, second.dbId, ['COMPLETED'], 60_000);
      await waitForBatch(app.ctx.db, first.dbId, ['COMPLETED'], 60_000);
      const runs = await listRuns(app.ctx.db, [first.dbId, second.dbId]);
      const [a, b] = [first.dbId, second.dbId].map((id) => runs.filter((r) => r.batchId === id));
      expect(maxInFlight(a!), 'the first batch ran two at once while alone').toBe(2);
      // Once the second batch runs, and the first one's extra lane has finished the upload it
      // had, each batch has one slot: one upload at a time each, until one of them ends.
      const secondFrom = Math.min(...b!.map((r) => +r.startedAt));
      const bothUntil = Math.min(...[a!, b!].map((list) => Math.max(...list.map((r) => +(r.finishedAt ?? 0)))));
      const settled = secondFrom + 600; // longer than an upload takes here
      expect(bothUntil - settled, 'the batches ran together long enough to tell').toBeGreaterThan(1000);
      const during = (list: Run[]) => list.filter((r) => +r.startedAt >= settled && +r.finishedAt! <= bothUntil);
      expect(during(a!).length).toBeGreaterThan(1);
      expect(maxInFlight(during(a!))).toBe(1);
      expect(maxInFlight(during(b!))).toBe(1);
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    await expectEachUploadOnce(app, first.dbId, 40);
    await expectEachUploadOnce(app, second!.dbId, 12);
  }, 120_000);

  it('lends a slot another batch leaves at once, not after the upload in hand', async () => {
    slowModel(model, 800);
    const api = client(app);
    const { token } = await api.signUp();
    // B holds one slot when A arrives, so A has nothing idle to borrow until B ends. A arrives
    // halfway through B's upload: its own is still in hand when B's slot falls idle.
    const b = await uploadBatch(api, token, 1);
    const worker = spawnService('worker', env);
    let a: Awaited<ReturnType<typeof uploadBatch>>;
    try {
      await waitForUploads(app.ctx.db, b.dbId, (rows) => rows[0]?.status === 'PROCESSING');
      await sleep(400);
      a = await uploadBatch(api, token, 6);
      await waitForBatch(app.ctx.db, a.dbId, ['COMPLETED'], 60_000);
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    const runs = await listRuns(app.ctx.db, [a!.dbId, b.dbId]);
    const [ofA, ofB] = [a!.dbId, b.dbId].map((id) => runs.filter((r) => r.batchId === id));
    const bEnded = +ofB![0]!.finishedAt!;
    const inFlight = ofA!.filter((r) => +r.startedAt < bEnded && +r.finishedAt! > bEnded);
    expect(inFlight, "A had one upload in flight, on one slot, when B's ended").toHaveLength(1);
    const inHand = inFlight[0];
    // Borrowed only at A's next claim, the slot would serve A after that upload.
    const borrowed = ofA!.filter((r) => +r.startedAt > bEnded);
    expect(borrowed.some((r) => +r.startedAt < +inHand!.finishedAt!), 'a second lane started beside the upload in hand').toBe(true);
    await expectEachUploadOnce(app, a!.dbId, 6);
  }, 90_000);

  it('survives a SIGKILL with two uploads in flight: both redone, counts exact', async () => {
    slowModel(model, 400);
    const api = client(app);
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 8);
    let worker = spawnService('worker', env);
    try {
      await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'COMPLETED').length >= 2);
      await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'PROCESSING').length === 2);
      await worker.stop('SIGKILL');
      worker = spawnService('worker', env);
      await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED'], 90_000);
    } finally {
      await worker.stop('SIGTERM');
    }
    const runs = await expectEachUploadOnce(app, batch.dbId, 8);
    // The two cut short have a run without an outcome, and a second one that completed.
    expect(runs.filter((r) => r.outcome === null).length).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('stops every lane on cancelBatch: both uploads in flight aborted, counts exact', async () => {
    slowModel(model, 400);
    const api = client(app);
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 10);
    const worker = spawnService('worker', env);
    try {
      await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'PROCESSING').length === 2);
      const r = await api.request(CancelBatch, { id: batch.id }, token);
      expect(r.data!.cancelBatch).toMatchObject({ __typename: 'BatchResult', batch: { status: 'CANCELLED' } });
      await waitForUploads(app.ctx.db, batch.dbId, (rows) => !rows.some((u) => u.status === 'PROCESSING'), 5000);
      await sleep(500); // nothing more happens to it
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    const { batch: row, rows } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(row.status).toBe('CANCELLED');
    expect(rows.filter((u) => u.status === 'PENDING').length).toBeGreaterThanOrEqual(2);
    const runs = await listRuns(app.ctx.db, [batch.dbId]);
    expect(runs.filter((run) => run.outcome === 'ABORTED')).toHaveLength(2);
    expect(runs.every((run) => run.finishedAt !== null)).toBe(true);
  }, 60_000);
});
