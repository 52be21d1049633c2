import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import sharp from 'sharp';

function git(...args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** What a figure was measured on: without this a table of numbers means little. */
export function describeMachine() {
  const cpus = os.cpus();
  const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
  return {
    cores: os.availableParallelism(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    libvips: sharp.versions.vips ?? 'unknown',
    sharpConcurrency: sharp.concurrency(),
    commit: `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty ? ' (+ uncommitted changes)' : ''}`,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

/** CPU time (user + system) a process has used so far, in ms; Linux /proc. */
export async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(safeGetconf('CLK_TCK')) || 100;
function safeGetconf(name: string) {
  try {
    return execFileSync('getconf', [name], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** Resident and peak resident memory of a process in bytes. */
export async function memoryOf(pid: number) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/**
 * Follows a process's resident memory while `fn` runs and returns the peak seen. The kernel's
 * own high-water mark is reset first when allowed (clear_refs), so short spikes between
 * samples are not missed either.
 */
export async function peakRssDuring<T>(pid: number, fn: () => Promise<T>) {
  const hwmReset = await writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
  const before = await memoryOf(pid);
  let sampled = before.rss;
  const timer = setInterval(() => {
    memoryOf(pid).then((m) => (sampled = Math.max(sampled, m.rss)), () => {});
  }, 20);
  try {
    const value = await fn();
    const after = await memoryOf(pid);
    const peak = Math.max(sampled, after.rss, hwmReset ? after.peak : 0);
    return { value, before: before.rss, peak, growth: peak - before.rss, exactPeak: hwmReset };
  } finally {
    clearInterval(timer);
  }
}


/**
 * CPU time used by named processes between start() and the returned stop(); `more` adds
 * processes found only at the end (e.g. database backends opened meanwhile, counted from zero).
 */
export async function cpuMeter(pids: Record<string, number | (() => Promise<number[]>)>) {
  const resolve = async (p: number | (() => Promise<number[]>)) => (typeof p === 'number' ? [p] : await p());
  const read = async (list: number[]) => {
    const m = new Map<number, number>();
    for (const pid of list) {
      const v = await cpuMsOf(pid).catch(() => NaN);
      if (Number.isFinite(v)) m.set(pid, v);
    }
    return m;
  };
  const start = new Map<string, Map<number, number>>();
  for (const [label, p] of Object.entries(pids)) start.set(label, await read(await resolve(p)));
  return async function stop(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [label, p] of Object.entries(pids)) {
      const end = await read(await resolve(p));
      const before = start.get(label)!;
      let total = 0;
      for (const [pid, v] of end) total += v - (before.get(pid) ?? 0);
      out[label] = total;
    }
    return out;
  };
}

/**
 * A process beside this one that keeps `share` of one core busy, in slices of 2 ms, walking
 * 32 MiB of memory a cache line at a time as real work touches memory. Next to the bare loop
 * it stands for the CPU the service spends outside the media work (the API, PostgreSQL, the
 * client, the worker's bookkeeping), as if that work were free of any coordination, so the
 * bench can tell what that CPU costs the media work on this machine from what the service's
 * structure costs beyond it. Returns a function that ends it.
 */
export async function cpuLoad(share: number): Promise<() => Promise<void>> {
  // It ends itself when orphaned (its parent id changes), so a killed bench leaves nothing behind.
  const code = `
    const a = new Float64Array(4 << 20), parent = process.ppid, pause = new Int32Array(new SharedArrayBuffer(4));
    for (let j = 0; ; ) {
      const t0 = performance.now();
      while (performance.now() - t0 < ${2 * share}) for (let k = 0; k < 4096; k += 8, j += 8) a[j % a.length]++;
      Atomics.wait(pause, 0, 0, ${2 * (1 - share)});
      if (process.ppid !== parent) process.exit();
    }`;
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await once(child, 'spawn');
  return async () => {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
}
