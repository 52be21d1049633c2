import { type Kysely, sql } from 'kysely';

// The worker's "next unfinished upload" walked the batch in position order through
// (batch_id, position), stepping over every finished upload: quadratic over a batch.
// With only unfinished rows in the index, the next one is its first entry.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index uploads_unfinished_idx on uploads (batch_id, position) where status in ('PENDING', 'PROCESSING')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists uploads_unfinished_idx`.execute(db);
}
