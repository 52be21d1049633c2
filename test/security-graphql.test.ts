import { sql } from 'kysely';
/**
 * Issue #4 §3, §4, §6 (GraphQL side), §7: GraphQL limits, CSRF and CORS, WebSocket transport
 * limits, production mode. Each `it` names the attack and the answer it must get.
 */
import { encodeGlobalID } from '@pothos/plugin-relay';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { BatchesWithThumbnails } from './documents-security.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import { codesOf, filesUnder, multipartBody, multipartHeaders, postJson, rawSocket, uploadParts } from './helpers/http.ts';
import * as images from './helpers/images.ts';
import { spawnService } from './helpers/process.ts';

let app: TestApp;
let api: ReturnType<typeof client>;
let token: string;
beforeAll(async () => {
  app = await startTestApp({ worker: false });
  api = client(app);
  ({ token } = await api.signUp());
});
afterAll(() => app?.close());

const auth = () => ({ authorization: `Bearer ${token}` });
const fields = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join(' ');
// Batch → uploads → Upload → batch → … : the schema's cycle, `depth` fields deep.
const PATH = ['batches', 'edges', 'node', 'uploads', 'edges', 'node', 'batch', 'uploads', 'edges', 'node', 'batch', 'uploads'];
const nest = (depth: number) => PATH.slice(0, depth - 1).reduceRight((inner, f) => `${f} { ${inner} }`, '__typename').replace(/^/, '{ ') + ' }';

describe('GraphQL limits refuse the document before anything runs', () => {
  it.each([
    ['depth 8 (Batch ↔ Upload cycles)', 'QUERY_TOO_DEEP', nest(8)],
    ['11 aliases', 'TOO_MANY_ALIASES', `{ ${fields(11, (i) => `a${i}: viewer { id }`)} }`],
    ['11 directives', 'TOO_MANY_DIRECTIVES', `{ viewer { ${fields(11, () => 'id @include(if: true)')} } }`],
    ['1001 tokens', 'GRAPHQL_PARSE_FAILED', `{ viewer { ${fields(999, () => 'id')} } }`],
    ['cost 100 × 100 uploads', 'QUERY_TOO_COSTLY', '{ batches(first: 100) { edges { node { uploads(first: 100) { edges { node { id } } } } } } }'],
    ['cost with page sizes in variables', 'QUERY_TOO_COSTLY', 'query ($n: Int) { batches(first: $n) { edges { node { uploads(first: $n) { edges { node { id } } } } } } }'],
    ['fragment fan-out (billion laughs)', 'QUERY_TOO_COSTLY', `{ viewer { ...F13 } } ${fields(13, (i) => `fragment F${i + 1} on User { ...F${i} ...F${i} }`)} fragment F0 on User { id }`],
  ])('%s → %s', async (_attack, code, query) => {
    const r = await postJson(app.graphqlUrl, { query }, auth());
    expect(codesOf(r)).toContain(code);
    expect(r.body.data).toBeUndefined(); // nothing executed
  });

  it('a document just inside the limits runs: the 7-deep gallery read and 10 aliases', async () => {
    const gallery = await api.request(BatchesWithThumbnails, {}, token);
    expect(gallery.errors).toBeUndefined();
    const aliases = await postJson(app.graphqlUrl, { query: `{ ${fields(10, (i) => `a${i}: viewer { id }`)} }` }, auth());
    expect(aliases.body.errors).toBeUndefined();
    expect(Object.keys(aliases.body.data)).toHaveLength(10);
  });

  it('nodes(ids:) with 101 ids → BAD_USER_INPUT, no lookups', async () => {
    const ids = Array.from({ length: 101 }, () => encodeGlobalID('Batch', randomUUID()));
    const r = await postJson(app.graphqlUrl, { query: 'query ($ids: [ID!]!) { nodes(ids: $ids) { id } }', variables: { ids } }, auth());
    expect(codesOf(r)).toEqual(['BAD_USER_INPUT']);
  });

  it('operation batching (a JSON array) → 400 BAD_REQUEST', async () => {
    const r = await postJson(app.graphqlUrl, [{ query: '{ viewer { id } }' }, { query: '{ viewer { id } }' }], auth());
    expect(r.status).toBe(400);
    expect(codesOf(r)).toEqual(['BAD_REQUEST']);
  });

  it('batching through multipart (an operations array) → refused, nothing stored', async () => {
    const ops = JSON.stringify([{ query: 'mutation ($f: [File!]!) { createBatch(files: $f) { __typename } }', variables: { f: [null] } }]);
    const body = multipartBody([
      { name: 'operations', data: ops },
      { name: 'map', data: '{"0":["0.variables.f.0"]}' },
      { name: '0', filename: 'a.png', data: await images.png() },
    ]);
    const res = await fetch(app.graphqlUrl, { method: 'POST', headers: multipartHeaders(token), body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(await filesUnder(app.storageDir)).toEqual([]);
  });

  it('a JSON body over 1 MiB → 413 REQUEST_ENTITY_TOO_LARGE', async () => {
    const r = await postJson(app.graphqlUrl, { query: '{ viewer { id } }', variables: { pad: 'x'.repeat(1024 * 1024) } }, auth());
    expect(r.status).toBe(413);
    expect(codesOf(r)).toEqual(['REQUEST_ENTITY_TOO_LARGE']);
  });

  it('16 KiB of headers → 431, the server keeps answering', async () => {
    const res = await fetch(app.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-pad': 'x'.repeat(17 * 1024) }, body: '{}' });
    expect(res.status).toBe(431);
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});

describe('CSRF: requests a cross-site page can send without a preflight need the header', () => {
  it('multipart upload without x-graphql-yoga-csrf → 403 CSRF_HEADER_REQUIRED, nothing stored, connection closed', async () => {
    const body = multipartBody([...uploadParts('mutation ($files: [File!]!) { createBatch(files: $files) { __typename } }', 1), { name: '0', filename: 'a.png', data: await images.png() }]);
    const { 'x-graphql-yoga-csrf': _, ...headers } = multipartHeaders(token);
    const res = await fetch(app.graphqlUrl, { method: 'POST', headers, body });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).errors[0].extensions.code).toBe('CSRF_HEADER_REQUIRED');
    expect(await filesUnder(app.storageDir)).toEqual([]);
  });

  it.each([
    ['GET', () => fetch(`${app.graphqlUrl}?query=${encodeURIComponent('{ viewer { id } }')}`, { headers: auth() })],
    ['text/plain POST', () => fetch(app.graphqlUrl, { method: 'POST', headers: { ...auth(), 'content-type': 'text/plain' }, body: '{"query":"{ viewer { id } }"}' })],
    ['form POST', () => fetch(app.graphqlUrl, { method: 'POST', headers: auth(), body: new URLSearchParams({ query: '{ viewer { id } }' }) })],
  ])('%s without the header → 403', async (_, send) => {
    const res = await send();
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).errors[0].extensions.code).toBe('CSRF_HEADER_REQUIRED');
  });

  it('GET with the header and JSON POST without it are served', async () => {
    const get = await fetch(`${app.graphqlUrl}?query=${encodeURIComponent('{ viewer { id } }')}`, { headers: { ...auth(), 'x-graphql-yoga-csrf': '1' } });
    expect(((await get.json()) as any).data.viewer.id).toBeTruthy();
    const post = await postJson(app.graphqlUrl, { query: '{ viewer { id } }' }, auth());
    expect(post.body.data.viewer.id).toBeTruthy();
  });
});

describe('CORS origins are configurable, and nothing is cross-origin by default', () => {
  let cors: TestApp;
  beforeAll(async () => {
    cors = await startTestApp({ worker: false, env: { CORS_ORIGINS: 'https://app.example' } });
  });
  afterAll(() => cors?.close());

  const preflight = (url: string, origin: string) =>
    fetch(url, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,x-graphql-yoga-csrf' },
    });

  it('a listed origin gets a preflight allowing the auth and CSRF headers', async () => {
    const res = await preflight(cors.graphqlUrl, 'https://app.example');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/x-graphql-yoga-csrf/);
  });

  it('any other origin, or any origin when none is configured, gets no CORS grant', async () => {
    for (const [url, origin] of [
      [cors.graphqlUrl, 'https://evil.example'],
      [app.graphqlUrl, 'https://app.example'],
    ] as const) {
      const res = await preflight(url, origin);
      expect(res.headers.get('access-control-allow-origin')).not.toBe(origin);
      expect(res.headers.get('access-control-allow-origin')).not.toBe('*');
    }
  });

  it('a WebSocket from a foreign origin is refused at the upgrade; a listed one connects', async () => {
    const evil = rawSocket(cors.wsUrl, { origin: 'https://evil.example' });
    await expect(evil.opened).rejects.toThrow();
    const good = rawSocket(cors.wsUrl, { origin: 'https://app.example' });
    await good.opened;
    good.ws.close();
  });
});

describe('graphql-ws transport', () => {
  it('no connection_init within 3 s → closed with 4408', async () => {
    const s = rawSocket(app.wsUrl);
    await s.opened;
    expect((await s.closed).code).toBe(4408);
  });

  it('a bad token in connection_init → closed with 4403', async () => {
    const s = rawSocket(app.wsUrl);
    await s.opened;
    s.send({ type: 'connection_init', payload: { authorization: 'Bearer drk_forged' } });
    expect((await s.closed).code).toBe(4403);
  });

  it('a message over 64 KiB → closed with 1009 (message too big)', async () => {
    const s = rawSocket(app.wsUrl);
    await s.opened;
    s.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}`, pad: 'x'.repeat(70 * 1024) } });
    expect((await s.closed).code).toBe(1009);
  });

  it('an unparsable or over-limit document is answered with an error; the socket stays usable', async () => {
    const s = rawSocket(app.wsUrl);
    await s.opened;
    s.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    await s.next((m) => m.type === 'connection_ack');
    s.send({ id: '1', type: 'subscribe', payload: { query: 'subscription { batchProgress(' } });
    s.send({ id: '2', type: 'subscribe', payload: { query: `{ viewer { ${fields(999, () => 'id')} } }` } });
    s.send({ id: '3', type: 'subscribe', payload: { query: nest(8) } });
    s.send({ id: '4', type: 'subscribe', payload: { query: '{ viewer { id } }' } });
    const codes = async (id: string) => (await s.next((m) => m.id === id && m.type === 'error')).payload.map((e: any) => e.extensions?.code);
    expect(await codes('1')).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(await codes('2')).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(await codes('3')).toContain('QUERY_TOO_DEEP');
    expect((await s.next((m) => m.id === '4' && m.type === 'next')).payload.data.viewer.id).toBeTruthy();
    s.ws.close();
  });

  it('a message that breaks the protocol → closed with 4400', async () => {
    const s = rawSocket(app.wsUrl);
    await s.opened;
    s.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    await s.next((m) => m.type === 'connection_ack');
    s.send({ id: '1', type: 'subscribe', payload: { query: 42 } });
    expect((await s.closed).code).toBe(4400);
  });
});

describe('production mode', () => {
  let prod: TestApp;
  beforeAll(async () => {
    prod = await startTestApp({ worker: false, env: { NODE_ENV: 'production', TOKEN_SECRET: 'p'.repeat(48) } });
  });
  afterAll(() => prod?.close());

  it('introspection is refused, and validation errors suggest no field names', async () => {
    const schema = await postJson(prod.graphqlUrl, { query: '{ __schema { types { name } } }' });
    expect(codesOf(schema)[0]).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(schema.body.data).toBeUndefined();
    const type = await postJson(prod.graphqlUrl, { query: '{ __type(name: "User") { fields { name } } }' });
    expect(type.body.data).toBeUndefined();
    const typo = await postJson(prod.graphqlUrl, { query: '{ viewr { id } }' });
    expect(typo.body.errors[0].message).not.toMatch(/Did you mean/);
    // The same documents in development: proof the probes would notice.
    expect((await postJson(app.graphqlUrl, { query: '{ viewr { id } }' })).body.errors[0].message).toMatch(/Did you mean "viewer"/);
    expect((await postJson(app.graphqlUrl, { query: '{ __type(name: "User") { name } }' })).body.data.__type.name).toBe('User');
  });

  it('GraphiQL is not served', async () => {
    const res = await fetch(prod.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(await res.text()).not.toMatch(/graphiql/i);
    const dev = await fetch(app.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(await dev.text()).toMatch(/graphiql/i);
  });

  it('an unexpected error is masked to INTERNAL_SERVER_ERROR with no detail', async () => {
    const prodApi = client(prod);
    const { token: prodToken } = await prodApi.signUp();
    // A database in a state the code does not expect (its table renamed away) makes any
    // read fail unexpectedly; the client must learn nothing about why.
    const query = { query: 'query { batches(first: 1) { edges { cursor } } }' };
    const broken = async <T>(target: typeof prod, fn: () => Promise<T>) => {
      await sql`alter table batches rename to batches_hidden`.execute(target.ctx.db);
      try {
        return await fn();
      } finally {
        await sql`alter table batches_hidden rename to batches`.execute(target.ctx.db);
      }
    };
    const masked = await broken(prod, () => postJson(prod.graphqlUrl, query, { authorization: `Bearer ${prodToken}` }));
    expect(masked.body.errors).toEqual([{ message: 'Unexpected error.', locations: expect.any(Array), path: ['batches'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    const dev = await broken(app, () => postJson(app.graphqlUrl, query, auth()));
    expect(JSON.stringify(dev.body.errors)).toMatch(/relation \\"batches\\" does not exist/);
  });

  it('refuses to start with the development TOKEN_SECRET, or a short one', async () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/TOKEN_SECRET must be set in production/);
    expect(() => loadConfig({ NODE_ENV: 'production', TOKEN_SECRET: 'short' })).toThrow(/at least 32 characters/);
    const p = spawnService('api', { ...prod.env, TOKEN_SECRET: undefined, PORT: '0' });
    expect(await p.stop('SIGCONT')).toBe(1);
    expect(p.output()).toMatch(/TOKEN_SECRET must be set in production/);
  });
});
