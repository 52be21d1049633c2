import { type Kysely, sql } from 'kysely';

// Duplicate detection looks up (user_id, sha256) once per group of a batch still arriving. Beside
// a plain user_id index, the planner picked that one whenever the statistics were older than the
// user's uploads (a first large batch), and read all the user's rows for every group. One index
// on both columns serves user lookups (and the cascade from users) and content lookups alike.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists uploads_user_sha256_idx`.execute(db);
  await sql`drop index if exists uploads_user_id_idx`.execute(db);
  await sql`create index uploads_user_sha256_idx on uploads (user_id, sha256)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists uploads_user_sha256_idx`.execute(db);
  await sql`create index uploads_user_id_idx on uploads (user_id)`.execute(db);
  await sql`create index uploads_user_sha256_idx on uploads (user_id, sha256) where sha256 is not null`.execute(db);
}
