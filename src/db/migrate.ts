import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';
import type pg from 'pg';
import type { Database } from './database.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Loads migrations/NNNN_name.ts in name order; Node runs the TypeScript directly. */
const provider: MigrationProvider = {
  async getMigrations() {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.ts$/.test(f)).sort();
    const entries = await Promise.all(
      files.map(async (f) => [f.replace(/\.ts$/, ''), (await import(pathToFileURL(path.join(MIGRATIONS_DIR, f)).href)) as Migration] as const),
    );
    return Object.fromEntries(entries);
  },
};

/** Brings both our schema and graphile-worker's up to date; safe to run concurrently from several processes. */
export async function migrate(db: Database, pool: pg.Pool): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  await runWorkerMigrations({ pgPool: pool });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
