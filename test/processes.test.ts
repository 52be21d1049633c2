import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchDetails, BatchProgress } from './documents.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import { spawnService, threadNiceness } from './helpers/process.ts';

describe('API and worker in separate processes', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ mode: 'api' });
  });
  afterAll(() => app?.close());

  it('delivers every event from the worker process to the API process through Redis', async () => {
    const api = client(app);
    const { token } = await api.signUp();
    const created = await api.upload(token, [
      { name: 'one.png', data: await images.png({}) },
      { name: 'two.jpg', data: await images.jpeg({ color: 'blue' }) },
      { name: 'three.webp', data: await images.webp({ color: 'green' }) },
    ]);
    const result = created.data!.createBatch;
    if (result.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
    const sub = api.subscribeWs(BatchProgress, { batchId: result.batch.id }, token);
    await sub.first;

    const worker = spawnService('worker', { ...app.env, LOG_LEVEL: 'info' });
    try {
      const events = await sub.done;
      const batch = (await api.request(BatchDetails, { id: result.batch.id }, token)).data!.batch!;
      expect(batch).toMatchObject({ status: 'COMPLETED', successfulUploads: 3, failedUploads: 0 });
      const items = events.map((e) => e.data!.batchProgress);
      const completed = items.flatMap((i) => (i.__typename === 'FileProgress' && i.stage === 'completed' ? [i.upload.id] : []));
      expect(completed, `events: ${JSON.stringify(items.map((i) => i.__typename === 'FileProgress' ? i.stage : i.batch.status))}\nworker: ${worker.output()}`).toEqual(
        batch.uploads.edges.map((e) => e.node.id),
      );
      const last = items.at(-1)!;
      expect(last.__typename === 'BatchProgress' && last.batch.status).toBe('COMPLETED');

      // The media threads yield the CPU (MEDIA_NICE, 10 by default); the main thread does not.
      const threads = await threadNiceness(worker.child.pid!);
      const media = threads.filter((t) => ['libuv-worker', 'libvips worker', 'media-renderer'].includes(t.name));
      expect(new Set(media.map((t) => t.name)), JSON.stringify(threads)).toEqual(new Set(['libuv-worker', 'libvips worker', 'media-renderer']));
      expect(media.every((t) => t.nice === 10), JSON.stringify(threads)).toBe(true);
      expect(threads.find((t) => t.name === 'node' || t.name === 'node-MainThread')?.nice, JSON.stringify(threads)).toBe(0);
    } finally {
      const code = await worker.stop('SIGTERM');
      expect(code, worker.output()).toBe(0);
    }
  });

  it('refuses to start api or worker mode without REDIS_URL, and says why', async () => {
    for (const mode of ['api', 'worker'] as const) {
      const p = spawnService(mode, { ...app.env, REDIS_URL: undefined, PORT: '0' });
      const code = await p.stop('SIGCONT'); // no-op signal: just wait for it to exit
      expect(code).toBe(1);
      expect(p.output()).toMatch(/REDIS_URL is required/);
    }
  });
});
