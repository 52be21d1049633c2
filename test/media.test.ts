import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AnalysisError, createOllamaAnalyzer } from '../src/services/analyzer.ts';
import type { Analyzer } from '../src/services/analyzer.ts';
import { createThumbnail, MediaError } from '../src/services/media.ts';
import * as fixtures from './helpers/images.ts';
import { DEFAULT_DESCRIPTION, fakeEmbedding, startModelServer } from './helpers/model-server.ts';
import type { ModelServer } from './helpers/model-server.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'darkroom-media-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCounter = 0;
async function file(data: Buffer | Promise<Buffer>, ext: string): Promise<string> {
  const p = path.join(dir, `f${++fileCounter}.${ext}`);
  await writeFile(p, await data);
  return p;
}

describe('createThumbnail', () => {
  it.each([
    ['png', () => fixtures.png({ width: 640, height: 480 }), 'png'],
    ['jpeg', () => fixtures.jpeg({ width: 640, height: 480 }), 'jpg'],
    ['webp', () => fixtures.webp({ width: 640, height: 480 }), 'webp'],
    ['gif', () => fixtures.gif({ width: 640, height: 480 }), 'gif'],
  ] as const)('turns a %s into a webp thumbnail that fits 256 px', async (format, make, ext) => {
    const result = await createThumbnail(await file(make(), ext));
    expect(result).toMatchObject({ width: 640, height: 480, format });
    expect(result.thumbnail).toMatchObject({ width: 256, height: 192 });
    const meta = await sharp(result.thumbnail.data).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 256, height: 192 });
  });

  it('never enlarges small images', async () => {
    const result = await createThumbnail(await file(fixtures.png({ width: 64, height: 48 }), 'png'));
    expect(result.thumbnail).toMatchObject({ width: 64, height: 48 });
  });

  it('applies EXIF orientation to the reported size and the thumbnail pixels', async () => {
    const input = await fixtures.jpegWithOrientation({ width: 300, height: 200, orientation: 6 });
    // Sanity-check the fixture: stored pixels are landscape, red on the left.
    expect(await fixtures.dominantColorAt(input, 0.25, 0.5)).toBe('red');

    const result = await createThumbnail(await file(input, 'jpg'));
    expect(result).toMatchObject({ width: 200, height: 300, format: 'jpeg' });
    expect(result.thumbnail).toMatchObject({ width: 171, height: 256 });
    // Orientation 6 = rotate 90° clockwise, so the left (red) half becomes the top.
    expect(await fixtures.dominantColorAt(result.thumbnail.data, 0.5, 0.2)).toBe('red');
    expect(await fixtures.dominantColorAt(result.thumbnail.data, 0.5, 0.8)).toBe('blue');
  });

  it('strips metadata from the thumbnail', async () => {
    const result = await createThumbnail(await file(fixtures.jpegWithOrientation(), 'jpg'));
    const meta = await sharp(result.thumbnail.data).metadata();
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
  });

  it('rejects a truncated PNG with a readable message', async () => {
    const promise = createThumbnail(await file(fixtures.truncatedPng(), 'png'));
    await expect(promise).rejects.toBeInstanceOf(MediaError);
    await expect(promise).rejects.toThrow(/^Could not decode image: \S/);
  });

  it('rejects bytes that are not an image', async () => {
    await expect(createThumbnail(await file(fixtures.corruptFile(), 'jpg'))).rejects.toThrow('Not a supported image format');
  });

  it('rejects with the abort reason when already aborted', async () => {
    const reason = new Error('job cancelled');
    const input = await file(fixtures.png(), 'png');
    await expect(createThumbnail(input, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('rejects with the abort reason when aborted mid-flight', async () => {
    const input = await file(fixtures.png({ width: 2000, height: 2000 }), 'png');
    const controller = new AbortController();
    const reason = new Error('job cancelled');
    const promise = createThumbnail(input, { signal: controller.signal });
    controller.abort(reason);
    await expect(promise).rejects.toBe(reason);
  });
});

describe('createOllamaAnalyzer', () => {
  let server: ModelServer;
  let analyzer: Analyzer;
  let imagePath: string;

  beforeAll(async () => {
    imagePath = await file(fixtures.jpegWithOrientation({ width: 3000, height: 2000 }), 'jpg');
  });
  beforeEach(async () => {
    server = await startModelServer();
    analyzer = createOllamaAnalyzer({ url: server.url, visionModel: 'llava:test', embedModel: 'embed:test', timeoutMs: 5000 });
  });
  afterEach(async () => {
    await server.close();
  });

  const rejection = (p: Promise<unknown>) => p.then(() => expect.fail('expected rejection'), (err: unknown) => err);

  it('describes then embeds, reporting stages', async () => {
    const stages: [string, number][] = [];
    const result = await analyzer.analyze(imagePath, { onStage: (s, p) => stages.push([s, p]) });
    expect(result).toEqual({ description: DEFAULT_DESCRIPTION, embedding: fakeEmbedding(DEFAULT_DESCRIPTION) });
    expect(stages).toEqual([['describing', 0], ['embedding', 90], ['embedding', 100]]);
  });

  it('sends the configured models and a downscaled, oriented JPEG', async () => {
    await analyzer.analyze(imagePath);
    expect(server.requests.map((r) => r.path)).toEqual(['/api/generate', '/api/embed']);
    const [generate, embed] = server.requests;
    expect(generate!.body).toMatchObject({ model: 'llava:test', stream: false, prompt: expect.stringMatching(/\w/) });
    expect(generate!.body.images).toHaveLength(1);
    const image = Buffer.from(generate!.body.images[0], 'base64');
    const meta = await sharp(image).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 683, height: 1024 });
    expect(embed!.body).toEqual({ model: 'embed:test', input: DEFAULT_DESCRIPTION });
  });

  it('turns an HTTP 500 into a retryable AnalysisError', async () => {
    server.setBehavior(({ path, n }) =>
      path === '/api/generate' && n === 1 ? { status: 500, body: { error: 'model crashed' } } : undefined,
    );
    const err = await rejection(analyzer.analyze(imagePath));
    expect(err).toBeInstanceOf(AnalysisError);
    expect(err).toMatchObject({ retryable: true, message: expect.stringContaining('500') });
    expect((err as Error).message).toContain('model crashed');
    // The next attempt goes through.
    await expect(analyzer.analyze(imagePath)).resolves.toMatchObject({ description: DEFAULT_DESCRIPTION });
  });

  it.each([
    ['repetitive', 'cat cat cat cat cat cat'],
    ['repetitive', 'the cat sat the cat sat the cat sat the cat sat'],
    ['empty', '   '],
    ['too short', 'A cat'],
    ['gibberish', '#### 0x3f 1234 %%%% ----'],
    ['too long', 'A very long description. '.repeat(100)],
  ])('rejects a %s description', async (problem, response) => {
    server.setBehavior(({ path }) => (path === '/api/generate' ? { status: 200, body: { response, done: true } } : undefined));
    const err = await rejection(analyzer.analyze(imagePath));
    expect(err).toBeInstanceOf(AnalysisError);
    expect(err).toMatchObject({ retryable: true, message: `Model returned an unusable description (${problem})` });
    expect(server.requests.some((r) => r.path === '/api/embed')).toBe(false);
  });

  it('rejects a malformed embedding', async () => {
    server.setBehavior(({ path }) => (path === '/api/embed' ? { status: 200, body: { embeddings: [[0.1, null]] } } : undefined));
    await expect(analyzer.analyze(imagePath)).rejects.toThrow('Model returned an invalid embedding');
  });

  it('times out a stalled model as retryable', async () => {
    const slow = createOllamaAnalyzer({ url: server.url, visionModel: 'v', embedModel: 'e', timeoutMs: 100 });
    server.setBehavior(() => ({ status: 200, body: { response: DEFAULT_DESCRIPTION }, delayMs: 1000 }));
    const err = await rejection(slow.analyze(imagePath));
    expect(err).toMatchObject({ name: 'AnalysisError', retryable: true, message: expect.stringContaining('timed out') });
  });

  it('reports an unreachable server as retryable', async () => {
    await server.close();
    const err = await rejection(analyzer.analyze(imagePath));
    expect(err).toMatchObject({ name: 'AnalysisError', retryable: true, message: expect.stringContaining('ECONNREFUSED') });
    server = await startModelServer(); // afterEach closes it
  });

  it('passes the caller abort reason through untouched', async () => {
    server.setBehavior(() => ({ status: 200, body: { response: DEFAULT_DESCRIPTION }, delayMs: 1000 }));
    const controller = new AbortController();
    const reason = new Error('job cancelled');
    setTimeout(() => controller.abort(reason), 50);
    await expect(analyzer.analyze(imagePath, { signal: controller.signal })).rejects.toBe(reason);
  });

  it('marks an undecodable image as not retryable', async () => {
    const err = await rejection(analyzer.analyze(await file(fixtures.corruptFile(), 'jpg')));
    expect(err).toMatchObject({ name: 'AnalysisError', retryable: false });
    expect(server.requests).toHaveLength(0);
  });
});
