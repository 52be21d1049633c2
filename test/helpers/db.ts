import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEMPLATE_DB = 'darkroom_test_template';

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

/** A fresh database cloned from the migrated template; drop() removes it. */
export async function createTestDatabase() {
  const name = `darkroom_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((c) => c.query(`create database ${name} template ${TEMPLATE_DB}`));
  return {
    url: adminUrl(name),
    drop: () => withAdmin((c) => c.query(`drop database if exists ${name} with (force)`)),
  };
}
