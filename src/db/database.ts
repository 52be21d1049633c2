import { CamelCasePlugin, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { preparingPool } from './prepared.ts';
import type { DB } from './types.ts';

export type Database = Kysely<DB>;

/**
 * One pool for Kysely and graphile-worker alike, so its size is the single knob
 * for how many connections this process holds.
 */
export function createPool(connectionString: string, max: number, logger: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection (server restart) emits on the pool;
  // without a listener that would crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'idle PostgreSQL client error'));
  pool.on('connect', (client) => client.on('error', (err) => logger.warn({ err }, 'PostgreSQL client error')));
  return pool;
}

export function createDb(pool: pg.Pool): Database {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: preparingPool(pool) }), plugins: [new CamelCasePlugin()] });
}
