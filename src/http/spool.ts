import { hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { TempFile } from '../services/storage.ts';
import { SCAN_BYTES } from './inspect.ts';
import { BLOCK_BYTES, type Block, returnBlock, spoolToThread, takeBlock, type ThreadSpool } from './spool-thread.ts';

/**
 * Up to this much of a file is held in memory before any of it is written. Each write, and each
 * read back for the checks, is a thread-pool round trip that cost more than the bytes themselves:
 * a photo that fits is written once and checked from memory. Larger files go to the spool thread
 * in blocks of this size, which hashes and writes each while the next one fills. Every upload
 * streaming at once holds up to BLOCKS of them, so they stay small. The file is created only
 * when its first block must go out, or with all of it at the end.
 */
export const MEMORY_BYTES = BLOCK_BYTES;
// One block fills while the others are hashed and written: enough to ride out either side's
// jitter (figure 5's batch: 2 blocks 900, 3 910, 4 970 MiB/s). Many uploads at once keep the
// thread busy among them, and make do with fewer (spool-thread.ts).
const BLOCKS = 4;

export interface Spooled {
  /** The whole file when it never left memory; otherwise read it from disk. */
  data: Buffer | null;
  /** The first and last SCAN_BYTES of the file; one buffer when the file is no longer than that. */
  head: Buffer;
  tail: Buffer;
}

/**
 * Collects one received file in memory, or hands it to the spool thread block by block. Its
 * blocks come from a pool shared by every upload: release() them once nothing reads content().
 */
export class Spool {
  #file: TempFile;
  #current = takeBlock()!;
  #len = 0;
  #handle: FileHandle | null = null;
  #thread: ThreadSpool | null = null;
  /** Blocks handed to the thread, oldest first, until their write settles. */
  #inFlight: { block: Block; written: Promise<unknown> }[] = [];
  /** Blocks whose write has settled. */
  #spare: Block[] = [];
  #previous: Block | null = null;
  #head: Buffer | null = null;
  #finishing: Promise<string> | null = null;
  #released = false;

  constructor(file: TempFile) {
    this.#file = file;
  }

  async add(chunk: Buffer): Promise<void> {
    for (let from = 0; from < chunk.length; ) {
      if (this.#len === BLOCK_BYTES) await this.#handOff();
      const n = chunk.copy(this.#current.data, this.#len, from);
      this.#len += n;
      from += n;
    }
  }

  /** What the checks read; its bytes stay valid until release(). */
  content(): Spooled {
    const end = this.#current.data.subarray(0, this.#len);
    if (!this.#head) {
      const head = end.subarray(0, SCAN_BYTES);
      return { data: end, head, tail: this.#len > SCAN_BYTES ? end.subarray(this.#len - SCAN_BYTES) : head };
    }
    // The last block holds at least a byte; the one before it is full and stays untouched now.
    // (With one block, that is this block itself: fewer than SCAN_BYTES new bytes at its start
    // leave its end as the previous fill wrote it.)
    const tail =
      this.#len >= SCAN_BYTES
        ? end.subarray(this.#len - SCAN_BYTES)
        : Buffer.concat([this.#previous!.data.subarray(BLOCK_BYTES - (SCAN_BYTES - this.#len)), end]);
    return { data: null, head: this.#head, tail };
  }

  /** Writes the rest and closes the file; resolves with the hex SHA-256 of the whole file. */
  finish(): Promise<string> {
    return (this.#finishing ??= this.#finish());
  }

  /** Stops where it is and closes the file, if it was created (the caller removes it). */
  async discard(): Promise<void> {
    this.#len = 0;
    if (this.#finishing) return void (await this.#finishing.catch(() => {}));
    // The thread may still be writing to the descriptor: it is closed only once it no longer is.
    await this.#settle().catch(() => {});
    this.#thread?.drop();
    await this.#handle?.close().catch(() => {});
  }

  /** Gives the blocks back to the pool; only once finish() or discard() has settled. */
  release() {
    if (this.#released) return; // twice would hand one block to two uploads
    this.#released = true;
    for (const block of [...this.#spare, this.#current]) returnBlock(block);
  }

  async #finish(): Promise<string> {
    const data = this.#current.data.subarray(0, this.#len);
    if (!this.#thread) {
      const sha256 = hash('sha256', data);
      await this.#file.write(data);
      return sha256;
    }
    const ending = this.#thread.end(this.#current, this.#len);
    try {
      await this.#settle();
      return await ending;
    } finally {
      await ending.catch(() => {}); // its write too must be over before the descriptor closes
      await this.#handle!.close();
    }
  }

  async #handOff() {
    if (!this.#thread) {
      this.#handle = await this.#file.open();
      this.#thread = spoolToThread(this.#handle.fd);
      this.#head = Buffer.from(this.#current.data.subarray(0, SCAN_BYTES));
    }
    const block = this.#current;
    const written = this.#thread.write(block, this.#len);
    written.catch(() => {}); // awaited when its block is needed again, or at the end
    this.#inFlight.push({ block, written });
    this.#previous = block;
    this.#len = 0;
    const fresh = this.#spare.pop() ?? (this.#inFlight.length < BLOCKS ? takeBlock(true) : undefined);
    if (fresh) this.#current = fresh;
    else {
      // Taken before its write settles (nothing fills it until then), so that a failed write
      // leaves every block in exactly one place.
      const oldest = this.#inFlight.shift()!;
      this.#current = oldest.block;
      await oldest.written;
    }
  }

  /** Waits for every block in flight; rejects with the first write that failed. */
  async #settle() {
    const all = this.#inFlight.splice(0);
    const results = await Promise.allSettled(all.map((f) => f.written));
    this.#spare.push(...all.map((f) => f.block));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
