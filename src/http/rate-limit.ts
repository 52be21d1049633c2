import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';

/**
 * Throttles sign-in and sign-up. Every attempt counts against the client's IP (each one costs an
 * argon2 run); sign-in attempts also count against the account until one succeeds.
 */
export interface AuthLimiter {
  /** Counts an attempt; resolves to the seconds to wait when it is refused, else 0. */
  attempt(ip: string, email?: string): Promise<number>;
  /** A correct password clears the account's count. */
  succeeded(email: string): Promise<void>;
  /** Resolves once counts are shared (Redis connected), or after `timeoutMs` regardless. */
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Redis-backed when REDIS_URL is set, so every API process shares the counts; in memory otherwise. */
export function createAuthLimiter(config: Config, logger: Logger): AuthLimiter {
  const { prefix, attemptsPerIp, failuresPerAccount, windowSeconds } = config.security.rateLimit;
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    : undefined;
  let lastWarn = 0;
  redis?.on('error', (err) => {
    if (Date.now() - lastWarn < 10_000) return;
    lastWarn = Date.now();
    logger.warn({ err }, 'rate limiter lost Redis; counting in memory until it is back');
  });
  const limiter = (name: string, points: number): RateLimiterAbstract => {
    const opts = { keyPrefix: `${prefix}:${name}`, points, duration: windowSeconds };
    if (!redis) return new RateLimiterMemory(opts);
    // During a Redis outage each process counts on its own rather than letting everything through.
    return new RateLimiterRedis({ ...opts, storeClient: redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(opts) });
  };
  const byIp = limiter('auth-ip', attemptsPerIp);
  const byAccount = limiter('signin-account', failuresPerAccount);

  const waitOf = async (consumed: Promise<unknown>) => {
    try {
      await consumed;
      return 0;
    } catch (res) {
      if (res instanceof RateLimiterRes) return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw res;
    }
  };
  return {
    async attempt(ip, email) {
      const ipWait = await waitOf(byIp.consume(ip));
      if (ipWait || email === undefined) return ipWait;
      return waitOf(byAccount.consume(accountKey(email)));
    },
    async succeeded(email) {
      await byAccount.delete(accountKey(email));
    },
    async ready(timeoutMs = 5000) {
      if (!redis || redis.status === 'ready') return;
      // Until then each process would count on its own (the in-memory insurance limiter).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        redis.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    close() {
      redis?.disconnect();
    },
  };
}

// Keys carry a digest, not the address: Redis need not hold a list of who tried to sign in.
const accountKey = (email: string) => createHash('sha256').update(email.trim().toLowerCase()).digest('base64url');
