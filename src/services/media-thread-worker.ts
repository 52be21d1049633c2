// Runs in a media thread (media-thread.ts): a photo's renditions and metadata, from its file.
import { parentPort, workerData } from 'node:worker_threads';
import { readExif } from './exif.ts';
import { type Rendition, renderImage } from './media.ts';
import { niceThisThread } from './media-priority.ts';
import type { MediaReply, MediaRequest, WriteTo } from './media-thread.ts';
import { removeFiles, writeNewFile } from './storage.ts';

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
    // The chain's next photo may start while this one's files are written.
    finished();
    const metadata = await readExif(exif);
    reply = { id: m.id, ok: true, image: m.writeTo ? { ...rendered, ...(await write(rendered, m.writeTo)), metadata } : { ...rendered, metadata } };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { id: m.id, ok: false, name: e.name, message: e.message };
  } finally {
    running.delete(m.id);
    finished();
    if (m.chain && chains.get(m.chain) === done) chains.delete(m.chain);
  }
  // An aborted request has no one waiting for it any longer, nor for its files.
  if (!controller.signal.aborted) parentPort!.postMessage(reply);
  else if (m.writeTo) await removeAll(m.writeTo);
});

async function write(r: { preview: Rendition & { format: 'jpeg' | 'webp' }; thumbnail: Rendition }, to: WriteTo) {
  try {
    await Promise.all([writeNewFile(to.preview, r.preview.data), writeNewFile(to.thumbnail, r.thumbnail.data)]);
  } catch (err) {
    await removeAll(to);
    throw err;
  }
  const { data: _p, ...preview } = r.preview;
  const { data: _t, ...thumbnail } = r.thumbnail;
  return { preview: { ...preview, file: to.preview }, thumbnail: { ...thumbnail, file: to.thumbnail } };
}

const removeAll = (to: WriteTo) => removeFiles(to.preview, to.thumbnail).catch(() => {});
