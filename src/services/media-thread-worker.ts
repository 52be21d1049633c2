// Runs in a media thread (media-thread.ts): a photo's renditions and metadata, from its file.
import { parentPort, workerData } from 'node:worker_threads';
import { readExif } from './exif.ts';
import { renderImage } from './media.ts';
import { niceThisThread } from './media-priority.ts';
import type { MediaReply, MediaRequest } from './media-thread.ts';

niceThisThread((workerData as { nice: number }).nice);

const running = new Map<number, AbortController>();
/** The last render of each chain: a chain's renders run one after another, in the order sent. */
const chains = new Map<string, Promise<unknown>>();

parentPort!.on('message', async (m: MediaRequest) => {
  if (m.type === 'abort') return running.get(m.id)?.abort();
  const controller = new AbortController();
  running.set(m.id, controller);
  let reply: MediaReply;
  const before = m.chain ? chains.get(m.chain) : undefined;
  const { promise: done, resolve: finished } = Promise.withResolvers<void>();
  if (m.chain) chains.set(m.chain, done);
  try {
    await before; // given up while it waited, it never starts: renderImage refuses an aborted signal
    const { exif, ...rendered } = await renderImage(m.file, { ...m.options, signal: controller.signal });
    reply = { id: m.id, ok: true, image: { ...rendered, metadata: await readExif(exif) } };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { id: m.id, ok: false, name: e.name, message: e.message };
  } finally {
    running.delete(m.id);
    finished();
    if (m.chain && chains.get(m.chain) === done) chains.delete(m.chain);
  }
  // An aborted request has no one waiting for it any longer.
  if (!controller.signal.aborted) parentPort!.postMessage(reply);
});
