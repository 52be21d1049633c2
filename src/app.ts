import type { Config } from './config.ts';
import type { AppContext } from './context.ts';
import { createDb, createPool } from './db/database.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import type { Logger } from './logger.ts';
import { createOllamaAnalyzer } from './services/ollama.ts';
import { createLocalEventBus, createRedisEventBus } from './services/events.ts';
import { createStorage } from './services/storage.ts';

export type Mode = 'all' | 'api' | 'worker';

/** Builds the process-wide context; `close` releases everything it opened, in reverse order. */
export async function createAppContext(config: Config, logger: Logger, mode: Mode) {
  if (!config.redisUrl && mode !== 'all') {
    throw new Error(
      `REDIS_URL is required for "${mode}" mode: progress events must cross processes, ` +
        'and the in-process event bus only reaches subscribers in the same process (use "npm start" for that).',
    );
  }
  const cleanups: (() => Promise<unknown>)[] = [];
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const embedded = await startEmbeddedPostgres(config.dataDir, logger);
    cleanups.push(embedded.stop);
    databaseUrl = embedded.url;
  }
  const pool = createPool(databaseUrl, config.dbPoolMax, logger);
  const db = createDb(pool);
  cleanups.push(() => db.destroy()); // ends the pool too

  const bus = config.redisUrl ? createRedisEventBus(config.redisUrl, logger) : createLocalEventBus();
  cleanups.push(() => bus.close());

  const ctx: AppContext = {
    config,
    pool,
    db,
    bus,
    logger,
    storage: createStorage(config.storageDir),
    analyzer: config.ollama ? createOllamaAnalyzer(config.ollama) : undefined,
  };
  return {
    ctx,
    migrate: () => migrate(db, pool),
    async close() {
      // A step that hangs (a connection that never drains) must not keep the process up.
      for (const fn of cleanups.reverse()) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'timeout')));
        const r = await Promise.race([fn().catch((err) => logger.warn({ err }, 'error during shutdown')), timeout]);
        clearTimeout(timer);
        if (r === 'timeout') logger.warn({ step: fn.name || String(fn) }, 'shutdown step timed out');
      }
    },
  };
}
