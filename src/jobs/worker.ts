import { Logger as WorkerLogger, run, type Runner } from 'graphile-worker';
import type { AppContext } from '../context.ts';
import { PROCESS_BATCH } from './contract.ts';
import { processBatch } from './process-batch.ts';

export async function startWorker(ctx: AppContext): Promise<Runner> {
  const log = ctx.logger.child({ component: 'worker' });
  const logger = new WorkerLogger((scope) => (level, message, meta) => {
    const pinoLevel = level === 'warning' ? 'warn' : level;
    log[pinoLevel]({ ...scope, ...meta }, message);
  });
  return run({
    pgPool: ctx.pool,
    concurrency: ctx.config.worker.concurrency,
    // Signals are ours to handle: the process shuts the API and the worker down together.
    noHandleSignals: true,
    pollInterval: 2000,
    crontab: '',
    logger,
    taskList: {
      [PROCESS_BATCH]: (payload, helpers) => processBatch(ctx, payload, helpers),
    },
  });
}
