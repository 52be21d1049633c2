import { afterAll, beforeAll, expect, it } from 'vitest';
import { print } from 'graphql';
import { CreateBatch } from './documents.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import { memoryOf, spawnService, type ServiceProcess } from './helpers/process.ts';

const MiB = 1024 * 1024;

/** A multipart createBatch body produced on the fly: a real PNG followed by `size` bytes. */
function streamingUpload(size: number, png: Uint8Array) {
  const boundary = `----darkroom${Date.now()}`;
  const enc = new TextEncoder();
  const head = enc.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n` +
      JSON.stringify({ query: print(CreateBatch), variables: { files: [null] } }) +
      `\r\n--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.files.0"]}` +
      `\r\n--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="huge.png"\r\nContent-Type: image/png\r\n\r\n`,
  );
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  const chunk = new Uint8Array(MiB);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(head);
      c.enqueue(png);
    },
    pull(c) {
      if (sent >= size) {
        c.enqueue(tail);
        c.close();
        return;
      }
      const n = Math.min(MiB, size - sent);
      sent += n;
      c.enqueue(n === MiB ? chunk : chunk.subarray(0, n));
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

let app: TestApp;
let proc: ServiceProcess;
let base: string;
beforeAll(async () => {
  app = await startTestApp({ mode: 'api' });
  // The API under measurement runs alone in its own process.
  proc = spawnService('api', { ...app.env, PORT: '0', LOG_LEVEL: 'info' });
  const line = await proc.waitFor(/listening on (http:\/\/[^\s"]+)\/graphql/);
  base = /http:\/\/[^\s"/]+/.exec(line)![0];
});
afterAll(async () => {
  await proc?.stop();
  await app?.close();
});

it('streams a 200 MB upload to storage without holding it in memory', async () => {
  const api = client({ graphqlUrl: `${base}/graphql`, wsUrl: `${base.replace('http', 'ws')}/graphql` });
  const { token } = await api.signUp();
  // A complete small PNG, then filler past its end: the header checks at upload pass.
  const header = new Uint8Array(await images.png({}));
  const send = async (size: number) => {
    const { body, contentType } = streamingUpload(size, header);
    const res = await fetch(`${base}/graphql`, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { 'content-type': contentType, authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1' },
    } as RequestInit);
    return (await res.json()) as { data: { createBatch: { __typename: string } } };
  };
  // Warm up with a 32 MiB upload: socket buffers and the young heap grow once to their
  // working size whatever the file size (measured: the same ~60 MB for 50 MiB or 800 MiB).
  // What must not happen is growth with the file, which the 200 MB upload then shows.
  expect((await send(32 * MiB)).data.createBatch.__typename).toBe('CreateBatchSuccess');
  const before = await memoryOf(proc.child.pid!);
  const size = 200 * MiB;
  expect((await send(size)).data.createBatch.__typename).toBe('CreateBatchSuccess');
  const after = await memoryOf(proc.child.pid!);

  const growthMiB = (after.peak - before.rss) / MiB;
  console.log(`200 MB upload: API RSS ${Math.round(before.rss / MiB)} MiB before, peak ${Math.round(after.peak / MiB)} MiB (+${growthMiB.toFixed(1)} MiB)`);
  expect(growthMiB).toBeLessThan(50);
  const row = await app.ctx.db
    .selectFrom('uploads')
    .select(['byteSize', 'originalKey'])
    .where('filename', '=', 'huge.png')
    .orderBy('createdAt', 'desc')
    .executeTakeFirstOrThrow();
  expect(Number(row.byteSize)).toBe(size + header.length);
  const { size: onDisk } = await (await import('node:fs/promises')).stat(app.ctx.storage.resolve(row.originalKey));
  expect(onDisk).toBe(size + header.length);
}, 120_000);
