import { randomBytes } from 'node:crypto';
import pg from 'pg';

// Names carry their creation time, so a run can clear what crashed runs left behind
// without touching the databases of a run still going on the same server.
const PREFIX = 'darkroom_t';
const stamp = () => `${PREFIX}_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;

/** The template of this run: set by the global setup, inherited by the test processes. */
export const templateDb = () => {
  const name = process.env.DARKROOM_TEST_TEMPLATE;
  if (!name) throw new Error('DARKROOM_TEST_TEMPLATE is unset: run the tests through vitest (global setup)');
  return name;
};

/** Server for the test databases: TEST_DATABASE_URL, else the local PostgreSQL. */
export function adminUrl(database = 'postgres') {
  const url = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${database}`;
  return url.toString();
}

export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export const newDatabaseName = stamp;

/** Drops test databases older than `maxAgeSeconds` (left by runs that were killed). */
export async function dropStaleDatabases(maxAgeSeconds: number) {
  await withAdmin(async (c) => {
    const { rows } = await c.query<{ datname: string }>(`select datname from pg_database where datname like '${PREFIX}\\_%'`);
    const cutoff = Date.now() / 1000 - maxAgeSeconds;
    for (const { datname } of rows) {
      const created = Number(datname.split('_')[2]);
      if (Number.isFinite(created) && created < cutoff) await c.query(`drop database if exists ${datname} with (force)`);
    }
  });
}

/** A fresh database cloned from the migrated template; drop() removes it. */
export async function createTestDatabase() {
  const name = stamp();
  await withAdmin((c) => c.query(`create database ${name} template ${templateDb()}`));
  return {
    url: adminUrl(name),
    drop: () => withAdmin((c) => c.query(`drop database if exists ${name} with (force)`)),
  };
}
