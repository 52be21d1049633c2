import { sql } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/database.ts';

/** The one place the batch job's name and payload are defined; enqueuer and task both import it. */
export const PROCESS_BATCH = 'process_batch';
export const ProcessBatchPayload = z.object({ batchId: z.uuid() });
export type ProcessBatchPayload = z.infer<typeof ProcessBatchPayload>;

declare global {
  namespace GraphileWorker {
    interface Tasks {
      process_batch: ProcessBatchPayload;
    }
  }
}

/**
 * Enqueues through SQL so the job joins the caller's transaction: a batch and its job
 * commit together or not at all. The job key keeps one job per batch. graphile-worker takes
 * jobs in run_at order: `place` (a run_at in the past) puts the job where an earlier job of the
 * batch stood in the queue, instead of at its end.
 */
export async function enqueueProcessBatch(db: Database, payload: ProcessBatchPayload, place?: Date | null) {
  await sql`select graphile_worker.add_job(
    ${PROCESS_BATCH},
    ${JSON.stringify(ProcessBatchPayload.parse(payload))}::json,
    job_key := ${`batch:${payload.batchId}`},
    max_attempts := 25,
    run_at := ${place ?? null}::timestamptz
  )`.execute(db);
}
