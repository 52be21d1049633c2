import { Logger as WorkerLogger, run } from 'graphile-worker';
import type { AppContext } from '../context.ts';
import { PROCESS_BATCH } from './contract.ts';
import { startLiveness } from './liveness.ts';
import { processBatch } from './process-batch.ts';

export interface WorkerHandle {
  /** Graceful: running uploads get the grace period, then are released for other workers. */
  stop(): Promise<void>;
  sweep(): Promise<number>;
}

export async function startWorker(ctx: AppContext): Promise<WorkerHandle> {
  const log = ctx.logger.child({ component: 'worker' });
  const logger = new WorkerLogger((scope) => (level, message, meta) => {
    const pinoLevel = level === 'warning' ? 'warn' : level;
    log[pinoLevel]({ ...scope, ...meta }, message);
  });
  const { worker: w } = ctx.config;
  const liveness = await startLiveness(ctx, { sweepIntervalMs: w.sweepIntervalMs, orphanGraceMs: w.orphanGraceMs });
  const runner = await run({
    pgPool: ctx.pool,
    concurrency: w.concurrency,
    // Signals are ours to handle: the process shuts the API and the worker down together.
    noHandleSignals: true,
    gracefulShutdownAbortTimeout: w.shutdownGraceMs,
    pollInterval: 2000,
    crontab: '',
    logger,
    taskList: {
      [PROCESS_BATCH]: async (payload, helpers) => {
        // Registered before any work, so a crash from here on is detected at once.
        if (helpers.job.locked_by) await liveness.addWorker(helpers.job.locked_by);
        await processBatch(ctx, payload, helpers, {
          livenessSignal: liveness.signal,
          sliceMs: w.jobSliceMs,
          watchIntervalMs: w.watchIntervalMs,
        });
      },
    },
  });
  return {
    async stop() {
      await runner.stop();
      await liveness.stop();
    },
    sweep: () => liveness.sweep(),
  };
}
