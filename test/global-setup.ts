import { createDb, createPool } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/logger.ts';
import { adminUrl, TEMPLATE_DB, withAdmin } from './helpers/db.ts';

/** Migrates one template database per run; every test file clones it (a fast file copy). */
export default async function setup() {
  await withAdmin(async (c) => {
    await c.query(`drop database if exists ${TEMPLATE_DB} with (force)`);
    await c.query(`create database ${TEMPLATE_DB}`);
  });
  const pool = createPool(adminUrl(TEMPLATE_DB), 2, createLogger('warn'));
  const db = createDb(pool);
  await migrate(db, pool);
  await db.destroy();
}
