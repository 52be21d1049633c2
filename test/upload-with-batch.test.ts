/**
 * The progress subscription reads an upload and its batch in one joined query; the rows must be
 * exactly what the single-table reads return (the GraphQL types resolve against either), and
 * neither carries the columns only SQL reads.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findBatch, findBatches, insertBatch } from '../src/db/batches.ts';
import { createDb, createPool, type Database } from '../src/db/database.ts';
import { uploadColumns } from '../src/db/fragments.ts';
import { findUpload, findUploadsWithBatch, findUploadWithBatch, insertUploads } from '../src/db/uploads.ts';
import { createLogger } from '../src/logger.ts';
import { createTestDatabase } from './helpers/db.ts';

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createDb(createPool(testDb.url, 2, createLogger('warn')));
});
afterAll(async () => {
  await db?.destroy();
  await testDb?.drop();
});

it('returns the same upload and batch rows as the separate reads', async () => {
  const user = await db.insertInto('users').values({ email: `${randomUUID()}@example.com`, passwordHash: 'x' }).returning('id').executeTakeFirstOrThrow();
  const batch = await insertBatch(db, { userId: user.id, totalUploads: 2 });
  await db.updateTable('batches').set({ status: 'PROCESSING', startedAt: new Date(), eventSeq: 7 }).where('id', '=', batch.id).execute();
  const [upload, other] = await insertUploads(db, [
    {
      batchId: batch.id,
      userId: user.id,
      position: 0,
      filename: 'a.jpg',
      mimeType: 'image/jpeg',
      byteSize: 12_345,
      originalKey: 'originals/a.jpg',
      sha256: Buffer.alloc(32, 1),
      takenAt: new Date('2020-01-02T03:04:05.678Z'),
      width: 640,
      latitude: 12.5,
      embedding: [0.25, -1],
    },
    { batchId: batch.id, userId: user.id, position: 1, filename: 'b.png', mimeType: 'image/png', byteSize: 1, originalKey: 'originals/b.png' },
  ]);

  const joined = await findUploadWithBatch(db, upload!.id);
  expect(joined).toEqual({ upload: await findUpload(db, upload!.id), batch: await findBatch(db, batch.id) });
  expect(Object.keys(joined!.batch).sort()).toEqual(Object.keys(batch).sort());
  expect(joined!.batch.createdAt).toBeInstanceOf(Date);
  expect(joined!.batch.eventSeq).toBe(7);
  expect(joined!.upload.id).toBe(upload!.id);
  expect(joined!.upload.status).toBe('PENDING');
  expect(joined!.upload.latitude).toBe(12.5);
  // The embedding (kilobytes once analysed) and the search document stay in the database: only
  // SQL reads them, and parsing them cost each progress event three times its CPU.
  expect(joined!.upload).not.toHaveProperty('embedding');
  expect(joined!.upload).not.toHaveProperty('searchDocument');
  expect(Object.keys(joined!.upload).sort()).toEqual([...uploadColumns].sort());
  // The query is compiled once: a later call must still read the upload it is given.
  expect((await findUploadWithBatch(db, other!.id))?.upload).toEqual(await findUpload(db, other!.id));

  await db.deleteFrom('uploads').where('id', '=', upload!.id).execute();
  expect(await findUploadWithBatch(db, upload!.id)).toBeUndefined();
});

it('reads a burst of uploads and batches in one statement, each with its own rows, the missing ones left out', async () => {
  const user = await db.insertInto('users').values({ email: `${randomUUID()}@example.com`, passwordHash: 'x' }).returning('id').executeTakeFirstOrThrow();
  const batches = [await insertBatch(db, { userId: user.id, totalUploads: 2 }), await insertBatch(db, { userId: user.id, totalUploads: 1 })];
  const file = (batchId: string, position: number) => ({
    batchId,
    userId: user.id,
    position,
    filename: `${position}.png`,
    mimeType: 'image/png',
    byteSize: 1 + position,
    originalKey: `originals/${randomUUID()}.png`,
  });
  const uploads = await insertUploads(db, [file(batches[0]!.id, 0), file(batches[0]!.id, 1), file(batches[1]!.id, 0)]);
  const gone = randomUUID();

  const found = await findUploadsWithBatch(db, [uploads[2]!.id, gone, uploads[0]!.id, uploads[1]!.id]);
  expect([...found.keys()].sort()).toEqual([uploads[0]!.id, uploads[1]!.id, uploads[2]!.id].sort());
  for (const u of uploads) {
    expect(found.get(u.id)).toEqual({ upload: await findUpload(db, u.id), batch: await findBatch(db, u.batchId) });
  }
  // The same prepared text serves one id as well as many.
  expect((await findUploadsWithBatch(db, [uploads[1]!.id])).get(uploads[1]!.id)?.upload.position).toBe(1);
  expect((await findUploadsWithBatch(db, [])).size).toBe(0);

  const read = await findBatches(db, [gone, batches[1]!.id, batches[0]!.id]);
  expect(read.map((b) => b.id).sort()).toEqual(batches.map((b) => b.id).sort());
  for (const b of read) expect(b).toEqual(await findBatch(db, b.id));
});
