import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { createAppContext } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { startWorker } from '../../src/jobs/worker.ts';
import { createLogger } from '../../src/logger.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TOKEN_SECRET = 'darkroom-bench-secret-0123456789abcdef0123456789';
// Rate-limit counters live in Redis, shared with the tests' and earlier runs' services on this
// host: a prefix of its own keeps the bench's few sign-ups from counting against them, or theirs against it.
const RATE_LIMIT_PREFIX = `darkroom-bench:${process.pid}:${Date.now()}:rl`;

export interface ServiceEnv {
  databaseUrl: string;
  storageDir: string;
  concurrency: number;
  /** Anything else the scenario needs, e.g. raised upload limits. */
  extra?: Record<string, string>;
}

/** The environment a deployment would run with; limits are raised only where a scenario needs it. */
export function serviceEnv(e: ServiceEnv, port?: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    TOKEN_SECRET,
    DATABASE_URL: e.databaseUrl,
    REDIS_URL,
    STORAGE_DIR: e.storageDir,
    WORKER_CONCURRENCY: String(e.concurrency),
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    RATE_LIMIT_PREFIX,
    // One bench user stands in for many clients uploading at once (figures 2 and 5).
    MAX_CONCURRENT_UPLOADS_PER_USER: '64',
    ...(port === undefined ? {} : { PORT: String(port) }),
    ...e.extra,
  };
}

export interface ChildService {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Rejects when the process exits: races long waits so a crash fails the bench at once. */
  exited: Promise<never>;
  stop(): Promise<void>;
}

const running = new Set<ChildService>();

/** `node src/main.ts <mode>`, the way `npm run start:api|start:worker` runs it. */
export function spawnService(mode: 'api' | 'worker' | 'all', env: Record<string, string>): ChildService {
  // BENCH_CPU_PROF=<dir> writes V8 CPU profiles (for finding overhead): a directory per process,
  // one file per thread in it (Node's default names carry the thread id; a fixed name would let
  // a media thread's profile overwrite the main thread's).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_CPU_PROF, `${mode}-${Date.now()}`)}`] : [];
  const flags = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...flags, ...prof, MAIN, mode], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let stopping = false;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`${mode} process exited (${signal ?? code}); output:\n${out}`));
    }),
  );
  exited.catch(() => {});
  const service: ChildService = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    async stop() {
      stopping = true;
      running.delete(service);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    },
  };
  running.add(service);
  return service;
}

/** For an emergency exit (Ctrl-C): every child this bench started, and only those. */
export function killAllChildren() {
  for (const s of running) s.child.kill('SIGKILL');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface ApiProcess extends ChildService {
  url: string;
  graphqlUrl: string;
  wsUrl: string;
}

/** An API process, ready once /healthz answers. */
export async function startApi(e: ServiceEnv): Promise<ApiProcess> {
  const port = await freePort();
  const svc = spawnService('api', serviceEnv(e, port));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await Promise.race([
      fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
      svc.exited,
    ]);
    if (ok) break;
    if (Date.now() > deadline) {
      await svc.stop();
      throw new Error(`API did not become healthy; output:\n${svc.output()}`);
    }
    await delay(50);
  }
  return { ...svc, url, graphqlUrl: `${url}/graphql`, wsUrl: `ws://127.0.0.1:${port}/graphql` };
}

/** A worker process. It reports nothing at LOG_LEVEL=warn, so scenarios prove it live with a warm-up batch. */
export function startWorkerProcess(e: ServiceEnv): ChildService {
  return spawnService('worker', serviceEnv(e));
}

/**
 * A worker inside the bench process, built by the service's own createAppContext and
 * startWorker; `wrap` may decorate the context first (e.g. to timestamp what it publishes).
 */
export async function startInProcessWorker(e: ServiceEnv, wrap?: (ctx: AppContext) => void) {
  const config = loadConfig(serviceEnv(e));
  const app = await createAppContext(config, createLogger(config.logLevel), 'worker');
  wrap?.(app.ctx);
  const worker = await startWorker(app.ctx);
  return {
    ctx: app.ctx,
    async stop() {
      await worker.stop();
      await app.close();
    },
  };
}
