import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchDetails, BatchProgress } from './documents.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import { DEFAULT_DESCRIPTION, startModelServer, type ModelServer } from './helpers/model-server.ts';

let model: ModelServer;
let app: TestApp;
beforeAll(async () => {
  model = await startModelServer();
  // Every stage is published (PROGRESS_INTERVAL_MS 0): the test checks the analysis stages were reported.
  app = await startTestApp({ worker: false, env: { PROGRESS_INTERVAL_MS: '0', OLLAMA_URL: model.url, OLLAMA_TIMEOUT_MS: '5000' } });
});
afterAll(async () => {
  await app?.close();
  await model?.close();
});

it('retries a failed upload once, fails it for good after two attempts, and goes on with the batch', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  // The model server errors on its 2nd and 3rd description requests: the 2nd upload's first
  // attempt and the analyzer's own retry within it, so the attempt as a whole fails.
  model.setBehavior(({ path, n }) =>
    path === '/api/generate' && (n === 2 || n === 3) ? { status: 500, body: { error: 'model crashed' } } : undefined,
  );
  const created = await api.upload(token, [
    { name: 'first.png', data: await images.png({ color: 'red' }) },
    { name: 'flaky.png', data: await images.png({ color: 'blue' }) },
    // A PNG header on a cut-off body: accepted at upload, undecodable in the worker.
    { name: 'truncated.png', data: await images.truncatedPng() },
    { name: 'last.png', data: await images.png({ color: 'green' }) },
  ]);
  const result = created.data!.createBatch;
  if (result.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
  expect(result.rejectedFiles).toEqual([]);

  const sub = api.subscribeWs(BatchProgress, { batchId: result.batch.id }, token);
  await sub.first;
  await app.startWorker();
  const events = await sub.done;

  const batch = (await api.request(BatchDetails, { id: result.batch.id }, token)).data!.batch!;
  expect(batch).toMatchObject({ status: 'COMPLETED', totalUploads: 4, successfulUploads: 3, failedUploads: 1, processedUploads: 4 });
  const [first, flaky, truncated, last] = batch.uploads.edges.map((e) => e.node);
  expect(first).toMatchObject({ status: 'COMPLETED', attempts: 1, analysisStatus: 'COMPLETED', description: DEFAULT_DESCRIPTION });
  expect(flaky).toMatchObject({ status: 'COMPLETED', attempts: 2, errorMessage: null, description: DEFAULT_DESCRIPTION });
  expect(truncated).toMatchObject({ status: 'FAILED', attempts: 2, thumbnailUrl: null });
  expect(truncated!.errorMessage).toMatch(/decode/i);
  expect(last).toMatchObject({ status: 'COMPLETED', attempts: 1 });

  // Subscribers saw the retry and the failure as they happened.
  const stagesOf = (id: string) =>
    events.flatMap((e) => {
      const p = e.data!.batchProgress;
      return p.__typename === 'FileProgress' && p.upload.id === id ? [p.stage] : [];
    });
  expect(stagesOf(flaky!.id)).toContain('retrying');
  expect(stagesOf(truncated!.id).filter((s) => s === 'retrying')).toHaveLength(1);
  expect(stagesOf(truncated!.id).at(-1)).toBe('failed');
  expect(stagesOf(last!.id).at(-1)).toBe('completed');
  // The analysis stages report real progress from the analyzer.
  expect(stagesOf(first!.id)).toEqual(expect.arrayContaining(['describing', 'embedding']));
});

it('counts exactly what the upload rows say after the worker runs the batch again', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  model.setBehavior(() => undefined);
  const created = await api.upload(token, [
    { name: 'a.png', data: await images.png({}) },
    { name: 'b.png', data: await images.png({ color: 'blue' }) },
  ]);
  const result = created.data!.createBatch;
  if (result.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
  await api.subscribeWs(BatchProgress, { batchId: result.batch.id }, token).done;

  // Run the job again as a crashed-and-restarted worker would: nothing is counted twice.
  const { enqueueProcessBatch } = await import('../src/jobs/contract.ts');
  const { decodeGlobalID } = await import('@pothos/plugin-relay');
  const batchId = decodeGlobalID(result.batch.id).id;
  await app.ctx.db.updateTable('batches').set({ status: 'PROCESSING' }).where('id', '=', batchId).execute();
  const rerun = api.subscribeWs(BatchProgress, { batchId: result.batch.id }, token);
  await rerun.first;
  await enqueueProcessBatch(app.ctx.db, { batchId });
  expect((await rerun.done).length).toBeGreaterThan(1); // the re-run really happened
  const batch = (await api.request(BatchDetails, { id: result.batch.id }, token)).data!.batch!;
  expect(batch).toMatchObject({ status: 'COMPLETED', successfulUploads: 2, failedUploads: 0, processedUploads: 2 });
  expect(batch.uploads.edges.map((e) => e.node.attempts)).toEqual([1, 1]);
});
