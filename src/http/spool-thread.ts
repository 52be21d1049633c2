import { Worker } from 'node:worker_threads';

/**
 * Large uploads are hashed and written by a thread of their own. On the receiving thread, SHA-256
 * alone took a third of a large upload's CPU, and that thread, which also reads the socket and
 * parses the body, was what limited how fast a large upload arrives. Blocks are shared memory, so
 * nothing is copied on the way; the receiving side fills the next block meanwhile. One thread
 * keeps up with a request's receiving thread, and it is one more V8 heap (13 MiB) in the API
 * process, so there is just the one, and only while uploads need it.
 */
export type SpoolRequest =
  /** `shared` comes along the first time this thread is sent `block`; later, its number alone. */
  | { type: 'write'; id: number; file: number; fd: number; block: number; shared?: SharedArrayBuffer; length: number; last: boolean }
  | { type: 'drop'; file: number }
  | { type: 'forget'; block: number };
export type SpoolReply = { id: number; ok: true; sha256?: string } | { id: number; ok: false; message: string; code?: string };

const WORKER_URL = new URL('./spool-thread-worker.js', import.meta.url);
// An idle thread holds a V8 heap: it is ended after a while, and started again when needed.
const IDLE_MS = 30_000;

interface Waiter {
  resolve: (sha256: string | undefined) => void;
  reject: (err: Error) => void;
}
interface Thread {
  worker: Worker;
  waiting: Map<number, Waiter>;
  /** Files whose hash lives in this thread: it must outlive them. */
  open: number;
  /** Blocks this thread holds a reference to. */
  known: Set<number>;
  exited?: Error;
  idleTimer?: NodeJS.Timeout;
}

let thread: Thread | undefined;
let nextId = 0;
let nextFile = 0;

function current(): Thread {
  if (thread) return thread;
  const worker = new Worker(WORKER_URL, { name: 'spool-writer' });
  const t: Thread = { worker, waiting: new Map(), open: 0, known: new Set() };
  worker.on('message', (reply: SpoolReply) => {
    const waiter = t.waiting.get(reply.id);
    if (!waiter) return;
    t.waiting.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.sha256);
    else waiter.reject(Object.assign(new Error(reply.message), { code: reply.code }));
    idleWhenDone(t);
  });
  let failure: Error | undefined;
  worker.on('error', (err) => (failure = err instanceof Error ? err : new Error(String(err))));
  worker.once('exit', () => {
    if (thread === t) thread = undefined;
    clearTimeout(t.idleTimer);
    // A file it was hashing cannot be finished by another thread: its writes fail from now on.
    t.exited = new Error(`The spool thread ended${failure ? `: ${failure.message}` : ''}`);
    for (const waiter of t.waiting.values()) waiter.reject(t.exited);
    t.waiting.clear();
  });
  thread = t;
  return t;
}

function idleWhenDone(t: Thread) {
  if (t.waiting.size > 0 || t.open > 0) return;
  // Waiting for nothing, it must not keep the process alive.
  t.worker.unref();
  clearTimeout(t.idleTimer);
  t.idleTimer = setTimeout(() => {
    if (t.waiting.size > 0 || t.open > 0) return;
    if (thread === t) thread = undefined;
    void t.worker.terminate();
  }, IDLE_MS).unref();
}

function send(t: Thread, message: SpoolRequest & { type: 'write' }): Promise<string | undefined> {
  if (t.exited) return Promise.reject(t.exited);
  t.worker.ref();
  return new Promise((resolve, reject) => {
    t.waiting.set(message.id, { resolve, reject });
    t.worker.postMessage(message);
  });
}

/**
 * A file open at `fd` that the spool thread hashes and writes, block after block, in the order
 * given. A block must stay untouched until its write settles; the caller keeps `fd` open until
 * every write has settled, and calls `end` or `drop` once.
 */
export function spoolToThread(fd: number) {
  const t = current();
  clearTimeout(t.idleTimer);
  t.open++;
  const file = nextFile++;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    t.open--;
    idleWhenDone(t);
  };
  const write = (block: Block, length: number, last: boolean) => {
    const shared = t.known.has(block.index) ? undefined : (t.known.add(block.index), block.data.buffer as SharedArrayBuffer);
    return send(t, { type: 'write', id: nextId++, file, fd, block: block.index, shared, length, last });
  };
  return {
    write: (block: Block, length: number) => write(block, length, false),
    /** The last block (may be empty); resolves with the hex SHA-256 of everything written. */
    async end(block: Block, length: number): Promise<string> {
      try {
        return (await write(block, length, true))!;
      } finally {
        close();
      }
    },
    /** Forgets a file that will not be finished; its writes in flight still settle. */
    drop() {
      if (!t.exited) t.worker.postMessage({ type: 'drop', file } satisfies SpoolRequest);
      close();
    },
  };
}

export type ThreadSpool = ReturnType<typeof spoolToThread>;

/** Shared memory the spool thread reads in place; `index` names it to the thread. */
export interface Block {
  readonly index: number;
  readonly data: Buffer;
}
export const BLOCK_BYTES = 256 * 1024;
// Past this many blocks in use, an upload makes do with one (it waits for its write before it
// fills it again): many uploads at once keep the thread busy among them, and cost little more
// memory than a few.
const SHARED_BLOCKS = 8;
// Blocks kept for the next upload; beyond these they are let go, so the memory a burst took comes back.
const KEEP_BLOCKS = 4;
const spare: Block[] = [];
let inUse = 0;
let nextBlock = 0;

/** A block; `extra` asks for one beyond the one an upload always gets, granted while few are in use. */
export function takeBlock(extra = false): Block | undefined {
  if (extra && inUse >= SHARED_BLOCKS) return undefined;
  inUse++;
  return spare.pop() ?? { index: nextBlock++, data: Buffer.from(new SharedArrayBuffer(BLOCK_BYTES)) };
}

/** Back to the pool; its last write must have settled. */
export function returnBlock(block: Block) {
  inUse--;
  if (spare.length < KEEP_BLOCKS) return void spare.push(block);
  // The thread holds it as well: it must let go too for the memory to be freed.
  if (thread?.known.delete(block.index)) thread.worker.postMessage({ type: 'forget', block: block.index } satisfies SpoolRequest);
}
