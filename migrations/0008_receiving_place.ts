import { type Kysely, sql } from 'kysely';

// A worker that catches up with a batch still arriving ends its job, and the next files enqueue
// a new one. receiving_place keeps the run_at of the job that ended, so the new job takes the
// batch's place in the queue again instead of going behind every batch created after it.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table batches add column receiving_place timestamptz`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table batches drop column if exists receiving_place`.execute(db);
}
