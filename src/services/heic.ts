import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { mediaThreadNice } from './media-priority.ts';

/**
 * HEVC-coded HEIC (every iPhone photo) via libheif compiled to WebAssembly: sharp's prebuilt
 * libvips carries libheif without an HEVC decoder, for patent reasons.
 */
export interface DecodedHeic {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, in the file's own colour space; libheif already applied irot/imir. */
  data: Uint8Array;
}

const WORKER_URL = new URL('./heic-worker.ts', import.meta.url);
// Instantiating the WASM module costs more than most decodes, so threads are kept warm...
const MAX_THREADS = Math.max(1, Math.min(4, availableParallelism() - 1));
// ...but not forever: the WASM heap only grows, up to the largest image it has decoded.
const IDLE_MS = 60_000;

interface Thread {
  worker: Worker;
  idleTimer?: NodeJS.Timeout;
}
const idle: Thread[] = [];
const waiting: ((t: Thread) => void)[] = [];
let threads = 0;

function spawn(): Thread {
  threads++;
  // Named, so that media-priority.ts finds it among the media threads.
  const worker = new Worker(WORKER_URL, { name: 'heic-decoder', workerData: { nice: mediaThreadNice() } });
  const thread: Thread = { worker };
  // A crash while idle must not become an unhandled 'error'; 'exit' does the cleanup.
  worker.on('error', () => {});
  worker.once('exit', () => {
    threads--;
    const i = idle.indexOf(thread);
    if (i >= 0) idle.splice(i, 1);
    // Killed mid-decode (abort) or crashed: whoever waits for a thread gets a fresh one.
    const next = waiting.shift();
    if (next) next(spawn());
  });
  return thread;
}

async function acquire(): Promise<Thread> {
  const t = idle.pop();
  if (t) {
    clearTimeout(t.idleTimer);
    t.worker.ref();
    return t;
  }
  if (threads < MAX_THREADS) return spawn();
  return new Promise((resolve) => waiting.push(resolve));
}

function release(t: Thread) {
  const next = waiting.shift();
  if (next) return next(t);
  // An idle thread must not keep the process alive.
  t.worker.unref();
  t.idleTimer = setTimeout(() => void t.worker.terminate(), IDLE_MS).unref();
  idle.push(t);
}

export async function decodeHeic(file: Buffer, signal?: AbortSignal): Promise<DecodedHeic> {
  signal?.throwIfAborted();
  const thread = await acquire();
  if (signal?.aborted) {
    release(thread);
    throw signal.reason;
  }
  const { worker } = thread;
  return new Promise<DecodedHeic>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void, reusable: boolean) => {
      if (settled) return;
      settled = true;
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      signal?.removeEventListener('abort', onAbort);
      if (reusable) release(thread);
      fn();
    };
    const onMessage = (m: { ok: true; width: number; height: number; data: Uint8Array } | { ok: false; message: string }) =>
      finish(() => (m.ok ? resolve({ width: m.width, height: m.height, data: m.data }) : reject(new Error(m.message))), true);
    const onError = (err: Error) => finish(() => reject(err), false);
    const onExit = () => finish(() => reject(new Error('HEIC decoder thread exited')), false);
    // WASM cannot be interrupted from outside; ending the thread is the only way to stop it.
    const onAbort = () => {
      finish(() => reject(signal!.reason), false);
      void worker.terminate();
    };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    signal?.addEventListener('abort', onAbort, { once: true });
    // A copy is transferred so the caller's Buffer (possibly pooled) stays intact.
    const copy = new Uint8Array(file);
    worker.postMessage(copy, [copy.buffer]);
  });
}
