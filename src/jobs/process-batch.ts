import type { JobHelpers } from 'graphile-worker';
import { sql } from 'kysely';
import type { AppContext } from '../context.ts';
import { completeBatch, countBatchOutcome, startBatch } from '../db/batches.ts';
import { finishRun, startRun } from '../db/upload-runs.ts';
import {
  finishUpload,
  nextUnfinishedUpload,
  recordFailedAttempt,
  releaseUpload,
  startUpload,
  type UploadOutcome,
  type UploadRow,
  uploadState,
} from '../db/uploads.ts';
import { emitProgress } from '../services/progress.ts';
import { enqueueProcessBatch, ProcessBatchPayload } from './contract.ts';
import { type FileStage, runPipeline } from './pipeline.ts';

export type BatchJobHelpers = Pick<JobHelpers, 'abortSignal'> & { job: { id: string; locked_by?: string | null } };

export interface BatchJobOptions {
  /** Aborts when the process may be presumed dead by others (see liveness.ts). */
  livenessSignal?: AbortSignal;
  /** After this long a run hands over to a fresh job, so no job lock ever ages. */
  sliceMs: number;
  /** How often a running upload checks whether it was cancelled or deleted. */
  watchIntervalMs: number;
}

class Interrupted extends Error {}

/**
 * Works through a batch's unfinished uploads one at a time, in creation order.
 * Everything it decides is read from and written to the database first, so a
 * re-run after a crash continues exactly where the rows say it stopped.
 */
export async function processBatch(ctx: AppContext, rawPayload: unknown, helpers: BatchJobHelpers, opts: BatchJobOptions) {
  const { batchId } = ProcessBatchPayload.parse(rawPayload);
  const stop = opts.livenessSignal ? AbortSignal.any([helpers.abortSignal, opts.livenessSignal]) : helpers.abortSignal;
  const workerId = helpers.job.locked_by ?? 'unknown';
  const batch = await startBatch(ctx.db, batchId);
  if (!batch) return; // deleted, finished or cancelled meanwhile: nothing to do
  await emitProgress(ctx, { type: 'batch', batchId, terminal: false });

  const deadline = Date.now() + opts.sliceMs;
  for (;;) {
    if (stop.aborted || Date.now() > deadline) {
      // Hand the rest to a fresh job (any worker may take it) and end this one cleanly:
      // nothing stays locked, and a shutdown costs the job no attempt.
      if (stop.aborted && opts.livenessSignal?.aborted) {
        ctx.logger.warn({ batchId }, 'liveness lost; leaving the batch to whoever unlocks it');
        return;
      }
      await enqueueProcessBatch(ctx.db, { batchId });
      return;
    }
    if (!(await stillOwnsJob(ctx, helpers.job.id, workerId))) {
      ctx.logger.warn({ batchId, jobId: helpers.job.id, workerId }, 'job lock lost to another worker; stopping');
      return;
    }
    const upload = await nextUnfinishedUpload(ctx.db, batchId);
    if (!upload) break;
    const result = await processUpload(ctx, upload, { stop, workerId, watchIntervalMs: opts.watchIntervalMs });
    if (result === 'cancelled') return;
  }

  if (await completeBatch(ctx.db, batchId)) {
    await emitProgress(ctx, { type: 'batch', batchId, terminal: true });
  }
}

/** The job lock is our lease on the batch; after a forced unlock another worker owns it. */
async function stillOwnsJob(ctx: AppContext, jobId: string, workerId: string) {
  const { rows } = await sql<{ ok: boolean }>`
    select exists(select 1 from graphile_worker.jobs where id = ${jobId} and locked_by = ${workerId}) as ok`.execute(ctx.db);
  return rows[0]?.ok === true;
}

async function processUpload(
  ctx: AppContext,
  upload: UploadRow,
  { stop, workerId, watchIntervalMs }: { stop: AbortSignal; workerId: string; watchIntervalMs: number },
): Promise<'done' | 'gone' | 'cancelled' | 'interrupted'> {
  const fileEvent = (stage: FileStage, percent: number) =>
    emitProgress(ctx, { type: 'file', batchId: upload.batchId, uploadId: upload.id, stage, percent });

  let row = await startUpload(ctx.db, upload.id);
  if (!row) return 'gone';
  await fileEvent('started', 0);

  for (;;) {
    const runId = await startRun(ctx.db, { uploadId: row.id, batchId: row.batchId, workerId });
    const watch = watchUpload(ctx, row.id, watchIntervalMs);
    // Our own bound on a whole attempt, over sharp's and the model server's own timeouts.
    const deadline = AbortSignal.timeout(ctx.config.worker.uploadTimeoutMs);
    const signal = AbortSignal.any([stop, watch.signal, deadline]);
    let outcome: UploadOutcome;
    try {
      outcome = await runPipeline(ctx, row, { signal, onStage: fileEvent });
      if (signal.aborted) throw signal.reason;
    } catch (err) {
      if (signal.aborted && !deadline.aborted) {
        // Not the file's fault: the attempt does not count and the upload is redone later.
        await finishRun(ctx.db, runId, 'ABORTED');
        const why = watch.signal.aborted ? (watch.signal.reason as Interrupted).message : 'interrupted';
        if (why === 'deleted') await ctx.storage.removeUpload(row.userId, row.id);
        else await releaseUpload(ctx.db, row.id);
        return why === 'deleted' ? 'gone' : why === 'cancelled' ? 'cancelled' : 'interrupted';
      }
      const errorMessage = deadline.aborted
        ? `Processing took longer than ${ctx.config.worker.uploadTimeoutMs / 1000} s`
        : err instanceof Error
          ? err.message
          : String(err);
      ctx.logger.warn({ uploadId: row.id, attempt: row.attempts + 1, err: errorMessage }, 'upload attempt failed');
      if (row.attempts + 1 < ctx.config.worker.uploadMaxAttempts) {
        await finishRun(ctx.db, runId, 'RETRY');
        row = await recordFailedAttempt(ctx.db, row.id, errorMessage);
        if (!row) return 'gone';
        await fileEvent('retrying', 0);
        continue;
      }
      outcome = { status: 'FAILED', errorMessage };
    } finally {
      watch.stop();
    }
    await finishRun(ctx.db, runId, outcome.status);
    const recorded = await recordOutcome(ctx, row, outcome);
    if (!recorded) return 'gone';
    await fileEvent(outcome.status === 'COMPLETED' ? 'completed' : 'failed', 100);
    await emitProgress(ctx, { type: 'batch', batchId: row.batchId, terminal: false });
    return 'done';
  }
}

/** Polls the upload and its batch so a cancel or a delete aborts the work in flight. */
function watchUpload(ctx: AppContext, uploadId: string, intervalMs: number) {
  const controller = new AbortController();
  const timer = setInterval(() => {
    uploadState(ctx.db, uploadId)
      .then((s) => {
        if (!s) controller.abort(new Interrupted('deleted'));
        else if (s.batchStatus === 'CANCELLED') controller.abort(new Interrupted('cancelled'));
      })
      .catch(() => {}); // a failed poll changes nothing; the next one tries again
  }, intervalMs);
  timer.unref();
  return { signal: controller.signal, stop: () => clearInterval(timer) };
}

/** The upload's final state and the batch counter move in one transaction, so they cannot disagree. */
async function recordOutcome(ctx: AppContext, row: UploadRow, outcome: UploadOutcome) {
  const finished = await ctx.db.transaction().execute(async (trx) => {
    const done = await finishUpload(trx, row.id, outcome);
    if (done) await countBatchOutcome(trx, row.batchId, outcome.status);
    return done;
  });
  // Deleted while we worked: whatever we produced for it must not stay behind.
  if (!finished) await ctx.storage.removeUpload(row.userId, row.id);
  return finished;
}
