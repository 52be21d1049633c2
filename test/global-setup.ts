import { createDb, createPool } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/logger.ts';
import { adminUrl, dropStaleDatabases, newDatabaseName, withAdmin } from './helpers/db.ts';

/**
 * Migrates one template database for this run; every test file clones it (a fast file
 * copy). Its name is unique, so concurrent runs on one server never share a template.
 */
export default async function setup() {
  await dropStaleDatabases(6 * 3600);
  const name = newDatabaseName();
  await withAdmin((c) => c.query(`create database ${name}`));
  const pool = createPool(adminUrl(name), 2, createLogger('warn'));
  const db = createDb(pool);
  await migrate(db, pool);
  await db.destroy();
  // Test processes are forked after this and inherit the environment.
  process.env.DARKROOM_TEST_TEMPLATE = name;
  return async () => {
    await withAdmin((c) => c.query(`drop database if exists ${name} with (force)`));
  };
}
