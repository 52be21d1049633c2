import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.ts';
import { BatchDetails } from '../documents.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { expectCountsMatchRows, slowModel, uploadBatch, waitForBatch, waitForUploads } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { ProgressWithSeq } from './documents.ts';

/** A private Redis this test may stop and start without disturbing anyone else's. */
async function startRedis(port: number) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true))).on('error', () => resolve(false));
    });
    if (up) return child;
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

let model: ModelServer;
let redis: ChildProcess;
let redisPort: number;
let app: TestApp;
beforeAll(async () => {
  model = await startModelServer();
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  app = await startTestApp({ worker: false, env: { REDIS_URL: `redis://127.0.0.1:${redisPort}`, OLLAMA_URL: model.url } });
});
afterAll(async () => {
  await app?.close();
  redis?.kill('SIGKILL');
  await model?.close();
});

it('keeps processing with Redis down, and subscribers catch up when it returns', async () => {
  slowModel(model, 300);
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 6);
  const sub = api.subscribeWs(ProgressWithSeq, { batchId: batch.id }, token, 60_000);
  await sub.first;
  await app.startWorker();
  await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'COMPLETED').length >= 1);

  redis.kill('SIGKILL');
  // Events already on their way when Redis died may still arrive (an outcome's commit releases a
  // few at once); from then on, none while it is down. Work goes on, and the API still answers.
  const completed = (n: number) => waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'COMPLETED').length >= n, 30_000);
  await completed(2);
  const eventsDuringOutage = sub.events.length;
  await completed(4);
  const during = await api.request(BatchDetails, { id: batch.id }, token);
  expect(during.data!.batch!.status).toBe('PROCESSING');
  expect(sub.events.length).toBe(eventsDuringOutage);

  redis = await startRedis(redisPort);
  await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED'], 60_000);
  const events = await sub.done;
  const last = events.at(-1)!.data!.batchProgress;
  expect(last.__typename === 'BatchProgress' && last.batch).toMatchObject({ status: 'COMPLETED', processedUploads: 6 });
  await app.stopWorker();

  const { batch: row } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
  expect(row).toMatchObject({ successfulUploads: 6, failedUploads: 0 });
  // A client reconnecting now gets the current state at once.
  const late = await api.subscribeWs(ProgressWithSeq, { batchId: batch.id }, token).done;
  expect(late).toHaveLength(1);
  const snap = late[0]!.data!.batchProgress;
  expect(snap.__typename === 'BatchProgress' && snap.seq).toBeGreaterThanOrEqual(
    Math.max(...events.map((e) => e.data!.batchProgress.seq)),
  );
}, 120_000);
