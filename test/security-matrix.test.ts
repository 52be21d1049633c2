/**
 * Issue #4 §1: every operation that takes an id, asked by another user with the owner's id, must
 * answer exactly as it does for an id that does not exist, and must change nothing.
 */
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchDetails, BatchProgress, Batches, NodeById, UploadById, Viewer } from './documents.ts';
import { CreateBatchMedia, SearchUploads, SimilarUploads } from './documents-media.ts';
import { NodesById, UploadFileUrls } from './documents-security.ts';
import { CancelBatch, DeleteUpload, RetryFailedUploads } from './durability/documents.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import { type ModelServer, startModelServer } from './helpers/model-server.ts';

type Client = ReturnType<typeof client>;
type Kind = 'Batch' | 'Upload' | 'User';
/** Who is asking: their client, token, and signed URLs of one of their own files. */
interface Asker { api: Client; token: string; ownFiles: { thumbnail: string; preview: string } }
interface Operation {
  kind: Kind;
  run(as: Asker, id: string): Promise<unknown>;
  /** Changes state when the owner runs it, so the owner's own run comes after all others. */
  mutates?: true;
}

const errorsOf = (e: unknown) => [{ errors: e }];
/** The signed thumbnail URL with its upload id swapped: the file route's answer for that id. */
const swappedFile = async (url: string, id: string) => {
  const res = await fetch(url.replace(/[0-9a-f-]{36}(?=\?)/, decodeGlobalID(id).id));
  return { status: res.status, body: await res.text() };
};

/**
 * Every operation that takes an id. Adding one is one line: the kind of id it takes and how to send
 * it. The test supplies the owner's id, a nonexistent id of the same kind, and compares answers.
 */
const OPERATIONS: Record<string, Operation> = {
  'batch(id)': { kind: 'Batch', run: (a, id) => a.api.request(BatchDetails, { id }, a.token) },
  'upload(id)': { kind: 'Upload', run: (a, id) => a.api.request(UploadById, { id }, a.token) },
  'node(id) of a Batch': { kind: 'Batch', run: (a, id) => a.api.request(NodeById, { id }, a.token) },
  'node(id) of an Upload': { kind: 'Upload', run: (a, id) => a.api.request(NodeById, { id }, a.token) },
  'node(id) of a User': { kind: 'User', run: (a, id) => a.api.request(NodeById, { id }, a.token) },
  'nodes(ids) of a Batch': { kind: 'Batch', run: (a, id) => a.api.request(NodesById, { ids: [id] }, a.token) },
  'nodes(ids) of an Upload': { kind: 'Upload', run: (a, id) => a.api.request(NodesById, { ids: [id] }, a.token) },
  'nodes(ids) of a User': { kind: 'User', run: (a, id) => a.api.request(NodesById, { ids: [id] }, a.token) },
  'similarUploads(id)': { kind: 'Upload', run: (a, id) => a.api.request(SimilarUploads, { id, first: 5 }, a.token) },
  'batchProgress over WebSocket': { kind: 'Batch', run: (a, id) => a.api.subscribeWs(BatchProgress, { batchId: id }, a.token).done.catch(errorsOf) },
  'batchProgress over SSE': { kind: 'Batch', run: async (a, id) => (await a.api.subscribeSse(BatchProgress, { batchId: id }, a.token)).done },
  'GET /files/thumbnail/<id>': { kind: 'Upload', run: (a, id) => swappedFile(a.ownFiles.thumbnail, id) },
  'GET /files/preview/<id>': { kind: 'Upload', run: (a, id) => swappedFile(a.ownFiles.preview, id) },
  'retryFailedUploads(batchId)': { kind: 'Batch', mutates: true, run: (a, id) => a.api.request(RetryFailedUploads, { batchId: id }, a.token) },
  'cancelBatch(id)': { kind: 'Batch', mutates: true, run: (a, id) => a.api.request(CancelBatch, { id }, a.token) },
  'deleteUpload(id)': { kind: 'Upload', mutates: true, run: (a, id) => a.api.request(DeleteUpload, { id }, a.token) },
};

let model: ModelServer;
let app: TestApp;
let owner: Asker;
let attacker: Asker;
let ownerIds: Record<Kind, string>;
/** The owner's upload no operation touches (deleteUpload removes the first). */
let ownerKept: string;
const answers: Record<string, { owner?: unknown; foreign: unknown; missing: unknown }> = {};

/** Ids inside answers are the only thing allowed to differ between a foreign and a missing id. */
const normalize = (value: unknown, id: string) =>
  JSON.parse(JSON.stringify(value ?? null).replaceAll(id, '<id>').replaceAll(decodeGlobalID(id).id, '<id>'));

/** A user with one processed batch of two uploads; URLs and ids are of the first. */
async function signedUpWithOneBatch(api: Client, color: images.Color): Promise<Asker & { batchId: string; uploadIds: string[] }> {
  const { token } = await api.signUp();
  const created = (await api.upload(token, [
    { name: `matrix-${color}.png`, data: await images.png({ color }) },
    { name: 'second.jpg', data: await images.jpeg({ color: 'white', width: 80 }) },
  ])).data!.createBatch;
  if (created.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(created));
  await api.subscribeWs(BatchProgress, { batchId: created.batch.id }, token).done; // processed
  const uploadIds = (await api.request(BatchDetails, { id: created.batch.id }, token)).data!.batch!.uploads.edges.map((e) => e.node.id);
  const urls = (await api.request(UploadFileUrls, { id: uploadIds[0]! }, token)).data!.upload!;
  return { api, token, ownFiles: { thumbnail: urls.thumbnailUrl!, preview: urls.previewUrl! }, batchId: created.batch.id, uploadIds };
}

beforeAll(async () => {
  model = await startModelServer();
  app = await startTestApp({ env: { OLLAMA_URL: model.url } });
  const api = client(app);
  const o = await signedUpWithOneBatch(api, 'red');
  owner = o;
  attacker = await signedUpWithOneBatch(api, 'blue');
  ownerIds = { Batch: o.batchId, Upload: o.uploadIds[0]!, User: (await api.request(Viewer, {}, o.token)).data!.viewer.id };
  ownerKept = o.uploadIds[1]!;

  const ownerState = () => api.request(BatchDetails, { id: o.batchId }, o.token);
  const before = await ownerState();
  for (const [name, op] of Object.entries(OPERATIONS)) {
    const missing = encodeGlobalID(op.kind, randomUUID());
    answers[name] = {
      foreign: normalize(await op.run(attacker, ownerIds[op.kind]), ownerIds[op.kind]),
      missing: normalize(await op.run(attacker, missing), missing),
    };
  }
  // Nothing the attacker sent changed the owner's data.
  expect((await ownerState()).data).toEqual(before.data);
  const ordered = Object.entries(OPERATIONS).sort(([, a], [, b]) => Number(!!a.mutates) - Number(!!b.mutates));
  for (const [name, op] of ordered) answers[name]!.owner = normalize(await op.run(owner, ownerIds[op.kind]), ownerIds[op.kind]);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await model?.close();
});

describe.each(Object.keys(OPERATIONS))('%s with another user’s id', (name) => {
  it('answers exactly like an id that does not exist', () => {
    expect(answers[name]!.foreign).toEqual(answers[name]!.missing);
  });
  it('answers the owner differently (the probe can tell)', () => {
    expect(answers[name]!.owner).not.toEqual(answers[name]!.missing);
  });
});

describe('another user’s data never shows up in lists or content lookups', () => {
  it('batches and search list only the viewer’s own', async () => {
    const mine = await owner.api.request(Batches, { first: 50 }, owner.token);
    const theirs = await attacker.api.request(Batches, { first: 50 }, attacker.token);
    expect(mine.data!.batches.edges.map((e) => e.node.id)).toEqual([ownerIds.Batch]);
    expect(theirs.data!.batches.edges.map((e) => e.node.id)).not.toContain(ownerIds.Batch);
    // Both users have a "second.jpg"; each finds only their own.
    const found = await owner.api.request(SearchUploads, { query: 'second', first: 10 }, owner.token);
    expect(found.data!.search.edges.map((e) => e.node.id)).toEqual([ownerKept]);
    const leaked = await attacker.api.request(SearchUploads, { query: 'second', first: 10 }, attacker.token);
    expect(leaked.data!.search.edges).toHaveLength(1);
    expect(leaked.data!.search.edges.map((e) => e.node.id)).not.toContain(ownerKept);
  });

  it('uploading another user’s exact file reports no duplicate of theirs', async () => {
    const bytes = await images.png({ color: 'green', width: 33 });
    const upload = async (token: string) => {
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: print(CreateBatchMedia), variables: { files: [null] } }));
      form.set('map', '{"0":["variables.files.0"]}');
      form.set('0', new Blob([new Uint8Array(bytes)]), 'same.png');
      const headers = { authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1' };
      return ((await (await fetch(app.graphqlUrl, { method: 'POST', body: form, headers })).json()) as any).data.createBatch;
    };
    await upload(owner.token);
    // The owner sending it again is told: the probe can see duplicates.
    expect(JSON.stringify(await upload(owner.token))).toMatch(/existingUploadId/);
    const stranger = await owner.api.signUp();
    const theirs = await upload(stranger.token);
    expect(theirs.__typename).toBe('CreateBatchSuccess');
    expect(theirs.duplicates).toEqual([]);
  });
});
