import { type Kysely, sql } from 'kysely';

// (batch_id, status, position) served the old "next upload" walk and status counts per batch.
// uploads_unfinished_idx now finds the next upload and the batch keeps its own counters, so no
// query reads it, while every status change (two per upload: claim and outcome) still wrote it.
// The rare whole-batch updates by status (retrying failed uploads) go through
// (batch_id, position) and read one batch's rows at most.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists uploads_batch_status_idx`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create index if not exists uploads_batch_status_idx on uploads (batch_id, status, position)`.execute(db);
}
