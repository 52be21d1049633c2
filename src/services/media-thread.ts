import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CaptureMetadata } from './exif.ts';
import { type ImageResult, MediaError, type RenderOptions } from './media.ts';
import { mediaThreadNice } from './media-priority.ts';
import { removeFiles } from './storage.ts';

/**
 * A photo's media work (renderImage, then readExif) in a thread of its own. sharp hands every
 * decode to JavaScript as a preview-sized pixel buffer (about 4.5 MB): external memory, which
 * sets off a full garbage collection every dozen photos. In the worker's main thread each of
 * those marks the whole heap of the queue, the database and Redis clients, and stalls the
 * bookkeeping; a media thread's heap is a few megabytes, and only the encoded renditions (a
 * few hundred kilobytes) come back.
 */
export interface RenderedImage extends Omit<ImageResult, 'exif'> {
  metadata: CaptureMetadata;
}

/** A rendition the media thread wrote to a file of its own (see renderImageToFiles). */
export interface WrittenRendition {
  file: string;
  width: number;
  height: number;
}
export interface WrittenImage extends Omit<RenderedImage, 'preview' | 'thumbnail'> {
  preview: WrittenRendition & { format: RenderedImage['preview']['format'] };
  thumbnail: WrittenRendition;
}
/** Where the media thread writes the renditions instead of sending them back. */
export interface WriteTo {
  preview: string;
  thumbnail: string;
}

type Options = Pick<RenderOptions, 'modelImage' | 'maxPixels' | 'timeoutSeconds'>;
/** Renders of one `chain` run one after another in the thread, so a next one can be sent ahead. */
export type MediaRequest =
  | { type: 'render'; id: number; file: string; options: Options; chain?: string; writeTo?: WriteTo }
  | { type: 'abort'; id: number };
export type MediaReply =
  | { id: number; ok: true; image: RenderedImage | WrittenImage }
  | { id: number; ok: false; name: string; message: string };

const WORKER_URL = new URL('./media-thread-worker.ts', import.meta.url);
// One thread's JavaScript keeps up with about four cores' decoding.
const MAX_THREADS = Math.max(1, Math.ceil(availableParallelism() / 4));
// An idle thread is ended after a while: it holds a V8 heap and its own copy of the modules.
const IDLE_MS = 60_000;

interface Waiter {
  resolve: (image: RenderedImage | WrittenImage) => void;
  reject: (err: Error) => void;
}
interface Thread {
  worker: Worker;
  waiting: Map<number, Waiter>;
  idleTimer?: NodeJS.Timeout;
}
const threads: Thread[] = [];
let nextId = 0;

function spawn(): Thread {
  // Named, so that media-priority.ts finds it among the media threads.
  const worker = new Worker(WORKER_URL, { name: 'media-renderer', workerData: { nice: mediaThreadNice() } });
  const thread: Thread = { worker, waiting: new Map() };
  worker.on('message', (reply: MediaReply) => {
    const waiter = thread.waiting.get(reply.id);
    if (!waiter) {
      // Given up on while its files were written: no one will move them into place.
      if (reply.ok) void removeWritten(reply.image);
      return;
    }
    settle(thread, reply.id);
    if (reply.ok) waiter.resolve(fromThread(reply.image));
    else waiter.reject(reply.name === 'MediaError' ? new MediaError(reply.message) : new Error(reply.message));
  });
  // 'exit' follows an 'error' and does the cleanup; the error itself is what callers are told.
  let failure: Error | undefined;
  worker.on('error', (err) => (failure = err instanceof Error ? err : new Error(String(err))));
  worker.once('exit', () => {
    retire(thread);
    clearTimeout(thread.idleTimer);
    const err = new Error(`The media thread ended${failure ? `: ${failure.message}` : ''}`);
    for (const waiter of thread.waiting.values()) waiter.reject(err);
    thread.waiting.clear();
  });
  threads.push(thread);
  return thread;
}

/** Where each chain's last render went: the chain's next one must go to the same thread. */
const chained = new Map<string, Thread>();

/** The thread with the least work, or a new one while there are fewer than MAX_THREADS. */
function pick(chain: string | undefined): Thread {
  const same = chain ? chained.get(chain) : undefined;
  if (same && threads.includes(same) && same.waiting.size > 0) return same;
  const thread = leastBusy();
  if (chain) chained.set(chain, thread);
  return thread;
}

function leastBusy(): Thread {
  const least = threads.reduce<Thread | undefined>((a, t) => (!a || t.waiting.size < a.waiting.size ? t : a), undefined);
  return least && (least.waiting.size === 0 || threads.length >= MAX_THREADS) ? least : spawn();
}

function settle(thread: Thread, id: number) {
  thread.waiting.delete(id);
  if (thread.waiting.size > 0) return;
  for (const [chain, t] of chained) if (t === thread) chained.delete(chain);
  // An idle thread must not keep the process alive.
  thread.worker.unref();
  thread.idleTimer = setTimeout(() => {
    // Out of the pool first: a photo must not be sent to a thread that is ending.
    retire(thread);
    void thread.worker.terminate();
  }, IDLE_MS).unref();
}

function retire(thread: Thread) {
  const i = threads.indexOf(thread);
  if (i >= 0) threads.splice(i, 1);
}

/** Structured cloning turns Buffers into plain Uint8Arrays; callers expect Buffers. */
function fromThread<T extends RenderedImage | WrittenImage>(image: T): T {
  const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  const data = (r: T['preview'] | T['thumbnail']) => ('data' in r ? { ...r, data: buf(r.data) } : r);
  return {
    ...image,
    preview: data(image.preview),
    thumbnail: data(image.thumbnail),
    ...(image.modelImage ? { modelImage: buf(image.modelImage) } : {}),
  };
}

const removeWritten = (image: RenderedImage | WrittenImage) =>
  removeFiles(...[image.preview, image.thumbnail].flatMap((r) => ('file' in r ? [r.file] : []))).catch(() => {});

/**
 * renderImage and readExif of `file`, in a media thread. Aborting stops waiting at once and
 * tells the thread, which stops what can be stopped (a HEIC decode); sharp's own operations
 * cannot be, and finish unobserved, as they would in this thread.
 */
export function renderImageInThread(file: string, opts: RenderOptions & { chain?: string } = {}): Promise<RenderedImage> {
  return render<RenderedImage>(file, opts);
}

/**
 * renderImageInThread, with the thread writing the preview and the thumbnail to the files
 * `writeTo` names instead of sending them back: a photo's renditions, a few hundred kilobytes,
 * were copied out of the thread and again into the worker's main thread, which then only wrote
 * them to disk (the worker spent 0.8–1.0 ms less CPU per photo without those copies and writes,
 * in figure 2b's setup). The files are the caller's once it resolves; given up on (aborted),
 * they are removed.
 */
export function renderImageToFiles(file: string, writeTo: WriteTo, opts: RenderOptions & { chain?: string } = {}): Promise<WrittenImage> {
  return render<WrittenImage>(file, { ...opts, writeTo });
}

function render<T extends RenderedImage | WrittenImage>(
  file: string,
  { signal, chain, writeTo, ...options }: RenderOptions & { chain?: string; writeTo?: WriteTo },
): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const thread = pick(chain);
  const id = nextId++;
  clearTimeout(thread.idleTimer);
  thread.worker.ref();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      settle(thread, id);
      thread.worker.postMessage({ type: 'abort', id } satisfies MediaRequest);
      reject(signal!.reason);
    };
    const done = () => signal?.removeEventListener('abort', onAbort);
    thread.waiting.set(id, {
      resolve: (image) => (done(), resolve(image as T)),
      reject: (err) => (done(), reject(err)),
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    thread.worker.postMessage({ type: 'render', id, file, options, chain, writeTo } satisfies MediaRequest);
  });
}

/**
 * Ends the media threads at once; whatever they were doing fails, as it would if one crashed.
 * The next render starts a new one. Idle threads end by themselves, so a worker needs not.
 */
export async function stopMediaThreads(): Promise<void> {
  const ending = threads.splice(0);
  await Promise.all(ending.map((t) => t.worker.terminate()));
}
