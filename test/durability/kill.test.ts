import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listRuns } from '../../src/db/upload-runs.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { expectCountsMatchRows, expectNoOverlap, slowModel, uploadBatch, waitForBatch } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { type ServiceProcess, spawnService } from '../helpers/process.ts';

let model: ModelServer;
let app: TestApp;
beforeAll(async () => {
  model = await startModelServer();
  slowModel(model, 150);
  app = await startTestApp({ mode: 'api', env: { OLLAMA_URL: model.url } });
});
afterAll(async () => {
  await app?.close();
  await model?.close();
});

it('survives repeated SIGKILLs of the worker: resumes within 30 s, counts exact, nothing processed twice at once', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 30);
  const env = { ...app.env, OLLAMA_URL: model.url, LOG_LEVEL: 'warn' };

  const recoveries: number[] = [];
  let worker: ServiceProcess = spawnService('worker', env);
  for (let kill = 0; kill < 6; kill++) {
    // Let it get some work done, then kill it at a random moment.
    const runsBefore = (await listRuns(app.ctx.db, [batch.dbId])).length;
    const until = Date.now() + 20_000;
    while ((await listRuns(app.ctx.db, [batch.dbId])).length === runsBefore && Date.now() < until) await sleep(50);
    await sleep(100 + Math.random() * 800);
    const status = (await waitForBatch(app.ctx.db, batch.dbId, ['PROCESSING', 'COMPLETED'])).status;
    if (status === 'COMPLETED') break;
    await worker.stop('SIGKILL');
    const killedAt = Date.now();
    worker = spawnService('worker', env);
    // Resumed = the next attempt of this batch started.
    const runsAtKill = (await listRuns(app.ctx.db, [batch.dbId])).length;
    for (;;) {
      const runs = await listRuns(app.ctx.db, [batch.dbId]);
      if (runs.length > runsAtKill) {
        recoveries.push(runs.at(-1)!.startedAt.getTime() - killedAt);
        break;
      }
      expect(Date.now() - killedAt, 'resume after a kill took too long').toBeLessThan(30_000);
      await sleep(50);
    }
  }
  await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED'], 120_000);
  await worker.stop('SIGTERM');

  expect(recoveries.length).toBeGreaterThanOrEqual(5);
  for (const ms of recoveries) expect(ms).toBeLessThan(30_000);
  const { batch: row, rows } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
  expect(row).toMatchObject({ totalUploads: 30, successfulUploads: 30, failedUploads: 0 });
  expect(rows.every((r) => r.status === 'COMPLETED')).toBe(true);

  // Every upload has its thumbnail on disk, and a crash never counted as an attempt.
  const uploads = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).execute();
  for (const u of uploads) {
    expect(u.thumbnailKey).toBeTruthy();
    expect(await app.ctx.storage.exists(u.thumbnailKey!)).toBe(true);
    expect(u.attempts).toBe(1);
  }
  const runs = await listRuns(app.ctx.db, [batch.dbId]);
  expectNoOverlap(runs);
  expect(new Set(runs.map((r) => r.workerId)).size).toBeGreaterThanOrEqual(5);

  const sorted = [...recoveries].sort((a, b) => a - b);
  const stats = { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1), kills: sorted.length };
  console.log(`kill-test recovery ms: ${JSON.stringify(stats)}`);
}, 180_000);
