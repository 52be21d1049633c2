import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The one stand-in the suite allows: a local server speaking the subset of the Ollama API we use. */
export interface ModelReply { status: number; body: unknown; /** lets timeout tests stall a reply */ delayMs?: number }
export type ModelBehavior = (req: { path: string; body: any; n: number }) => ModelReply | undefined;
export interface ModelServer {
  url: string;
  requests: { path: string; body: any }[];
  close(): Promise<void>;
  setBehavior(fn: ModelBehavior): void;
}

export const DEFAULT_DESCRIPTION = 'A photo of a red square on a plain background.';

/** 8 floats in [-1, 1] derived from the text, so equal inputs embed equally. */
export function fakeEmbedding(text: string): number[] {
  const digest = createHash('sha256').update(text).digest();
  return Array.from({ length: 8 }, (_, i) => Number((digest[i]! / 127.5 - 1).toFixed(6)));
}

function defaultReply(path: string, body: any): ModelReply {
  if (path === '/api/generate') return { status: 200, body: { model: body?.model, response: DEFAULT_DESCRIPTION, done: true } };
  if (path === '/api/embed') {
    const inputs: string[] = Array.isArray(body?.input) ? body.input : [String(body?.input ?? '')];
    return { status: 200, body: { model: body?.model, embeddings: inputs.map(fakeEmbedding) } };
  }
  return { status: 404, body: { error: `no route ${path}` } };
}

export async function startModelServer(): Promise<ModelServer> {
  const requests: { path: string; body: any }[] = [];
  const counts = new Map<string, number>();
  let behavior: ModelBehavior = () => undefined;

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    let body: any;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
    } catch {
      body = undefined;
    }
    requests.push({ path, body });
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    const reply = behavior({ path, body, n }) ?? defaultReply(path, body);
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (res.destroyed) return;
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply.body));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setBehavior(fn) {
      behavior = fn;
    },
    close() {
      return new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // fetch keeps connections alive; without this close() waits for them to idle out.
        server.closeAllConnections();
      });
    },
  };
}
