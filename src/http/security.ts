import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { Config } from '../config.ts';
import type { AuthLimiter } from './rate-limit.ts';

/** What abuse controls need to know about a GraphQL request; built by the API server. */
export interface RequestSecurity {
  /** The caller's address (see clientAddress), used as a rate-limit key. */
  clientIp: string;
  authLimiter: AuthLimiter;
}

// Lives with the code that fills it in: src/server.ts sets `security` on every GraphQL context.
declare module '../context.ts' {
  interface GraphQLContext {
    security: RequestSecurity;
  }
}

/** Browsers must preflight anything carrying this header, so a cross-site form cannot send it. */
export const CSRF_HEADER = 'x-graphql-yoga-csrf';
const SIMPLE_CONTENT_TYPES = /^(multipart\/form-data|application\/x-www-form-urlencoded|text\/plain)\b/i;

/**
 * Yoga's CSRF-prevention check (same header, same rule) with a stable error code: requests a
 * cross-site page could send without a preflight (GET, multipart, form and text bodies) must carry
 * CSRF_HEADER.
 */
export function useCsrfHeader(): Plugin {
  return {
    onRequestParse({ request }) {
      const contentType = request.headers.get('content-type');
      if (contentType && !SIMPLE_CONTENT_TYPES.test(contentType)) return;
      if (request.headers.has(CSRF_HEADER)) return;
      throw createGraphQLError(`Send the ${CSRF_HEADER} header (any value) with GET and multipart requests`, {
        extensions: { code: 'CSRF_HEADER_REQUIRED', http: { status: 403 } },
      });
    },
  };
}

/** Yoga's GET parser lets malformed JSON in `variables` or `extensions` escape as a 500; answer 400. */
export function useStrictGetParams(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method !== 'GET') return;
      const params = new URL(request.url).searchParams;
      for (const name of ['variables', 'extensions']) {
        const value = params.get(name);
        if (value === null) continue;
        try {
          JSON.parse(value);
        } catch {
          throw createGraphQLError(`The ${name} parameter is not valid JSON`, { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
        }
      }
    },
  };
}

/**
 * The client's address: the socket's peer, or with TRUST_PROXY_HOPS = n the address n entries from
 * the end of X-Forwarded-For (each trusted proxy appends who connected to it; earlier entries are
 * the client's word). IPv6 collapses to its /64, which one subscriber usually owns whole.
 */
export function clientAddress(remote: string | undefined, forwardedFor: string | null | undefined, hops: number): string {
  let ip = remote ?? 'unknown';
  if (hops > 0 && forwardedFor) {
    const chain = forwardedFor.split(',').map((s) => s.trim()).filter(Boolean);
    ip = chain[chain.length - hops] ?? chain[0] ?? ip;
  }
  ip = ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  return ip.includes(':') ? `${ipv6Prefix64(ip)}::/64` : ip;
}

function ipv6Prefix64(ip: string): string {
  const [head = '', tail] = ip.replace(/%.*$/, '').toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

/** Yoga's CORS option: nothing cross-origin unless CORS_ORIGINS lists the origins (or "*"). */
export function corsOptions(config: Config) {
  const origins = config.security.corsOrigins;
  if (origins.length === 0) return false as const;
  return {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type', 'accept', CSRF_HEADER],
    credentials: false,
    maxAge: 600,
  };
}

/** WebSocket upgrades skip CORS, so the same allow-list is checked by hand (same-origin always passes). */
export function isAllowedOrigin(config: Config, origin: string | undefined, host: string | undefined): boolean {
  if (!origin) return true; // not a browser
  const origins = config.security.corsOrigins;
  if (origins.includes('*') || origins.includes(origin)) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
