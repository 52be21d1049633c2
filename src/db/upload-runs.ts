import { sql } from 'kysely';
import type { Database } from './database.ts';

export type RunOutcome = 'COMPLETED' | 'RETRY' | 'FAILED' | 'ABORTED';

export async function startRun(db: Database, run: { uploadId: string; batchId: string; workerId: string }) {
  const row = await db.insertInto('uploadRuns').values(run).returning('id').executeTakeFirstOrThrow();
  return row.id;
}

export async function finishRun(db: Database, id: string, outcome: RunOutcome) {
  await db
    .updateTable('uploadRuns')
    .set({ outcome, finishedAt: sql<Date>`clock_timestamp()` })
    .where('id', '=', id)
    .execute();
}

export async function listRuns(db: Database, batchIds?: string[]) {
  let q = db.selectFrom('uploadRuns').selectAll().orderBy('startedAt');
  if (batchIds) q = q.where('batchId', 'in', batchIds);
  return q.execute();
}
