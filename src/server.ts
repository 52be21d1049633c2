import http from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { createYoga, maskError, type YogaInitialContext } from 'graphql-yoga';
import { type ExecutionArgs, GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { AppContext, GraphQLContext, Viewer } from './context.ts';
import { findSessionByTokenHash } from './db/sessions.ts';
import { findUpload } from './db/uploads.ts';
import { useGraphQLLimits } from './http/graphql-limits.ts';
import { useStreamingMultipart } from './http/multipart.ts';
import { type AuthLimiter, createAuthLimiter } from './http/rate-limit.ts';
import { clientAddress, corsOptions, isAllowedOrigin, useCsrfHeader, useStrictGetParams } from './http/security.ts';
import { useSubscriptionCap } from './http/subscription-cap.ts';
import { schema } from './schema/index.ts';
import { bearerToken, hashToken, verifyFileSignature } from './services/auth.ts';

type WsExtra = { authorization: unknown; request: http.IncomingMessage };
type InitialContext = YogaInitialContext & { req?: http.IncomingMessage; extra?: WsExtra };

// A subscribe message is a query (≤ 1000 tokens) plus small variables; nothing legitimate is larger.
const WS_MAX_PAYLOAD = 64 * 1024;
const JSON_BODY_BYTES = 1024 * 1024;
// After refusing a body mid-stream: how long a client gets to notice the FIN before a reset.
const LINGER_MS = 2_000;
// Yoga builds a URL from Host (a malformed one would be a 500) and file URLs may echo it.
const VALID_HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i;

export async function authenticate(ctx: AppContext, header: unknown): Promise<Viewer | null> {
  const token = typeof header === 'string' ? bearerToken(header) : undefined;
  if (!token) return null;
  const s = await findSessionByTokenHash(ctx.db, hashToken(token));
  return s ? { id: s.id, email: s.email, sessionId: s.sessionId } : null;
}

function originOf(ctx: AppContext, headers: { host?: string | null; proto?: string | null }) {
  if (ctx.config.publicUrl) return ctx.config.publicUrl;
  const host = headers.host ?? `localhost:${ctx.config.port}`;
  return `${headers.proto === 'https' ? 'https' : 'http'}://${host}`;
}

/** Every error leaves with a stable code; unexpected ones are masked outside development. */
function maskWithCode(error: unknown, message: string, isDev?: boolean) {
  const masked = maskError(error, message, isDev);
  if (!(masked instanceof GraphQLError) || masked.extensions?.code) return masked;
  return new GraphQLError(masked.message, { nodes: masked.nodes, path: masked.path, extensions: { ...masked.extensions, code: 'BAD_USER_INPUT' } });
}

export function createGraphQLHandler(app: AppContext, authLimiter: AuthLimiter) {
  const { config } = app;
  const hops = config.security.trustProxyHops;
  // An upload's request is authenticated before its body is read, and its context is built as
  // soon as its operation has arrived: one session lookup serves both. The lookup was a round
  // trip in front of every createBatch's first file.
  const viewers = new WeakMap<Request, Promise<Viewer | null>>();
  const viewerOf = (request: Request) => {
    let viewer = viewers.get(request);
    if (!viewer) viewers.set(request, (viewer = authenticate(app, request.headers.get('authorization'))));
    return viewer;
  };
  return createYoga<{ req?: http.IncomingMessage }, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    // Yoga's own multipart parser buffers whole files; ours streams them to storage.
    multipart: false,
    batching: false,
    maxRequestBodySize: JSON_BODY_BYTES,
    cors: corsOptions(config),
    graphiql: config.production ? false : { subscriptionsProtocol: 'WS', title: 'Darkroom' },
    landingPage: false,
    logging: app.logger.child({ component: 'yoga' }),
    maskedErrors: { isDev: !config.production, maskError: maskWithCode },
    plugins: [
      useCsrfHeader(),
      useStrictGetParams(),
      useStreamingMultipart({
        storage: app.storage,
        limits: config.limits,
        logger: app.logger,
        idleTimeoutMs: config.security.uploadIdleTimeoutMs,
        // No byte of an anonymous upload is read, let alone written to disk.
        authorize: async (request) => (await viewerOf(request))?.id ?? null,
        maxConcurrentPerUser: config.security.maxConcurrentUploadsPerUser,
      }),
      ...useGraphQLLimits({ production: config.production }),
      useSubscriptionCap(config.security.maxSubscriptionsPerUser),
    ],
    context: async (initial: InitialContext): Promise<GraphQLContext> => {
      if (initial.extra) {
        const { request, authorization } = initial.extra;
        return {
          ...app,
          // Per operation, not once per socket: a signed-out or expired token stops working here too.
          viewer: await authenticate(app, authorization),
          baseUrl: originOf(app, { host: request.headers.host, proto: null }),
          security: { clientIp: clientAddress(request.socket.remoteAddress, request.headers['x-forwarded-for'] as string, hops), authLimiter },
        };
      }
      const h = initial.request.headers;
      return {
        ...app,
        viewer: await viewerOf(initial.request),
        baseUrl: originOf(app, { host: h.get('host'), proto: h.get('x-forwarded-proto') }),
        security: { clientIp: clientAddress(initial.req?.socket.remoteAddress, h.get('x-forwarded-for'), hops), authLimiter },
      };
    },
  });
}

const FILE_PATH = /^\/files\/(thumbnail|preview)\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** GET /files/<kind>/<uploadId>?exp&sig: the signature proves the owner asked for this URL. */
async function serveFile(app: AppContext, url: URL, res: http.ServerResponse) {
  const m = FILE_PATH.exec(url.pathname);
  const exp = Number(url.searchParams.get('exp'));
  const sig = url.searchParams.get('sig') ?? '';
  if (!m || !verifyFileSignature(app.config.tokenSecret, m[1]!, m[2]!, exp, sig)) {
    res.writeHead(403, { 'content-type': 'text/plain' }).end('Forbidden: invalid or expired file URL\n');
    return;
  }
  const upload = await findUpload(app.db, m[2]!);
  const key = m[1] === 'preview' ? upload?.previewKey : upload?.thumbnailKey;
  if (!key || !(await app.storage.exists(key))) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
    return;
  }
  res.writeHead(200, {
    'content-type': key.endsWith('.jpg') ? 'image/jpeg' : 'image/webp',
    'cache-control': `private, max-age=${Math.max(0, exp - Math.floor(Date.now() / 1000))}, immutable`,
    // Our own re-encoded WebP, never the upload; even so, nothing in it may run.
    'content-security-policy': "default-src 'none'; sandbox",
  });
  await pipeline(app.storage.read(key), res);
}

/**
 * A response that went out before its request body was read (refused upload, 413, timeout): half-close
 * so the client sees the answer, then drop the socket instead of draining whatever it still sends.
 * Not via `Connection: close`: Node would destroy the socket as soon as the answer is flushed, and
 * a client still writing its body gets EPIPE instead of the answer.
 */
function closeUnreadBody(req: http.IncomingMessage, socket: Socket) {
  if (req.complete || socket.destroyed) return;
  socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

export interface ApiServer {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(app: AppContext, listen: { host: string; port: number }): Promise<ApiServer> {
  const authLimiter = createAuthLimiter(app.config, app.logger);
  await authLimiter.ready();
  const yoga = createGraphQLHandler(app, authLimiter);
  const server = http.createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: 15_000,
      // Uploads may legitimately take long; stalls are cut by the upload idle timeout instead.
      requestTimeout: app.config.security.requestTimeoutMs,
    },
    (req, res) => {
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      res.once('finish', () => closeUnreadBody(req, req.socket));
      const hostHeader = req.headers.host ?? '';
      if (!VALID_HOST.test(hostHeader) || !URL.canParse(`http://${hostHeader}/`)) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad Request: invalid Host header\n');
        return;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'GET' && url.pathname.startsWith('/files/')) {
        serveFile(app, url, res).catch((err) => {
          app.logger.error({ err }, 'file request failed');
          if (!res.headersSent) res.writeHead(500).end();
          else res.destroy();
        });
        return;
      }
      if (url.pathname === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      // Other bodies are small: one still arriving after the upload idle timeout is a slow-body attack.
      if (!/^multipart\//i.test(req.headers['content-type'] ?? '')) {
        const timer = setTimeout(() => req.complete || req.destroy(), app.config.security.uploadIdleTimeoutMs).unref();
        res.once('close', () => clearTimeout(timer));
      }
      void yoga(req, res);
    },
  );
  server.maxHeadersCount = 100;

  const wss = new WebSocketServer({
    server,
    path: '/graphql',
    maxPayload: WS_MAX_PAYLOAD,
    verifyClient: ({ origin, req }: { origin?: string; req: http.IncomingMessage }) => isAllowedOrigin(app.config, origin, req.headers.host),
  });
  const wsServer = useServer<Record<string, unknown> | undefined, WsExtra>(
    {
      // Unacknowledged sockets are closed with 4408 after this.
      connectionInitWaitTimeout: 3_000,
      // A bad token closes the socket at connection_init (4403); no token leaves it open, and
      // every operation needing a user then fails as unauthenticated.
      onConnect: async (ctx) => {
        const p = ctx.connectionParams ?? {};
        const header = p.authorization ?? p.Authorization ?? (p.headers as Record<string, unknown> | undefined)?.authorization;
        ctx.extra.authorization = header;
        return !header || (await authenticate(app, header)) !== null;
      },
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        let document;
        try {
          if (typeof params.query !== 'string') throw new GraphQLError('The query must be a string');
          document = parse(params.query);
        } catch (err) {
          // Answered as an error message; a throw here would close the whole socket.
          const e = err instanceof GraphQLError ? err : new GraphQLError('The query could not be parsed');
          return [new GraphQLError(e.message, { extensions: { code: 'GRAPHQL_PARSE_FAILED', ...e.extensions } })];
        }
        const errors = validate(schema, document);
        if (errors.length) return [...errors];
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        return args;
      },
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
    },
    wss,
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address() as { port: number };
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`,
    async close() {
      // 1001 Going Away: clients know to reconnect elsewhere or later.
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await wsServer.dispose();
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      authLimiter.close();
    },
  };
}
