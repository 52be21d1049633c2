import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AnalysisError, type Analyzer, analyzeMedia, embedQuery } from '../src/services/analyzer.ts';
import { createOllamaAnalyzer } from '../src/services/ollama.ts';
import { DEFAULT_DESCRIPTION, fakeEmbedding, type ModelServer, startModelServer } from './helpers/model-server.ts';

let server: ModelServer;
let analyzer: Analyzer;
let photo: Buffer;
const input = () => ({ images: [photo], kind: 'image' as const });
const fast = { retryDelayMs: 1 };
const rejection = (p: Promise<unknown>) => p.then(() => expect.fail('expected rejection'), (err: unknown) => err);
const paths = () => server.requests.map((r) => r.path);

beforeAll(async () => {
  photo = await sharp({ create: { width: 32, height: 24, channels: 3, background: 'red' } }).jpeg().toBuffer();
});
beforeEach(async () => {
  server = await startModelServer();
  analyzer = createOllamaAnalyzer({ url: server.url, visionModel: 'llava:test', embedModel: 'embed:test', timeoutMs: 5000 });
});
afterEach(async () => {
  await server.close();
});

describe('analyzeMedia with the Ollama provider', () => {
  it('describes, then embeds the description, reporting each stage as it starts', async () => {
    const stages: [string, number][] = [];
    const result = await analyzeMedia(analyzer, input(), { onStage: (s, done) => void stages.push([s, done]) });
    expect(result).toEqual({ description: DEFAULT_DESCRIPTION, embedding: fakeEmbedding(DEFAULT_DESCRIPTION) });
    expect(stages).toEqual([['describing', 0], ['embedding', 0.8]]);
    expect(paths()).toEqual(['/api/generate', '/api/embed']);
    const [generate, embed] = server.requests;
    expect(generate!.body).toMatchObject({ model: 'llava:test', stream: false, images: [photo.toString('base64')] });
    expect(generate!.body.prompt).toMatch(/photo/);
    expect(embed!.body).toEqual({ model: 'embed:test', input: DEFAULT_DESCRIPTION });
  });

  it('sends every frame of a video, with a prompt that says so', async () => {
    await analyzeMedia(analyzer, { images: [photo, photo, photo], kind: 'video' });
    expect(server.requests[0]!.body.images).toHaveLength(3);
    expect(server.requests[0]!.body.prompt).toMatch(/frames from one video/);
  });

  it('retries a failed description once within the stage', async () => {
    server.setBehavior(({ path, n }) => (path === '/api/generate' && n === 1 ? { status: 500, body: { error: 'model crashed' } } : undefined));
    await expect(analyzeMedia(analyzer, input(), fast)).resolves.toMatchObject({ description: DEFAULT_DESCRIPTION });
    expect(paths()).toEqual(['/api/generate', '/api/generate', '/api/embed']);
  });

  it('retries a failed embedding once within the stage, without describing again', async () => {
    server.setBehavior(({ path, n }) => (path === '/api/embed' && n === 1 ? { status: 503, body: { error: 'loading' } } : undefined));
    await expect(analyzeMedia(analyzer, input(), fast)).resolves.toMatchObject({ embedding: fakeEmbedding(DEFAULT_DESCRIPTION) });
    expect(paths()).toEqual(['/api/generate', '/api/embed', '/api/embed']);
  });

  it('fails the stage when the retry fails too', async () => {
    server.setBehavior(({ path }) => (path === '/api/generate' ? { status: 500, body: { error: 'model crashed' } } : undefined));
    const err = await rejection(analyzeMedia(analyzer, input(), fast));
    expect(err).toBeInstanceOf(AnalysisError);
    expect(err).toMatchObject({ retryable: true, message: '/api/generate returned HTTP 500: model crashed' });
    expect(paths()).toEqual(['/api/generate', '/api/generate']);
  });

  it('does not retry what cannot succeed: a missing model', async () => {
    server.setBehavior(({ path }) =>
      path === '/api/generate' ? { status: 404, body: { error: "model 'llava:test' not found" } } : undefined,
    );
    const err = await rejection(analyzeMedia(analyzer, input(), fast));
    expect(err).toMatchObject({ retryable: false, message: expect.stringContaining('not found') });
    expect(paths()).toEqual(['/api/generate']);
  });

  it.each([
    ['repetitive', 'cat cat cat cat cat cat'],
    ['repetitive', 'the cat sat the cat sat the cat sat the cat sat'],
    ['empty', '   '],
    ['too short', 'A cat'],
    ['gibberish', '#### 0x3f 1234 %%%% ----'],
    ['gibberish', 'xkcdqwrtz bvnmplkjh zxcvbnm qwrtypsdf ghjklzxc a photo'],
    ['too long', 'A very long description. '.repeat(100)],
  ])('rejects a %s description, asks once more, and gives up if it stays unusable', async (problem, response) => {
    server.setBehavior(({ path }) => (path === '/api/generate' ? { status: 200, body: { response, done: true } } : undefined));
    const err = await rejection(analyzeMedia(analyzer, input(), fast));
    expect(err).toBeInstanceOf(AnalysisError);
    expect(err).toMatchObject({ retryable: true, message: `Model returned an unusable description (${problem})` });
    expect(paths()).toEqual(['/api/generate', '/api/generate']);
  });

  it('accepts a good second answer after an unusable first one', async () => {
    server.setBehavior(({ path, n }) =>
      path === '/api/generate' && n === 1 ? { status: 200, body: { response: 'dog dog dog dog dog dog dog', done: true } } : undefined,
    );
    await expect(analyzeMedia(analyzer, input(), fast)).resolves.toMatchObject({ description: DEFAULT_DESCRIPTION });
  });

  it('accepts descriptions in other scripts', async () => {
    const response = 'Красный велосипед стоит у кирпичной стены на солнечной улице.';
    server.setBehavior(({ path }) => (path === '/api/generate' ? { status: 200, body: { response, done: true } } : undefined));
    await expect(analyzeMedia(analyzer, input(), fast)).resolves.toMatchObject({ description: response });
  });

  it.each([
    ['with a null', [[0.1, null]]],
    ['empty', [[]]],
    ['all zeros', [[0, 0, 0]]],
    ['missing', []],
  ])('rejects an embedding that is %s', async (_, embeddings) => {
    server.setBehavior(({ path }) => (path === '/api/embed' ? { status: 200, body: { embeddings } } : undefined));
    await expect(analyzeMedia(analyzer, input(), fast)).rejects.toThrow('Model returned an invalid embedding');
  });

  it('times out a stalled model, retryably', async () => {
    const slow = createOllamaAnalyzer({ url: server.url, visionModel: 'v', embedModel: 'e', timeoutMs: 100 });
    server.setBehavior(() => ({ status: 200, body: { response: DEFAULT_DESCRIPTION }, delayMs: 1000 }));
    const err = await rejection(analyzeMedia(slow, input(), fast));
    expect(err).toMatchObject({ name: 'AnalysisError', retryable: true, message: expect.stringContaining('timed out') });
    expect(paths()).toEqual(['/api/generate', '/api/generate']);
  });

  it('reports an unreachable server as retryable', async () => {
    await server.close();
    const err = await rejection(analyzeMedia(analyzer, input(), fast));
    expect(err).toMatchObject({ name: 'AnalysisError', retryable: true, message: expect.stringContaining('ECONNREFUSED') });
    server = await startModelServer(); // afterEach closes it
  });

  it('passes the caller’s abort reason through untouched, without retrying', async () => {
    server.setBehavior(() => ({ status: 200, body: { response: DEFAULT_DESCRIPTION }, delayMs: 1000 }));
    const controller = new AbortController();
    const reason = new Error('job cancelled');
    setTimeout(() => controller.abort(reason), 50);
    await expect(analyzeMedia(analyzer, input(), { signal: controller.signal })).rejects.toBe(reason);
    expect(paths()).toEqual(['/api/generate']);
  });
});

describe('embedQuery', () => {
  it('embeds a search query, or gives null when the model cannot', async () => {
    expect(await embedQuery(analyzer, 'bicycle')).toEqual(fakeEmbedding('bicycle'));
    server.setBehavior(() => ({ status: 500, body: { error: 'down' } }));
    expect(await embedQuery(analyzer, 'bicycle')).toBeNull();
  });
});
