import type { JobHelpers } from 'graphile-worker';
import type { AppContext } from '../context.ts';
import { completeBatch, countBatchOutcome, startBatch } from '../db/batches.ts';
import {
  finishUpload,
  nextUnfinishedUpload,
  recordFailedAttempt,
  startUpload,
  type UploadOutcome,
  type UploadRow,
} from '../db/uploads.ts';
import { ProcessBatchPayload } from './contract.ts';
import { type FileStage, runPipeline } from './pipeline.ts';

/**
 * Works through a batch's unfinished uploads one at a time, in creation order.
 * Everything it decides is read from and written to the database first, so a
 * re-run after a crash continues exactly where the rows say it stopped.
 */
export async function processBatch(ctx: AppContext, rawPayload: unknown, helpers: Pick<JobHelpers, 'abortSignal'>) {
  const { batchId } = ProcessBatchPayload.parse(rawPayload);
  const batch = await startBatch(ctx.db, batchId);
  if (!batch) return; // deleted, finished or cancelled meanwhile: nothing to do
  await ctx.bus.publish({ type: 'batch', batchId, terminal: false });

  for (;;) {
    helpers.abortSignal.throwIfAborted();
    const upload = await nextUnfinishedUpload(ctx.db, batchId);
    if (!upload) break;
    await processUpload(ctx, upload, helpers.abortSignal);
  }

  if (await completeBatch(ctx.db, batchId)) {
    await ctx.bus.publish({ type: 'batch', batchId, terminal: true });
  }
}

async function processUpload(ctx: AppContext, upload: UploadRow, signal: AbortSignal) {
  const fileEvent = (stage: FileStage, percent: number) =>
    ctx.bus.publish({ type: 'file', batchId: upload.batchId, uploadId: upload.id, stage, percent });

  let row = await startUpload(ctx.db, upload.id);
  if (!row) return;
  await fileEvent('started', 0);

  for (;;) {
    let outcome: UploadOutcome;
    try {
      outcome = await runPipeline(ctx, row, { signal, onStage: fileEvent });
    } catch (err) {
      // A shutdown is not the file's fault: leave it PROCESSING for the next run to redo.
      if (signal.aborted) throw err;
      const errorMessage = err instanceof Error ? err.message : String(err);
      ctx.logger.warn({ uploadId: row.id, attempt: row.attempts + 1, err: errorMessage }, 'upload attempt failed');
      if (row.attempts + 1 < ctx.config.worker.uploadMaxAttempts) {
        row = await recordFailedAttempt(ctx.db, row.id, errorMessage);
        if (!row) return;
        await fileEvent('retrying', 0);
        continue;
      }
      outcome = { status: 'FAILED', errorMessage };
    }
    await recordOutcome(ctx, row, outcome);
    await fileEvent(outcome.status === 'COMPLETED' ? 'completed' : 'failed', 100);
    await ctx.bus.publish({ type: 'batch', batchId: row.batchId, terminal: false });
    return;
  }
}

/** The upload's final state and the batch counter move in one transaction, so they cannot disagree. */
async function recordOutcome(ctx: AppContext, row: UploadRow, outcome: UploadOutcome) {
  const finished = await ctx.db.transaction().execute(async (trx) => {
    const done = await finishUpload(trx, row.id, outcome);
    if (done) await countBatchOutcome(trx, row.batchId, outcome.status);
    return done;
  });
  if (!finished && outcome.status === 'COMPLETED') await ctx.storage.remove(outcome.thumbnailKey);
}
