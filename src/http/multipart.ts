/**
 * GraphQL multipart request spec (https://github.com/jaydenseric/graphql-multipart-request-spec)
 * for Yoga, streaming every file straight to storage's incoming/ directory with busboy instead of
 * Yoga's built-in parser, which buffers whole files in memory.
 */
import busboy from 'busboy';
import type { FileInfo } from 'busboy';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { DETECTION_BYTES, describeUnsupported, detectImageType } from '../services/filetype.ts';
import type { DetectedType } from '../services/filetype.ts';
import type { Storage } from '../services/storage.ts';
import { type InspectionCode, inspectFile } from './inspect.ts';
import { Spool } from './spool.ts';

export type { DetectedType } from '../services/filetype.ts';

export interface FileRejection {
  code:
    | 'FILE_TOO_LARGE'
    | 'BATCH_TOO_LARGE'
    | 'TOO_MANY_FILES'
    | 'EMPTY_FILE'
    | 'UNSUPPORTED_TYPE'
    | 'UPLOAD_INCOMPLETE'
    | InspectionCode;
  message: string;
}

export interface MultipartLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxBatchBytes: number;
  /** Checked from the header; absent means unchecked here (the worker's sharp limit still applies). */
  maxImagePixels?: number;
  maxAnimationFrames?: number;
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

/**
 * A file of the request as resolvers get it. The operation runs as soon as the operations and
 * map fields have arrived, while the files still stream in: `received` settles once this file
 * has been read whole (or refused), `requestEnded` once the whole body has. Both reject with an
 * UploadFailed when the request as a whole fails (aborted, malformed, too large, too slow): the
 * files still arriving are deleted, and those the operation already took are its to keep.
 */
export class IncomingFile {
  readonly received: Promise<ReceivedFile>;
  readonly requestEnded: Promise<void>;
  constructor(received: Promise<ReceivedFile>, requestEnded: Promise<void>) {
    this.received = received;
    this.requestEnded = requestEnded;
  }
}

/** The request as a whole failed after its operation had started. */
export class UploadFailed extends Error {
  readonly status: number;
  readonly code: string;
  constructor(message: string, status: number, code: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

interface Options {
  storage: Storage;
  limits: MultipartLimits;
  logger?: { warn(obj: object, msg: string): void };
  /** A request that sends no byte for this long is cut off with 408 (slow-upload attacks). */
  idleTimeoutMs?: number;
  /**
   * The uploading user's id from the request's credentials, or null. When given, anonymous
   * requests are refused before their body is read, and each user streams at most
   * `maxConcurrentPerUser` uploads at once.
   */
  authorize?: (request: Request) => Promise<string | null>;
  maxConcurrentPerUser?: number;
}

type ParseResult = GraphQLParams | GraphQLParams[] | Response;

const FIELD_BYTES = 1024 * 1024;
// Bytes read but not kept (refused files, skipped parts) allowed per request before reading stops,
// so an oversized or refused file cannot keep the connection busy. Fields and part headers count too.
const WASTE_BYTES = 16 * 1024 * 1024;
const wasteBudget = (limits: MultipartLimits) => Math.min(WASTE_BYTES, limits.maxFileBytes) + 4 * FIELD_BYTES;
/** The most a request may send: every file kept, plus the waste budget. */
export const maxRequestBytes = (limits: MultipartLimits) => limits.maxBatchBytes + wasteBudget(limits);

const isMultipart = (request: Request) =>
  request.method === 'POST' && /^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '');

export function useStreamingMultipart(opts: Options): Plugin {
  const bodies = new WeakMap<Request, { body: Readable | null; declaredLength: string | null }>();
  const requestFiles = new WeakMap<Request, { files: ReceivedFile[]; settled: Promise<void> }>();
  const streaming = new Map<string, number>();
  const track = (userId: string, delta: number) => {
    const n = (streaming.get(userId) ?? 0) + delta;
    if (n > 0) streaming.set(userId, n);
    else streaming.delete(userId);
  };
  return {
    onRequest({ request, serverContext, setRequest, fetchAPI }) {
      if (!isMultipart(request)) return;
      // Prefer the Node request itself; request.body is only read when there is none (yoga.fetch).
      const req = (serverContext as { req?: unknown }).req;
      const body = req instanceof Readable ? req : request.body && Readable.from(request.body, { objectMode: false });
      // Yoga's built-in maxRequestBodySize check reads request.body (consuming the Node request in
      // parallel with busboy) and rejects on content-length; give Yoga a body-less copy instead.
      // Our own limits bound what is read and stored.
      const headers = new fetchAPI.Headers(request.headers);
      headers.delete('content-length');
      const bodiless = new fetchAPI.Request(request.url, { method: 'POST', headers, signal: request.signal });
      bodies.set(bodiless, { body, declaredLength: request.headers.get('content-length') });
      setRequest(bodiless);
    },
    onRequestParse({ request, setRequestParser, fetchAPI }) {
      if (!isMultipart(request)) return;
      setRequestParser(async () => {
        const bad: Bad = (message, status = 400, code = 'BAD_MULTIPART_REQUEST') =>
          fetchAPI.Response.json({ errors: [{ message, extensions: { code } }] }, { status });
        const { body, declaredLength } = bodies.get(request) ?? { body: null, declaredLength: null };
        if (!body) return bad('Multipart request has no body');
        // Refused before a byte is read; the server closes the connection instead of draining it.
        if (Number(declaredLength) > maxRequestBytes(opts.limits)) {
          return bad(`The request body may be at most ${maxRequestBytes(opts.limits)} bytes`, 413, 'REQUEST_TOO_LARGE');
        }
        const userId = opts.authorize ? await opts.authorize(request) : undefined;
        if (userId === null) return bad('Authentication required: send Authorization: Bearer <token>', 401, 'UNAUTHENTICATED');
        const max = opts.maxConcurrentPerUser ?? Infinity;
        if (userId && (streaming.get(userId) ?? 0) >= max) {
          return bad(`At most ${max} uploads may stream at once; wait for one to finish`, 429, 'TOO_MANY_UPLOADS');
        }
        const files: ReceivedFile[] = [];
        if (userId) track(userId, 1);
        const { ready, ended } = parseMultipart(body, request.headers.get('content-type')!, files, opts, bad);
        const settled = ended.then(() => {}, () => {});
        void settled.then(() => userId && track(userId, -1));
        requestFiles.set(request, { files, settled });
        return ready;
      });
    },
    async onResponse({ request }) {
      const entry = requestFiles.get(request);
      if (!entry) return;
      requestFiles.delete(request);
      // An operation that never awaited its files answers before they are all read.
      await entry.settled;
      await Promise.all(entry.files.map((f) => (f.tempPath && !f.claimed ? rm(f.tempPath, { force: true }) : null)));
    },
  };
}

const MAX_NAME = 255;

/** Client-supplied names are only ever displayed, never used in paths. */
export function sanitizeFilename(name: string | undefined): string {
  const base = (name ?? '').split(/[/\\]/).pop() ?? '';
  // Control characters, plus bidi overrides that could make "gpj.exe" display as "exe.jpg".
  const stripped = base.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, '').trim();
  const chars = Array.from(stripped);
  if (chars.length <= MAX_NAME) return stripped || 'unnamed';
  // Shortened from the middle so the extension, which says what the file is, survives.
  const ext = Array.from(/\.[^.\s]{1,16}$/.exec(stripped)?.[0] ?? '');
  return chars.slice(0, MAX_NAME - ext.length).join('') + ext.join('');
}

type Bad = (message: string, status?: number, code?: string) => Response;

class BadRequest extends Error {
  status = 400;
  code = 'BAD_MULTIPART_REQUEST';
}
class RequestTooLarge extends BadRequest {
  override status = 413;
  override code = 'REQUEST_TOO_LARGE';
}
class UploadTimeout extends BadRequest {
  override status = 408;
  override code = 'UPLOAD_TIMEOUT';
}

/**
 * Reads the body with busboy. `ready` gives Yoga the operations once the map has arrived (each
 * mapped file an IncomingFile), or a Response when the request fails before that; `ended`
 * settles once the body has been read to its end (or rejects with the request's failure).
 */
function parseMultipart(
  source: Readable,
  contentType: string,
  files: ReceivedFile[],
  { storage, limits, logger, idleTimeoutMs }: Options,
  bad: Bad,
): { ready: Promise<ParseResult>; ended: Promise<void> } {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      // Browsers send filenames as raw UTF-8; busboy's latin1 default would garble every non-ASCII name.
      defParamCharset: 'utf8',
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
    return { ready: Promise.resolve(bad(`Invalid multipart request: ${(err as Error).message}`)), ended: Promise.resolve() };
  }

  const ready = Promise.withResolvers<ParseResult>();
  const incoming = new Map<string, PromiseWithResolvers<ReceivedFile>>();
  const seen = new Set<string>();
  let operations: unknown;
  let map: Map<string, string[]> | undefined;
  let filesLimitHit = false;
  let failure: Error | undefined;
  let stopped = false;
  let queue = Promise.resolve();
  let bodyBytes = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const maxBody = maxRequestBytes(limits);

  const maxWaste = wasteBudget(limits);
  const batch: BatchState = { bytes: 0, exceeded: false, tempPaths: new Set() };
  const read = new Promise<void>((resolve) => {
    // The rest of the body is left unread; the server closes the connection after the response.
    const detach = () => {
      clearTimeout(idleTimer);
      source.off('data', onData);
      source.unpipe(parser);
      source.pause();
      parser.destroy();
      resolve();
    };
    const fail = (err: Error) => {
      if (failure || stopped) return;
      failure = err;
      detach();
    };
    // Enough was thrown away: answer for the files read so far instead of reading on.
    const stop = () => {
      if (failure || stopped) return;
      stopped = true;
      detach();
    };
    const armIdleTimer = () => {
      clearTimeout(idleTimer);
      if (!idleTimeoutMs) return;
      idleTimer = setTimeout(() => {
        // Paused means we are applying backpressure: the client is not the slow one.
        if (source.isPaused()) armIdleTimer();
        else fail(new UploadTimeout(`No data received for ${idleTimeoutMs / 1000}s; upload abandoned`));
      }, idleTimeoutMs);
    };
    function onData(chunk: Buffer) {
      bodyBytes += chunk.length;
      if (bodyBytes > maxBody) fail(new RequestTooLarge(`The request body may be at most ${maxBody} bytes`));
      else if (bodyBytes - batch.bytes > maxWaste) stop();
      else armIdleTimer();
    }
    source.on('data', onData);
    armIdleTimer();
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
          // The operation may start now: its files are promises of what is still to come.
          for (const [name, paths] of map) {
            const file = Promise.withResolvers<ReceivedFile>();
            file.promise.catch(() => {}); // an operation need not await its files
            incoming.set(name, file);
            const value = new IncomingFile(file.promise, ended);
            for (const path of paths) setPath(operations, path, value); // one map path nested inside another throws
          }
          ready.resolve(operations as GraphQLParams | GraphQLParams[]);
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
        stopped
          ? undefined
          : receiveFile(stream, info, storage, limits, batch).then(
              (file) => {
                // From here on the operation's, and onResponse deletes it unless claimed.
                if (file.tempPath) batch.tempPaths.delete(file.tempPath);
                files.push(file);
                incoming.get(name)!.resolve(file);
              },
              (err: Error) => fail(err),
            ),
      );
    });
    parser.on('filesLimit', () => (filesLimitHit = true));
    parser.on('partsLimit', () => (filesLimitHit = true));
    parser.on('error', (err) => fail(new BadRequest(`Malformed multipart body: ${(err as Error).message}`)));
    parser.on('finish', () => {
      clearTimeout(idleTimer);
      resolve();
    });
    finished(source).catch((err: Error) => fail(err));
    source.pipe(parser);
  });
  const ended = (async () => {
    await read;
    // Wait for every file to be flushed, including any queued while we waited.
    for (let settled = queue; ; settled = queue) {
      await settled;
      if (settled === queue) break;
    }
    if (!failure && (!operations || !map)) failure = new BadRequest('Missing operations or map field');
    if (failure) {
      // What was still being received goes; what the operation got is its to keep or not.
      await Promise.all([...batch.tempPaths].map((p) => rm(p, { force: true })));
      logger?.warn({ err: failure }, 'multipart request rejected');
      const { message, status, code } =
        failure instanceof BadRequest ? failure : { message: 'Upload aborted or unreadable', status: 400, code: 'BAD_MULTIPART_REQUEST' };
      ready.resolve(bad(message, status, code)); // no effect once the operation has started
      const failed = new UploadFailed(message, status, code);
      for (const file of incoming.values()) file.reject(failed); // no effect on those that arrived
      throw failed;
    }
    // Settles only the files that never arrived: the others are resolved already.
    for (const [name, file] of incoming) {
      const missing = new ReceivedFile({
        filename: 'unnamed',
        clientMimeType: '',
        tempPath: null,
        byteSize: 0,
        sha256: '',
        detected: null,
        rejection: filesLimitHit
          ? { code: 'TOO_MANY_FILES', message: `At most ${limits.maxFiles} files per request` }
          : stopped
            ? { code: 'UPLOAD_INCOMPLETE', message: `Not read: the request stopped being read after ${maxWaste} bytes of refused data` }
            : { code: 'UPLOAD_INCOMPLETE', message: `No file was received for "${name}"` },
      });
      file.resolve(missing);
    }
  })();
  ended.catch(() => {});
  return { ready: ready.promise, ended };
}

interface BatchState {
  /** Bytes kept so far: files rejected for their own reasons are subtracted again. */
  bytes: number;
  exceeded: boolean;
  /** The temp files this request is still receiving, for cleanup when the request fails. */
  tempPaths: Set<string>;
}

const SVG = /<svg[\s>]/i;

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
    try {
      for await (const chunk of stream) size += (chunk as Buffer).length;
    } catch {
      // cut off because the request stopped being read: still refused for the batch size
    }
    return rejected(batchRejection);
  }

  const incoming = storage.createIncoming();
  const tempPath = incoming.path;
  batch.tempPaths.add(tempPath);
  const spool = new Spool(incoming);
  const head: Buffer[] = [];
  let headBytes = 0;
  let kept = 0;
  let detected: DetectedType | null = null;
  let rejection: FileRejection | null = null;
  let sha256 = '';
  const reject = (r: FileRejection) => {
    rejection ??= r;
    batch.bytes -= kept;
    kept = 0;
  };
  const tooLarge = (): FileRejection => ({
    code: 'FILE_TOO_LARGE',
    message: `Files may be at most ${limits.maxFileBytes} bytes`,
  });
  // Detects the type from the head received so far; rejects the file if it is not acceptable.
  const decide = async () => {
    const buf = head.length === 1 ? head[0]! : Buffer.concat(head);
    head.length = 0;
    detected = await detectImageType(buf);
    if (detected) return;
    // SVG is XML that browsers run scripts in; sharp would even render it. Say so plainly.
    const what = SVG.test(buf.toString('latin1')) ? 'detected image/svg+xml, which can carry scripts' : await describeUnsupported(buf);
    reject({ code: 'UNSUPPORTED_TYPE', message: `Not a supported image: ${what}` });
  };
  const discard = async () => {
    await spool.discard();
    spool.release();
    await rm(tempPath, { force: true });
    batch.tempPaths.delete(tempPath);
  };

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (rejection) continue; // keep draining so busboy reaches the next part (within the waste budget)
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
      if (!detected) {
        head.push(chunk);
        headBytes += chunk.length;
        if (headBytes >= DETECTION_BYTES) await decide();
        if (rejection) continue;
      }
      await spool.add(chunk);
    }
    if (stream.truncated) reject(tooLarge());
    else if (size === 0) reject({ code: 'EMPTY_FILE', message: 'The file is empty' });
    else if (!rejection && !detected) await decide();
    if (rejection) {
      await discard();
      return rejected(rejection);
    }
    const content = spool.content();
    const written = spool.finish();
    // A file held whole in memory is checked while it is written; a larger one once it is on disk.
    if (!content.data) await written;
    [rejection, sha256] = await Promise.all([
      inspectFile({ path: tempPath, byteSize: size, ...content }, detected!, {
        maxImagePixels: limits.maxImagePixels ?? Infinity,
        maxAnimationFrames: limits.maxAnimationFrames ?? Infinity,
      }),
      written,
    ]);
  } catch (err) {
    await discard();
    // A refused file whose remaining bytes were cut off is still refused for its own reason.
    if (rejection) return rejected(rejection);
    throw err;
  }

  spool.release();
  if (rejection) {
    await rm(tempPath, { force: true });
    batch.tempPaths.delete(tempPath);
    batch.bytes -= kept;
    return rejected(rejection);
  }
  return new ReceivedFile({ ...base, tempPath, byteSize: size, sha256, detected, rejection: null });
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
