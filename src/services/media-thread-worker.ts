// Runs in a media thread (media-thread.ts): a photo's renditions and metadata, from its file.
import { parentPort, workerData } from 'node:worker_threads';
import { readExif } from './exif.ts';
import { renderImage } from './media.ts';
import { niceThisThread } from './media-priority.ts';
import type { MediaReply, MediaRequest } from './media-thread.ts';

niceThisThread((workerData as { nice: number }).nice);

const running = new Map<number, AbortController>();

parentPort!.on('message', async (m: MediaRequest) => {
  if (m.type === 'abort') return running.get(m.id)?.abort();
  const controller = new AbortController();
  running.set(m.id, controller);
  let reply: MediaReply;
  try {
    const { exif, ...rendered } = await renderImage(m.file, { ...m.options, signal: controller.signal });
    reply = { id: m.id, ok: true, image: { ...rendered, metadata: await readExif(exif) } };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { id: m.id, ok: false, name: e.name, message: e.message };
  } finally {
    running.delete(m.id);
  }
  // An aborted request has no one waiting for it any longer.
  if (!controller.signal.aborted) parentPort!.postMessage(reply);
});
