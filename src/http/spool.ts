import type { FileHandle } from 'node:fs/promises';
import type { TempFile } from '../services/storage.ts';
import { SCAN_BYTES } from './inspect.ts';

/**
 * Up to this much of a file is held in memory before any of it is written. Each write, and each
 * read back for the checks, is a thread-pool round trip that cost more than the bytes themselves:
 * a photo that fits is written once and checked from memory. Larger files are written in pieces
 * of about this size. Every upload streaming at once holds this much, so it stays small. The file
 * is created only when its first piece must go out, or with all of it at the end.
 */
export const MEMORY_BYTES = 256 * 1024;

export interface Spooled {
  /** The whole file when it never left memory; otherwise read it from disk. */
  data: Buffer | null;
  /** The first and last SCAN_BYTES of the file; one buffer when the file is no longer than that. */
  head: Buffer;
  tail: Buffer;
}

/** Collects one received file into a buffer reused across a request's files, written out in large writes. */
export class Spool {
  buffer: Buffer;
  #file: TempFile;
  #handle: FileHandle | null = null;
  #len = 0;
  /** The start of `buffer` already on disk, kept there as the file's tail so far. */
  #carried = 0;
  #head: Buffer | null = null;

  constructor(file: TempFile, buffer?: Buffer) {
    this.#file = file;
    this.buffer = buffer ?? Buffer.allocUnsafe(MEMORY_BYTES);
  }

  async add(chunk: Buffer): Promise<void> {
    // Only once the head is complete, so it can be kept from the first write.
    if (this.#len + chunk.length > MEMORY_BYTES && this.#len >= SCAN_BYTES) await this.#flush();
    if (this.#len + chunk.length > this.buffer.length) {
      // Rare: socket-sized chunks fit, but a fetch() body can deliver chunks of any size.
      const grown = Buffer.allocUnsafe(this.#len + chunk.length);
      this.buffer.copy(grown, 0, 0, this.#len);
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.#len);
    this.#len += chunk.length;
  }

  /** What the checks read; its bytes stay valid until the buffer is handed to the next file. */
  content(): Spooled {
    const end = this.buffer.subarray(0, this.#len);
    if (this.#head) return { data: null, head: this.#head, tail: end.subarray(this.#len - SCAN_BYTES) };
    const head = end.subarray(0, SCAN_BYTES);
    return { data: end, head, tail: this.#len > SCAN_BYTES ? end.subarray(this.#len - SCAN_BYTES) : head };
  }

  /** Writes the rest and closes the file. */
  async finish(): Promise<void> {
    if (!this.#handle) return this.#file.write(this.buffer.subarray(0, this.#len));
    if (this.#len > this.#carried) await writeAll(this.#handle, this.buffer.subarray(this.#carried, this.#len));
    await this.#handle.close();
  }

  /** Closes the file, if it was created, without writing what is left (the caller removes it). */
  async discard(): Promise<void> {
    this.#len = this.#carried = 0;
    await this.#handle?.close().catch(() => {});
  }

  async #flush() {
    this.#handle ??= await this.#file.open();
    await writeAll(this.#handle, this.buffer.subarray(this.#carried, this.#len));
    this.#head ??= Buffer.from(this.buffer.subarray(0, SCAN_BYTES));
    this.buffer.copyWithin(0, this.#len - SCAN_BYTES, this.#len);
    this.#len = this.#carried = SCAN_BYTES;
  }
}

async function writeAll(handle: FileHandle, buf: Buffer) {
  for (let done = 0; done < buf.length; ) done += (await handle.write(buf, done, buf.length - done)).bytesWritten;
}
