import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAppContext } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { startWorker, type WorkerHandle } from '../../src/jobs/worker.ts';
import { createLogger } from '../../src/logger.ts';
import { startApiServer, type ApiServer } from '../../src/server.ts';
import { REDIS_URL } from '../helpers/app.ts';
import { expectCountsMatchRows, slowModel, uploadBatch, waitForUploads } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';

// A PostgreSQL of this test's own (the service's embedded one), so it can be restarted
// without touching anyone else's.

let dir: string;
let pg: { url: string; start(): Promise<void>; stop(): Promise<void> };
let model: ModelServer;
let app: Awaited<ReturnType<typeof createAppContext>>;
let api: ApiServer;
let worker: WorkerHandle | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'darkroom-pg-'));
  // As root, PostgreSQL runs as a separate system user, which must be able to reach its data.
  await chmod(dir, 0o755);
  pg = await startEmbeddedPostgres(dir, createLogger('silent'));
  model = await startModelServer();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: pg.url,
    REDIS_URL,
    STORAGE_DIR: path.join(dir, 'storage'),
    WORKER_CONCURRENCY: '1',
    OLLAMA_URL: model.url,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  });
  app = await createAppContext(config, createLogger(config.logLevel), 'all');
  await app.migrate();
  api = await startApiServer(app.ctx, { host: '127.0.0.1', port: 0 });
}, 120_000);

afterAll(async () => {
  await api?.close();
  await worker?.stop();
  await app?.close();
  await pg?.stop().catch(() => {});
  await model?.close();
  await rm(dir, { recursive: true, force: true });
});

it('reconnects after PostgreSQL restarts mid-batch and finishes with exact counts', async () => {
  slowModel(model, 300);
  const http = client({ graphqlUrl: `${api.url}/graphql`, wsUrl: `${api.url.replace('http', 'ws')}/graphql` });
  const { token } = await http.signUp();
  const batch = await uploadBatch(http, token, 8);
  worker = await startWorker(app.ctx);
  await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'COMPLETED').length >= 2);

  await pg.stop();
  await sleep(1500);
  await pg.start();

  const until = Date.now() + 90_000;
  for (;;) {
    const b = await app.ctx.db.selectFrom('batches').select('status').where('id', '=', batch.dbId).executeTakeFirst().catch(() => undefined);
    if (b?.status === 'COMPLETED') break;
    expect(Date.now()).toBeLessThan(until);
    await sleep(200);
  }
  const { batch: row, rows } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
  expect(row).toMatchObject({ totalUploads: 8, successfulUploads: 8, failedUploads: 0 });
  expect(rows.every((r) => r.status === 'COMPLETED')).toBe(true);
}, 150_000);
