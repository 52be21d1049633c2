import type { JobHelpers } from 'graphile-worker';
import type { AppContext } from '../context.ts';
import { completeBatch, idleWhileReceiving, startBatch } from '../db/batches.ts';
import { claimNextRun, finishRun, type MediaSource, startRun } from '../db/upload-runs.ts';
import type { Lease } from '../db/fragments.ts';
import {
  type FinishedRun,
  finishUpload,
  recordFailedAttempt,
  releaseUpload,
  type UploadOutcome,
  type UploadRow,
  uploadState,
} from '../db/uploads.ts';
import { progressQueue } from '../services/progress.ts';
import { enqueueProcessBatch, ProcessBatchPayload } from './contract.ts';
import type { LaneBudget } from './lanes.ts';
import { isVideo, type Rendered, renderMedia, runPipeline } from './pipeline.ts';
import { latestOnly, uploadProgress } from './upload-progress.ts';

export type BatchJobHelpers = Pick<JobHelpers, 'abortSignal'> & { job: { id: string; locked_by?: string | null; run_at: Date } };

export interface BatchJobOptions {
  /** Aborts when the process may be presumed dead by others (see liveness.ts). */
  livenessSignal?: AbortSignal;
  /** After this long a run hands over to a fresh job, so no job lock ever ages. */
  sliceMs: number;
  /** How often a running upload checks whether it was cancelled or deleted. */
  watchIntervalMs: number;
  /** At most one intermediate stage event per upload, and one batch count event, per interval (see upload-progress.ts). */
  progressIntervalMs: number;
  /** How many of the batch's uploads may be processed at once, on worker slots no other job holds. */
  parallelism: number;
  /** The process's worker slots, shared by its jobs (lanes.ts); without it, one lane. */
  lanes?: LaneBudget;
}

class Interrupted extends Error {}

type Progress = ReturnType<typeof progressQueue>;
type Emit = Progress['emit'];
/**
 * An attempt's outcome, not yet written: the lane's next claim records it (claimNextRun), or
 * finishUpload once the lane stops. `after` follows once it is recorded, or found not to be.
 */
interface Pending {
  run: FinishedRun;
  after(recorded: boolean, leaseHeld: boolean): Promise<unknown>;
}
type Step = { result: 'done'; pending: Pending } | { result: 'gone' | 'cancelled' | 'interrupted'; finishing: Promise<unknown> };
const settled: Promise<unknown> = Promise.resolve();

/**
 * Works through a batch's unfinished uploads one at a time, in creation order.
 * Everything it decides is read from and written to the database first, so a
 * re-run after a crash continues exactly where the rows say it stopped.
 */
export async function processBatch(ctx: AppContext, rawPayload: unknown, helpers: BatchJobHelpers, opts: BatchJobOptions) {
  const progress = progressQueue(ctx);
  try {
    await work(ctx, rawPayload, helpers, opts, progress);
  } finally {
    await progress.flush();
  }
}

/**
 * The media work is one upload at a time (per lane); the bookkeeping does not queue in front of
 * it. While upload i+1 decodes, upload i's outcome commits, in the statement that claims upload
 * i+1, and its events go out (after that commit, in order). A crash in between leaves at most
 * two uploads PROCESSING per lane, which the next run redoes, as it redoes any interrupted upload.
 */
async function work(ctx: AppContext, rawPayload: unknown, helpers: BatchJobHelpers, opts: BatchJobOptions, progress: Progress) {
  const { emit, hold } = progress;
  const { batchId } = ProcessBatchPayload.parse(rawPayload);
  const stop = opts.livenessSignal ? AbortSignal.any([helpers.abortSignal, opts.livenessSignal]) : helpers.abortSignal;
  const workerId = helpers.job.locked_by ?? 'unknown';
  const batch = await startBatch(ctx.db, batchId);
  if (!batch) return; // deleted, finished or cancelled meanwhile: nothing to do
  // The counts change with every upload; like a stage, they go out at most once per interval.
  const counts = latestOnly<void>(opts.progressIntervalMs, () => emit({ type: 'batch', batchId, terminal: false }));
  counts.now();
  let completed = false;
  try {
    while (await uploads(ctx, batchId, opts, { stop, jobId: helpers.job.id, workerId, emit, hold, counted: counts.offer })) {
      if (await completeBatch(ctx.db, batchId)) {
        completed = true;
        break;
      }
      // Caught up with a request still arriving: its next files enqueue a new job. Unless files
      // came or the request ended meanwhile: then on with those.
      const state = await idleWhileReceiving(ctx.db, batchId, helpers.job.run_at);
      if (state === 'idle') ctx.logger.debug({ batchId }, 'caught up with a batch still arriving; its next files restart it');
      if (state !== 'more') break;
    }
  } finally {
    // The terminal event carries the final counts; otherwise, whoever goes on with the batch,
    // its subscribers have the latest.
    if (completed) counts.drop();
    else counts.flush();
  }
  if (completed) emit({ type: 'batch', batchId, terminal: true });
}

type UploadOptions = BatchJobOptions &
  Lease & { stop: AbortSignal; emit: Emit; hold: Progress['hold']; counted: () => void; onRendered?: () => void };
type LaneOptions = Omit<UploadOptions, keyof BatchJobOptions>;

/** How a lane stopped: out of uploads, out of time (or told to stop), lock lost, batch cancelled, slot given back. */
type LaneEnd = 'empty' | 'handover' | 'lost' | 'cancelled' | 'yielded';

/** What the lanes of one run share: claims go one at a time, each after the last one's position. */
interface Run {
  batchId: string;
  deadline: number;
  after: number;
  claims: Promise<unknown>;
  /** The upload after the last claimed one, as that claim named it: whichever lane claims next takes it. */
  next?: MediaSource;
  ahead?: LookAhead;
  lanes: number;
  /** Media work started ahead goes to the media thread on this chain, behind the work before it. */
  chain: string;
}

/**
 * The batch's uploads until none is left (true), or until the job hands over or must stop (false).
 * One lane, unless BATCH_PARALLELISM lets the batch borrow idle worker slots for more (lanes.ts).
 */
async function uploads(ctx: AppContext, batchId: string, opts: BatchJobOptions, o: LaneOptions) {
  const run: Run = { batchId, deadline: Date.now() + opts.sliceMs, after: -1, claims: settled, lanes: 1, chain: `${o.jobId}:${batchId}` };
  // A lane that fails stops the others (their uploads are given back), then fails the job.
  const halt = new AbortController();
  const lane = (extra: boolean) => runLane(ctx, run, opts, { ...o, stop: AbortSignal.any([o.stop, halt.signal]) }, extra ? undefined : spawn);
  const extras: Promise<LaneEnd>[] = [];
  // Once the first lane has ended, the extras are counted: none may start after.
  let closing = false;
  const spawn = () => {
    if (closing || run.lanes >= opts.parallelism || halt.signal.aborted) return;
    const giveBack = opts.lanes?.borrow();
    if (!giveBack) return;
    run.lanes++;
    const ended = lane(true).finally(() => {
      run.lanes--;
      giveBack();
    });
    ended.catch((err: unknown) => halt.abort(err));
    extras.push(ended);
  };
  // A slot that falls idle (another batch ended) goes to this one's next upload at once. Not only
  // when the last claim named one: files that arrived since are the lane's to find (an idle slot
  // asks for a job every poll interval, so at worst that is a claim that finds nothing).
  const unwatch = opts.parallelism > 1 ? opts.lanes?.watchIdle(spawn) : undefined;
  let ends: LaneEnd[];
  try {
    const first = await lane(false)
      .catch((err: unknown) => {
        halt.abort(err);
        throw err;
      })
      .finally(() => {
        closing = true;
        unwatch?.();
      });
    ends = [first, ...(await Promise.all(extras))];
  } catch (err) {
    await Promise.allSettled(extras);
    throw err;
  } finally {
    run.ahead?.abandon();
  }
  if (ends.includes('lost')) {
    ctx.logger.warn({ batchId, jobId: o.jobId, workerId: o.workerId }, 'job lock lost to another worker; stopping');
    return false;
  }
  if (ends.includes('cancelled')) return false;
  if (ends.includes('handover')) {
    // Hand the rest to a fresh job (any worker may take it) and end this one cleanly:
    // nothing stays locked, and a shutdown costs the job no attempt.
    if (o.stop.aborted && opts.livenessSignal?.aborted) {
      ctx.logger.warn({ batchId }, 'liveness lost; leaving the batch to whoever unlocks it');
      return false;
    }
    await enqueueProcessBatch(ctx.db, { batchId });
    return false;
  }
  return true;
}

/**
 * One lane: claims the run's next upload and processes it, until none is left or it must stop.
 * The first lane (`spawn` given) also starts extra lanes while the batch has uploads ahead; an
 * extra lane gives its slot back once another job needs it.
 */
async function runLane(ctx: AppContext, run: Run, opts: BatchJobOptions, o: LaneOptions, spawn: (() => void) | undefined): Promise<LaneEnd> {
  const { stop, jobId, workerId } = o;
  let finishing = settled;
  let pending: Pending | undefined;
  let broken = false;
  // Each outcome's aftermath joins those before it: one that fails after a later one started
  // still fails the lane, whichever of them it awaits.
  const follow = (step: Promise<unknown>) => {
    finishing = Promise.all([finishing, step]);
    finishing.catch(() => (broken = true)); // awaited above or below; never unhandled meanwhile
  };
  // An outcome that no claim took along is written by itself before the lane ends.
  const end = async (how: LaneEnd) => {
    if (pending) {
      const { run: r, after } = pending;
      pending = undefined;
      const { finished, leaseHeld } = await finishUpload(ctx.db, { jobId, workerId }, r);
      follow(after(!!finished, leaseHeld));
    }
    await finishing;
    return how;
  };
  for (;;) {
    // An outcome whose aftermath failed fails the job now, not after the rest of the batch.
    if (broken) await finishing;
    const stopping: LaneEnd | undefined =
      stop.aborted || Date.now() > run.deadline ? 'handover' : !spawn && opts.lanes?.crowded ? 'yielded' : undefined;
    if (stopping) return end(stopping);
    const taking = pending;
    pending = undefined;
    const claiming = claimNext(ctx, run, { jobId, workerId }, taking?.run);
    // The previous upload's `completed` waits for this claim, to go out with this one's `started`.
    o.hold(claiming);
    const claim = await claiming;
    if (taking) follow(taking.after(!!claim.recorded, claim.owner));
    if (!claim.owner) return end('lost');
    if (!claim.upload) break;
    let rendering = run.ahead?.take(claim.upload.id);
    run.ahead = undefined;
    const { following } = claim;
    const position = claim.upload.position;
    if (following) spawn?.();
    const aheadAllowed = () => !run.ahead && !stop.aborted && Date.now() <= run.deadline;
    // Two photos in a lane alone: the next one is sent to the media thread now, to start there
    // the moment this one's work ends, instead of a round trip through this thread later (2 % of
    // figure 1's run was the media thread waiting for it). Not a video: its work runs outside
    // the media thread.
    const queued =
      !!spawn && run.lanes === 1 && !isVideo(claim.upload) && !!following && !isVideo(following) && run.after === position && aheadAllowed();
    if (queued) {
      rendering ??= started(renderMedia(ctx, claim.upload, stop, run.chain));
      run.ahead = lookAhead(ctx, following, stop, run.chain);
    }
    // Otherwise, once this upload's pixels are done, the next one's may start: its file writes,
    // metadata and analysis need little CPU, and a model server's answer can take seconds. Beside
    // other lanes that is the upload after the latest claim, whichever lane claims it: each lane
    // then starts its next pixels as its last ones end, so no more media work runs at once than
    // there are lanes (in 2d's setup one of two lanes had no media work a fifth of the time).
    const onRendered = () => {
      const next = run.next;
      if (queued || !next || !aheadAllowed()) return;
      // Chained only alone: beside other lanes the chain's last work may be another lane's.
      run.ahead = lookAhead(ctx, next, stop, run.lanes === 1 ? run.chain : undefined);
    };
    const step = await processUpload(ctx, claim.upload, claim.runId, finishing, rendering, { ...opts, ...o, onRendered });
    if (step.result === 'done') pending = step.pending;
    else follow(step.finishing);
    if (step.result === 'cancelled') return end('cancelled');
  }
  return end('empty');
}

/** Claims run one at a time, so that lanes never take the same upload and each follows the last. */
function claimNext(ctx: AppContext, run: Run, lease: Lease, finishing: FinishedRun | undefined) {
  const claiming = run.claims.then(async () => {
    const claim = await claimNextRun(ctx.db, { batchId: run.batchId, after: run.after, ...lease, finishing });
    if (claim.owner) run.next = claim.upload && claim.following;
    if (claim.owner && claim.upload) run.after = claim.upload.position;
    return claim;
  });
  run.claims = claiming.catch(() => {});
  return claiming;
}

type LookAhead = ReturnType<typeof lookAhead>;

/** Media work started ahead of its attempt, which judges its failure (if it is ever taken). */
function started(rendering: Promise<Rendered>) {
  rendering.catch(() => {});
  return rendering;
}

/**
 * Starts the media work of the upload the last claim named as following, behind the current
 * upload's on the media thread (or once its pixels are done): it overlaps the current upload's file writes, metadata and analysis
 * and the next claim's round trip, none of which is on the critical path any longer. Nothing is
 * written for it until that claim confirms it is the upload to process (a cancel, a delete or a
 * lost lease name another, or none, and the work is dropped), so runs still never overlap.
 */
function lookAhead(ctx: AppContext, source: MediaSource, stop: AbortSignal, chain?: string) {
  const abandoned = new AbortController();
  const rendering = started(renderMedia(ctx, source, AbortSignal.any([stop, abandoned.signal]), chain));
  const abandon = () => {
    abandoned.abort(new Interrupted('superseded'));
    // Finished before it was given up: what it wrote aside is no one's.
    void rendering.then((r) => r.discard(), () => {});
  };
  return {
    take(id: string): Promise<Rendered> | undefined {
      if (id === source.id) return rendering;
      abandon();
      return undefined;
    },
    abandon,
  };
}

/**
 * Runs the pipeline on a claimed upload. A success or a final failure is handed back as
 * `pending`, for the lane to record with its next claim (so outcomes commit in order); its events
 * go out behind `previous`. An interruption or a retry is handled at once, after `previous`.
 */
async function processUpload(
  ctx: AppContext,
  upload: UploadRow,
  firstRunId: string,
  previous: Promise<unknown>,
  lookedAhead: Promise<Rendered> | undefined,
  o: UploadOptions,
): Promise<Step> {
  const progress = uploadProgress(o.emit, upload, previous, o.progressIntervalMs);
  progress.milestone('started', 0);

  let row = upload;
  let runId = firstRunId;
  for (;;) {
    const watch = watchUpload(ctx, row.id, o.watchIntervalMs);
    // Our own bound on a whole attempt, over sharp's and the model server's own timeouts.
    const deadline = AbortSignal.timeout(ctx.config.worker.uploadTimeoutMs);
    const signal = AbortSignal.any([o.stop, watch.signal, deadline]);
    let outcome: UploadOutcome;
    // The run ends with its media work, though its outcome commits later: runs must not overlap.
    let endedAt: Date;
    try {
      // Only the first attempt may take media work already started (a retry decodes anew).
      const rendering = lookedAhead;
      lookedAhead = undefined;
      outcome = await runPipeline(ctx, row, { signal, onStage: progress.stage, rendering, onRendered: o.onRendered });
      if (signal.aborted) throw signal.reason;
      endedAt = new Date();
    } catch (err) {
      await previous;
      previous = settled;
      if (signal.aborted && !deadline.aborted) {
        // Not the file's fault: the attempt does not count and the upload is redone later.
        await finishRun(ctx.db, runId, 'ABORTED');
        const why = watch.signal.aborted ? (watch.signal.reason as Interrupted).message : 'interrupted';
        if (why === 'deleted') await ctx.storage.removeUpload(row.userId, row.id);
        else await releaseUpload(ctx.db, row.id, o);
        progress.drop();
        return { result: why === 'deleted' ? 'gone' : why === 'cancelled' ? 'cancelled' : 'interrupted', finishing: settled };
      }
      const errorMessage = deadline.aborted
        ? `Processing took longer than ${ctx.config.worker.uploadTimeoutMs / 1000} s`
        : err instanceof Error
          ? err.message
          : String(err);
      ctx.logger.warn({ uploadId: row.id, attempt: row.attempts + 1, err: errorMessage }, 'upload attempt failed');
      if (row.attempts + 1 < ctx.config.worker.uploadMaxAttempts) {
        await finishRun(ctx.db, runId, 'RETRY');
        const again = await recordFailedAttempt(ctx.db, row.id, errorMessage, o);
        if (!again) {
          progress.drop();
          return { result: 'gone', finishing: settled };
        }
        row = again;
        progress.milestone('retrying', 0);
        runId = await startRun(ctx.db, { uploadId: row.id, batchId: row.batchId, workerId: o.workerId });
        continue;
      }
      outcome = { status: 'FAILED', errorMessage };
      endedAt = new Date();
    } finally {
      watch.stop();
    }
    const done = row;
    const after = async (recorded: boolean, leaseHeld: boolean) => {
      if (!recorded) {
        // Deleted while we worked: whatever we produced for it must not stay behind. (Without
        // the lease, the files are the next worker's, which redoes the upload.)
        if (leaseHeld) await ctx.storage.removeUpload(done.userId, done.id);
        return progress.drop();
      }
      progress.milestone(outcome.status === 'COMPLETED' ? 'completed' : 'failed', 100);
      await progress.sent;
      o.counted();
    };
    return { result: 'done', pending: { run: { runId, uploadId: done.id, batchId: done.batchId, endedAt, outcome }, after } };
  }
}

/** Polls the upload and its batch so a cancel or a delete aborts the work in flight. */
function watchUpload(ctx: AppContext, uploadId: string, intervalMs: number) {
  const controller = new AbortController();
  const timer = setInterval(() => {
    uploadState(ctx.db, uploadId)
      .then((s) => {
        if (!s) controller.abort(new Interrupted('deleted'));
        else if (s.batchStatus === 'CANCELLED') controller.abort(new Interrupted('cancelled'));
      })
      .catch(() => {}); // a failed poll changes nothing; the next one tries again
  }, intervalMs);
  timer.unref();
  return { signal: controller.signal, stop: () => clearInterval(timer) };
}
