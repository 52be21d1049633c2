/**
 * Statements compiled once and then only bound (src/db/prepared.ts): every execution must behave
 * as if the query had been built anew with its own values.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { insertBatch } from '../src/db/batches.ts';
import { createDb, createPool, type Database } from '../src/db/database.ts';
import { statement } from '../src/db/prepared.ts';
import { createLogger } from '../src/logger.ts';
import { createTestDatabase } from './helpers/db.ts';

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let userId: string;
beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createDb(createPool(testDb.url, 2, createLogger('warn')));
  ({ id: userId } = await db.insertInto('users').values({ email: `${randomUUID()}@example.com`, passwordHash: 'x' }).returning('id').executeTakeFirstOrThrow());
});
afterAll(async () => {
  await db?.destroy();
  await testDb?.drop();
});

const update = statement((db, v: { id: string; total?: number; failed?: number }, status: 'PENDING' | 'PROCESSING') =>
  db
    .updateTable('batches')
    .set({ status, totalUploads: v.total, failedUploads: v.failed })
    .where('id', '=', v.id)
    .returning(['id', 'status', 'totalUploads', 'failedUploads']),
);

it('binds each execution’s own values, and each shape has its own text', async () => {
  const a = await insertBatch(db, { userId, totalUploads: 1 });
  const b = await insertBatch(db, { userId, totalUploads: 1 });
  expect((await update(db, { id: a.id, total: 5, failed: 1 }, 'PROCESSING')).rows).toEqual([{ id: a.id, status: 'PROCESSING', totalUploads: 5, failedUploads: 1 }]);
  expect((await update(db, { id: b.id, total: 7, failed: 2 }, 'PENDING')).rows).toEqual([{ id: b.id, status: 'PENDING', totalUploads: 7, failedUploads: 2 }]);
  expect((await update(db, { id: a.id, total: 9, failed: 0 }, 'PENDING')).rows).toEqual([{ id: a.id, status: 'PENDING', totalUploads: 9, failedUploads: 0 }]);
  // Inside a transaction, with another Kysely instance's text.
  await db.transaction().execute(async (trx) => {
    expect((await update(trx, { id: b.id, total: 3, failed: 3 }, 'PROCESSING')).rows[0]).toMatchObject({ totalUploads: 3, failedUploads: 3 });
  });
});

it('leaves a column set to undefined alone, as Kysely does, whatever was bound before', async () => {
  const a = await insertBatch(db, { userId, totalUploads: 4 });
  await update(db, { id: a.id, total: 6, failed: 2 }, 'PROCESSING');
  expect((await update(db, { id: a.id, total: undefined, failed: 5 }, 'PROCESSING')).rows[0]).toMatchObject({ totalUploads: 6, failedUploads: 5 });
  expect((await update(db, { id: a.id, total: 8, failed: undefined }, 'PROCESSING')).rows[0]).toMatchObject({ totalUploads: 8, failedUploads: 5 });
});

it('refuses a value spliced into the text, or one the statement never uses', async () => {
  const spliced = statement((db, v: { column: string }) => db.selectFrom('batches').select(sql.raw(`${v.column}`).as('x')));
  await expect(spliced(db, { column: 'id' })).rejects.toThrow(/statement value "column" used in the statement's text/);
  const unused = statement((db, v: { id: string; extra: number }) => db.selectFrom('batches').select('id').where('id', '=', v.id));
  await expect(unused(db, { id: randomUUID(), extra: 1 })).rejects.toThrow(/not used as parameters: extra/);
});
