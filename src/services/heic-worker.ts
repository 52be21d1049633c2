// Runs in a worker thread: libheif's WASM decoder is synchronous and would stall the event loop.
import { parentPort, workerData } from 'node:worker_threads';
import decode from 'heic-decode';
import { niceThisThread } from './media-priority.ts';

niceThisThread((workerData as { nice: number }).nice);

parentPort!.on('message', async (buffer: Uint8Array) => {
  try {
    const image = await decode({ buffer });
    const data = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
    parentPort!.postMessage({ ok: true, width: image.width, height: image.height, data }, [data.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort!.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) });
  }
});
