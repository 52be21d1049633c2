import { type Insertable, type RawBuilder, type Selectable, sql, type Updateable } from 'kysely';
import type { CaptureMetadata } from '../services/exif.ts';
import type { Database } from './database.ts';
import { statement } from './prepared.ts';
import {
  batchPrefixed,
  type Lease,
  leaseHeld,
  now,
  ownedBy,
  qualifiedUploadColumns,
  redoableCommit,
  splitBatch,
  uploadColumns,
  type UploadRow,
  wantedIds,
} from './fragments.ts';
import type { Batches, Uploads } from './types.ts';

export type { UploadRow } from './fragments.ts';

export async function insertUploads(db: Database, uploads: Insertable<Uploads>[]) {
  return db.insertInto('uploads').values(uploads).returning(uploadColumns).execute();
}

/** By primary key alone, the owner compared here: no plan can pick the user index for it. */
export async function findUpload(db: Database, id: string, userId?: string) {
  const row = await db.selectFrom('uploads').select(uploadColumns).where('id', '=', id).executeTakeFirst();
  return userId === undefined || row?.userId === userId ? row : undefined;
}

const uploadsWithBatch = statement((db, v: { ids: readonly string[] }) =>
  db
    .selectFrom(wantedIds(db, v.ids))
    .innerJoinLateral(
      (eb) => eb.selectFrom('uploads').select(uploadColumns).whereRef('uploads.id', '=', 'wanted.id').limit(sql.lit(1)).as('uploads'),
      (join) => join.onTrue(),
    )
    .innerJoin('batches', 'batches.id', 'uploads.batchId')
    .select(qualifiedUploadColumns)
    .select(batchPrefixed),
);

/**
 * Uploads with their batches in one round trip, by id; an upload that is gone is missing from
 * the map (its batch may not be). One text for any number of ids, so it stays one prepared statement.
 */
export async function findUploadsWithBatch(db: Database, ids: readonly string[]) {
  const found = new Map<string, { upload: UploadRow; batch: Selectable<Batches> }>();
  if (ids.length === 0) return found;
  for (const row of (await uploadsWithBatch(db, { ids })).rows) {
    const { batch, rest } = splitBatch(row);
    found.set(rest.id, { upload: rest satisfies UploadRow, batch });
  }
  return found;
}

/** An upload with its batch in one round trip; undefined when the upload is gone (the batch may not be). */
export async function findUploadWithBatch(db: Database, id: string) {
  return (await findUploadsWithBatch(db, [id])).get(id);
}

/** In creation order; cursors are positions within the batch. */
export async function listUploads(
  db: Database,
  batchId: string,
  page: { after?: number; before?: number; limit: number; inverted: boolean },
) {
  let q = db.selectFrom('uploads').select(uploadColumns).where('batchId', '=', batchId);
  if (page.after !== undefined) q = q.where('position', '>', page.after);
  if (page.before !== undefined) q = q.where('position', '<', page.before);
  return q
    .orderBy('position', page.inverted ? 'desc' : 'asc')
    .limit(page.limit)
    .execute();
}

/** A failed attempt that will be retried: counted, the reason kept, the upload stays PROCESSING. */
export async function recordFailedAttempt(db: Database, id: string, errorMessage: string, lease: Lease) {
  return db
    .updateTable('uploads')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), errorMessage, updatedAt: now() }))
    .where('id', '=', id)
    .where('status', '=', 'PROCESSING')
    .where(leaseHeld(lease))
    .returning(uploadColumns)
    .executeTakeFirst();
}

export type UploadOutcome =
  | (CaptureMetadata & {
      status: 'COMPLETED';
      width: number;
      height: number;
      format: string;
      thumbnailKey: string;
      previewKey: string;
      placeholderHash: string;
      durationSeconds: number | null;
      videoCodec: string | null;
      frameRate: number | null;
      description: string | null;
      embedding: number[] | null;
      analysisStatus: 'COMPLETED' | 'SKIPPED';
    })
  | { status: 'FAILED'; errorMessage: string };

/** An attempt's final outcome, for finishUpload, or for the lane's next claim to record (claimNextRun). */
export interface FinishedRun {
  runId: string;
  uploadId: string;
  batchId: string;
  endedAt: Date;
  outcome: UploadOutcome;
}

export type OutcomeValues = Omit<FinishedRun, 'outcome'> & Omit<Updateable<Uploads>, 'id' | 'batchId'>;

/** A statement's values for an outcome: the run, and the upload's new columns. */
export function outcomeValues({ outcome, ...run }: FinishedRun): OutcomeValues {
  const columns =
    outcome.status === 'COMPLETED' ? { ...outcome, errorMessage: null } : { status: outcome.status, errorMessage: outcome.errorMessage };
  return { ...run, ...columns };
}

/**
 * The writes that record an outcome, each only where `holds` (the lease): the run ends at
 * `endedAt`, the upload takes its final state (`done`), and the batch counts it. Only a
 * PROCESSING row transitions, so a re-run can never finish (and count) the same upload twice;
 * after a forced unlock the upload is someone else's to redo. For one WITH: `counted` reads
 * `done` by that name.
 */
export function outcomeWrites(db: Database, v: OutcomeValues, status: UploadOutcome['status'], holds: RawBuilder<boolean>) {
  const { runId, uploadId, batchId, endedAt, ...columns } = v;
  const counter = status === 'COMPLETED' ? 'successfulUploads' : 'failedUploads';
  return {
    run: db.updateTable('uploadRuns').set({ outcome: status, finishedAt: endedAt }).where('id', '=', runId).where(holds).returning('id'),
    done: db
      .updateTable('uploads')
      .set((eb) => ({ ...columns, attempts: eb('attempts', '+', 1), completedAt: now(), updatedAt: now() }))
      .where('id', '=', uploadId)
      .where('status', '=', 'PROCESSING')
      .where(holds)
      .returning('id'),
    counted: db
      .updateTable('batches')
      .set((eb) => ({ [counter]: eb(counter, '+', 1), updatedAt: now() }))
      .where('id', '=', batchId)
      .where(sql<boolean>`exists (select 1 from done)`)
      .returning('id'),
  };
}

/**
 * Records an attempt's final outcome in one statement (one round trip, one commit; see
 * outcomeWrites). `finished` is false when nothing changed; `leaseHeld` says whether the upload
 * was gone. An outcome lost to a crash of PostgreSQL leaves the upload PROCESSING, to be redone
 * like an interrupted one (see redoableCommit): it does not wait for the WAL flush. A lane that
 * goes on records its outcome with its next claim instead (claimNextRun).
 */
export async function finishUpload(db: Database, lease: Lease, run: FinishedRun) {
  const [row] = (await finishing(db, { ...lease, ...outcomeValues(run) }, run.outcome.status)).rows;
  return row!;
}

// The text depends on the outcome: its columns, and which counter it adds to.
const finishing = statement((db, v: Lease & OutcomeValues, status: UploadOutcome['status']) => {
  const { jobId, workerId, ...values } = v;
  // Checked once; every write depends on it.
  const writes = outcomeWrites(db, values, status, sql<boolean>`(select ok from lease)`);
  return db
    .with('lease', (qb) => qb.selectNoFrom([leaseHeld({ jobId, workerId }).as('ok'), redoableCommit().as('redoable')]))
    .with('run', () => writes.run)
    .with('done', () => writes.done)
    .with('counted', () => writes.counted)
    .selectFrom('lease')
    .select((eb) => [eb.exists(eb.selectFrom('done').select('done.id')).as('finished'), 'lease.ok as leaseHeld']);
});

export async function deleteUploadRow(db: Database, id: string) {
  return db.deleteFrom('uploads').where('id', '=', id).returning(uploadColumns).executeTakeFirst();
}

/** FAILED → PENDING with fresh attempts; returns the uploads re-queued. */
export async function requeueFailedUploads(db: Database, batchId: string) {
  return db
    .updateTable('uploads')
    .set({ status: 'PENDING', attempts: 0, errorMessage: null, startedAt: null, completedAt: null, updatedAt: now() })
    .where('batchId', '=', batchId)
    .where('status', '=', 'FAILED')
    .returning('id')
    .execute();
}

/**
 * An interrupted attempt (shutdown, cancel) leaves no trace but its run log. Without the lease
 * the upload is left alone: its new owner may already be working on it.
 */
export async function releaseUpload(db: Database, id: string, lease: Lease) {
  await db
    .updateTable('uploads')
    .set({ status: 'PENDING', startedAt: null, updatedAt: now() })
    .where('id', '=', id)
    .where('status', '=', 'PROCESSING')
    .where(leaseHeld(lease))
    .execute();
}

export async function uploadState(db: Database, id: string) {
  return db
    .selectFrom('uploads')
    .innerJoin('batches', 'batches.id', 'uploads.batchId')
    .select(['uploads.status', 'batches.status as batchStatus'])
    .where('uploads.id', '=', id)
    .executeTakeFirst();
}

export async function lockUpload(db: Database, id: string, userId?: string) {
  return db.selectFrom('uploads').select(uploadColumns).where('id', '=', id).where(ownedBy(userId)).forUpdate().executeTakeFirst();
}
