// Regenerates src/db/types.ts from a freshly migrated scratch database, or with
// --verify fails when the committed types have drifted from the migrations.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, createPool } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/logger.ts';

const server = new URL(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const name = `darkroom_types_${randomBytes(4).toString('hex')}`;
const admin = async (sql: string) => {
  const c = new pg.Client({ connectionString: server.toString() });
  await c.connect();
  await c.query(sql).finally(() => c.end());
};

await admin(`create database ${name}`);
try {
  const url = new URL(server);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), 2, createLogger('warn'));
  const db = createDb(pool);
  await migrate(db, pool);
  await db.destroy();
  const args = [
    '--url', url.toString(), '--dialect', 'postgres', '--camel-case',
    '--include-pattern', 'public.*', '--exclude-pattern', 'public.kysely_*',
    '--out-file', 'src/db/types.ts', '--log-level', 'warn',
  ];
  if (process.argv.includes('--verify')) args.push('--verify');
  execFileSync('kysely-codegen', args, { stdio: 'inherit' });
} finally {
  await admin(`drop database if exists ${name} with (force)`);
}
