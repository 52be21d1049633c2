import { type Kysely, sql } from 'kysely';

// Migrations take Kysely<any>: they describe the schema at their point in history,
// not the current DB type.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create type batch_status as enum ('PENDING', 'PROCESSING', 'COMPLETED', 'CANCELLED')`.execute(db);
  await sql`create type upload_status as enum ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')`.execute(db);
  await sql`create type analysis_status as enum ('PENDING', 'COMPLETED', 'SKIPPED')`.execute(db);

  await sql`
    create table users (
      id uuid primary key default gen_random_uuid(),
      email text not null,
      password_hash text not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create unique index users_email_key on users (lower(email))`.execute(db);

  await sql`
    create table sessions (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users (id) on delete cascade,
      token_hash bytea not null unique,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null
    )`.execute(db);
  await sql`create index sessions_user_id_idx on sessions (user_id)`.execute(db);

  await sql`
    create table batches (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users (id) on delete cascade,
      status batch_status not null default 'PENDING',
      total_uploads integer not null check (total_uploads >= 0),
      successful_uploads integer not null default 0 check (successful_uploads >= 0),
      failed_uploads integer not null default 0 check (failed_uploads >= 0),
      created_at timestamptz not null default now(),
      started_at timestamptz,
      completed_at timestamptz,
      updated_at timestamptz not null default now(),
      check (successful_uploads + failed_uploads <= total_uploads)
    )`.execute(db);
  // Serves the viewer's newest-first cursor connection.
  await sql`create index batches_user_created_idx on batches (user_id, created_at desc, id desc)`.execute(db);

  await sql`
    create table uploads (
      id uuid primary key default gen_random_uuid(),
      batch_id uuid not null references batches (id) on delete cascade,
      user_id uuid not null references users (id) on delete cascade,
      position integer not null check (position >= 0),
      filename text not null,
      mime_type text not null,
      byte_size bigint not null check (byte_size >= 0),
      original_key text not null,
      thumbnail_key text,
      status upload_status not null default 'PENDING',
      attempts integer not null default 0 check (attempts >= 0),
      error_message text,
      width integer,
      height integer,
      format text,
      description text,
      embedding real[],
      analysis_status analysis_status not null default 'PENDING',
      created_at timestamptz not null default now(),
      started_at timestamptz,
      completed_at timestamptz,
      updated_at timestamptz not null default now(),
      unique (batch_id, position)
    )`.execute(db);
  // The worker's "next unfinished upload" lookup and per-status counts.
  await sql`create index uploads_batch_status_idx on uploads (batch_id, status, position)`.execute(db);
  await sql`create index uploads_user_id_idx on uploads (user_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists uploads, batches, sessions, users`.execute(db);
  await sql`drop type if exists batch_status, upload_status, analysis_status`.execute(db);
}
