import { glob, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AppContext } from '../context.ts';

export const SWEEP_STORAGE = 'sweep_storage';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Removes what no row accounts for: files of requests that died mid-upload, and stored
 * files whose upload row never committed (a crash between moving the file and the
 * insert) or is gone. Only files older than the cut-off, so work in progress is safe.
 */
export async function sweepStorage(ctx: AppContext, maxAgeMs = ctx.config.storageSweep.orphanAgeMs) {
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
