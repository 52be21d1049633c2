/**
 * The worker's claims and outcomes commit without waiting for the WAL flush (redoableCommit in
 * src/db/fragments.ts): a crash of PostgreSQL may undo them, and the upload is redone. That must
 * stay the statement's own setting. The pool is shared, and what runs next on the connection
 * (createBatch in `all` mode) has promised its client that it is durable.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBatch } from '../../src/db/batches.ts';
import { createDb, createPool, type Database } from '../../src/db/database.ts';
import { claimNextRun } from '../../src/db/upload-runs.ts';
import { finishUpload } from '../../src/db/uploads.ts';
import { createLogger } from '../../src/logger.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { uploadBatch } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';

let app: TestApp;
let db: Database;
beforeAll(async () => {
  app = await startTestApp({ worker: false });
  // One connection: every statement below runs where the claim and the outcome ran.
  db = createDb(createPool(app.databaseUrl, 1, createLogger('silent')));
});
afterAll(async () => {
  await db?.destroy();
  await app?.close();
});

const commitSetting = async (d: Database) => (await sql<{ s: string }>`select current_setting('synchronous_commit') as s`.execute(d)).rows[0]!.s;

/** A started batch of `count` uploads whose job is locked as a worker locks it: claims and outcomes check that lease. */
async function leasedBatch(count: number) {
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, count);
  const workerId = 'test-worker';
  const { rows } = await sql<{ id: string }>`
    update graphile_worker._private_jobs set locked_by = ${workerId}, locked_at = now()
     where key = ${`batch:${batch.dbId}`} returning id::text`.execute(db);
  await startBatch(db, batch.dbId);
  return { batch, jobId: rows[0]!.id, workerId };
}

it('a claim and an outcome commit without waiting for the flush, and leave their connection synchronous', async () => {
  const { batch, jobId, workerId } = await leasedBatch(1);

  const claim = await db.transaction().execute(async (trx) => {
    const c = await claimNextRun(trx, { batchId: batch.dbId, after: -1, jobId, workerId });
    expect(await commitSetting(trx)).toBe('off');
    return c;
  });
  if (!claim.owner || !claim.upload) throw new Error(`nothing claimed: ${JSON.stringify(claim)}`);
  expect(await commitSetting(db)).toBe('on');

  const run = { runId: claim.runId, uploadId: claim.upload.id, batchId: batch.dbId, endedAt: new Date(), outcome: { status: 'FAILED', errorMessage: 'test' } } as const;
  await db.transaction().execute(async (trx) => {
    expect(await finishUpload(trx, { jobId, workerId }, run)).toEqual({ finished: true, leaseHeld: true });
    expect(await commitSetting(trx)).toBe('off');
  });
  expect(await commitSetting(db)).toBe('on');
  // Outside a transaction of its own, each is its own transaction: nothing stays behind either.
  expect(await claimNextRun(db, { batchId: batch.dbId, after: -1, jobId, workerId })).toEqual({ owner: true, upload: undefined });
  expect(await commitSetting(db)).toBe('on');
});

it('a claim records the lane\'s previous outcome in the same statement, only while the lease holds', async () => {
  const { batch, jobId, workerId } = await leasedBatch(2);
  const first = await claimNextRun(db, { batchId: batch.dbId, after: -1, jobId, workerId });
  if (!first.owner || !first.upload) throw new Error(`nothing claimed: ${JSON.stringify(first)}`);
  const finishing = {
    runId: first.runId,
    uploadId: first.upload.id,
    batchId: batch.dbId,
    endedAt: new Date(),
    outcome: { status: 'FAILED', errorMessage: 'test' } as const,
  };
  const state = () =>
    db
      .selectFrom('uploads')
      .innerJoin('batches', 'batches.id', 'uploads.batchId')
      .select(['uploads.status', 'uploads.errorMessage', 'batches.failedUploads'])
      .where('uploads.id', '=', finishing.uploadId)
      .executeTakeFirstOrThrow();

  // Someone else's lease: neither the outcome nor the claim is written.
  const lost = await claimNextRun(db, { batchId: batch.dbId, after: first.upload.position, jobId, workerId: 'other', finishing });
  expect(lost).toEqual({ owner: false, recorded: false });
  expect(await state()).toEqual({ status: 'PROCESSING', errorMessage: null, failedUploads: 0 });

  const second = await db.transaction().execute(async (trx) => {
    const c = await claimNextRun(trx, { batchId: batch.dbId, after: first.upload.position, jobId, workerId, finishing });
    expect(await commitSetting(trx)).toBe('off');
    return c;
  });
  expect(second).toMatchObject({ owner: true, recorded: true, upload: { position: first.upload.position + 1, status: 'PROCESSING' } });
  expect(await state()).toEqual({ status: 'FAILED', errorMessage: 'test', failedUploads: 1 });
  expect(await commitSetting(db)).toBe('on');
  const run = await db.selectFrom('uploadRuns').select(['outcome', 'finishedAt']).where('id', '=', first.runId).executeTakeFirstOrThrow();
  expect(run).toEqual({ outcome: 'FAILED', finishedAt: finishing.endedAt });

  // Recorded once: the same outcome again changes and counts nothing.
  const again = await claimNextRun(db, { batchId: batch.dbId, after: first.upload.position + 1, jobId, workerId, finishing });
  expect(again).toEqual({ owner: true, upload: undefined, recorded: false });
  expect(await state()).toEqual({ status: 'FAILED', errorMessage: 'test', failedUploads: 1 });
});
