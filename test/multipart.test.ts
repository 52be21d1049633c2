import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GraphQLScalarType } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncomingFile, sanitizeFilename, useStreamingMultipart } from '../src/http/multipart.ts';
import type { MultipartLimits } from '../src/http/multipart.ts';
import { createStorage } from '../src/services/storage.ts';

const MUTATION = `mutation ($files: [File!]!) {
  inspect(files: $files) { filename byteSize sha256 format code message }
}`;

interface Info {
  filename: string;
  byteSize: number;
  sha256: string;
  format: string | null;
  code: string | null;
  message: string | null;
}

let storageDir: string;
let keepDir: string;
let kept = 0;
const servers: Server[] = [];

function schema() {
  return createSchema({
    typeDefs: `
      scalar File
      type FileInfo { filename: String! byteSize: Int! sha256: String! format: String code: String message: String }
      type Query { ok: Boolean }
      type Mutation { inspect(files: [File!]!): [FileInfo!]! }
    `,
    resolvers: {
      File: new GraphQLScalarType({ name: 'File', parseValue: (v) => v }),
      Mutation: {
        async inspect(_: unknown, { files }: { files: IncomingFile[] }) {
          return Promise.all(
            files.map(async (incoming) => {
              if (!(incoming instanceof IncomingFile)) throw new Error('not an IncomingFile');
              const f = await incoming.received;
              if (f.tempPath && !f.rejection) {
                await rename(f.tempPath, path.join(keepDir, String(kept++)));
                f.claimed = true;
              }
              return { ...f, format: f.detected?.format, code: f.rejection?.code, message: f.rejection?.message };
            }),
          );
        },
      },
    },
  });
}

const yogaWith = (limits: MultipartLimits) =>
  createYoga({
    schema: schema(),
    multipart: false,
    maskedErrors: false,
    logging: false,
    plugins: [useStreamingMultipart({ storage: createStorage(storageDir), limits })],
  });

async function start(limits: MultipartLimits): Promise<string> {
  const yoga = yogaWith(limits);
  const server = createServer(yoga);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

interface Upload {
  name: string;
  type: string;
  data: Uint8Array<ArrayBuffer>;
}

function uploadForm(files: Upload[]): FormData {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: MUTATION, variables: { files: files.map(() => null) } }));
  form.set('map', JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]]))));
  files.forEach((f, i) => form.set(String(i), new Blob([f.data], { type: f.type }), f.name));
  return form;
}

async function upload(url: string, files: Upload[]): Promise<Info[]> {
  const res = await fetch(url, { method: 'POST', body: uploadForm(files) });
  const body = (await res.json()) as { data?: { inspect: Info[] }; errors?: unknown };
  expect(body.errors).toBeUndefined();
  expect(res.status).toBe(200);
  return body.data!.inspect;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const incoming = () => readdir(path.join(storageDir, 'incoming')).catch(() => [] as string[]);
const image = async (fmt: 'png' | 'jpeg' | 'webp' | 'gif' | 'avif' | 'tiff') =>
  new Uint8Array(
    await sharp({ create: { width: 32, height: 32, channels: 3, background: 'red' } })
      .toFormat(fmt)
      .toBuffer(),
  );
/** A real PNG head followed by zero padding: detected as PNG, any size we like. */
const paddedPng = async (size: number) => {
  const out = new Uint8Array(size);
  out.set(await image('png'));
  return out;
};

describe('sanitizeFilename', () => {
  it('keeps a displayable basename only', () => {
    expect(sanitizeFilename('C:\\Users\\me\\IMG_1.HEIC')).toBe('IMG_1.HEIC');
    expect(sanitizeFilename(' ../../etc/pa\u0000ss\nwd ')).toBe('passwd');
    expect(sanitizeFilename('invoice\u202egpj.exe')).toBe('invoicegpj.exe');
    expect(sanitizeFilename('x'.repeat(300) + '.jpg')).toHaveLength(255);
    expect(sanitizeFilename(' \t ')).toBe('unnamed');
    expect(sanitizeFilename(undefined)).toBe('unnamed');
  });
});

describe('streaming multipart uploads', () => {
  let url: string;
  let bigUrl: string;
  let manyUrl: string;
  let png: Uint8Array<ArrayBuffer>;

  beforeAll(async () => {
    storageDir = await mkdtemp(path.join(tmpdir(), 'darkroom-storage-'));
    keepDir = await mkdtemp(path.join(tmpdir(), 'darkroom-kept-'));
    url = await start({ maxFiles: 4, maxFileBytes: 100_000, maxBatchBytes: 150_000 });
    bigUrl = await start({ maxFiles: 1, maxFileBytes: 300 * 2 ** 20, maxBatchBytes: 300 * 2 ** 20 });
    manyUrl = await start({ maxFiles: 4, maxFileBytes: 8 * 2 ** 20, maxBatchBytes: 32 * 2 ** 20 });
    png = await image('png');
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await rm(storageDir, { recursive: true, force: true });
    await rm(keepDir, { recursive: true, force: true });
  });

  it.each([
    ['png', 'jpeg', 'webp', 'gif'],
    ['avif', 'tiff'],
  ] as const)('accepts a batch starting with %s, hashing and storing the exact bytes', async (...formats) => {
    const files = await Promise.all(
      formats.map(async (fmt) => ({ name: `dir/../photo.${fmt}`, type: 'application/octet-stream', data: await image(fmt) })),
    );
    const infos = await upload(url, files);
    expect(infos.map((i) => i.format)).toEqual(formats);
    for (const [i, info] of infos.entries()) {
      const { data } = files[i]!;
      expect(info).toMatchObject({ filename: `photo.${formats[i]}`, code: null, byteSize: data.length, sha256: sha256(data) });
    }
    const last = await readFile(path.join(keepDir, String(kept - 1)));
    expect(sha256(last)).toBe(sha256(files.at(-1)!.data));
    expect(await incoming()).toEqual([]);
  });

  it('stores files written in several pieces byte for byte, one after another in a request', async () => {
    // Larger files than the spool's 256 KiB block go to the spool thread block by block, each
    // hashed and written while the next fills; the request's later files reuse the blocks.
    const sizes = [300 * 1024, 1300 * 1024 + 17, 5 * 1024, 3 * 2 ** 20 + 1];
    const files = sizes.map((n, i) => ({ name: `big${i}.png`, type: 'image/png', data: new Uint8Array(Buffer.concat([png, randomBytes(n)])) }));
    const before = kept;
    const infos = await upload(manyUrl, files);
    for (const [i, info] of infos.entries()) {
      expect(info).toMatchObject({ code: null, format: 'png', byteSize: files[i]!.data.length, sha256: sha256(files[i]!.data) });
    }
    const stored = await Promise.all(Array.from({ length: kept - before }, async (_, k) => sha256(await readFile(path.join(keepDir, String(before + k))))));
    expect(stored.sort()).toEqual(files.map((f) => sha256(f.data)).sort());
    expect(await incoming()).toEqual([]);
  });

  it('keeps concurrent large uploads apart: each stored and hashed as sent', async () => {
    // Every request's blocks go through the one spool thread, interleaved.
    const files = [2, 3, 5, 7].map((mib, i) => ({
      name: `c${i}.png`,
      type: 'image/png',
      data: new Uint8Array(Buffer.concat([png, randomBytes(mib * 2 ** 20 + i)])),
    }));
    const before = kept;
    const infos = (await Promise.all(files.map((f) => upload(manyUrl, [f])))).flat();
    for (const [i, info] of infos.entries()) {
      expect(info).toMatchObject({ code: null, byteSize: files[i]!.data.length, sha256: sha256(files[i]!.data) });
    }
    const stored = await Promise.all(Array.from({ length: kept - before }, async (_, k) => sha256(await readFile(path.join(keepDir, String(before + k))))));
    expect(stored.sort()).toEqual(files.map((f) => sha256(f.data)).sort());
    expect(await incoming()).toEqual([]);
  });

  it('decides the type by content, not by name or MIME type', async () => {
    const [evil] = await upload(url, [
      { name: 'evil.png', type: 'image/png', data: new TextEncoder().encode('<?php system($_GET["c"]); ?>') },
    ]);
    expect(evil).toMatchObject({ code: 'UNSUPPORTED_TYPE', filename: 'evil.png' });
    expect(evil!.message).toContain('detected text/plain');
    expect(await incoming()).toEqual([]);
  });

  it('rejects empty files', async () => {
    const [empty] = await upload(url, [{ name: 'empty.jpg', type: 'image/jpeg', data: new Uint8Array(0) }]);
    expect(empty!.code).toBe('EMPTY_FILE');
    expect(await incoming()).toEqual([]);
  });

  it('rejects an oversized file and still reads the next one', async () => {
    const infos = await upload(url, [
      { name: 'big.png', type: 'image/png', data: await paddedPng(100_001) },
      { name: 'exact.png', type: 'image/png', data: await paddedPng(100_000) },
    ]);
    expect(infos.map((i) => i.code)).toEqual(['FILE_TOO_LARGE', null]);
    expect(await incoming()).toEqual([]);
  });

  it('rejects files once the batch total is exceeded, and every file after', async () => {
    const infos = await upload(url, [
      { name: 'a.png', type: 'image/png', data: await paddedPng(60_000) },
      { name: 'b.png', type: 'image/png', data: await paddedPng(60_000) },
      { name: 'c.png', type: 'image/png', data: await paddedPng(60_000) },
      { name: 'd.png', type: 'image/png', data: png },
    ]);
    expect(infos.map((i) => i.code)).toEqual([null, null, 'BATCH_TOO_LARGE', 'BATCH_TOO_LARGE']);
    expect(await incoming()).toEqual([]);
  });

  it('rejects files beyond maxFiles', async () => {
    const files = Array.from({ length: 6 }, (_, i) => ({ name: `${i}.png`, type: 'image/png', data: png }));
    const infos = await upload(url, files);
    expect(infos.map((i) => i.code)).toEqual([null, null, null, null, 'TOO_MANY_FILES', 'TOO_MANY_FILES']);
    expect(await incoming()).toEqual([]);
  });

  it.each([
    ['invalid operations JSON', (f: FormData) => f.set('operations', '{"query": ')],
    ['missing map', (f: FormData) => f.delete('map')],
    ['a map path that does not exist', (f: FormData) => f.set('map', '{"0": ["variables.nope.0"]}')],
    ['operations over 1 MiB', (f: FormData) => f.set('operations', JSON.stringify({ query: ' '.repeat(2 ** 20) }))],
  ])('answers 400 BAD_MULTIPART_REQUEST for %s', async (_, mangle) => {
    const form = uploadForm([{ name: 'a.png', type: 'image/png', data: png }]);
    mangle(form);
    const res = await fetch(url, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe('BAD_MULTIPART_REQUEST');
    expect(await incoming()).toEqual([]);
  });

  it('also works in-process through yoga.fetch, reading request.body', async () => {
    const yoga = yogaWith({ maxFiles: 4, maxFileBytes: 100_000, maxBatchBytes: 150_000 });
    const res = await yoga.fetch('http://localhost/graphql', {
      method: 'POST',
      body: uploadForm([{ name: 'a.png', type: 'image/png', data: png }]),
    });
    const body = (await res.json()) as { data: { inspect: Info[] } };
    expect(body.data.inspect[0]).toMatchObject({ format: 'png', sha256: sha256(png) });
    expect(await incoming()).toEqual([]);
  });

  it('removes partial files when the client aborts mid-upload', async () => {
    const controller = new AbortController();
    let partial: string[] = [];
    const { stream } = multipartStream(await image('png'), 50, async () => {
      partial = await incoming();
      controller.abort();
    });
    await postStream(bigUrl, stream, controller.signal).catch(() => null);
    expect(partial).toHaveLength(1);
    for (let i = 0; i < 100 && (await incoming()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await incoming()).toEqual([]);
  });

  it('streams a 200 MB file without holding it in memory', { timeout: 120_000 }, async () => {
    const head = await image('png');
    // V8 frees socket and stream buffers lazily (its external-memory GC trigger is ~64 MB), so RSS
    // first climbs to a plateau whatever the body size; warm up so the delta reflects the upload.
    await (await postStream(bigUrl, multipartStream(head, 64).stream)).text();
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    const { stream, digest, size } = multipartStream(head, 200);
    const res = await postStream(bigUrl, stream);
    const body = (await res.json()) as { data: { inspect: Info[] } };
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const growthMb = (peak - baseline) / 2 ** 20;
    console.log(`RSS growth while streaming 200 MB: ${growthMb.toFixed(1)} MB`);
    expect(body.data.inspect[0]).toMatchObject({ code: null, format: 'png', byteSize: size(), sha256: digest() });
    expect(growthMb).toBeLessThan(60);
    expect(await incoming()).toEqual([]);
  });
});

const postStream = (url: string, body: ReadableStream<Uint8Array>, signal?: AbortSignal) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    body,
    duplex: 'half',
    signal,
  } as RequestInit);

const BOUNDARY = 'darkroom-test-boundary';

/**
 * A hand-built multipart body whose single file is `head` plus `mib` MiB of zeros, produced lazily
 * (one reused chunk) so the client side never holds the whole body.
 */
function multipartStream(head: Uint8Array, mib: number, onHalfway?: () => Promise<void>) {
  const enc = new TextEncoder();
  const zeros = new Uint8Array(2 ** 20);
  const hash = createHash('sha256').update(head);
  const preamble = enc.encode(
    [
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n`,
      JSON.stringify({ query: MUTATION, variables: { files: [null] } }),
      `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.files.0"]}`,
      `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="big.png"\r\n`,
      'Content-Type: image/png\r\n\r\n',
    ].join(''),
  );
  let sent = -1;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (sent === -1) {
          controller.enqueue(preamble);
          controller.enqueue(head);
        } else if (sent < mib) {
          hash.update(zeros);
          controller.enqueue(zeros);
          if (sent === Math.floor(mib / 2)) await onHalfway?.();
        } else {
          controller.enqueue(enc.encode(`\r\n--${BOUNDARY}--\r\n`));
          controller.close();
        }
        sent++;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, digest: () => hash.digest('hex'), size: () => head.length + mib * 2 ** 20 };
}
