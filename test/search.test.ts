import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPgvector } from '../src/db/search.ts';
import { BatchProgress } from './documents.ts';
import { BatchMedia, CreateBatchMedia, SearchUploads, SimilarUploads } from './documents-media.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { client } from './helpers/client.ts';
import * as images from './helpers/images.ts';
import * as media from './helpers/media.ts';
import { type ModelServer, startModelServer } from './helpers/model-server.ts';

type Api = ReturnType<typeof client>;

// A toy embedding model with known geometry: each topic word is an axis.
const AXES: Record<string, number[]> = {
  bicycle: [1, 0, 0, 0],
  'two-wheeler': [0.9, 0.1, 0, 0],
  dog: [0, 1, 0, 0],
  park: [0, 0, 0.5, 0],
};
function vectorOf(text: string): number[] {
  const v = [0, 0, 0, 0];
  for (const [word, axis] of Object.entries(AXES)) if (text.toLowerCase().includes(word)) axis.forEach((x, i) => (v[i]! += x));
  return v.some((x) => x !== 0) ? v : [0, 0, 0, 1];
}

let colourSeed = 0;
async function upload(app: TestApp, api: Api, token: string, name: string, data?: Buffer) {
  // Every file distinct, or duplicate detection would (rightly) drop it.
  const body = data ?? (await images.png({ width: 40 + ++colourSeed, height: 30 }));
  const r = await media.uploadWith(app, CreateBatchMedia, token, [{ name, data: body }]);
  if (r.data?.createBatch.__typename !== 'CreateBatchSuccess') throw new Error(JSON.stringify(r));
  await api.subscribeWs(BatchProgress, { batchId: r.data.createBatch.batch.id }, token).done;
  const batch = await api.request(BatchMedia, { id: r.data.createBatch.batch.id }, token);
  const node = batch.data!.batch!.uploads.edges[0]!.node;
  expect(node.status).toBe('COMPLETED');
  return node.id;
}

async function search(api: Api, token: string, query: string, first?: number, after?: string) {
  const r = await api.request(SearchUploads, { query, first, after }, token);
  expect(r.errors).toBeUndefined();
  return r.data!.search;
}
const names = (s: Awaited<ReturnType<typeof search>>) => s.edges.map((e) => e.node.filename);

describe('with a model server: full text and meaning', () => {
  let model: ModelServer;
  let app: TestApp;
  let api: Api;
  let token: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    model = await startModelServer();
    app = await startTestApp({ env: { OLLAMA_URL: model.url, OLLAMA_TIMEOUT_MS: '5000' } });
    api = client(app);
    ({ token } = await api.signUp());
    const photos: [string, string][] = [
      ['IMG_0001.jpg', 'A red bicycle leaning against a brick wall.'],
      ['bicycle-lane.jpg', 'A city street with cars and a painted lane.'],
      ['IMG_0003.jpg', 'A brown dog asleep on a grey sofa.'],
      ['IMG_0004.jpg', 'A blue bicycle standing in a park under trees.'],
    ];
    for (const [name, description] of photos) {
      model.setBehavior(({ path, body }) => {
        if (path === '/api/generate') return { status: 200, body: { response: description, done: true } };
        if (path === '/api/embed') return { status: 200, body: { embeddings: [vectorOf(String(body?.input))] } };
        return undefined;
      });
      ids[name] = await upload(app, api, token, name);
    }
    // Someone else's bicycle must never show up.
    const other = await api.signUp();
    await upload(app, api, other.token, 'their-bicycle.jpg');
  });
  afterAll(async () => {
    await app?.close();
    await model?.close();
  });

  it('ranks the image described as "a red bicycle" first for "bicycle"', async () => {
    const result = await search(api, token, 'bicycle');
    // Description and meaning both match → first; a filename alone ranks below descriptions;
    // the dog matches neither and is not a result.
    expect(names(result)).toEqual(['IMG_0001.jpg', 'IMG_0004.jpg', 'bicycle-lane.jpg']);
    expect(result.edges[0]!.node.description).toBe('A red bicycle leaning against a brick wall.');
    const scores = result.edges.map((e) => e.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('finds by meaning when no word matches', async () => {
    expect(names(await search(api, token, 'two-wheeler'))).toEqual(['IMG_0001.jpg', 'IMG_0004.jpg']);
  });

  it('stems words and matches filenames split at punctuation', async () => {
    expect(names(await search(api, token, 'bicycles'))).toContain('IMG_0001.jpg');
    expect(names(await search(api, token, 'lane'))).toEqual(['bicycle-lane.jpg']);
    expect(names(await search(api, token, 'sofa dog'))).toEqual(['IMG_0003.jpg']);
    expect(names(await search(api, token, '   '))).toEqual([]);
  });

  it('pages through ranked results', async () => {
    const page1 = await search(api, token, 'bicycle', 1);
    expect(names(page1)).toEqual(['IMG_0001.jpg']);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await search(api, token, 'bicycle', 2, page1.pageInfo.endCursor!);
    expect(names(page2)).toEqual(['IMG_0004.jpg', 'bicycle-lane.jpg']);
    expect(page2.pageInfo.hasNextPage).toBe(false);
  });

  it('falls back to text alone when the query cannot be embedded', async () => {
    model.setBehavior(({ path }) => (path === '/api/embed' ? { status: 500, body: { error: 'down' } } : undefined));
    try {
      // (A query not searched before: vectors of recent queries are remembered.)
      expect(names(await search(api, token, 'two-wheeler vehicle'))).toEqual([]);
      expect(names(await search(api, token, 'brick'))).toEqual(['IMG_0001.jpg']);
    } finally {
      model.setBehavior(({ path, body }) =>
        path === '/api/embed' ? { status: 200, body: { embeddings: [vectorOf(String(body?.input))] } } : undefined,
      );
    }
  });

  it('lists similar uploads, nearest first, never the upload itself or anyone else’s', async () => {
    const r = await api.request(SimilarUploads, { id: ids['IMG_0001.jpg']! }, token);
    const edges = r.data!.similarUploads.edges;
    expect(edges[0]).toMatchObject({ node: { filename: 'IMG_0004.jpg' }, score: expect.closeTo(1 / Math.sqrt(1.25), 4) });
    expect(edges.map((e) => e.node.filename).sort()).toEqual(['IMG_0003.jpg', 'IMG_0004.jpg', 'bicycle-lane.jpg']);
    const other = await api.signUp();
    const foreign = await api.request(SimilarUploads, { id: ids['IMG_0001.jpg']! }, other.token);
    expect(foreign.data!.similarUploads.edges).toEqual([]);
  });

  it('computes cosine similarity correctly without pgvector (and with it, where installed)', async () => {
    const a = Array.from({ length: 64 }, (_, i) => Math.sin(i + 1));
    const b = Array.from({ length: 64 }, (_, i) => Math.cos(i * 0.7));
    const dot = a.reduce((s, x, i) => s + x * b[i]!, 0);
    const expected = dot / (Math.hypot(...a) * Math.hypot(...b));
    const { rows } = await sql<{ c: number }>`select darkroom_cosine(${a}::real[], ${b}::real[]) as c`.execute(app.ctx.db);
    expect(rows[0]!.c).toBeCloseTo(expected, 5);
    if (await hasPgvector(app.ctx.db)) {
      const v = await sql<{ c: number }>`select 1 - (${a}::real[]::vector <=> ${b}::real[]::vector) as c`.execute(app.ctx.db);
      expect(v.rows[0]!.c).toBeCloseTo(expected, 5);
    }
  });
});

describe('without a model server: full text only', () => {
  let app: TestApp;
  let api: Api;
  beforeAll(async () => {
    app = await startTestApp();
    api = client(app);
  });
  afterAll(() => app?.close());

  it('searches filenames and EXIF camera text', async () => {
    const { token } = await api.signUp();
    await upload(app, api, token, 'vacation-paris.jpg', await media.jpegWithExif());
    await upload(app, api, token, 'notes.png');
    expect(names(await search(api, token, 'canon'))).toEqual(['vacation-paris.jpg']);
    expect(names(await search(api, token, 'RF24-70mm'))).toEqual(['vacation-paris.jpg']);
    expect(names(await search(api, token, 'paris'))).toEqual(['vacation-paris.jpg']);
    expect(names(await search(api, token, 'bicycle'))).toEqual([]);
  });
});
