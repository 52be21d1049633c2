import type { AppContext } from '../context.ts';
import { nextEventSeq } from '../db/batches.ts';
import type { BatchEvent, FileEvent } from './events.ts';

type Unnumbered = Omit<BatchEvent, 'seq'> | Omit<FileEvent, 'seq'>;

/**
 * Numbers an event from the batch's sequence and publishes it. Best-effort by design:
 * progress must never fail the work it reports on, so errors are logged and swallowed.
 */
export async function emitProgress(ctx: Pick<AppContext, 'db' | 'bus' | 'logger'>, event: Unnumbered) {
  try {
    const seq = await nextEventSeq(ctx.db, event.batchId);
    if (seq === undefined) return;
    await ctx.bus.publish({ ...event, seq } as BatchEvent | FileEvent);
  } catch (err) {
    ctx.logger.warn({ err, batchId: event.batchId }, 'progress event not emitted');
  }
}
