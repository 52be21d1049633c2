import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Raw requests for tests that must send what no well-behaved client would. */

export interface RawResponse {
  status: number;
  headers: Headers;
  body: any;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Error codes of a GraphQL response, in order. */
export const codesOf = (r: RawResponse): unknown[] => (r.body?.errors ?? []).map((e: any) => e.extensions?.code);

export const BOUNDARY = 'darkroom-security-boundary';
export interface RawPart {
  name: string;
  /** Raw header value, sent byte for byte (latin1). */
  filename?: string;
  /** Sent as RFC 5987 filename*=UTF-8''…, percent-encoded: the way to carry bytes a header may not hold raw. */
  filenameUtf8?: string;
  contentType?: string;
  data: string | Uint8Array;
}

/** The delimiter and headers of one part, built by hand so every header byte is under the test's control. */
export function partHead(p: Omit<RawPart, 'data'>): Buffer {
  const filename =
    p.filenameUtf8 !== undefined
      ? `; filename*=UTF-8''${encodeURIComponent(p.filenameUtf8)}`
      : p.filename !== undefined
        ? `; filename="${p.filename}"`
        : '';
  const disposition = `form-data; name="${p.name}"${filename}`;
  const type = p.contentType ? `\r\nContent-Type: ${p.contentType}` : '';
  return Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}${type}\r\n\r\n`, 'latin1');
}
/** A part's content; the part ends where the next delimiter begins. */
export const partData = (p: RawPart) => Buffer.concat([typeof p.data === 'string' ? Buffer.from(p.data) : Buffer.from(p.data), Buffer.from('\r\n')]);
export const partBytes = (p: RawPart) => Buffer.concat([partHead(p), partData(p)]);
export const closingBoundary = () => Buffer.from(`--${BOUNDARY}--\r\n`);

/** A multipart/form-data body of these parts. */
export function multipartBody(parts: RawPart[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.concat([...parts.map(partBytes), closingBoundary()]));
}

/** The operations and map parts of a createBatch upload of `count` files named "0", "1", … */
export function uploadParts(query: string, count: number): RawPart[] {
  return [
    { name: 'operations', data: JSON.stringify({ query, variables: { files: Array(count).fill(null) } }) },
    { name: 'map', data: JSON.stringify(Object.fromEntries(Array.from({ length: count }, (_, i) => [String(i), [`variables.files.${i}`]]))) },
  ];
}

export const multipartHeaders = (token?: string) => ({
  'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
  'x-graphql-yoga-csrf': '1',
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

/** Every file under `dir`, relative to it. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** A graphql-transport-ws socket driven message by message. */
export function rawSocket(url: string, headers?: Record<string, string>) {
  const ws = new WebSocket(url, { protocols: 'graphql-transport-ws', headers } as any);
  const messages: any[] = [];
  const waiting: (() => void)[] = [];
  ws.onmessage = (e) => {
    messages.push(JSON.parse(String(e.data)));
    for (const w of waiting.splice(0)) w();
  };
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => {
      resolve({ code: e.code, reason: e.reason });
      for (const w of waiting.splice(0)) w();
    };
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('WebSocket failed to open'));
  });
  return {
    ws,
    opened,
    closed,
    messages,
    send: (msg: unknown) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    /** Resolves with the first message matching `pred` (or undefined once the socket closes). */
    async next(pred: (m: any) => boolean = () => true): Promise<any> {
      for (;;) {
        const m = messages.find(pred);
        if (m || ws.readyState === WebSocket.CLOSED) return m;
        await new Promise<void>((r) => waiting.push(r));
      }
    },
  };
}
