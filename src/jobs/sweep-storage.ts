import { glob, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AppContext } from '../context.ts';
import { finishAbandonedBatches } from '../db/batches.ts';
import { enqueueProcessBatch } from './contract.ts';

export const SWEEP_STORAGE = 'sweep_storage';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Removes what no row accounts for: files of requests that died mid-upload, and stored
 * files whose upload row never committed (a crash between moving the file and the
 * insert) or is gone. Only files older than the cut-off, so work in progress is safe.
 * First, batches whose request died while arriving (its API process with it) are ended as
 * received, so what they stored is processed and shown.
 */
export async function sweepStorage(ctx: AppContext, maxAgeMs = ctx.config.storageSweep.orphanAgeMs) {
  const abandoned = await ctx.db.transaction().execute(async (trx) => {
    const batches = await finishAbandonedBatches(trx);
    for (const b of batches) if (b.idlePlace) await enqueueProcessBatch(trx, { batchId: b.id }, b.idlePlace);
    return batches;
  });
  if (abandoned.length) ctx.logger.warn({ batches: abandoned.map((b) => b.id) }, 'ended batches whose request never did');
  const incoming = await ctx.storage.sweepIncoming(maxAgeMs);
  const cutoff = Date.now() - maxAgeMs;
  const candidates = new Map<string, string[]>(); // upload id → files
  for await (const rel of glob('*/*/*', { cwd: ctx.storage.root })) {
    if (rel.startsWith('incoming')) continue;
    const id = path.basename(rel).split('.')[0]!;
    if (!UUID.test(id)) continue;
    const s = await stat(path.join(ctx.storage.root, rel)).catch(() => null);
    if (!s?.isFile() || s.mtimeMs > cutoff) continue;
    candidates.set(id, [...(candidates.get(id) ?? []), rel]);
  }
  let stored = 0;
  const ids = [...candidates.keys()];
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const known = new Set(
      (await ctx.db.selectFrom('uploads').select('id').where('id', 'in', chunk).execute()).map((r) => r.id),
    );
    for (const id of chunk) {
      if (known.has(id)) continue;
      for (const rel of candidates.get(id)!) {
        await rm(path.join(ctx.storage.root, rel), { force: true });
        stored++;
      }
    }
  }
  if (incoming + stored > 0) ctx.logger.info({ incoming, stored }, 'removed orphaned files');
  return { incoming, stored };
}
