import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const DEV_TOKEN_SECRET = 'darkroom-development-secret-do-not-use-in-production';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  PUBLIC_URL: z.url().optional(),
  DATABASE_URL: z.string().optional(),
  DB_POOL_MAX: int(0).optional(),
  REDIS_URL: z.string().optional(),
  DATA_DIR: z.string().default('data'),
  STORAGE_DIR: z.string().optional(),
  TOKEN_SECRET: z.string().min(32, 'TOKEN_SECRET must be at least 32 characters').default(DEV_TOKEN_SECRET),
  SESSION_TTL_HOURS: int(24 * 30),
  FILE_URL_TTL_SECONDS: int(3600),
  MAX_FILES_PER_BATCH: int(1000),
  MAX_BATCH_BYTES: int(10 * GiB),
  MAX_FILE_BYTES: int(1 * GiB),
  WORKER_CONCURRENCY: int(Math.max(1, os.availableParallelism())),
  // Uploads of one batch processed at once, on worker slots no other batch needs (1: one at a time).
  BATCH_PARALLELISM: int(1),
  UPLOAD_MAX_ATTEMPTS: int(2),
  SHUTDOWN_GRACE_MS: int(10_000),
  UPLOAD_TIMEOUT_MS: int(15 * 60_000),
  // Also how often batches take turns while every slot is busy: a handed-over job queues last.
  JOB_SLICE_MS: int(30_000),
  WORKER_SWEEP_INTERVAL_MS: int(2000),
  WORKER_ORPHAN_GRACE_MS: int(15_000),
  UPLOAD_WATCH_INTERVAL_MS: int(1000),
  // 0: every stage of every upload is published.
  PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(250),
  // Niceness of the worker's media threads (0: as the rest of the process).
  MEDIA_NICE: z.coerce.number().int().min(0).max(19).default(10),
  STORAGE_SWEEP_INTERVAL_MS: int(15 * 60_000),
  ORPHAN_FILE_AGE_MS: int(60 * 60_000),
  OLLAMA_URL: z.url().optional(),
  OLLAMA_VISION_MODEL: z.string().default('llava'),
  OLLAMA_EMBED_MODEL: z.string().default('nomic-embed-text'),
  OLLAMA_TIMEOUT_MS: int(120_000),
  // Media pipeline (docs/media.md).
  FFMPEG_PATH: z.string().min(1).default('ffmpeg'),
  FFPROBE_PATH: z.string().min(1).default('ffprobe'),
  SEARCH_MIN_SIMILARITY: z.coerce.number().min(-1).max(1).default(0.5),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Security (docs/security.md explains each value).
  CORS_ORIGINS: z.string().default(''),
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
  RATE_LIMIT_PREFIX: z.string().min(1).default('darkroom:rl'),
  AUTH_ATTEMPTS_PER_IP: int(50),
  SIGNIN_FAILURES_PER_ACCOUNT: int(10),
  AUTH_WINDOW_SECONDS: int(900),
  MAX_IMAGE_PIXELS: int(100_000_000),
  MAX_ANIMATION_FRAMES: int(1000),
  UPLOAD_IDLE_TIMEOUT_SECONDS: int(30),
  REQUEST_TIMEOUT_SECONDS: int(3600),
  MAX_SUBSCRIPTIONS_PER_USER: int(20),
  MAX_CONCURRENT_UPLOADS_PER_USER: int(4),
});

export type Config = ReturnType<typeof loadConfig>;

/** Reads configuration from the environment; throws a readable error listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (production && e.TOKEN_SECRET === DEV_TOKEN_SECRET) {
    throw new Error('TOKEN_SECRET must be set in production (the development default is public).');
  }
  const dataDir = path.resolve(e.DATA_DIR);
  return {
    production,
    host: e.HOST,
    port: e.PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/$/, ''),
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    dataDir,
    storageDir: path.resolve(e.STORAGE_DIR ?? path.join(dataDir, 'storage')),
    tokenSecret: e.TOKEN_SECRET,
    sessionTtlMs: e.SESSION_TTL_HOURS * 3600_000,
    fileUrlTtlSeconds: e.FILE_URL_TTL_SECONDS,
    limits: {
      maxFiles: e.MAX_FILES_PER_BATCH,
      maxBatchBytes: e.MAX_BATCH_BYTES,
      maxFileBytes: e.MAX_FILE_BYTES,
      maxImagePixels: e.MAX_IMAGE_PIXELS,
      maxAnimationFrames: e.MAX_ANIMATION_FRAMES,
    },
    security: {
      corsOrigins: e.CORS_ORIGINS.split(',').map((o) => o.trim().replace(/\/$/, '')).filter(Boolean),
      trustProxyHops: e.TRUST_PROXY_HOPS,
      rateLimit: {
        prefix: e.RATE_LIMIT_PREFIX,
        attemptsPerIp: e.AUTH_ATTEMPTS_PER_IP,
        failuresPerAccount: e.SIGNIN_FAILURES_PER_ACCOUNT,
        windowSeconds: e.AUTH_WINDOW_SECONDS,
      },
      uploadIdleTimeoutMs: e.UPLOAD_IDLE_TIMEOUT_SECONDS * 1000,
      requestTimeoutMs: e.REQUEST_TIMEOUT_SECONDS * 1000,
      maxSubscriptionsPerUser: e.MAX_SUBSCRIPTIONS_PER_USER,
      maxConcurrentUploadsPerUser: e.MAX_CONCURRENT_UPLOADS_PER_USER,
    },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      batchParallelism: e.BATCH_PARALLELISM,
      uploadMaxAttempts: e.UPLOAD_MAX_ATTEMPTS,
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
      uploadTimeoutMs: e.UPLOAD_TIMEOUT_MS,
      jobSliceMs: e.JOB_SLICE_MS,
      sweepIntervalMs: e.WORKER_SWEEP_INTERVAL_MS,
      orphanGraceMs: e.WORKER_ORPHAN_GRACE_MS,
      watchIntervalMs: e.UPLOAD_WATCH_INTERVAL_MS,
      progressIntervalMs: e.PROGRESS_INTERVAL_MS,
      mediaNice: e.MEDIA_NICE,
    },
    storageSweep: { intervalMs: e.STORAGE_SWEEP_INTERVAL_MS, orphanAgeMs: e.ORPHAN_FILE_AGE_MS },
    // Worker connections + LISTEN client + headroom for the API's own queries.
    dbPoolMax: e.DB_POOL_MAX ?? e.WORKER_CONCURRENCY + 10,
    ollama: e.OLLAMA_URL
      ? {
          url: e.OLLAMA_URL.replace(/\/$/, ''),
          visionModel: e.OLLAMA_VISION_MODEL,
          embedModel: e.OLLAMA_EMBED_MODEL,
          timeoutMs: e.OLLAMA_TIMEOUT_MS,
        }
      : undefined,
    media: {
      ffmpegPath: e.FFMPEG_PATH,
      ffprobePath: e.FFPROBE_PATH,
      searchMinSimilarity: e.SEARCH_MIN_SIMILARITY,
    },
    logLevel: e.LOG_LEVEL,
  };
}
