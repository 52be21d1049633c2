import type { Selectable } from 'kysely';
import type { Database } from './database.ts';
import { prepared } from './prepared.ts';
import { now, ownedBy } from './fragments.ts';
import type { Batches } from './types.ts';

export type BatchRow = Selectable<Batches>;
export type BatchCursor = { createdAt: Date; id: string };

export async function insertBatch(db: Database, batch: { userId: string; totalUploads: number }) {
  return db.insertInto('batches').values(batch).returningAll().executeTakeFirstOrThrow();
}

/** By primary key alone, the owner compared here: no plan can pick the user index for it. */
export async function findBatch(db: Database, id: string, userId?: string) {
  const [row] = (await db.executeQuery(prepared(db.selectFrom('batches').selectAll().where('id', '=', id).compile()))).rows;
  return userId === undefined || row?.userId === userId ? row : undefined;
}

/** Newest first; `after`/`before` are (createdAt, id) keys, `inverted` walks backwards. */
export async function listBatches(
  db: Database,
  userId: string,
  page: { after?: BatchCursor; before?: BatchCursor; limit: number; inverted: boolean },
) {
  let q = db.selectFrom('batches').selectAll().where('userId', '=', userId);
  if (page.after) {
    const { createdAt, id } = page.after;
    q = q.where((eb) => eb(eb.refTuple('createdAt', 'id'), '<', eb.tuple(createdAt, id)));
  }
  if (page.before) {
    const { createdAt, id } = page.before;
    q = q.where((eb) => eb(eb.refTuple('createdAt', 'id'), '>', eb.tuple(createdAt, id)));
  }
  const dir = page.inverted ? 'asc' : 'desc';
  return q.orderBy('createdAt', dir).orderBy('id', dir).limit(page.limit).execute();
}

/** PENDING → PROCESSING; idempotent for a resumed batch. Returns undefined for a finished one. */
export async function startBatch(db: Database, id: string) {
  return db
    .updateTable('batches')
    .set((eb) => ({ status: 'PROCESSING', startedAt: eb.fn.coalesce('startedAt', now()), updatedAt: now() }))
    .where('id', '=', id)
    .where('status', 'in', ['PENDING', 'PROCESSING'])
    .returningAll()
    .executeTakeFirst();
}

export async function completeBatch(db: Database, id: string) {
  return db
    .updateTable('batches')
    .set((eb) => ({ status: 'COMPLETED', completedAt: now(), updatedAt: now() }))
    .where('id', '=', id)
    .where('status', '=', 'PROCESSING')
    .returningAll()
    .executeTakeFirst();
}

/** Takes the batch's next `count` event numbers and returns the last; undefined when the batch is gone. */
export async function nextEventSeq(db: Database, id: string, count = 1) {
  const query = db
    .updateTable('batches')
    .set((eb) => ({ eventSeq: eb('eventSeq', '+', count) }))
    .where('id', '=', id)
    .returning('eventSeq')
    .compile();
  const [row] = (await db.executeQuery(prepared(query))).rows;
  return row?.eventSeq;
}

/** Stops a batch that has not finished; its unstarted uploads stay PENDING. */
export async function cancelBatch(db: Database, id: string, userId: string) {
  return db
    .updateTable('batches')
    .set({ status: 'CANCELLED', completedAt: now(), updatedAt: now() })
    .where('id', '=', id)
    .where('userId', '=', userId)
    .where('status', 'in', ['PENDING', 'PROCESSING'])
    .returningAll()
    .executeTakeFirst();
}

/** Locks the batch row so counter changes from the API and the worker serialize. */
export async function lockBatch(db: Database, id: string, userId?: string) {
  return db.selectFrom('batches').selectAll().where('id', '=', id).where(ownedBy(userId)).forUpdate().executeTakeFirst();
}

/** Applies counter deltas for uploads that left or re-entered the batch. */
export async function adjustBatchCounts(
  db: Database,
  id: string,
  delta: { total?: number; successful?: number; failed?: number },
  status?: 'PROCESSING',
) {
  return db
    .updateTable('batches')
    .set((eb) => ({
      totalUploads: eb('totalUploads', '+', delta.total ?? 0),
      successfulUploads: eb('successfulUploads', '+', delta.successful ?? 0),
      failedUploads: eb('failedUploads', '+', delta.failed ?? 0),
      updatedAt: now(),
      ...(status ? { status, completedAt: null } : {}),
    }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}
