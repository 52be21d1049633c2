import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchDetails, BatchProgress, Batches, NodeById, SignIn, UploadById, Viewer } from './documents.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';

let app: TestApp;
let api: ReturnType<typeof client>;
beforeAll(async () => {
  app = await startTestApp();
  api = client(app);
});
afterAll(() => app?.close());

describe('accounts', () => {
  it('signs up and in with a bearer token, and refuses wrong or weak credentials', async () => {
    const alice = await api.signUp('Alice@Example.com', 'a long enough password');
    expect((await api.request(Viewer, {}, alice.token)).data!.viewer.email).toBe('Alice@Example.com');

    const again = await api.signUp().catch(() => null); // a different random user still works
    expect(again).toBeTruthy();
    const dup = await api.request((await import('./documents.ts')).SignUp, { email: 'alice@example.com', password: 'another password' });
    expect(dup.data!.signUp).toMatchObject({ __typename: 'EmailTakenError', code: 'EMAIL_TAKEN' });
    const weak = await api.request((await import('./documents.ts')).SignUp, { email: 'bob@example.com', password: 'short' });
    expect(weak.data!.signUp).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });

    const ok = await api.request(SignIn, { email: 'alice@example.com', password: 'a long enough password' });
    expect(ok.data!.signIn.__typename).toBe('AuthSuccess');
    for (const [email, password] of [
      ['alice@example.com', 'wrong password!'],
      ['nobody@example.com', 'a long enough password'],
    ]) {
      const bad = await api.request(SignIn, { email: email!, password: password! });
      expect(bad.data!.signIn).toEqual({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS', message: 'Email or password is incorrect' });
    }
    const stored = await app.ctx.db.selectFrom('users').select('passwordHash').where('id', '=', (await import('@pothos/plugin-relay')).decodeGlobalID(alice.userId).id).executeTakeFirstOrThrow();
    expect(stored.passwordHash).toMatch(/^\$argon2id\$/);
  });

  it('requires a valid token for everything else', async () => {
    for (const token of [undefined, 'drk_not-a-real-token']) {
      const r = await api.request(Viewer, {}, token);
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const up = await api.upload(token, [{ name: 'a.png', data: await images.png({}) }]);
      expect(up.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    // The refused upload left nothing behind.
    expect(await app.ctx.storage.sweepIncoming(0)).toBe(0);
  });
});

describe('another user', () => {
  it('cannot read, subscribe to, or fetch the thumbnails of a batch', async () => {
    const owner = await api.signUp();
    const other = await api.signUp();
    const created = await api.upload(owner.token, [{ name: 'mine.png', data: await images.png({}) }]);
    const result = created.data!.createBatch;
    if (result.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
    await api.subscribeWs(BatchProgress, { batchId: result.batch.id }, owner.token).done;
    const mine = (await api.request(BatchDetails, { id: result.batch.id }, owner.token)).data!.batch!;
    const upload = mine.uploads.edges[0]!.node;
    expect(upload.thumbnailUrl).toMatch(/^http:\/\/.+\/files\/thumbnail\//);

    // Reads: exactly like ids that do not exist.
    expect((await api.request(BatchDetails, { id: result.batch.id }, other.token)).data).toEqual({ batch: null });
    expect((await api.request(UploadById, { id: upload.id }, other.token)).data).toEqual({ upload: null });
    expect((await api.request(NodeById, { id: upload.id }, other.token)).data).toEqual({ node: null });
    expect((await api.request(NodeById, { id: result.batch.id }, other.token)).data).toEqual({ node: null });
    expect((await api.request(NodeById, { id: owner.userId }, other.token)).data).toEqual({ node: null });
    expect((await api.request(Batches, { first: 10 }, other.token)).data!.batches.edges).toEqual([]);
    expect((await api.request(NodeById, { id: result.batch.id }, owner.token)).data!.node).toMatchObject({ __typename: 'Batch' });

    // Subscriptions: refused when they start, over both transports.
    for (const events of [
      await api.subscribeWs(BatchProgress, { batchId: result.batch.id }, other.token).done.catch((e) => [{ errors: e }]),
      await (await api.subscribeSse(BatchProgress, { batchId: result.batch.id }, other.token)).done,
    ]) {
      expect(JSON.stringify(events)).toMatch(/NOT_FOUND|Batch not found/);
      expect(JSON.stringify(events)).not.toMatch(/"status"/);
    }

    // Files: the URL is signed for the owner; a forged or altered one is refused.
    expect((await fetch(upload.thumbnailUrl!)).status).toBe(200);
    const forged = new URL(upload.thumbnailUrl!);
    forged.searchParams.set('sig', 'x'.repeat(43));
    expect((await fetch(forged)).status).toBe(403);
    const extended = new URL(upload.thumbnailUrl!);
    extended.searchParams.set('exp', String(Number(extended.searchParams.get('exp')) + 3600));
    expect((await fetch(extended)).status).toBe(403);
    expect((await fetch(`${app.url}/files/thumbnail/${crypto.randomUUID()}`)).status).toBe(403);
  });
});
