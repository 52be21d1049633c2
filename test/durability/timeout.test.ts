import { afterAll, beforeAll, expect, it } from 'vitest';
import { listRuns } from '../../src/db/upload-runs.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { expectCountsMatchRows, slowModel, uploadBatch, waitForBatch } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';

let model: ModelServer;
let app: TestApp;
beforeAll(async () => {
  model = await startModelServer();
  app = await startTestApp({ env: { OLLAMA_URL: model.url, UPLOAD_TIMEOUT_MS: '500' } });
});
afterAll(async () => {
  await app?.close();
  await model?.close();
});

it('an attempt that outlives UPLOAD_TIMEOUT_MS fails (it counts as an attempt) and the batch goes on', async () => {
  // The model server stalls for longer than an attempt may take.
  slowModel(model, 3000);
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 2);
  await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED'], 30_000);
  const { batch: row } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
  expect(row).toMatchObject({ successfulUploads: 0, failedUploads: 2 });
  const uploads = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).execute();
  for (const u of uploads) {
    expect(u).toMatchObject({ status: 'FAILED', attempts: 2, errorMessage: 'Processing took longer than 0.5 s' });
  }
  const runs = await listRuns(app.ctx.db, [batch.dbId]);
  expect(runs.map((r) => r.outcome)).toEqual(['RETRY', 'FAILED', 'RETRY', 'FAILED']);
});
