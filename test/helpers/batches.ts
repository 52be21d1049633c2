import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import type { client as makeClient } from './client.ts';
import * as images from './images.ts';
import { DEFAULT_DESCRIPTION, type ModelServer } from './model-server.ts';

export const dbId = (globalId: string) => decodeGlobalID(globalId).id;

/** Makes every description request take `ms`: processing becomes slow enough to interrupt. */
export function slowModel(model: ModelServer, ms: number) {
  model.setBehavior(({ path }) =>
    path === '/api/generate' ? { status: 200, body: { response: DEFAULT_DESCRIPTION, done: true }, delayMs: ms } : undefined,
  );
}

// Counts files across calls, so batches of the same user never repeat content.
let filesMade = 0;

/** Uploads `n` small distinct PNGs as one batch; returns the batch's global and database ids. */
export async function uploadBatch(api: ReturnType<typeof makeClient>, token: string, n: number) {
  const colors = ['red', 'green', 'blue', 'white', 'black'] as const;
  const first = filesMade;
  filesMade += n;
  const files = await Promise.all(
    Array.from({ length: n }, async (_, i) => ({
      name: `photo-${String(i).padStart(3, '0')}.png`,
      // Sizes differ so every file's content (and checksum) is distinct: createBatch
      // reports content the user already has as a duplicate instead of storing it again.
      data: await images.png({ width: 40 + first + i, height: 30 + (i % 7), color: colors[i % colors.length] }),
    })),
  );
  const r = await api.upload(token, files);
  const result = r.data?.createBatch;
  if (result?.__typename !== 'CreateBatchSuccess') throw new Error(`createBatch failed: ${JSON.stringify(r)}`);
  return { id: result.batch.id, dbId: dbId(result.batch.id) };
}

/** Polls the database until the batch reaches one of `statuses`. */
export async function waitForBatch(db: Database, batchId: string, statuses: string[], timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const b = await db.selectFrom('batches').selectAll().where('id', '=', batchId).executeTakeFirst();
    if (b && statuses.includes(b.status)) return b;
    if (Date.now() > until) throw new Error(`batch ${batchId} still ${b?.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls until `predicate` holds for the batch's upload rows. */
export async function waitForUploads(
  db: Database,
  batchId: string,
  predicate: (rows: { id: string; status: string; position: number }[]) => boolean,
  timeoutMs = 30_000,
) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await db.selectFrom('uploads').select(['id', 'status', 'position']).where('batchId', '=', batchId).orderBy('position').execute();
    if (predicate(rows)) return rows;
    if (Date.now() > until) throw new Error(`uploads of ${batchId} never matched: ${JSON.stringify(rows.map((r) => r.status))}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The batch's counters must say exactly what its upload rows say. */
export async function expectCountsMatchRows(db: Database, batchId: string) {
  const batch = await db.selectFrom('batches').selectAll().where('id', '=', batchId).executeTakeFirstOrThrow();
  const rows = await db.selectFrom('uploads').select('status').where('batchId', '=', batchId).execute();
  const count = (s: string) => rows.filter((r) => r.status === s).length;
  expect({ total: batch.totalUploads, successful: batch.successfulUploads, failed: batch.failedUploads }).toEqual({
    total: rows.length,
    successful: count('COMPLETED'),
    failed: count('FAILED'),
  });
  return { batch, rows };
}

type Run = { uploadId: string; batchId: string; workerId: string; startedAt: Date; finishedAt: Date | null };

/**
 * No two runs of the same batch may overlap in time. A run with no end was cut short
 * by a crash; it is taken to end when the next run of that batch began.
 */
export function expectNoOverlap(runs: Run[]) {
  const byBatch = Map.groupBy(runs, (r) => r.batchId);
  for (const [, list] of byBatch) {
    const sorted = [...list].sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const end = prev.finishedAt ?? sorted[i]!.startedAt;
      expect(end.getTime(), `runs of batch ${prev.batchId} by ${prev.workerId} and ${sorted[i]!.workerId} overlap`).toBeLessThanOrEqual(
        sorted[i]!.startedAt.getTime(),
      );
    }
  }
}
