import { type AliasedExpression, type ExpressionBuilder, type Kysely, type Selectable, sql } from 'kysely';
import type { Batches, DB, Uploads } from './types.ts';

export const now = () => sql<Date>`now()`;

/** The worker's lease on a batch: its job is still locked by this worker (after a forced unlock, someone else's). */
export type Lease = { jobId: string; workerId: string };
export const leaseHeld = (l: Lease) =>
  sql<boolean>`exists(select 1 from graphile_worker.jobs where id = ${l.jobId} and locked_by = ${l.workerId})`;

/**
 * Selected in a statement, lets that statement's transaction commit without waiting for the WAL
 * flush. Only for the worker's own steps that a crash may undo because they are redone (a claim,
 * an outcome): when PostgreSQL flushes WAL behind the files just written (hundreds of ms on a
 * busy disk), every synchronous commit waits for it, and the media work with it. No event
 * announces such a step before it is durable: events are numbered by a synchronous commit after
 * it, whose flush takes the earlier WAL along. (A query in the fraction of a second before that
 * may read it; after a crash of PostgreSQL just then, the upload is done once more.)
 */
export const redoableCommit = () => sql<string>`set_config('synchronous_commit', 'off', true)`;

/**
 * Ids as a table `wanted(id)`, for a statement that looks up any number of rows and stays one
 * prepared statement. Join the rows LATERAL, by primary key, with a LIMIT (which keeps the join
 * from being flattened): each is then found by its index whatever the table's size, where a
 * prepared `id = any($1)` got a generic plan that scanned the whole table.
 */
export const wantedIds = (db: Kysely<DB>, ids: readonly string[]) =>
  db.selectNoFrom(sql<string>`unnest(${ids}::uuid[])`.as('id')).as('wanted');

/** Restricts a batch or upload to its owner; `undefined` means a trusted caller (the worker). */
export function ownedBy(userId: string | undefined) {
  return () => (userId === undefined ? sql<boolean>`true` : sql<boolean>`${sql.ref('userId')} = ${userId}`);
}

// What the API and the worker read of an upload: every column but the embedding and the search
// document, kilobytes per row that only SQL reads (search ranks by them in the database), yet the
// driver would parse them for every progress event and every listed upload.
type UploadColumn = Exclude<keyof Uploads, 'embedding' | 'searchDocument'>;
// Listed as an object so that the typecheck fails when the generated types gain or lose a column.
export const uploadColumns = Object.keys({
  analysisStatus: 1, attempts: 1, batchId: 1, byteSize: 1, cameraMake: 1, cameraModel: 1, completedAt: 1,
  createdAt: 1, description: 1, durationSeconds: 1, errorMessage: 1, exposureTime: 1, filename: 1, fNumber: 1,
  focalLength: 1, format: 1, frameRate: 1, height: 1, id: 1, iso: 1, latitude: 1, lensModel: 1, longitude: 1,
  mimeType: 1, originalKey: 1, placeholderHash: 1, position: 1, previewKey: 1, sha256: 1, startedAt: 1, status: 1,
  takenAt: 1, thumbnailKey: 1, updatedAt: 1, userId: 1, videoCodec: 1, width: 1,
} satisfies Record<UploadColumn, 1>) as UploadColumn[];
export type UploadRow = Pick<Selectable<Uploads>, UploadColumn>;
/** The same columns as `uploads.<column>`, for a query that joins other tables. */
export const qualifiedUploadColumns = uploadColumns.map((c) => `uploads.${c}` as const);
/** The same columns in raw SQL, from the table aliased `alias`. */
export const uploadRowSql = (alias: string) => sql.join(uploadColumns.map((c) => sql.ref(`${alias}.${c}`)));

type BatchColumn = keyof Batches;
// Listed as an object so that the typecheck fails when the generated types gain or lose a column.
const batchColumns = Object.keys({
  completedAt: 1, createdAt: 1, eventSeq: 1, failedUploads: 1, id: 1, receivingPlace: 1,
  receivingUntil: 1, startedAt: 1, status: 1, successfulUploads: 1, totalUploads: 1, updatedAt: 1, userId: 1,
} satisfies Record<BatchColumn, 1>) as BatchColumn[];
const prefixedBatchColumns = new Map(batchColumns.map((c) => [`batch.${c}`, c]));

/**
 * A whole batch row as `batch.<column>`: in a join it sits beside the other table's `*`,
 * whose id, status and timestamps would otherwise overwrite the batch's. Each column keeps
 * its own type and the driver's parsing (unlike a JSON object, whose dates come back as strings).
 */
export function batchPrefixed(eb: ExpressionBuilder<DB, 'batches'>) {
  return batchColumns.map((c) => eb.ref(`batches.${c}`).as(`batch.${c}`)) as {
    [C in BatchColumn]: AliasedExpression<Selectable<Batches>[C], `batch.${C}`>;
  }[BatchColumn][];
}

/** Parts a row selected with `batchPrefixed` into the batch and the rest. */
export function splitBatch<R extends { [C in BatchColumn as `batch.${C}`]: unknown }>(row: R) {
  const rest: Record<string, unknown> = {};
  const batch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    const column = prefixedBatchColumns.get(key);
    if (column) batch[column] = value;
    else rest[key] = value;
  }
  return { batch: batch as Selectable<Batches>, rest: rest as Omit<R, `batch.${string}`> };
}
