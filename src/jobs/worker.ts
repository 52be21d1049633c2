import { setTimeout as sleep } from 'node:timers/promises';
import { Logger as WorkerLogger, parseCrontab, run, type Runner } from 'graphile-worker';
import type { AppContext } from '../context.ts';
import { lowerMediaPriority } from '../services/media-priority.ts';
import { PROCESS_BATCH } from './contract.ts';
import { laneBudget } from './lanes.ts';
import { startLiveness } from './liveness.ts';
import { processBatch } from './process-batch.ts';
import { SWEEP_STORAGE, sweepStorage } from './sweep-storage.ts';

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
  const stopLowering = lowerMediaPriority(w.mediaNice, log);
  const lanes = laneBudget(w.concurrency);

  const launch = () =>
    run({
      pgPool: ctx.pool,
      concurrency: w.concurrency,
      // Signals are ours to handle: the process shuts the API and the worker down together.
      noHandleSignals: true,
      gracefulShutdownAbortTimeout: w.shutdownGraceMs,
      pollInterval: 2000,
      // Cron jobs run once across all worker processes, however many there are.
      parsedCronItems: parseCrontab(`*/15 * * * * ${SWEEP_STORAGE} ?max=1`),
      logger,
      // Batched completion retries a failed write and ends the pool cleanly if it keeps
      // failing (the supervisor below restarts it); the unbatched path leaves the
      // promise of a failed write unhandled when the database drops mid-job.
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      taskList: {
        [SWEEP_STORAGE]: async () => void (await sweepStorage(ctx)),
        [PROCESS_BATCH]: async (payload, helpers) => {
          // Registered before any work, so a crash from here on is detected at once.
          if (helpers.job.locked_by) await liveness.addWorker(helpers.job.locked_by);
          const ended = lanes.job();
          try {
            await processBatch(ctx, payload, helpers, {
              livenessSignal: liveness.signal,
              sliceMs: w.jobSliceMs,
              watchIntervalMs: w.watchIntervalMs,
              progressIntervalMs: w.progressIntervalMs,
              parallelism: w.batchParallelism,
              lanes,
            });
          } finally {
            ended();
          }
        },
      },
    });

  let stopping = false;
  let runner: Runner = await launch();
  // graphile-worker ends its whole pool when a worker loses the database (say, a
  // PostgreSQL restart). Keep a new pool coming until the database is back.
  const supervise = (r: Runner) => {
    r.events.on('worker:getJob:empty', () => lanes.slotIdle());
    r.promise.then(
      () => restart(),
      (err: unknown) => restart(err),
    );
  };
  const restart = async (err?: unknown) => {
    if (stopping) return;
    log.error({ err }, 'worker pool ended unexpectedly; starting a new one');
    for (let delay = 1000; !stopping; delay = Math.min(delay * 2, 15_000)) {
      await sleep(delay);
      try {
        await liveness.retireWorkers();
        runner = await launch();
        supervise(runner);
        log.info('worker pool restarted');
        return;
      } catch (e) {
        log.warn({ err: e }, 'worker pool restart failed; retrying');
      }
    }
  };
  supervise(runner);

  return {
    async stop() {
      stopping = true;
      stopLowering();
      await runner.stop().catch((err: unknown) => log.warn({ err }, 'worker stop failed'));
      await liveness.stop();
    },
    sweep: () => liveness.sweep(),
  };
}
