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

it('a claim and an outcome commit without waiting for the flush, and leave their connection synchronous', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 1);
  const workerId = 'test-worker';
  // The batch's job, locked as a worker locks it: the claim and the outcome check that lease.
  const { rows } = await sql<{ id: string }>`
    update graphile_worker._private_jobs set locked_by = ${workerId}, locked_at = now()
     where key = ${`batch:${batch.dbId}`} returning id::text`.execute(db);
  const jobId = rows[0]!.id;
  await startBatch(db, batch.dbId);

  const claim = await db.transaction().execute(async (trx) => {
    const c = await claimNextRun(trx, { batchId: batch.dbId, after: -1, jobId, workerId });
    expect(await commitSetting(trx)).toBe('off');
    return c;
  });
  if (!claim.owner || !claim.upload) throw new Error(`nothing claimed: ${JSON.stringify(claim)}`);
  expect(await commitSetting(db)).toBe('on');

  const run = { id: claim.runId, jobId, workerId, uploadId: claim.upload.id, batchId: batch.dbId, endedAt: new Date() };
  await db.transaction().execute(async (trx) => {
    expect(await finishUpload(trx, run, { status: 'FAILED', errorMessage: 'test' })).toEqual({ finished: true, leaseHeld: true });
    expect(await commitSetting(trx)).toBe('off');
  });
  expect(await commitSetting(db)).toBe('on');
  // Outside a transaction of its own, each is its own transaction: nothing stays behind either.
  expect(await claimNextRun(db, { batchId: batch.dbId, after: -1, jobId, workerId })).toEqual({ owner: true, upload: undefined });
  expect(await commitSetting(db)).toBe('on');
});
