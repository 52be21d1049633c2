import { access } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { slowModel, uploadBatch, waitForUploads } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';

let model: ModelServer;
let app: TestApp;
beforeAll(async () => {
  model = await startModelServer();
  app = await startTestApp({ worker: false, env: { OLLAMA_URL: model.url } });
});
afterAll(async () => {
  await app?.close();
  await model?.close();
});

it('a worker that lost its lease mid-upload writes no outcome and removes no file', async () => {
  slowModel(model, 800);
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 2);
  await app.startWorker();
  const [first] = await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows[0]?.status === 'PROCESSING');
  // Another worker owns the batch now, as after a forced unlock: it will redo this upload.
  await sql`update graphile_worker._private_jobs set locked_by = 'another-worker' where key = ${`batch:${batch.dbId}`}`.execute(app.ctx.db);
  // Our worker finishes the upload's work (the embedding follows the slow description)…
  for (let i = 0; !model.requests.some((r) => r.path === '/api/embed'); i++) {
    if (i > 400) throw new Error('the upload never reached its embedding');
    await new Promise((r) => setTimeout(r, 25));
  }
  // …and, done or stopped, must leave everything as the new owner expects to find it.
  await new Promise((r) => setTimeout(r, 200));
  await app.stopWorker();

  const rows = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).orderBy('position').execute();
  expect(rows.map((r) => [r.id === first!.id, r.status, r.attempts])).toEqual([
    [true, 'PROCESSING', 0],
    [false, 'PENDING', 0],
  ]);
  const counts = await app.ctx.db.selectFrom('batches').select(['successfulUploads', 'failedUploads']).where('id', '=', batch.dbId).executeTakeFirstOrThrow();
  expect(counts).toEqual({ successfulUploads: 0, failedUploads: 0 });
  await access(path.join(app.storageDir, rows[0]!.originalKey)); // the original is still there
});
