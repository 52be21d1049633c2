import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRuns } from '../../src/db/upload-runs.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { dbId, expectCountsMatchRows, slowModel, uploadBatch, waitForBatch, waitForUploads } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { startModelServer, type ModelServer, DEFAULT_DESCRIPTION } from '../helpers/model-server.ts';
import { CancelBatch, DeleteUpload, ProgressWithSeq, RetryFailedUploads } from './documents.ts';

let model: ModelServer;
let app: TestApp;
let api: ReturnType<typeof client>;
beforeAll(async () => {
  model = await startModelServer();
  app = await startTestApp({ env: { OLLAMA_URL: model.url, OLLAMA_TIMEOUT_MS: '10000', UPLOAD_WATCH_INTERVAL_MS: '50' } });
  api = client(app);
});
afterAll(async () => {
  await app?.close();
  await model?.close();
});
/** Files written aside (received, or renditions before their upload is claimed) that were never put in place. */
const leftAside = async () => {
  const list = (dir: string) => readdir(path.join(app.storageDir, dir)).catch(() => [] as string[]);
  return [...(await list('incoming')), ...(await list('scratch'))];
};

describe('cancelBatch', () => {
  it('stops before the next upload, aborts the one in flight, and ends the subscription', async () => {
    slowModel(model, 400);
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 8);
    const sub = api.subscribeWs(ProgressWithSeq, { batchId: batch.id }, token);
    await sub.first;
    await waitForUploads(app.ctx.db, batch.dbId, (rows) => rows.filter((r) => r.status === 'COMPLETED').length >= 2 && rows.some((r) => r.status === 'PROCESSING'));

    const r = await api.request(CancelBatch, { id: batch.id }, token);
    expect(r.data!.cancelBatch).toMatchObject({ __typename: 'BatchResult', batch: { status: 'CANCELLED' } });
    const events = await sub.done;
    const last = events.at(-1)!.data!.batchProgress;
    expect(last.__typename === 'BatchProgress' && last.batch.status).toBe('CANCELLED');

    await sleep(1000); // the worker notices within its watch interval
    const { batch: row, rows } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(row.status).toBe('CANCELLED');
    expect(rows.filter((u) => u.status === 'PROCESSING')).toEqual([]);
    expect(rows.filter((u) => u.status === 'PENDING').length).toBeGreaterThanOrEqual(4);
    expect(row.successfulUploads).toBe(rows.filter((u) => u.status === 'COMPLETED').length);
    // The upload in flight was aborted, not finished.
    const runs = await listRuns(app.ctx.db, [batch.dbId]);
    expect(runs.at(-1)!.outcome).toBe('ABORTED');
    expect(runs.every((run) => run.finishedAt !== null)).toBe(true);

    const again = await api.request(CancelBatch, { id: batch.id }, token);
    expect(again.data!.cancelBatch).toMatchObject({ __typename: 'BatchNotActiveError', code: 'BATCH_NOT_ACTIVE' });
  });
});

describe('retryFailedUploads', () => {
  it('re-queues only the failed uploads with fresh attempts and keeps counts exact', async () => {
    // Upload 2 of 4 gets nothing but errors from the model server in both attempts (each
    // attempt asks twice: the analyzer retries once within its stage): it fails for good.
    let failing = true;
    let n = 0;
    model.setBehavior(({ path }) => {
      if (path !== '/api/generate') return undefined;
      n++;
      return failing && n >= 2 && n <= 5 ? { status: 503, body: { error: 'overloaded' } } : { status: 200, body: { response: DEFAULT_DESCRIPTION } };
    });
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 4);
    await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED']);
    const before = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(before.batch).toMatchObject({ successfulUploads: 3, failedUploads: 1 });
    const failed = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).where('status', '=', 'FAILED').executeTakeFirstOrThrow();
    expect(failed).toMatchObject({ attempts: 2, position: 1 });
    expect(failed.errorMessage).toMatch(/503/);

    failing = false;
    const r = await api.request(RetryFailedUploads, { batchId: batch.id }, token);
    const sub = api.subscribeWs(ProgressWithSeq, { batchId: batch.id }, token);
    expect(r.data!.retryFailedUploads).toMatchObject({ __typename: 'BatchResult', batch: { status: 'PROCESSING', failedUploads: 0, successfulUploads: 3 } });
    const events = await sub.done;
    const last = events.at(-1)!.data!.batchProgress;
    expect(last.__typename === 'BatchProgress' && last.batch).toMatchObject({ status: 'COMPLETED', processedUploads: 4 });

    const after = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(after.batch).toMatchObject({ status: 'COMPLETED', successfulUploads: 4, failedUploads: 0 });
    const retried = await app.ctx.db.selectFrom('uploads').selectAll().where('id', '=', failed.id).executeTakeFirstOrThrow();
    expect(retried).toMatchObject({ status: 'COMPLETED', attempts: 1, errorMessage: null });
    // Only the failed upload ran again.
    const runs = await listRuns(app.ctx.db, [batch.dbId]);
    expect(runs.filter((run) => run.uploadId !== failed.id)).toHaveLength(3);

    const nothing = await api.request(RetryFailedUploads, { batchId: batch.id }, token);
    expect(nothing.data!.retryFailedUploads).toMatchObject({ __typename: 'NothingToRetryError', code: 'NOTHING_TO_RETRY' });
  });
});

describe('deleteUpload', () => {
  it('deletes an upload while it is being processed: the worker moves on, files go, counts stay exact', async () => {
    slowModel(model, 500);
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 4);
    const rows = await waitForUploads(app.ctx.db, batch.dbId, (rs) => rs[1]?.status === 'PROCESSING');
    const victim = await app.ctx.db.selectFrom('uploads').selectAll().where('id', '=', rows[1]!.id).executeTakeFirstOrThrow();
    expect(await app.ctx.storage.exists(victim.originalKey)).toBe(true);

    const { encodeGlobalID } = await import('@pothos/plugin-relay');
    const r = await api.request(DeleteUpload, { id: encodeGlobalID('Upload', victim.id) }, token);
    expect(r.data!.deleteUpload).toMatchObject({ __typename: 'DeleteUploadSuccess', batch: { totalUploads: 3 } });

    await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED']);
    const { batch: row } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(row).toMatchObject({ totalUploads: 3, successfulUploads: 3, failedUploads: 0 });
    expect(await app.ctx.storage.exists(victim.originalKey)).toBe(false);
    expect(await app.ctx.storage.exists(`thumbnails/${victim.userId}/${victim.id}.webp`)).toBe(false);
    expect(await leftAside()).toEqual([]);
    const runs = await listRuns(app.ctx.db, [batch.dbId]);
    expect(runs.filter((run) => run.uploadId === victim.id).map((run) => run.outcome)).toEqual(['ABORTED']);

    // Deleting a finished upload takes it out of the counts too; a second delete finds nothing.
    const done = await app.ctx.db.selectFrom('uploads').select('id').where('batchId', '=', batch.dbId).executeTakeFirstOrThrow();
    await api.request(DeleteUpload, { id: encodeGlobalID('Upload', done.id) }, token);
    const after = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(after.batch).toMatchObject({ totalUploads: 2, successfulUploads: 2 });
    const twice = await api.request(DeleteUpload, { id: encodeGlobalID('Upload', done.id) }, token);
    expect(twice.data!.deleteUpload).toMatchObject({ __typename: 'UploadNotFoundError', code: 'NOT_FOUND' });
    expect(dbId(batch.id)).toBe(batch.dbId);
  });

  it('deletes the upload next in line: the media work already started on it is dropped, nothing is written for it', async () => {
    // While upload 1 is processed, the worker knows upload 2 comes next and starts on it as soon
    // as upload 1's media work ends, before its next claim confirms (process-batch.ts lookAhead).
    slowModel(model, 500);
    const { token } = await api.signUp();
    const batch = await uploadBatch(api, token, 4);
    const rows = await waitForUploads(app.ctx.db, batch.dbId, (rs) => rs[1]?.status === 'PROCESSING');
    const next = await app.ctx.db.selectFrom('uploads').selectAll().where('id', '=', rows[2]!.id).executeTakeFirstOrThrow();
    expect(next.status).toBe('PENDING');

    const { encodeGlobalID } = await import('@pothos/plugin-relay');
    const r = await api.request(DeleteUpload, { id: encodeGlobalID('Upload', next.id) }, token);
    expect(r.data!.deleteUpload).toMatchObject({ __typename: 'DeleteUploadSuccess', batch: { totalUploads: 3 } });

    await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED']);
    const { batch: row } = await expectCountsMatchRows(app.ctx.db, batch.dbId);
    expect(row).toMatchObject({ totalUploads: 3, successfulUploads: 3, failedUploads: 0 });
    const left = await waitForUploads(app.ctx.db, batch.dbId, () => true);
    expect(left.map((u) => u.id)).toEqual([rows[0]!.id, rows[1]!.id, rows[3]!.id]);
    const runs = await listRuns(app.ctx.db, [batch.dbId]);
    expect(runs.filter((run) => run.uploadId === next.id)).toEqual([]);
    expect(runs.map((run) => run.outcome)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    for (const kind of ['thumbnails', 'previews']) {
      for (const ext of ['webp', 'jpg']) expect(await app.ctx.storage.exists(`${kind}/${next.userId}/${next.id}.${ext}`)).toBe(false);
    }
    expect(await app.ctx.storage.exists(next.originalKey)).toBe(false);
    // Its renditions were made, aside, before the claim named another upload: they went with it.
    expect(await leftAside()).toEqual([]);
  });
});
