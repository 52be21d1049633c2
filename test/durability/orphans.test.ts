import { randomUUID } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sweepStorage } from '../../src/jobs/sweep-storage.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { uploadBatch, waitForBatch } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

async function file(rel: string, ageMs: number) {
  const p = path.join(app.storageDir, rel);
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, 'x');
  const t = (Date.now() - ageMs) / 1000;
  await utimes(p, t, t);
  return rel;
}

it('removes files no row accounts for, and only those old enough', async () => {
  const api = client(app);
  const { token, userId } = await api.signUp();
  const batch = await uploadBatch(api, token, 2);
  await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED']);
  const live = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).execute();
  const hour = 3600_000;
  const user = randomUUID();
  const deadRequest = await file(`incoming/${randomUUID()}`, 2 * hour);
  const freshRequest = await file(`incoming/${randomUUID()}`, 1000);
  const deadWorker = await file(`scratch/${randomUUID()}`, 2 * hour);
  const neverCommitted = await file(`originals/${user}/${randomUUID()}.jpg`, 2 * hour);
  const strayThumb = await file(`thumbnails/${user}/${randomUUID()}.webp`, 2 * hour);
  const young = await file(`originals/${user}/${randomUUID()}.png`, 1000);
  // Age the live files too: being old is no reason to go when a row owns them.
  for (const u of live) await file(u.originalKey, 2 * hour);

  const removed = await sweepStorage(app.ctx, hour);
  expect(removed).toEqual({ incoming: 2, stored: 2 });
  const exists = (rel: string) => app.ctx.storage.exists(rel);
  expect(await exists(deadRequest)).toBe(false);
  expect(await exists(deadWorker)).toBe(false);
  expect(await exists(neverCommitted)).toBe(false);
  expect(await exists(strayThumb)).toBe(false);
  expect(await exists(freshRequest)).toBe(true);
  expect(await exists(young)).toBe(true);
  for (const u of live) {
    expect(await exists(u.originalKey)).toBe(true);
    expect(await exists(u.thumbnailKey!)).toBe(true);
  }
  expect(userId).toBeTruthy();
});

it('fails an upload whose original is missing, with a clear message', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  await app.stopWorker();
  const batch = await uploadBatch(api, token, 2);
  const [first] = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).orderBy('position').execute();
  await app.ctx.storage.remove(first!.originalKey);
  await app.startWorker();
  await waitForBatch(app.ctx.db, batch.dbId, ['COMPLETED']);
  const rows = await app.ctx.db.selectFrom('uploads').selectAll().where('batchId', '=', batch.dbId).orderBy('position').execute();
  expect(rows.map((r) => r.status)).toEqual(['FAILED', 'COMPLETED']);
  expect(rows[0]!.errorMessage).toMatch(/original file is missing/i);
});
