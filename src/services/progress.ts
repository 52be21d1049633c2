import type { AppContext } from '../context.ts';
import { nextEventSeq } from '../db/batches.ts';
import type { BatchEvent, FileEvent } from './events.ts';

type Unnumbered = Omit<BatchEvent, 'seq'> | Omit<FileEvent, 'seq'>;
type Ctx = Pick<AppContext, 'db' | 'bus' | 'logger'>;

/**
 * Numbers an event from the batch's sequence and publishes it. Best-effort by design:
 * progress must never fail the work it reports on, so errors are logged and swallowed.
 */
export async function emitProgress(ctx: Ctx, event: Unnumbered) {
  await publishNumbered(ctx, event.batchId, [event]);
}

/**
 * A job's progress, off its critical path: emit() returns at once, and one drain loop numbers
 * whatever has queued up meanwhile with a single UPDATE (event_seq + n) and publishes it in
 * order. A batch's events keep their order, and a burst costs one write instead of one each.
 * flush() waits until everything emitted so far is out.
 */
export function progressQueue(ctx: Ctx) {
  const queue: Unnumbered[] = [];
  let draining: Promise<void> | undefined;
  let held: Promise<unknown> | undefined;
  async function drain() {
    // An outcome's commit releases a burst within one tick: the upload's `completed`, the next
    // upload's `started`, the batch's counts. Waiting for the tick to end numbers them together.
    await new Promise(setImmediate);
    // The next upload's `started` waits for its claim; when that is still on its way, so is this
    // burst, which then takes it along: one UPDATE and one commit per upload instead of two.
    const step = held;
    if (step) {
      await step.then(noop, noop);
      await new Promise(setImmediate);
    }
    while (queue.length) {
      const events = queue.splice(0);
      for (const [batchId, list] of Map.groupBy(events, (e) => e.batchId)) await publishNumbered(ctx, batchId, list);
    }
  }
  return {
    emit(event: Unnumbered) {
      queue.push(event);
      draining ??= drain().finally(() => (draining = undefined));
    },
    /** Events that queue while `step` is in flight go out after it, with whatever it emits. */
    hold(step: Promise<unknown>) {
      held = step;
      const release = () => {
        if (held === step) held = undefined;
      };
      step.then(release, release);
    },
    async flush() {
      while (draining) await draining;
    },
  };
}

const noop = () => {};

async function publishNumbered(ctx: Ctx, batchId: string, events: Unnumbered[]) {
  try {
    const last = await nextEventSeq(ctx.db, batchId, events.length);
    if (last === undefined) return; // the batch is gone, and so is everyone's interest in it
    const first = last - events.length + 1;
    await Promise.all(events.map((e, i) => ctx.bus.publish({ ...e, seq: first + i } as BatchEvent | FileEvent)));
  } catch (err) {
    ctx.logger.warn({ err, batchId }, 'progress event not emitted');
  }
}
