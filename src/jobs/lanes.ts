/**
 * The worker slots of one process, as batches may borrow them (BATCH_PARALLELISM). graphile-worker
 * runs at most `concurrency` batch jobs at once, each working through its uploads one at a time.
 * A job may run more of its uploads at once in extra lanes, but only on slots no job holds: a lane
 * starts while slots stand idle (the last batch of a burst, or a single large one) and ends after
 * its upload once another job needs the slot back. So batches still take turns, and the machine
 * is never asked for more media work at once than `concurrency` for long.
 */
export function laneBudget(concurrency: number) {
  let jobs = 0;
  let lanes = 0;
  const watchers = new Set<() => void>();
  const once = (fn: () => void) => {
    let done = false;
    return () => {
      if (!done) fn();
      done = true;
    };
  };
  return {
    /** A job started; call the result when it ends. */
    job() {
      jobs++;
      return once(() => jobs--);
    },
    /** An extra lane, if a slot is idle; call the result when the lane ends. */
    borrow(): (() => void) | undefined {
      if (jobs + lanes >= concurrency) return undefined;
      lanes++;
      return once(() => lanes--);
    },
    /** More lanes and jobs than slots: extra lanes give theirs back. */
    get crowded() {
      return jobs + lanes > concurrency;
    },
    /**
     * A slot looked for a job and found none (graphile-worker's `worker:getJob:empty`): the jobs
     * watching may borrow it now rather than at their next claim, a whole upload later.
     */
    slotIdle() {
      for (const watcher of watchers) watcher();
    },
    /** Calls `watcher` whenever a slot falls idle; the result stops it. */
    watchIdle(watcher: () => void) {
      watchers.add(watcher);
      return () => void watchers.delete(watcher);
    },
  };
}

export type LaneBudget = ReturnType<typeof laneBudget>;
