import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Logger } from '../logger.ts';

// The threads that do the media work, by their names: libuv's pool runs sharp's operations (and
// this process's file I/O), libvips' own pool the pixel work, media-thread.ts drives them for
// photos, and heic.ts decodes HEVC photos.
const MEDIA_THREADS = new Set(['libuv-worker', 'libvips worker', 'media-renderer', 'heic-decoder']);

/**
 * Gives this process's media threads the niceness `nice`, so that on a busy machine the API,
 * PostgreSQL and the worker's own bookkeeping run first and the media work takes the CPU that is
 * left. With both cores decoding, a progress event otherwise waits behind them at the API.
 * Linux only: niceness is per thread there, and the main thread keeps its own. New threads
 * inherit their creator's, but pools grow on demand, so every `intervalMs` it looks again.
 * Returns a function that stops looking.
 */
export function lowerMediaPriority(nice: number, logger: Logger, intervalMs = 1000): () => void {
  if (nice === 0 || process.platform !== 'linux') return () => {};
  threadNice = nice;
  const done = new Set<number>();
  let warned = false;
  const scan = async () => {
    for (const entry of await readdir('/proc/self/task').catch(() => [] as string[])) {
      const tid = Number(entry);
      if (done.has(tid)) continue;
      const name = (await readFile(`/proc/self/task/${entry}/comm`, 'utf8').catch(() => '')).trim();
      if (!MEDIA_THREADS.has(name)) continue;
      try {
        os.setPriority(tid, nice);
        done.add(tid);
      } catch (err) {
        // A thread that ended meanwhile, or a niceness below the current one without privileges.
        if (!warned) logger.warn({ err, nice }, 'could not lower the media threads’ CPU priority');
        warned = true;
      }
    }
  };
  void scan();
  const timer = setInterval(() => void scan(), intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    threadNice = 0;
  };
}

let threadNice = 0;

/**
 * The niceness a media thread should give itself as it starts (the scan above finds it only
 * later): pass it in the thread's workerData, for `niceThisThread`.
 */
export const mediaThreadNice = () => threadNice;

/** On Linux, setpriority(0) applies to the calling thread alone. */
export function niceThisThread(nice: number) {
  if (nice === 0 || process.platform !== 'linux') return;
  try {
    os.setPriority(0, nice);
  } catch {
    // the scan in the creating process tries again, and warns
  }
}
