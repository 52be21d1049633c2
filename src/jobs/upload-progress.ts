import type { FileEvent } from '../services/events.ts';
import type { FileStage } from './pipeline.ts';

type Emit = (event: Omit<FileEvent, 'seq'>) => void;

/**
 * Sends at most once per `intervalMs`, the newest value winning: one that comes within the
 * interval waits for its end, unless a newer one (or `now`, or `drop`) supersedes it first.
 */
export function latestOnly<T>(intervalMs: number, send: (value: T) => void) {
  let lastAt = -Infinity;
  let pending: { value: T } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const drop = () => {
    clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  };
  const now = (value: T) => {
    drop();
    lastAt = performance.now();
    send(value);
  };
  const flush = () => pending && now(pending.value);
  return {
    offer(value: T) {
      pending = { value };
      const wait = lastAt + intervalMs - performance.now();
      if (wait <= 0) flush();
      else timer ??= setTimeout(flush, wait).unref();
    },
    /** Sends right away, superseding anything pending; still starts a new interval. */
    now,
    /** Sends what is pending, if anything, at once. */
    flush,
    drop,
  };
}

/**
 * One upload's FileProgress events. They queue behind `after` (the previous upload's outcome),
 * so clients see uploads in order. Milestones (started, retrying, completed, failed) always go
 * out; an intermediate stage goes out at most once per `intervalMs`, the newest one winning:
 * a photo whose stages all pass within a few milliseconds reports none of them, while every
 * stage that lasts (a video's frames, the model server) is seen as it begins.
 */
export function uploadProgress(emit: Emit, upload: { id: string; batchId: string }, after: Promise<unknown>, intervalMs: number) {
  let chain = after;
  const stages = latestOnly<{ stage: FileStage; percent: number }>(intervalMs, ({ stage, percent }) => {
    // A failed previous outcome fails the job elsewhere; this upload's progress still goes out.
    const go = () => emit({ type: 'file', batchId: upload.batchId, uploadId: upload.id, stage, percent });
    chain = chain.then(go, go);
  });
  return {
    milestone: (stage: FileStage, percent: number) => stages.now({ stage, percent }),
    stage: (stage: FileStage, percent: number) => stages.offer({ stage, percent }),
    /** The upload is gone or given back: a stage still waiting would report on nothing. */
    drop: stages.drop,
    /** Settles once everything reported so far has been handed to the queue. */
    get sent() {
      return chain;
    },
  };
}
