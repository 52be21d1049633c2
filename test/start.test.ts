import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it } from 'vitest';
import { BatchDetails } from './documents.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import { spawnService, type ServiceProcess } from './helpers/process.ts';

let proc: ServiceProcess | undefined;
let dir: string | undefined;
afterAll(async () => {
  await proc?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('`npm start` with nothing configured runs embedded PostgreSQL, serves GraphiQL and processes a batch', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'darkroom-start-'));
  await chmod(dir, 0o755); // as root, PostgreSQL runs as its own user and must reach the data
  // No DATABASE_URL, no REDIS_URL: exactly a fresh checkout's defaults, in a scratch DATA_DIR.
  proc = spawnService('all', { DATA_DIR: path.join(dir, 'data'), PORT: '0', LOG_LEVEL: 'info' });
  const line = await proc.waitFor(/listening on (http:\/\/[^\s"]+)\/graphql/, 120_000);
  const base = /http:\/\/[^\s"/]+/.exec(line)![0];
  expect(proc.output()).toMatch(/embedded PostgreSQL started/);

  const page = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toMatch(/graphiql/i);
  expect(html).toMatch(/"subscriptionsProtocol":"WS"/);

  const api = client({ graphqlUrl: `${base}/graphql`, wsUrl: `${base.replace('http', 'ws')}/graphql` });
  const { token } = await api.signUp();
  const created = await api.upload(token, [{ name: 'hello.png', data: await images.png({}) }]);
  const result = created.data!.createBatch;
  if (result.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
  for (let i = 0; i < 200; i++) {
    const b = (await api.request(BatchDetails, { id: result.batch.id }, token)).data!.batch!;
    if (b.status === 'COMPLETED') {
      expect(b).toMatchObject({ successfulUploads: 1, failedUploads: 0 });
      expect(b.uploads.edges[0]!.node.thumbnailUrl).toMatch(/^http/);
      break;
    }
    expect(i).toBeLessThan(199);
    await sleep(100);
  }
  expect(await proc.stop('SIGTERM')).toBe(0);
  proc = undefined;
}, 180_000);
