import { sql } from 'kysely';
import type { Database } from './database.ts';
import { type Lease, leaseHeld, redoableCommit, uploadRowSql } from './fragments.ts';
import { statement } from './prepared.ts';
import { type FinishedRun, type OutcomeValues, outcomeValues, outcomeWrites, type UploadOutcome, type UploadRow } from './uploads.ts';

export type RunOutcome = 'COMPLETED' | 'RETRY' | 'FAILED' | 'ABORTED';

export async function startRun(db: Database, run: { uploadId: string; batchId: string; workerId: string }) {
  const row = await db.insertInto('uploadRuns').values(run).returning('id').executeTakeFirstOrThrow();
  return row.id;
}

/** What the media work of an upload needs to start: its original (both columns never change). */
export type MediaSource = Pick<UploadRow, 'id' | 'originalKey' | 'mimeType'>;

export type Claim = (
  | { owner: false }
  | { owner: true; upload: undefined }
  | { owner: true; upload: UploadRow; runId: string; following: MediaSource | undefined }
) & {
  /** With `finishing`: whether its outcome was recorded (see finishUpload's `finished`). */
  recorded?: boolean;
};

/**
 * One round trip for what the worker must know and do before the next upload's media work:
 * the job lock is still ours (after a forced unlock another worker owns the batch), the next
 * unfinished upload after position `after` (none once the batch is no longer PROCESSING, e.g.
 * cancelled), PENDING → PROCESSING, and the run that records this attempt. It also names the
 * upload after that one (`following`), claiming nothing, so the worker can start on it while
 * the next claim is on its way. With `finishing`, the same statement first records the lane's
 * previous outcome (outcomeWrites): one statement per upload instead of two. A claim lost to a
 * crash of PostgreSQL is redone (see redoableCommit), so it does not wait for the WAL flush.
 */
export async function claimNextRun(
  db: Database,
  c: Lease & { batchId: string; after: number; finishing?: FinishedRun },
): Promise<Claim> {
  const { batchId, after, jobId, workerId, finishing } = c;
  // One statement, one batch: the outcome's batch stands for the claim's in its text.
  if (finishing && finishing.batchId !== batchId) throw new Error('an outcome is recorded only with a claim in its own batch');
  const { rows } = finishing
    ? await claimingAfter(db, { jobId, workerId, after, ...outcomeValues(finishing) }, finishing.outcome.status)
    : await claiming(db, { batchId, after, jobId, workerId });
  const { owner, runId, followingId, followingKey, followingMime, recorded, ...upload } = rows[0]!;
  const outcome = finishing ? { recorded: !!recorded } : {};
  if (!owner) return { owner: false, ...outcome };
  if (!runId) return { owner: true, upload: undefined, ...outcome };
  const following = followingId ? { id: followingId, originalKey: followingKey!, mimeType: followingMime! } : undefined;
  return { owner: true, upload: upload as UploadRow, runId, following, ...outcome };
}

type ClaimRow = UploadRow & {
  owner: boolean;
  runId: string | null;
  followingId: string | null;
  followingKey: string | null;
  followingMime: string | null;
  recorded?: boolean;
};

/** The claim, with `writes` (CTEs that may read `owner`) and `columns` added to its WITH and its result. */
const claimSql = (c: Lease & { batchId: unknown; after: unknown }, writes = sql``, columns = sql``) => sql<ClaimRow>`
    with owner as (
      select ${leaseHeld(c)} as ok, ${redoableCommit()} as redoable
    )${writes}, next as (
      select u.id, u.position, u.original_key, u.mime_type from uploads u
       where u.batch_id = ${c.batchId} and u.status in ('PENDING', 'PROCESSING') and u.position > ${c.after}
         and exists (select 1 from batches b where b.id = ${c.batchId} and b.status = 'PROCESSING')
       order by u.position limit 2
    ), pick as (
      select id from next order by position limit 1
    ), peek as (
      select * from next order by position offset 1
    ), started as (
      update uploads u set status = 'PROCESSING', started_at = coalesce(u.started_at, now()), updated_at = now()
        from pick, owner where u.id = pick.id and owner.ok
      returning ${uploadRowSql('u')}
    ), run as (
      insert into upload_runs (upload_id, batch_id, worker_id) select id, batch_id, ${c.workerId} from started returning id
    )
    select owner.ok as owner, (select id from run) as run_id, peek.id as following_id,
           peek.original_key as following_key, peek.mime_type as following_mime${columns}, started.*
      from owner left join started on true left join peek on true`;

const claiming = statement((_db, c: Lease & { batchId: string; after: number }) => claimSql(c));

// The text depends on the outcome, as finishUpload's does. The outcome's batch is the claim's.
const claimingAfter = statement((db, v: Lease & { after: number } & OutcomeValues, status: UploadOutcome['status']) => {
  const { jobId, workerId, after, ...outcome } = v;
  const writes = outcomeWrites(db, outcome, status, sql<boolean>`(select ok from owner)`);
  return claimSql(
    { jobId, workerId, batchId: outcome.batchId, after },
    sql`, finished_run as (${writes.run}), done as (${writes.done}), counted as (${writes.counted})`,
    sql`, exists (select 1 from done) as recorded`,
  );
});

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
