import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAppContext, type Mode } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { startWorker, type WorkerHandle } from '../../src/jobs/worker.ts';
import { createLogger } from '../../src/logger.ts';
import { startApiServer } from '../../src/server.ts';
import { createTestDatabase } from './db.ts';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestAppOptions {
  /** 'api' needs Redis and runs no worker in this process. */
  mode?: Mode;
  /** Start the in-process worker right away (default true for mode 'all'). */
  worker?: boolean;
  redis?: boolean;
  env?: Record<string, string | undefined>;
}

export type TestApp = Awaited<ReturnType<typeof startTestApp>>;

/** The real service on a free port, with its own database and storage directory. */
export async function startTestApp(opts: TestAppOptions = {}) {
  const mode = opts.mode ?? 'all';
  const database = await createTestDatabase();
  const storageDir = await mkdtemp(path.join(tmpdir(), 'darkroom-test-'));
  const env = {
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    REDIS_URL: opts.redis === false ? undefined : REDIS_URL,
    STORAGE_DIR: storageDir,
    WORKER_CONCURRENCY: '1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Test apps share one Redis and one client address: keep their sign-in counts apart.
    RATE_LIMIT_PREFIX: `darkroom-test:${path.basename(storageDir)}`,
    ...opts.env,
  };
  const config = loadConfig(env);
  const app = await createAppContext(config, createLogger(config.logLevel), mode);
  const api = await startApiServer(app.ctx, { host: '127.0.0.1', port: 0 });
  let worker: WorkerHandle | undefined;
  const result = {
    url: api.url,
    graphqlUrl: `${api.url}/graphql`,
    wsUrl: `${api.url.replace(/^http/, 'ws')}/graphql`,
    ctx: app.ctx,
    env,
    storageDir,
    databaseUrl: database.url,
    async startWorker() {
      worker ??= await startWorker(app.ctx);
    },
    async stopWorker() {
      await worker?.stop();
      worker = undefined;
    },
    async close() {
      await api.close();
      await worker?.stop();
      await app.close();
      await database.drop();
      await rm(storageDir, { recursive: true, force: true });
    },
  };
  if (mode === 'all' && opts.worker !== false) await result.startWorker();
  return result;
}
