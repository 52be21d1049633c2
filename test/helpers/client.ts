import { randomUUID } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type FormattedExecutionResult, print } from 'graphql';
import { createClient } from 'graphql-ws';
import { CreateBatch, SignUp } from '../documents.ts';

export type Result<R> = FormattedExecutionResult<R> & { status: number };

export interface UploadFile {
  name: string;
  data: Buffer | Uint8Array;
  type?: string;
}

/** A GraphQL client speaking to the service over real HTTP and WebSocket. */
export function client(app: { graphqlUrl: string; wsUrl: string }) {
  async function request<R, V>(doc: TypedDocumentNode<R, V>, variables?: V, token?: string): Promise<Result<R>> {
    const res = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: print(doc), variables }),
    });
    return { status: res.status, ...((await res.json()) as FormattedExecutionResult<R>) };
  }

  /** createBatch as a GraphQL multipart request. */
  async function upload(token: string | undefined, files: UploadFile[]) {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: print(CreateBatch), variables: { files: files.map(() => null) } }));
    form.set('map', JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]]))));
    files.forEach((f, i) => form.set(String(i), new Blob([new Uint8Array(f.data)], { type: f.type ?? 'application/octet-stream' }), f.name));
    const res = await fetch(app.graphqlUrl, {
      method: 'POST',
      body: form,
      // Multipart is a "simple" request; the server requires this header so browsers must preflight it.
      headers: { 'x-graphql-yoga-csrf': '1', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    return { status: res.status, ...((await res.json()) as FormattedExecutionResult<ReturnType<NonNullable<typeof CreateBatch.__apiType>>>) };
  }

  async function signUp(email = `user-${randomUUID()}@example.com`, password = 'correct horse battery') {
    const r = await request(SignUp, { email, password });
    const s = r.data?.signUp;
    if (s?.__typename !== 'AuthSuccess') throw new Error(`signUp failed: ${JSON.stringify(r)}`);
    return { token: s.token, userId: s.user.id, email };
  }

  /** Collects every event of a subscription over graphql-ws until it completes. */
  function subscribeWs<R, V>(doc: TypedDocumentNode<R, V>, variables: V, token?: string, timeoutMs = 30_000) {
    const ws = createClient({
      url: app.wsUrl,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    });
    return collect<R>(ws.iterate({ query: print(doc), variables: variables as Record<string, unknown> }), timeoutMs, () => ws.dispose());
  }

  /** The same over Server-Sent Events. */
  async function subscribeSse<R, V>(doc: TypedDocumentNode<R, V>, variables: V, token?: string, timeoutMs = 30_000) {
    const controller = new AbortController();
    const res = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: {
        accept: 'text/event-stream',
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: print(doc), variables }),
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]),
    });
    async function* events(): AsyncGenerator<FormattedExecutionResult<R>> {
      const decoder = new TextDecoderStream();
      let buffer = '';
      for await (const chunk of res.body!.pipeThrough(decoder)) {
        buffer += chunk;
        let idx: number;
        while ((idx = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'complete') return;
          if (event === 'next' && data) yield JSON.parse(data) as FormattedExecutionResult<R>;
        }
      }
    }
    return collect<R>(events(), timeoutMs, () => controller.abort());
  }

  return { request, upload, signUp, subscribeWs, subscribeSse };
}

/** A running subscription: `events` fills as they arrive, `done` settles when it completes, `cancel` ends it early. */
function collect<R>(iterable: AsyncIterable<FormattedExecutionResult<R>>, timeoutMs: number, dispose: () => unknown) {
  const events: FormattedExecutionResult<R>[] = [];
  let resolveFirst!: () => void;
  const first = new Promise<void>((r) => (resolveFirst = r));
  const done = (async () => {
    const timer = setTimeout(() => void dispose(), timeoutMs);
    try {
      for await (const e of iterable) {
        events.push(e);
        resolveFirst();
      }
    } finally {
      clearTimeout(timer);
      resolveFirst();
      await dispose();
    }
    return events;
  })();
  const cancel = async () => {
    await dispose();
    await done.catch(() => undefined); // an aborted stream rejects; that is the point of cancelling
  };
  return { events, first, done, cancel };
}
