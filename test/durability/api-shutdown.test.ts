import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import { print } from 'graphql';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { uploadBatch } from '../helpers/batches.ts';
import { client } from '../helpers/client.ts';
import { spawnService } from '../helpers/process.ts';
import { ProgressWithSeq } from './documents.ts';

let app: TestApp;
beforeAll(async () => {
  // This process only prepares data; the API under test runs as its own process.
  app = await startTestApp({ mode: 'api' });
});
afterAll(() => app?.close());

it('on SIGTERM the API closes WebSockets with 1001, stops accepting and exits cleanly', async () => {
  const api = client(app);
  const { token } = await api.signUp();
  const batch = await uploadBatch(api, token, 1);

  const proc = spawnService('api', { ...app.env, PORT: '0', LOG_LEVEL: 'info' });
  const line = await proc.waitFor(/listening on (http:\/\/[^\s"]+)\/graphql/);
  const base = /http:\/\/[^\s"/]+/.exec(line)![0];
  const closed = new Promise<{ code: number; reason: string }>((resolve, reject) => {
    const ws = createClient({
      url: `${base.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${token}` },
      on: { closed: (e) => resolve(e as { code: number; reason: string }) },
    });
    ws.subscribe({ query: print(ProgressWithSeq), variables: { batchId: batch.id } }, { next: () => {}, error: () => {}, complete: () => {} });
    setTimeout(() => reject(new Error('socket never closed')), 20_000);
  });
  // Wait until the subscription is live (its snapshot arrived) before stopping.
  await new Promise((r) => setTimeout(r, 500));
  expect(await proc.stop('SIGTERM')).toBe(0);
  expect(await closed).toMatchObject({ code: 1001 });
  await expect(fetch(`${base}/healthz`)).rejects.toThrow();
});
