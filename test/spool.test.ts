/**
 * The spool hands a large file to the spool thread in blocks. A FIFO stands in for the disk (a real
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
import { returnBlock, takeBlock } from '../src/http/spool-thread.ts';
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

it('writes a file of many blocks whole and in order, with its head, tail and hash', async () => {
  // The spool thread hashes and writes each full block while the next fills. The last block holds
  // fewer bytes than the tail the checks read, so that tail spans two blocks.
  const chunk = SCAN_BYTES;
  const data = randomBytes(6 * MEMORY_BYTES + 12_345);
  const { file, read } = slowFile('big');
  const spool = new Spool(file);
  for (let at = 0; at < data.length; at += chunk) await spool.add(data.subarray(at, at + chunk));
  const content = spool.content();
  expect(content.data).toBeNull();
  expect(content.head.equals(data.subarray(0, SCAN_BYTES))).toBe(true);
  expect(content.tail.equals(data.subarray(data.length - SCAN_BYTES))).toBe(true);
  expect(await spool.finish()).toBe(sha256(data));
  expect(sha256(await read)).toBe(sha256(data));

  // The next file reuses the blocks; one that fits a block is written at the end, whole.
  const small = randomBytes(MEMORY_BYTES - 1);
  const again = slowFile('small');
  spool.release();
  const next = new Spool(again.file);
  await next.add(small);
  expect(next.content().data?.equals(small)).toBe(true);
  expect(await next.finish()).toBe(sha256(small));
  expect(sha256(await again.read)).toBe(sha256(small));

  // Chunks of any size (a fetch() body's) are split across blocks; this tail lies in the last one.
  const odd = randomBytes(3 * MEMORY_BYTES + SCAN_BYTES + 7);
  const third = slowFile('odd');
  next.release();
  const last = new Spool(third.file);
  await last.add(odd.subarray(0, 5));
  await last.add(odd.subarray(5, 2 * MEMORY_BYTES + 3));
  await last.add(odd.subarray(2 * MEMORY_BYTES + 3));
  expect(last.content().tail.equals(odd.subarray(odd.length - SCAN_BYTES))).toBe(true);
  expect(await last.finish()).toBe(sha256(odd));
  expect(sha256(await third.read)).toBe(sha256(odd));
});

it('a write that fails fails its file, which can still be discarded, and the next file is written', async () => {
  const readOnly = path.join(dir, 'read-only');
  await writeFile(readOnly, '');
  // Opened for reading only: every write the spool thread makes to it fails (EBADF).
  const broken: TempFile = { path: readOnly, open: () => open(readOnly, 'r'), write: () => Promise.reject(new Error('unused')) };
  const spool = new Spool(broken);
  const data = randomBytes(4 * MEMORY_BYTES);
  const failed = (async () => {
    for (let at = 0; at < data.length; at += SCAN_BYTES) await spool.add(data.subarray(at, at + SCAN_BYTES));
    return spool.finish();
  })();
  await expect(failed).rejects.toMatchObject({ code: 'EBADF' });
  await spool.discard();

  const { file, read } = slowFile('after-failure');
  spool.release();
  const next = new Spool(file);
  const more = randomBytes(2 * MEMORY_BYTES + 1);
  await next.add(more);
  expect(await next.finish()).toBe(sha256(more));
  expect(sha256(await read)).toBe(sha256(more));
});

it('with one block each (many uploads at once), a file still arrives whole, with its true tail', async () => {
  // Other uploads hold the blocks an upload may share: this one refills its only block.
  const held = Array.from({ length: 16 }, () => takeBlock()!);
  try {
    const data = randomBytes(3 * MEMORY_BYTES + 1000); // the tail spans the last two blocks
    const { file, read } = slowFile('crowded');
    const spool = new Spool(file);
    for (let at = 0; at < data.length; at += SCAN_BYTES) await spool.add(data.subarray(at, at + SCAN_BYTES));
    const content = spool.content();
    expect(content.head.equals(data.subarray(0, SCAN_BYTES))).toBe(true);
    expect(content.tail.equals(data.subarray(data.length - SCAN_BYTES))).toBe(true);
    expect(await spool.finish()).toBe(sha256(data));
    expect(sha256(await read)).toBe(sha256(data));
    spool.release();
  } finally {
    for (const block of held) returnBlock(block);
  }
});
