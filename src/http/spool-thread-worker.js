// @ts-check
// Runs in the spool thread (spool-thread.ts): hashes and writes the blocks of large uploads.
// Plain JavaScript, type-checked from its JSDoc: a thread that loads a .ts file also loads Node's
// TypeScript stripper, which doubled the thread's memory (26 MiB against 13).
/** @import { SpoolReply, SpoolRequest } from './spool-thread.ts' */
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

/** Files being written, by the id the receiving side gave them; a failed one keeps its error. @type {Map<number, import('node:crypto').Hash | Error>} */
const files = new Map();
/** The shared blocks, by number, as the receiving side sent them. @type {Map<number, Buffer>} */
const blocks = new Map();
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

// Writes are synchronous: handing them to the thread pool instead, to overlap the next block's
// hash, was slower (766 against 915 MiB/s for figure 5's batch): two cores have no room for the
// extra hand-offs.
port.on('message', (/** @type {SpoolRequest} */ m) => {
  if (m.type === 'drop') return void files.delete(m.file);
  if (m.type === 'forget') return void blocks.delete(m.block);
  if (m.shared) blocks.set(m.block, Buffer.from(m.shared));
  /** @type {SpoolReply} */
  let reply;
  try {
    let state = files.get(m.file);
    if (state instanceof Error) throw state;
    if (!state) files.set(m.file, (state = createHash('sha256')));
    const block = /** @type {Buffer} */ (blocks.get(m.block)).subarray(0, m.length);
    state.update(block);
    // Without a position, each write goes on where the last ended: this thread alone writes the file.
    for (let done = 0; done < block.length; ) done += writeSync(m.fd, block, done, block.length - done);
    if (m.last) files.delete(m.file);
    reply = { id: m.id, ok: true, sha256: m.last ? state.digest('hex') : undefined };
  } catch (err) {
    const e = /** @type {NodeJS.ErrnoException} */ (err instanceof Error ? err : new Error(String(err)));
    // The rest of the file is refused too, until it is dropped (or ends).
    if (m.last) files.delete(m.file);
    else files.set(m.file, e);
    reply = { id: m.id, ok: false, message: e.message, code: e.code };
  }
  port.postMessage(reply);
});
