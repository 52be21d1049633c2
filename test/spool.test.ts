/**
 * The spool writes a large file in pieces of its buffer. A FIFO stands in for the disk (a real
 * file whose reader, this test, sets the pace), so every write waits on a slow disk: the bytes
 * must still arrive whole and in order, and the checks must see the file's true head and tail.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SCAN_BYTES } from '../src/http/inspect.ts';
import { MEMORY_BYTES, Spool } from '../src/http/spool.ts';
import type { TempFile } from '../src/services/storage.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'darkroom-spool-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A FIFO as the incoming file, and everything read from it, slowly. */
function slowFile(name: string) {
  const fifo = path.join(dir, name);
  execFileSync('mkfifo', [fifo]);
  const file: TempFile = { path: fifo, open: () => open(fifo, 'w'), write: (data) => writeFile(fifo, data) };
  const read = (async () => {
    const parts: Buffer[] = [];
    for await (const chunk of createReadStream(fifo, { highWaterMark: 16 * 1024 })) {
      parts.push(chunk as Buffer);
      await sleep(1); // slower than the spool fills: its writes wait on this reader
    }
    return Buffer.concat(parts);
  })();
  return { file, read };
}

it('writes a file of many pieces whole and in order, with its head and tail kept for the checks', async () => {
  // Pieces of 64 KiB chunks: four fill the buffer, then three more after the carried tail each;
  // the last piece has fewer new bytes than the tail the checks read, so that tail spans two pieces.
  const chunk = MEMORY_BYTES / 4; // SCAN_BYTES, the tail the checks keep, is one chunk
  const data = randomBytes((4 + 3 * 6) * chunk + 12_345);
  const { file, read } = slowFile('big');
  const spool = new Spool(file);
  for (let at = 0; at < data.length; at += chunk) await spool.add(data.subarray(at, at + chunk));
  const content = spool.content();
  expect(content.data).toBeNull();
  expect(content.head.equals(data.subarray(0, SCAN_BYTES))).toBe(true);
  expect(content.tail.equals(data.subarray(data.length - SCAN_BYTES))).toBe(true);
  await spool.finish();
  expect(sha256(await read)).toBe(sha256(data));

  // The next file of the request reuses the buffer; one that fits it is written at the end, whole.
  const small = randomBytes(MEMORY_BYTES - 1);
  const again = slowFile('small');
  const next = new Spool(again.file, spool.buffer);
  await next.add(small);
  expect(next.content().data?.equals(small)).toBe(true);
  await next.finish();
  expect(sha256(await again.read)).toBe(sha256(small));
});
