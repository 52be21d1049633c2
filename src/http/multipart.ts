/**
 * GraphQL multipart request spec (https://github.com/jaydenseric/graphql-multipart-request-spec)
 * for Yoga, streaming every file straight to storage's incoming/ directory with busboy instead of
 * Yoga's built-in parser, which buffers whole files in memory.
 */
import busboy from 'busboy';
import type { FileInfo } from 'busboy';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { DETECTION_BYTES, describeUnsupported, detectImageType } from '../services/filetype.ts';
import type { DetectedType } from '../services/filetype.ts';
import type { Storage } from '../services/storage.ts';

export type { DetectedType } from '../services/filetype.ts';

export interface FileRejection {
  code: 'FILE_TOO_LARGE' | 'BATCH_TOO_LARGE' | 'TOO_MANY_FILES' | 'EMPTY_FILE' | 'UNSUPPORTED_TYPE' | 'UPLOAD_INCOMPLETE';
  message: string;
}

export interface MultipartLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxBatchBytes: number;
}

type ReceivedFileInit = Omit<ReceivedFile, 'claimed'>;

/** One uploaded file as the resolvers see it: either stored at tempPath, or rejected with a reason. */
export class ReceivedFile {
  readonly filename: string;
  readonly clientMimeType: string;
  /** null when rejected (any partial file is already deleted). */
  readonly tempPath: string | null;
  readonly byteSize: number;
  /** Hex sha256 of the content; '' when rejected. */
  readonly sha256: string;
  readonly detected: DetectedType | null;
  readonly rejection: FileRejection | null;
  /** Set by the resolver once it moved tempPath into permanent storage; unclaimed files are deleted. */
  claimed = false;

  constructor(init: ReceivedFileInit) {
    this.filename = init.filename;
    this.clientMimeType = init.clientMimeType;
    this.tempPath = init.tempPath;
    this.byteSize = init.byteSize;
    this.sha256 = init.sha256;
    this.detected = init.detected;
    this.rejection = init.rejection;
  }
}

interface Options {
  storage: Storage;
  limits: MultipartLimits;
  logger?: { warn(obj: object, msg: string): void };
}

type ParseResult = GraphQLParams | GraphQLParams[] | Response;

const FIELD_BYTES = 1024 * 1024;

const isMultipart = (request: Request) =>
  request.method === 'POST' && /^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '');

export function useStreamingMultipart(opts: Options): Plugin {
  const bodies = new WeakMap<Request, Readable | null>();
  const requestFiles = new WeakMap<Request, ReceivedFile[]>();
  return {
    onRequest({ request, serverContext, setRequest, fetchAPI }) {
      if (!isMultipart(request)) return;
      // Prefer the Node request itself; request.body is only read when there is none (yoga.fetch).
      const req = (serverContext as { req?: unknown }).req;
      const body = req instanceof Readable ? req : request.body && Readable.from(request.body, { objectMode: false });
      // Yoga's built-in maxRequestBodySize check reads request.body (consuming the Node request in
      // parallel with busboy) and rejects on content-length; give Yoga a body-less copy instead.
      // Our own limits bound what is stored.
      const headers = new fetchAPI.Headers(request.headers);
      headers.delete('content-length');
      const bodiless = new fetchAPI.Request(request.url, { method: 'POST', headers, signal: request.signal });
      bodies.set(bodiless, body);
      setRequest(bodiless);
    },
    onRequestParse({ request, setRequestParser, fetchAPI }) {
      if (!isMultipart(request)) return;
      setRequestParser(async () => {
        const bad = (message: string) =>
          fetchAPI.Response.json(
            { errors: [{ message, extensions: { code: 'BAD_MULTIPART_REQUEST' } }] },
            { status: 400 },
          );
        const body = bodies.get(request);
        if (!body) return bad('Multipart request has no body');
        const files: ReceivedFile[] = [];
        requestFiles.set(request, files);
        return parseMultipart(body, request.headers.get('content-type')!, files, opts, bad);
      });
    },
    async onResponse({ request }) {
      const files = requestFiles.get(request);
      if (!files) return;
      requestFiles.delete(request);
      await Promise.all(files.map((f) => (f.tempPath && !f.claimed ? rm(f.tempPath, { force: true }) : null)));
    },
  };
}

/** Client-supplied names are only ever displayed, never used in paths. */
export function sanitizeFilename(name: string | undefined): string {
  const base = (name ?? '').split(/[/\\]/).pop() ?? '';
  // Control characters, plus bidi overrides that could make "gpj.exe" display as "exe.jpg".
  const stripped = base.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, '').trim();
  const clean = Array.from(stripped).slice(0, 255).join('').trim();
  return clean || 'unnamed';
}

class BadRequest extends Error {}

async function parseMultipart(
  source: Readable,
  contentType: string,
  files: ReceivedFile[],
  { storage, limits, logger }: Options,
  bad: (message: string) => Response,
): Promise<ParseResult> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      limits: {
        // busboy flags a file as truncated once it reaches fileSize, so +1 lets exactly-max files through.
        fileSize: limits.maxFileBytes + 1,
        files: limits.maxFiles,
        fieldSize: FIELD_BYTES,
        fields: 10,
        parts: limits.maxFiles + 10,
      },
    });
  } catch (err) {
    return bad(`Invalid multipart request: ${(err as Error).message}`);
  }

  const batch: BatchState = { bytes: 0, exceeded: false, tempPaths: new Set() };
  const received = new Map<string, ReceivedFile>();
  const seen = new Set<string>();
  let operations: unknown;
  let map: Map<string, string[]> | undefined;
  let filesLimitHit = false;
  let failure: Error | undefined;
  let queue = Promise.resolve();

  await new Promise<void>((resolve) => {
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      source.unpipe(parser);
      parser.destroy();
      source.resume(); // discard the rest so the connection can still carry the 400
      resolve();
    };
    parser.on('field', (name, value, info) => {
      try {
        if (name === 'operations') {
          if (operations !== undefined) throw new BadRequest('Duplicate operations field');
          if (info.valueTruncated) throw new BadRequest(`The operations field exceeds ${FIELD_BYTES} bytes`);
          operations = parseJson(value, 'operations');
          const ops = Array.isArray(operations) ? operations : [operations];
          if (ops.length === 0 || !ops.every(isObject)) {
            throw new BadRequest('The operations field must be an object or a non-empty array of objects');
          }
        } else if (name === 'map') {
          if (operations === undefined) throw new BadRequest('The operations field must precede map');
          if (map) throw new BadRequest('Duplicate map field');
          if (info.valueTruncated) throw new BadRequest(`The map field exceeds ${FIELD_BYTES} bytes`);
          map = parseMap(parseJson(value, 'map'), operations);
        }
      } catch (err) {
        fail(err as Error);
      }
    });
    parser.on('file', (name, stream, info) => {
      // A queued stream errors when the request fails before its turn; that is handled via fail().
      stream.on('error', () => {});
      if (failure || !map?.has(name) || seen.has(name)) {
        stream.resume(); // not part of the map: skip its bytes
        if (!map) fail(new BadRequest('The map field must precede any file'));
        return;
      }
      seen.add(name);
      // Chained so files are handled strictly in arrival order; busboy holds later parts meanwhile.
      queue = queue.then(() =>
        receiveFile(stream, info, storage, limits, batch).then(
          (file) => void received.set(name, file),
          (err: Error) => fail(err),
        ),
      );
    });
    parser.on('filesLimit', () => (filesLimitHit = true));
    parser.on('partsLimit', () => (filesLimitHit = true));
    parser.on('error', (err) => fail(new BadRequest(`Malformed multipart body: ${(err as Error).message}`)));
    parser.on('finish', resolve);
    finished(source).catch((err: Error) => fail(err));
    source.pipe(parser);
  });

  // Wait for every file to be flushed, including any queued while we waited.
  for (let settled = queue; ; settled = queue) {
    await settled;
    if (settled === queue) break;
  }

  if (!failure && (!operations || !map)) failure = new BadRequest('Missing operations or map field');
  if (failure) {
    // Everything received so far goes, accepted or not: the request as a whole failed.
    await Promise.all([...batch.tempPaths].map((p) => rm(p, { force: true })));
    logger?.warn({ err: failure }, 'multipart request rejected');
    return bad(failure instanceof BadRequest ? failure.message : 'Upload aborted or unreadable');
  }

  const entries = [...map!].map(([name, paths]) => {
    const file =
      received.get(name) ??
      new ReceivedFile({
        filename: 'unnamed',
        clientMimeType: '',
        tempPath: null,
        byteSize: 0,
        sha256: '',
        detected: null,
        rejection: filesLimitHit
          ? { code: 'TOO_MANY_FILES', message: `At most ${limits.maxFiles} files per request` }
          : { code: 'UPLOAD_INCOMPLETE', message: `No file was received for "${name}"` },
      });
    files.push(file); // from here on, onResponse deletes it unless claimed
    return { file, paths };
  });
  try {
    for (const { file, paths } of entries) for (const path of paths) setPath(operations, path, file);
  } catch (err) {
    return bad((err as Error).message); // e.g. one map path nested inside another
  }
  return operations as GraphQLParams | GraphQLParams[];
}

interface BatchState {
  /** Bytes kept so far: files rejected for their own reasons are subtracted again. */
  bytes: number;
  exceeded: boolean;
  /** Every temp file this request created, for cleanup when the request fails. */
  tempPaths: Set<string>;
}

async function receiveFile(
  stream: Readable & { truncated?: boolean },
  info: FileInfo,
  storage: Storage,
  limits: MultipartLimits,
  batch: BatchState,
): Promise<ReceivedFile> {
  const base = { filename: sanitizeFilename(info.filename), clientMimeType: info.mimeType };
  const batchRejection: FileRejection = {
    code: 'BATCH_TOO_LARGE',
    message: `The files of one request may total at most ${limits.maxBatchBytes} bytes`,
  };
  let size = 0;
  const rejected = (rejection: FileRejection) =>
    new ReceivedFile({ ...base, tempPath: null, byteSize: size, sha256: '', detected: null, rejection });

  if (batch.exceeded) {
    for await (const chunk of stream) size += (chunk as Buffer).length;
    return rejected(batchRejection);
  }

  const tempPath = await storage.incomingPath();
  batch.tempPaths.add(tempPath);
  const hash = createHash('sha256');
  const head: Buffer[] = [];
  let kept = 0;
  let detected: DetectedType | null = null;
  let rejection: FileRejection | null = null;
  const reject = (r: FileRejection) => {
    rejection ??= r;
    batch.bytes -= kept;
    kept = 0;
  };
  const tooLarge = (): FileRejection => ({
    code: 'FILE_TOO_LARGE',
    message: `Files may be at most ${limits.maxFileBytes} bytes`,
  });
  // Detects the type from the buffered head; returns the head to write if the file is acceptable.
  const decide = async (): Promise<Buffer | null> => {
    const buf = Buffer.concat(head);
    head.length = 0;
    detected = await detectImageType(buf);
    if (detected) return buf;
    reject({ code: 'UNSUPPORTED_TYPE', message: `Not a supported image: ${await describeUnsupported(buf)}` });
    return null;
  };

  try {
    await pipeline(
      stream,
      async function* (chunks: AsyncIterable<Buffer>) {
        let headBytes = 0;
        for await (const chunk of chunks) {
          size += chunk.length;
          if (rejection) continue; // keep draining so busboy reaches the next part
          if (stream.truncated) {
            reject(tooLarge());
            continue;
          }
          kept += chunk.length;
          batch.bytes += chunk.length;
          if (batch.bytes > limits.maxBatchBytes) {
            batch.exceeded = true;
            reject(batchRejection);
            continue;
          }
          hash.update(chunk);
          if (detected) {
            yield chunk;
          } else {
            head.push(chunk);
            headBytes += chunk.length;
            if (headBytes >= DETECTION_BYTES) {
              const buf = await decide();
              if (buf) yield buf;
            }
          }
        }
        if (stream.truncated) reject(tooLarge());
        else if (size === 0) reject({ code: 'EMPTY_FILE', message: 'The file is empty' });
        else if (!rejection && !detected) {
          const buf = await decide();
          if (buf) yield buf;
        }
      },
      createWriteStream(tempPath),
    );
  } catch (err) {
    await rm(tempPath, { force: true });
    batch.tempPaths.delete(tempPath);
    throw err;
  }

  if (rejection) {
    await rm(tempPath, { force: true });
    batch.tempPaths.delete(tempPath);
    return rejected(rejection);
  }
  return new ReceivedFile({ ...base, tempPath, byteSize: size, sha256: hash.digest('hex'), detected, rejection: null });
}

function parseJson(value: string, field: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new BadRequest(`The ${field} field is not valid JSON`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function parseMap(value: unknown, operations: unknown): Map<string, string[]> {
  if (!isObject(value) || Array.isArray(value)) throw new BadRequest('The map field must be a JSON object');
  const map = new Map<string, string[]>();
  for (const [name, paths] of Object.entries(value)) {
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string')) {
      throw new BadRequest(`map entry "${name}" must be a non-empty array of paths`);
    }
    for (const path of paths) setPath(operations, path, undefined, true);
    map.set(name, paths as string[]);
  }
  return map;
}

/** Sets an object path like "variables.files.0" ("0.variables.file" in a batch); dryRun only checks it exists. */
function setPath(root: unknown, path: string, value: unknown, dryRun = false): void {
  const keys = path.split('.');
  let parent = root;
  for (const [i, key] of keys.entries()) {
    if (!isObject(parent) || key === '__proto__' || !Object.hasOwn(parent, key)) {
      throw new BadRequest(`map path "${path}" does not exist in operations`);
    }
    if (i < keys.length - 1) parent = parent[key];
    else if (!dryRun) parent[key] = value;
  }
}
