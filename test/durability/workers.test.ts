import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listRuns } from '../../src/db/upload-runs.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { expectCountsMatchRows, expectNoOverlap, slowModel, uploadBatch, waitForBatch, waitForUploads } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { spawnService } from '../helpers/process.ts';

let model: ModelServer;
let app: TestApp;
beforeAll(async () => {
  model = await startModelServer();
  slowModel(model, 100);
  app = await startTestApp({ mode: 'api', env: { OLLAMA_URL: model.url } });
});
afterAll(async () => {
  await app?.close();
  await model?.close();
});

it('two workers share several batches, each batch processed by one worker at a time', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  const batches = await Promise.all([0, 1, 2, 3].map(() => uploadBatch(api, token, 5)));
  // A short slice makes batches change hands between the workers mid-way.
  const env = { ...app.env, OLLAMA_URL: model.url, WORKER_CONCURRENCY: '2', JOB_SLICE_MS: '300', LOG_LEVEL: 'warn' };
  const workers = [spawnService('worker', env), spawnService('worker', env)];
  try {
    for (const b of batches) await waitForBatch(app.ctx.db, b.dbId, ['COMPLETED'], 90_000);
  } finally {
    for (const w of workers) expect(await w.stop('SIGTERM')).toBe(0);
  }
  const runs = await listRuns(app.ctx.db, batches.map((b) => b.dbId));
  expect(runs).toHaveLength(20);
  expectNoOverlap(runs);
  // Both processes did work.
  const procs = await Promise.all(workers.map((w) => w.child.pid));
  expect(procs.every(Boolean)).toBe(true);
  expect(new Set(runs.map((r) => r.workerId)).size).toBeGreaterThanOrEqual(2);
  for (const b of batches) {
    const { batch } = await expectCountsMatchRows(app.ctx.db, b.dbId);
    expect(batch).toMatchObject({ successfulUploads: 5, failedUploads: 0 });
  }
}, 120_000);

it('a batch created behind a long one gets its turn when the long one hands over, not after it', async () => {
  slowModel(model, 100);
  const api = client(app);
  const { token } = await api.signUp();
  const long = await uploadBatch(api, token, 20);
  // One slot, busy with the long batch before the short one exists.
  const env = { ...app.env, OLLAMA_URL: model.url, WORKER_CONCURRENCY: '1', JOB_SLICE_MS: '500', LOG_LEVEL: 'warn' };
  const worker = spawnService('worker', env);
  try {
    await waitForUploads(app.ctx.db, long.dbId, (rows) => rows.some((r) => r.status === 'COMPLETED'));
    const short = await uploadBatch(api, token, 2);
    const done = await waitForBatch(app.ctx.db, short.dbId, ['COMPLETED'], 60_000);
    // Handed over at the end of its slice, the long batch's next job queues behind the short one.
    const rows = await app.ctx.db.selectFrom('uploads').select('status').where('batchId', '=', long.dbId).execute();
    expect(rows.filter((r) => r.status !== 'COMPLETED').length, 'the long batch was still unfinished').toBeGreaterThan(0);
    expect(done).toMatchObject({ successfulUploads: 2, failedUploads: 0 });
    await waitForBatch(app.ctx.db, long.dbId, ['COMPLETED'], 60_000);
  } finally {
    expect(await worker.stop('SIGTERM')).toBe(0);
  }
  expectNoOverlap(await listRuns(app.ctx.db, [long.dbId]));
  const { batch } = await expectCountsMatchRows(app.ctx.db, long.dbId);
  expect(batch).toMatchObject({ successfulUploads: 20, failedUploads: 0 });
}, 120_000);

it('SIGTERM during processing releases the upload in flight and leaves no job locked', async () => {
  slowModel(model, 1500);
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 4);
  const env = { ...app.env, OLLAMA_URL: model.url, SHUTDOWN_GRACE_MS: '300', LOG_LEVEL: 'warn' };
  const worker = spawnService('worker', env);
  await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.some((r) => r.status === 'PROCESSING'));
  const t0 = Date.now();
  expect(await worker.stop('SIGTERM')).toBe(0);
  expect(Date.now() - t0).toBeLessThan(10_000);

  const { rows } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
  expect(rows.filter((r) => r.status === 'PROCESSING')).toEqual([]);
  const { rows: locked } = await sql<{ n: number }>`select count(*)::int as n from graphile_worker.jobs where locked_by is not null`.execute(app.ctx.db);
  expect(locked[0]!.n).toBe(0);
  const runs = await listRuns(app.ctx.db, [batch.dbId]);
  expect(runs.at(-1)!.outcome).toBe('ABORTED');

  // Another worker picks the batch up at once and finishes it; the interruption cost no attempt.
  slowModel(model, 10);
  const next = spawnService('worker', env);
  await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED'], 30_000);
  await next.stop('SIGTERM');
  const after = await expectCountsMatchRows(app.ctx.db, batch.dbId);
  expect(after.batch).toMatchObject({ successfulUploads: 4, failedUploads: 0 });
  const attempts = await app.ctx.db.selectFrom('uploads').select('attempts').where('batchId', '=', batch.dbId).execute();
  expect(attempts.map((a) => a.attempts)).toEqual([1, 1, 1, 1]);
}, 60_000);
