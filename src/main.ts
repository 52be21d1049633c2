import './v8-flags.ts';
import { type Mode, createAppContext } from './app.ts';
import { type Config, loadConfig } from './config.ts';
import type { WorkerHandle } from './jobs/worker.ts';
import { createLogger } from './logger.ts';
import type { ApiServer } from './server.ts';

const command = process.argv[2] ?? 'all';
if (!['all', 'api', 'worker', 'migrate'].includes(command)) {
  console.error(`usage: node src/main.ts [all|api|worker|migrate]`);
  process.exit(2);
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
const logger = createLogger(config.logLevel);

async function main() {
  const mode: Mode = command === 'migrate' ? 'all' : (command as Mode);
  const app = await createAppContext(config, logger, mode);
  const applied = await app.migrate();
  if (applied.length) logger.info({ applied }, 'migrations applied');
  if (command === 'migrate') return app.close();

  let api: ApiServer | undefined;
  let worker: WorkerHandle | undefined;
  // Each process loads only its own half: the API's server and GraphQL schema are 25 MB of heap
  // (65 MB of resident memory) that a worker process has no use for.
  if (mode !== 'worker') {
    const { startApiServer } = await import('./server.ts');
    api = await startApiServer(app.ctx, { host: config.host, port: config.port });
    logger.info(`Darkroom API listening on ${api.url}/graphql`);
  }
  if (mode !== 'api') {
    const { startWorker } = await import('./jobs/worker.ts');
    worker = await startWorker(app.ctx);
    logger.info({ concurrency: config.worker.concurrency }, 'worker started');
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await Promise.allSettled([api?.close(), worker?.stop()]);
    await app.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  // Printed whatever LOG_LEVEL says: a service that will not start must say why.
  console.error(`Darkroom failed to start: ${err instanceof Error ? err.message : String(err)}`);
  logger.fatal({ err }, 'failed to start');
  process.exit(1);
});
