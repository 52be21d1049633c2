import type { Client } from 'graphql-ws';
import { createBatch, type CreatedBatch, type Received, terminalAt, watchBatch } from './client.ts';
import { deal, type Photo, uploadOf } from './photos.ts';

export interface BatchRun {
  created: CreatedBatch;
  events: Received[];
  /** When its terminal BatchProgress arrived. */
  doneAt: number;
  failed: number;
}

/** Uploads one batch over HTTP and follows it over graphql-ws to its terminal event. */
export async function runBatch(graphqlUrl: string, ws: Client, token: string, photos: Photo[], onCreated?: () => void): Promise<BatchRun> {
  const created = await createBatch(graphqlUrl, token, photos.map(uploadOf));
  onCreated?.();
  const events = await watchBatch(ws, created.id);
  const last = events.at(-1)?.event;
  const failed = last?.__typename === 'BatchProgress' ? last.batch.failedUploads : NaN;
  return { created, events, doneAt: terminalAt(events), failed };
}

/**
 * Photos dealt round-robin into `count` batches, all submitted at once: from the first
 * request to the last terminal event.
 */
export async function runBatches(
  graphqlUrl: string,
  ws: Client,
  token: string,
  photos: Photo[],
  count: number,
  abort: Promise<never>,
  onAllCreated?: () => void,
) {
  const groups = deal(photos, count);
  let pending = groups.length;
  let allCreatedAt = NaN;
  const created = () => {
    if (--pending > 0) return;
    allCreatedAt = performance.now();
    onAllCreated?.();
  };
  const t0 = performance.now();
  const runs = await Promise.race([Promise.all(groups.map((g) => runBatch(graphqlUrl, ws, token, g, created))), abort]);
  const end = Math.max(...runs.map((r) => r.doneAt));
  /** `createdMs`: until every createBatch had answered, i.e. spent receiving before (all) processing could start. */
  return { ms: end - t0, createdMs: allCreatedAt - t0, runs, failed: runs.reduce((n, r) => n + r.failed, 0) };
}
