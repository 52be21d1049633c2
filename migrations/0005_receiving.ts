import { type Kysely, sql } from 'kysely';

// A batch exists from its first stored file, so the worker can start while the rest of the
// request is still arriving. Until the request ends, receiving_until is set: the batch is
// hidden from its owner, cannot complete, and is deleted if that time passes (its API died).
// receiving_idle: the worker ran out of uploads and ended its job; the next files re-enqueue it.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table batches
      add column receiving_until timestamptz,
      add column receiving_idle boolean not null default false`.execute(db);
  await sql`create index batches_receiving_idx on batches (receiving_until) where receiving_until is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists batches_receiving_idx`.execute(db);
  await sql`alter table batches drop column if exists receiving_until, drop column if exists receiving_idle`.execute(db);
}
