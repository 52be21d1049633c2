/**
 * Issue #4 §2, §6 (subscriptions), §7 (logs): accounts, tokens, throttling, subscription bounds.
 */
import { decodeGlobalID } from '@pothos/plugin-relay';
import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchTopic } from '../src/services/events.ts';
import { BatchProgress, CreateBatch, SignIn, SignUp, Viewer } from './documents.ts';
import { SignInRetry, SignOut } from './documents-security.ts';
import { REDIS_URL, startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import { postJson, rawSocket } from './helpers/http.ts';
import * as images from './helpers/images.ts';
import { spawnService } from './helpers/process.ts';

let app: TestApp;
let api: ReturnType<typeof client>;
beforeAll(async () => {
  app = await startTestApp({ worker: false, env: { SIGNIN_FAILURES_PER_ACCOUNT: '3', AUTH_ATTEMPTS_PER_IP: '1000' } });
  api = client(app);
});
afterAll(() => app?.close());

const viewerCode = async (token: string) => (await api.request(Viewer, {}, token)).errors?.[0]?.extensions?.code ?? 'OK';

/** connection_init with `token`, then one query: the close code, or the query's outcome. */
async function overWebSocket(token: string) {
  const s = rawSocket(app.wsUrl);
  await s.opened;
  s.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
  const ack = await s.next((m) => m.type === 'connection_ack');
  if (!ack) return `closed ${(await s.closed).code}`;
  s.send({ id: '1', type: 'subscribe', payload: { query: '{ viewer { id } }' } });
  const r = await s.next((m) => m.id === '1' && m.type === 'next');
  s.ws.close();
  return r.payload.errors?.[0]?.extensions?.code ?? 'OK';
}

describe('passwords', () => {
  it('are stored as argon2id at OWASP parameters (19 MiB, t=2, p=1)', async () => {
    const { userId } = await api.signUp();
    const row = await app.ctx.db.selectFrom('users').select('passwordHash').where('id', '=', decodeGlobalID(userId).id).executeTakeFirstOrThrow();
    expect(row.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it.each([
    ['7 characters', 'short12'],
    ['257 characters', 'x'.repeat(257)],
    ['only spaces', ' '.repeat(12)],
  ])('sign-up with a password of %s → VALIDATION_FAILED', async (_, password) => {
    const r = await api.request(SignUp, { email: `p-${randomUUID()}@example.com`, password });
    expect(r.data!.signUp).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
  });

  it('sign-in with a 1 MB password or email → INVALID_CREDENTIALS, refused before hashing', async () => {
    const { email } = await api.signUp();
    for (const vars of [
      { email, password: 'x'.repeat(1_000_000) },
      { email: `${'e'.repeat(1_000_000)}@example.com`, password: 'correct horse battery' },
    ]) {
      const r = await api.request(SignIn, vars);
      expect(r.data!.signIn).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    }
  });
});

describe('tokens', () => {
  it('an expired session is refused over HTTP and at WebSocket connection_init (4403)', async () => {
    const { token, userId } = await api.signUp();
    expect(await viewerCode(token)).toBe('OK');
    await app.ctx.db.updateTable('sessions').set({ expiresAt: new Date(Date.now() - 1000) }).where('userId', '=', decodeGlobalID(userId).id).execute();
    expect(await viewerCode(token)).toBe('UNAUTHENTICATED');
    expect(await overWebSocket(token)).toBe('closed 4403');
  });

  it('signOut revokes exactly the token it was sent with, also on an open WebSocket', async () => {
    const { email } = await api.signUp();
    const first = (await api.request(SignIn, { email, password: 'correct horse battery' })).data!.signIn;
    const second = (await api.request(SignIn, { email, password: 'correct horse battery' })).data!.signIn;
    if (first.__typename !== 'AuthSuccess' || second.__typename !== 'AuthSuccess') throw new Error('sign-in failed');

    // A socket authenticated before the sign-out…
    const s = rawSocket(app.wsUrl);
    await s.opened;
    s.send({ type: 'connection_init', payload: { authorization: `Bearer ${first.token}` } });
    await s.next((m) => m.type === 'connection_ack');

    expect((await api.request(SignOut, {}, first.token)).data).toEqual({ signOut: true });
    expect(await viewerCode(first.token)).toBe('UNAUTHENTICATED');
    expect(await viewerCode(second.token)).toBe('OK');
    expect(await overWebSocket(first.token)).toBe('closed 4403');
    // …runs nothing more as that user.
    s.send({ id: 'after', type: 'subscribe', payload: { query: '{ viewer { id } }' } });
    expect((await s.next((m) => m.id === 'after' && m.type === 'next')).payload.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    s.ws.close();
    // Signing out needs a live token.
    expect((await api.request(SignOut, {}, first.token)).errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
  });
});

describe('sign-in throttling', () => {
  const signIn = (target: TestApp, email: string, password: string, headers: Record<string, string> = {}) =>
    postJson(target.graphqlUrl, { query: print(SignInRetry), variables: { email, password } }, headers).then((r) => r.body.data.signIn);

  it('per account: after 3 failures even the right password waits, other accounts do not; success resets the count', async () => {
    const victim = await api.signUp();
    const other = await api.signUp();
    // Two failures then a success: the count starts over.
    for (let i = 0; i < 2; i++) expect((await signIn(app, victim.email, 'wrong password')).code).toBe('INVALID_CREDENTIALS');
    expect((await signIn(app, victim.email, 'correct horse battery')).__typename).toBe('AuthSuccess');
    for (let i = 0; i < 2; i++) expect((await signIn(app, victim.email, 'wrong password')).code).toBe('INVALID_CREDENTIALS');
    expect((await signIn(app, victim.email.toUpperCase(), 'wrong password')).code).toBe('INVALID_CREDENTIALS');

    const blocked = await signIn(app, victim.email, 'correct horse battery');
    expect(blocked).toMatchObject({ __typename: 'TooManyAttemptsError', code: 'TOO_MANY_ATTEMPTS' });
    expect(blocked.retryAfterSeconds).toBeGreaterThan(0);
    expect((await signIn(app, other.email, 'correct horse battery')).__typename).toBe('AuthSuccess');
    // An unknown address is throttled exactly like a real one: no way to tell them apart.
    const ghost = `ghost-${randomUUID()}@example.com`;
    for (let i = 0; i < 3; i++) expect((await signIn(app, ghost, 'wrong password')).code).toBe('INVALID_CREDENTIALS');
    expect((await signIn(app, ghost, 'wrong password')).code).toBe('TOO_MANY_ATTEMPTS');
  });

  describe('per client address, in Redis shared by every API process', () => {
    let a: TestApp;
    let b: TestApp;
    let proxied: TestApp;
    let local: TestApp;
    const shared = { AUTH_ATTEMPTS_PER_IP: '4', RATE_LIMIT_PREFIX: `darkroom-test:shared:${randomUUID()}` };
    beforeAll(async () => {
      [a, b, proxied, local] = await Promise.all([
        startTestApp({ mode: 'api', env: shared }),
        startTestApp({ mode: 'api', env: shared }),
        startTestApp({ mode: 'api', env: { AUTH_ATTEMPTS_PER_IP: '2', TRUST_PROXY_HOPS: '1' } }),
        startTestApp({ redis: false, worker: false, env: { AUTH_ATTEMPTS_PER_IP: '2' } }),
      ]);
    });
    afterAll(() => Promise.all([a, b, proxied, local].map((x) => x?.close())));

    it('attempts on one process count on the other; sign-ups count too', async () => {
      expect((await client(a).request(SignUp, { email: `ip-${randomUUID()}@example.com`, password: 'correct horse battery' })).data!.signUp.__typename).toBe('AuthSuccess');
      expect((await signIn(b, `x-${randomUUID()}@example.com`, 'wrong password')).code).toBe('INVALID_CREDENTIALS');
      expect((await signIn(a, `y-${randomUUID()}@example.com`, 'wrong password')).code).toBe('INVALID_CREDENTIALS');
      expect((await signIn(b, `z-${randomUUID()}@example.com`, 'wrong password')).code).toBe('INVALID_CREDENTIALS');
      expect((await signIn(a, `w-${randomUUID()}@example.com`, 'wrong password')).code).toBe('TOO_MANY_ATTEMPTS');
      const signUp = await client(b).request(SignUp, { email: `ip-${randomUUID()}@example.com`, password: 'correct horse battery' });
      expect(signUp.data!.signUp).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
    });

    it('X-Forwarded-For is believed only with TRUST_PROXY_HOPS, and then only the entry our proxy added', async () => {
      const email = () => `p-${randomUUID()}@example.com`;
      // Behind one trusted proxy: the last entry is the client; what the client claimed before it is ignored.
      const from = (ip: string) => ({ 'x-forwarded-for': `6.6.6.6, ${ip}` });
      for (let i = 0; i < 2; i++) expect((await signIn(proxied, email(), 'wrong password', from('198.51.100.7'))).code).toBe('INVALID_CREDENTIALS');
      expect((await signIn(proxied, email(), 'wrong password', from('198.51.100.7'))).code).toBe('TOO_MANY_ATTEMPTS');
      expect((await signIn(proxied, email(), 'wrong password', from('198.51.100.8'))).code).toBe('INVALID_CREDENTIALS');
      // Without a trusted proxy, a forged header changes nothing.
      for (let i = 0; i < 2; i++) expect((await signIn(local, email(), 'wrong password', { 'x-forwarded-for': `203.0.113.${i}` })).code).toBe('INVALID_CREDENTIALS');
      expect((await signIn(local, email(), 'wrong password', { 'x-forwarded-for': '203.0.113.99' })).code).toBe('TOO_MANY_ATTEMPTS');
    });
  });
});

describe('subscriptions: capped per user (MAX_SUBSCRIPTIONS_PER_USER), nothing left behind when one closes', () => {
  let capped: TestApp;
  beforeAll(async () => {
    capped = await startTestApp({ worker: false, env: { MAX_SUBSCRIPTIONS_PER_USER: '2' } });
  });
  afterAll(() => capped?.close());

  it('the third concurrent subscription is refused on either transport; closing one frees a slot', async () => {
    const c = client(capped);
    const owner = await c.signUp();
    const created = (await c.upload(owner.token, [{ name: 'a.png', data: await images.png() }])).data!.createBatch;
    if (created.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
    const vars = { batchId: created.batch.id };

    // The worker is off: these stay open.
    const one = c.subscribeWs(BatchProgress, vars, owner.token);
    const two = await c.subscribeSse(BatchProgress, vars, owner.token);
    await Promise.all([one.first, two.first]);
    const third = await (await c.subscribeSse(BatchProgress, vars, owner.token)).done;
    expect(third[0]!.errors![0]!.extensions!.code).toBe('TOO_MANY_SUBSCRIPTIONS');
    const fourth = await c.subscribeWs(BatchProgress, vars, owner.token).done;
    expect(fourth[0]!.errors![0]!.extensions!.code).toBe('TOO_MANY_SUBSCRIPTIONS');

    // Another user has their own allowance (and cannot see this batch: NOT_FOUND, not the cap).
    const other = await c.signUp();
    const foreign = await c.subscribeWs(BatchProgress, vars, other.token).done.catch((e) => [{ errors: e }]);
    expect(JSON.stringify(foreign)).toMatch(/NOT_FOUND/);

    // Refused or NOT_FOUND attempts hold no slot; closing a live one frees one.
    const ws = c.subscribeWs(BatchProgress, vars, owner.token);
    await ws.done;
    expect(JSON.stringify(ws.events)).toMatch(/TOO_MANY_SUBSCRIPTIONS/);
    await one.cancel();
    // The server sees the socket close a moment after the client does.
    let again = c.subscribeWs(BatchProgress, vars, owner.token);
    for (let i = 0; i < 40; i++) {
      await again.first;
      if (again.events[0]?.data) break;
      await new Promise((r) => setTimeout(r, 50));
      again = c.subscribeWs(BatchProgress, vars, owner.token);
    }
    expect(again.events[0]!.data!.batchProgress.__typename).toBe('BatchProgress');
    await Promise.all([again.cancel(), two.cancel()]);
  });

  it('closing a subscription on a quiet batch frees its server-side listener at once, on either transport', async () => {
    const c = client(capped);
    const owner = await c.signUp();
    const created = (await c.upload(owner.token, [{ name: 'quiet.png', data: await images.png({ width: 71 }) }])).data!.createBatch;
    if (created.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
    const redis = new Redis(REDIS_URL);
    try {
      // The API's Redis connection subscribes to the batch's channel while anyone listens.
      const listening = async () => ((await redis.pubsub('NUMSUB', batchTopic(decodeGlobalID(created.batch.id).id))) as [string, number])[1];
      for (const open of [
        async () => c.subscribeWs(BatchProgress, { batchId: created.batch.id }, owner.token),
        () => c.subscribeSse(BatchProgress, { batchId: created.batch.id }, owner.token),
      ]) {
        const sub = await open();
        await sub.first;
        expect(await listening()).toBe(1);
        await sub.cancel();
        let left = 1;
        for (let i = 0; i < 100 && left > 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          left = await listening();
        }
        expect(left).toBe(0);
      }
    } finally {
      redis.disconnect();
    }
  });
});

describe('logs', () => {
  it('carry no password or token, even at trace level', async () => {
    const proc = spawnService('all', { ...app.env, PORT: '0', LOG_LEVEL: 'trace', NODE_ENV: 'development', REDIS_URL: undefined });
    try {
      const url = await proc.waitFor(/http:\/\/127\.0\.0\.1:\d+/);
      const target = { graphqlUrl: `${url}/graphql`, wsUrl: `${url.replace(/^http/, 'ws')}/graphql` };
      const c = client(target);
      const password = `secret-${randomUUID()}`;
      const { token, email } = await c.signUp(undefined, password);
      await c.request(SignIn, { email, password: `${password}-wrong` });
      await c.request(SignIn, { email, password });
      await c.request(CreateBatch, { files: [] }, token);
      await c.upload(token, [{ name: 'a.png', data: await images.png() }, { name: 'x.txt', data: Buffer.from('not an image') }]);
      await c.request(Viewer, {}, `${token}x`);
      await c.subscribeWs(BatchProgress, { batchId: 'QmF0Y2g6bm9uZQ' }, token).done.catch(() => null);
      const out = proc.output();
      expect(out).toMatch(/"level":10|"level":20/); // trace/debug lines were written: the check is not vacuous
      for (const secret of [password, token, token.slice(4)]) expect(out).not.toContain(secret);
    } finally {
      await proc.stop();
    }
  });
});
