import type { FileEvent } from '../services/events.ts';
import type { FileStage } from './pipeline.ts';

type Emit = (event: Omit<FileEvent, 'seq'>) => void;

/**
 * One upload's FileProgress events. They queue behind `after` (the previous upload's outcome),
 * so clients see uploads in order. Milestones (started, retrying, completed, failed) always go
 * out; an intermediate stage goes out at most once per `intervalMs`, the newest one winning:
 * a photo whose stages all pass within a few milliseconds reports none of them, while every
 * stage that lasts (a video's frames, the model server) is seen as it begins.
 */
export function uploadProgress(emit: Emit, upload: { id: string; batchId: string }, after: Promise<unknown>, intervalMs: number) {
  let chain = after;
  let lastAt = 0;
  let pending: { stage: FileStage; percent: number } | undefined;
  let timer: NodeJS.Timeout | undefined;

  const send = (stage: FileStage, percent: number) => {
    lastAt = performance.now();
    // A failed previous outcome fails the job elsewhere; this upload's progress still goes out.
    const go = () => emit({ type: 'file', batchId: upload.batchId, uploadId: upload.id, stage, percent });
    chain = chain.then(go, go);
  };
  const drop = () => {
    clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  };
  const flush = () => {
    const p = pending;
    drop();
    if (p) send(p.stage, p.percent);
  };

  return {
    milestone(stage: FileStage, percent: number) {
      drop();
      send(stage, percent);
    },
    stage(stage: FileStage, percent: number) {
      pending = { stage, percent };
      const wait = lastAt + intervalMs - performance.now();
      if (wait <= 0) flush();
      else timer ??= setTimeout(flush, wait).unref();
    },
    /** Settles once everything reported so far has been handed to the queue. */
    get sent() {
      return chain;
    },
  };
}
