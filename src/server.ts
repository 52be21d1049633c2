import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createYoga, type YogaInitialContext } from 'graphql-yoga';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { AppContext, GraphQLContext, Viewer } from './context.ts';
import { findSessionByTokenHash } from './db/sessions.ts';
import { findUpload } from './db/uploads.ts';
import { useStreamingMultipart } from './http/multipart.ts';
import { schema } from './schema/index.ts';
import { bearerToken, hashToken, verifyFileSignature } from './services/auth.ts';

type WsExtra = { viewer: Viewer | null; request: http.IncomingMessage };
type InitialContext = YogaInitialContext & { connectionParams?: Record<string, unknown>; extra?: WsExtra };

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

export function createGraphQLHandler(app: AppContext) {
  return createYoga<{ req?: http.IncomingMessage }, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    // Yoga's own multipart parser buffers whole files; ours streams them to storage.
    multipart: false,
    graphiql: app.config.production ? false : { subscriptionsProtocol: 'WS', title: 'Darkroom' },
    landingPage: false,
    logging: app.logger.child({ component: 'yoga' }),
    maskedErrors: { isDev: !app.config.production },
    plugins: [useStreamingMultipart({ storage: app.storage, limits: app.config.limits, logger: app.logger })],
    context: async (initial: InitialContext): Promise<GraphQLContext> => {
      if (initial.extra) {
        const h = initial.extra.request.headers;
        return { ...app, viewer: initial.extra.viewer, baseUrl: originOf(app, { host: h.host, proto: null }) };
      }
      const h = initial.request.headers;
      return {
        ...app,
        viewer: await authenticate(app, h.get('authorization')),
        baseUrl: originOf(app, { host: h.get('host'), proto: h.get('x-forwarded-proto') }),
      };
    },
  });
}

/** GET /files/<kind>/<uploadId>?exp&sig: the signature proves the owner asked for this URL. */
async function serveFile(app: AppContext, url: URL, res: http.ServerResponse) {
  const m = /^\/files\/(thumbnail)\/([0-9a-f-]{36})$/.exec(url.pathname);
  const exp = Number(url.searchParams.get('exp'));
  const sig = url.searchParams.get('sig') ?? '';
  if (!m || !verifyFileSignature(app.config.tokenSecret, m[1]!, m[2]!, exp, sig)) {
    res.writeHead(403, { 'content-type': 'text/plain' }).end('Forbidden: invalid or expired file URL\n');
    return;
  }
  const upload = await findUpload(app.db, m[2]!);
  if (!upload?.thumbnailKey || !(await app.storage.exists(upload.thumbnailKey))) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
    return;
  }
  res.writeHead(200, {
    'content-type': 'image/webp',
    'cache-control': `private, max-age=${Math.max(0, exp - Math.floor(Date.now() / 1000))}, immutable`,
    'x-content-type-options': 'nosniff',
  });
  await pipeline(app.storage.read(upload.thumbnailKey), res);
}

export interface ApiServer {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(app: AppContext, listen: { host: string; port: number }): Promise<ApiServer> {
  const yoga = createGraphQLHandler(app);
  const server = http.createServer((req, res) => {
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
    void yoga(req, res);
  });

  const wss = new WebSocketServer({ server, path: '/graphql' });
  const wsServer = useServer<Record<string, unknown> | undefined, WsExtra>(
    {
      // A bad token closes the socket at connection_init; no token leaves it open but
      // every operation then fails as unauthenticated.
      onConnect: async (ctx) => {
        const p = ctx.connectionParams ?? {};
        const header = p.authorization ?? p.Authorization ?? (p.headers as Record<string, unknown> | undefined)?.authorization;
        ctx.extra.viewer = await authenticate(app, header);
        if (header && !ctx.extra.viewer) return false;
        return true;
      },
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
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
    },
  };
}
