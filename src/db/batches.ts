import { type RawBuilder, type Selectable, sql } from 'kysely';
import type { Database } from './database.ts';
import { statement } from './prepared.ts';
import { now, ownedBy, wantedIds } from './fragments.ts';
import type { Batches } from './types.ts';

export type BatchRow = Selectable<Batches>;
export type BatchCursor = { createdAt: Date; id: string };

/** A batch whose request is still being received: `receivingUntil` is when it counts as abandoned. */
export async function insertBatch(db: Database, batch: { userId: string; totalUploads: number; receivingUntil?: Date }) {
  return db.insertInto('batches').values(batch).returningAll().executeTakeFirstOrThrow();
}

const batchById = statement((db, v: { id: string }) => db.selectFrom('batches').selectAll().where('id', '=', v.id));

/**
 * By primary key alone, the owner compared here: no plan can pick the user index for it.
 * For an owner, a batch whose request is still being received does not exist yet.
 */
export async function findBatch(db: Database, id: string, userId?: string) {
  const [row] = (await batchById(db, { id })).rows;
  return userId === undefined || (row?.userId === userId && row.receivingUntil === null) ? row : undefined;
}

/** By primary key, any number at once (one prepared statement whatever their number). */
export async function findBatches(db: Database, ids: readonly string[]): Promise<BatchRow[]> {
  if (ids.length === 0) return [];
  return (await batchesByIds(db, { ids })).rows;
}

const batchesByIds = statement((db, v: { ids: readonly string[] }) =>
  db
    .selectFrom(wantedIds(db, v.ids))
    .innerJoinLateral(
      (eb) => eb.selectFrom('batches').selectAll().whereRef('batches.id', '=', 'wanted.id').limit(sql.lit(1)).as('batches'),
      (join) => join.onTrue(),
    )
    .selectAll('batches'),
);

/** Newest first; `after`/`before` are (createdAt, id) keys, `inverted` walks backwards. */
export async function listBatches(
  db: Database,
  userId: string,
  page: { after?: BatchCursor; before?: BatchCursor; limit: number; inverted: boolean },
) {
  let q = db.selectFrom('batches').selectAll().where('userId', '=', userId).where('receivingUntil', 'is', null);
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

/** PROCESSING → COMPLETED, once its request has been received whole; undefined otherwise. */
export async function completeBatch(db: Database, id: string) {
  return db
    .updateTable('batches')
    .set((eb) => ({ status: 'COMPLETED', completedAt: now(), updatedAt: now() }))
    .where('id', '=', id)
    .where('status', '=', 'PROCESSING')
    .where('receivingUntil', 'is', null)
    .returningAll()
    .executeTakeFirst();
}

/**
 * The worker ran out of uploads while the batch's request is still arriving: it ends its job
 * (a worker slot must not wait on a slow client), and whoever adds the next uploads enqueues
 * a new one, at `place` in the queue: the run_at of the job that ends. 'more' means there is
 * more to do after all: uploads committed meanwhile, or the request ended. Undefined: the batch
 * is no longer PROCESSING (cancelled or gone).
 */
export async function idleWhileReceiving(db: Database, id: string, place: Date): Promise<'idle' | 'more' | undefined> {
  return db.transaction().execute(async (trx) => {
    // The intake adds a group under this row's lock; after it, a new statement sees the group.
    const batch = await trx.selectFrom('batches').select(['status', 'receivingUntil']).where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
    if (batch?.status !== 'PROCESSING') return undefined;
    if (batch.receivingUntil === null) return 'more';
    const unfinished = await trx
      .selectFrom('uploads')
      .select('id')
      .where('batchId', '=', id)
      .where('status', 'in', ['PENDING', 'PROCESSING'])
      .limit(1)
      .executeTakeFirst();
    if (unfinished) return 'more';
    await trx.updateTable('batches').set({ receivingPlace: place }).where('id', '=', id).execute();
    return 'idle';
  });
}

/**
 * The batches' rows as they were, locked, for an update that must return what it replaced:
 * PostgreSQL 15's RETURNING sees only the new row.
 */
const before = (where: RawBuilder<unknown>, skipLocked = false) =>
  sql`(select id, receiving_place from batches where ${where} for no key update${skipLocked ? sql` skip locked` : sql``}) old`;

/**
 * Counts `added` more uploads into a batch still being received and extends its deadline.
 * `idlePlace`: its worker had run out of uploads and ended its job, so the caller enqueues one
 * at this place in the queue (see idleWhileReceiving); null when no job is needed.
 */
export async function extendReceiving(db: Database, id: string, added: number, receivingUntil: Date) {
  const { rows } = await sql<{ idlePlace: Date | null }>`
    update batches b set total_uploads = b.total_uploads + ${added}, receiving_until = ${receivingUntil},
           receiving_place = case when ${added} = 0 then b.receiving_place end, updated_at = now()
      from ${before(sql`id = ${id}`)}
     where b.id = old.id and b.receiving_until is not null
    returning case when ${added} > 0 then old.receiving_place end as idle_place`.execute(db);
  return rows[0];
}

/** The request ended: the batch becomes visible and may complete. Returns it, and where its job must be enqueued, if one must. */
export async function finishReceiving(db: Database, id: string) {
  const { rows } = await sql<BatchRow & { idlePlace: Date | null }>`
    update batches b set receiving_until = null, receiving_place = null, updated_at = now()
      from ${before(sql`id = ${id}`)}
     where b.id = old.id and b.receiving_until is not null
    returning b.*, old.receiving_place as idle_place`.execute(db);
  const [row] = rows;
  if (!row) return undefined;
  const { idlePlace, ...batch } = row;
  return { batch: batch as BatchRow, idlePlace };
}

/**
 * Batches whose request stopped arriving without ending (their API process died) end their
 * receiving like any other: what was stored stays and is processed. Returns them, with the
 * place of those whose worker had gone idle, for the caller to enqueue in the same transaction.
 */
export async function finishAbandonedBatches(db: Database) {
  const { rows } = await sql<{ id: string; idlePlace: Date | null }>`
    update batches b set receiving_until = null, receiving_place = null, updated_at = now()
      from ${before(sql`receiving_until < now()`, true)}
     where b.id = old.id
    returning b.id, old.receiving_place as idle_place`.execute(db);
  return rows;
}

/** Takes the batch's next `count` event numbers and returns the last; undefined when the batch is gone. */
export async function nextEventSeq(db: Database, id: string, count = 1) {
  const [row] = (await takeEventSeq(db, { id, count })).rows;
  return row?.eventSeq;
}

const takeEventSeq = statement((db, v: { id: string; count: number }) =>
  db
    .updateTable('batches')
    .set((eb) => ({ eventSeq: eb('eventSeq', '+', v.count) }))
    .where('id', '=', v.id)
    .returning('eventSeq'),
);

/** Stops a batch that has not finished; its unstarted uploads stay PENDING. */
export async function cancelBatch(db: Database, id: string, userId: string) {
  return db
    .updateTable('batches')
    .set({ status: 'CANCELLED', completedAt: now(), updatedAt: now() })
    .where('id', '=', id)
    .where('userId', '=', userId)
    .where('status', 'in', ['PENDING', 'PROCESSING'])
    .where('receivingUntil', 'is', null)
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
