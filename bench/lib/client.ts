import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { parse, validate } from 'graphql';
import { type Client, createClient } from 'graphql-ws';

/**
 * The bench's GraphQL documents, kept as plain strings (test/gql is the tests' codegen);
 * checkDocuments() validates them against the service's schema before anything runs.
 */
const SIGN_UP = /* GraphQL */ `
  mutation BenchSignUp($email: String!, $password: String!) {
    signUp(email: $email, password: $password) {
      __typename
      ... on AuthSuccess { token }
      ... on Error { code message }
    }
  }`;

const CREATE_BATCH = /* GraphQL */ `
  mutation BenchCreateBatch($files: [File!]!) {
    createBatch(files: $files) {
      __typename
      ... on CreateBatchSuccess { batch { id totalUploads } rejectedFiles { filename code message } }
      ... on Error { code message }
    }
  }`;

const BATCH_PROGRESS = /* GraphQL */ `
  subscription BenchBatchProgress($batchId: ID!) {
    batchProgress(batchId: $batchId) {
      __typename
      ... on BatchProgress { batch { status processedUploads failedUploads totalUploads } }
      ... on FileProgress { stage percent upload { id status startedAt } batch { createdAt processedUploads } }
    }
  }`;

const BATCH_START = /* GraphQL */ `
  query BenchBatchStart($id: ID!) {
    batch(id: $id) { createdAt uploads(first: 1) { edges { node { startedAt } } } }
  }`;

export async function checkDocuments() {
  const { schema } = await import('../../src/schema/index.ts');
  for (const doc of [SIGN_UP, CREATE_BATCH, BATCH_PROGRESS, BATCH_START]) {
    const errors = validate(schema, parse(doc));
    if (errors.length) throw new Error(`bench document no longer matches the schema: ${errors.map((e) => e.message).join('; ')}\n${doc}`);
  }
}

export type ProgressEvent =
  | { __typename: 'BatchProgress'; batch: { status: string; processedUploads: number; failedUploads: number; totalUploads: number } }
  | {
      __typename: 'FileProgress';
      stage: string;
      percent: number;
      upload: { id: string; status: string; startedAt: string | null };
      batch: { createdAt: string; processedUploads: number };
    };

const isTerminalStatus = (status: string) => status === 'COMPLETED' || status === 'CANCELLED';

/** The database id inside a Relay global id ("Upload:<uuid>", base64). */
export const localId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':').slice(1).join(':');

// Multipart and GET requests without Yoga's CSRF-prevention header are refused (src/http/security.ts).
const CSRF = { 'x-graphql-yoga-csrf': '1' };

export async function gql<T>(graphqlUrl: string, query: string, variables: unknown, token?: string): Promise<T> {
  const res = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...CSRF, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) throw new Error(`GraphQL request failed (${res.status}): ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}

/** When a batch was created and its first upload started (epoch ms, PostgreSQL's clock). */
export async function batchStart(graphqlUrl: string, token: string, id: string) {
  type Data = { batch: { createdAt: string; uploads: { edges: { node: { startedAt: string | null } }[] } } | null };
  const { batch } = await gql<Data>(graphqlUrl, BATCH_START, { id }, token);
  const startedAt = batch?.uploads.edges[0]?.node.startedAt;
  if (!batch || !startedAt) throw new Error(`batch ${id} has no started upload`);
  return { createdAt: Date.parse(batch.createdAt), firstStartedAt: Date.parse(startedAt) };
}

export async function signUp(graphqlUrl: string): Promise<string> {
  const email = `bench-${randomBytes(6).toString('hex')}@example.com`;
  const data = await gql<{ signUp: { __typename: string; token?: string; message?: string } }>(graphqlUrl, SIGN_UP, {
    email,
    password: 'bench password 1234',
  });
  if (!data.signUp.token) throw new Error(`signUp failed: ${JSON.stringify(data.signUp)}`);
  return data.signUp.token;
}

/** A file to upload, produced chunk by chunk so a 1 GiB batch never sits in the bench's memory. */
export interface UploadSource {
  name: string;
  type: string;
  size: number;
  chunks(): Iterable<Uint8Array>;
}

export interface CreatedBatch {
  id: string;
  totalUploads: number;
  /** When the request started and when its response was fully read (performance.now()). */
  sentAt: number;
  respondedAt: number;
}

/** createBatch as a GraphQL multipart request. */
export async function createBatch(graphqlUrl: string, token: string, files: UploadSource[], pace?: number): Promise<CreatedBatch> {
  const res = await postMultipart(graphqlUrl, { authorization: `Bearer ${token}` }, files, pace);
  const body = JSON.parse(res.text) as {
    data?: { createBatch: { __typename: string; batch?: { id: string; totalUploads: number }; rejectedFiles?: unknown[] } };
  };
  const result = body.data?.createBatch;
  if (!result?.batch) throw new Error(`createBatch failed (${res.status}): ${res.text.slice(0, 500)}`);
  if (result.rejectedFiles?.length) throw new Error(`createBatch rejected files: ${JSON.stringify(result.rejectedFiles).slice(0, 500)}`);
  // Anything not counted (e.g. skipped as a duplicate) would be work the service never did.
  if (result.batch.totalUploads !== files.length) throw new Error(`createBatch took ${result.batch.totalUploads} of ${files.length} files`);
  return { id: result.batch.id, totalUploads: result.batch.totalUploads, sentAt: res.sentAt, respondedAt: res.respondedAt };
}

/**
 * The multipart body createBatch sends, streamed with backpressure and a known length, to any
 * URL (the ingest scenario also sends it to a bare HTTP sink for comparison); at most `pace`
 * bytes per second when given, as a client on a real network link would.
 */
export async function postMultipart(url: string, headers: Record<string, string>, files: UploadSource[], pace?: number) {
  const boundary = `----darkroom-bench-${randomBytes(12).toString('hex')}`;
  const operations = JSON.stringify({ query: CREATE_BATCH, variables: { files: files.map(() => null) } });
  const map = JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]])));
  const field = (name: string, value: string) =>
    Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  const head = [field('operations', operations), field('map', map)];
  const fileHeads = files.map((f, i) =>
    Buffer.from(
      `--${boundary}\r\ncontent-disposition: form-data; name="${i}"; filename="${f.name}"\r\ncontent-type: ${f.type}\r\n\r\n`,
    ),
  );
  const crlf = Buffer.from('\r\n');
  const tail = Buffer.from(`--${boundary}--\r\n`);
  const length =
    head.reduce((n, b) => n + b.length, 0) +
    fileHeads.reduce((n, b, i) => n + b.length + files[i]!.size + crlf.length, 0) +
    tail.length;

  const sentAt = performance.now();
  const req = http.request(url, {
    method: 'POST',
    // A fresh connection per upload: a kept-alive one the server has just timed out fails mid-write.
    agent: false,
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(length),
      ...CSRF,
      ...headers,
    },
  });
  const response = once(req, 'response') as Promise<[http.IncomingMessage]>;
  response.catch(() => {});
  let written = 0;
  const write = async (chunk: Uint8Array) => {
    if (!req.write(chunk)) await once(req, 'drain');
    written += chunk.length;
    const ahead = pace ? sentAt + (written / pace) * 1000 - performance.now() : 0;
    if (ahead > 1) await delay(ahead);
  };
  for (const b of head) await write(b);
  for (const [i, f] of files.entries()) {
    await write(fileHeads[i]!);
    for (const chunk of f.chunks()) await write(chunk);
    await write(crlf);
  }
  req.end(tail);
  const [res] = await response;
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk;
  return { status: res.statusCode ?? 0, text, sentAt, respondedAt: performance.now() };
}

/** A graphql-ws connection that stays open; resolves once the server acknowledged it. */
export async function connectWs(wsUrl: string, token: string): Promise<Client> {
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: { authorization: `Bearer ${token}` },
    onNonLazyError: () => {},
  });
  await new Promise<void>((resolve, reject) => {
    const off = [
      client.on('connected', () => (off.forEach((f) => f()), resolve())),
      client.on('closed', (e) => (off.forEach((f) => f()), reject(new Error(`WebSocket closed before connecting: ${JSON.stringify(e)}`)))),
      client.on('error', (e) => (off.forEach((f) => f()), reject(e instanceof Error ? e : new Error('WebSocket error')))),
    ];
  });
  return client;
}

export interface Received {
  /** performance.now() when the message was handed to us. */
  at: number;
  event: ProgressEvent;
}

/**
 * Follows a batch until the server completes the subscription (after the terminal state).
 * `onEvent` sees every event as it arrives; the promise resolves with all of them.
 */
export function watchBatch(client: Client, batchId: string, onEvent?: (r: Received) => void, timeoutMs = 600_000) {
  const events: Received[] = [];
  return new Promise<Received[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`batch ${batchId} did not finish within ${timeoutMs} ms (${events.length} events)`));
    }, timeoutMs);
    const dispose = client.subscribe<{ batchProgress: ProgressEvent }>(
      { query: BATCH_PROGRESS, variables: { batchId } },
      {
        next: (r) => {
          const at = performance.now();
          if (r.errors?.length || !r.data) {
            clearTimeout(timer);
            reject(new Error(`subscription error: ${JSON.stringify(r.errors)}`));
            return;
          }
          const rec = { at, event: r.data.batchProgress };
          events.push(rec);
          onEvent?.(rec);
        },
        error: (err) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(`subscription failed: ${JSON.stringify(err)}`));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(events);
        },
      },
    );
  });
}

/** When the terminal BatchProgress arrived (the last event of a completed subscription). */
export function terminalAt(events: Received[]): number {
  const last = events.findLast((e) => e.event.__typename === 'BatchProgress' && isTerminalStatus(e.event.batch.status));
  if (!last) throw new Error('subscription completed without a terminal BatchProgress event');
  return last.at;
}
