import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Every progress event of a batch takes the next number, so clients can drop stale ones.
  await sql`alter table batches add column event_seq integer not null default 0`.execute(db);

  // One row per processing attempt: what ran where and when. It is how overlap and
  // recovery can be audited after the fact, and outlives deleted uploads on purpose.
  await sql`
    create table upload_runs (
      id bigint generated always as identity primary key,
      upload_id uuid not null,
      batch_id uuid not null,
      worker_id text not null,
      started_at timestamptz not null default clock_timestamp(),
      finished_at timestamptz,
      outcome text check (outcome in ('COMPLETED', 'RETRY', 'FAILED', 'ABORTED'))
    )`.execute(db);
  await sql`create index upload_runs_batch_idx on upload_runs (batch_id, started_at)`.execute(db);

  // Live worker processes. Each holds a session advisory lock on lock_key for as long
  // as it lives; PostgreSQL drops it the moment the process's connection dies, which is
  // how another process knows, within seconds, that its jobs can be unlocked.
  await sql`
    create table worker_processes (
      id uuid primary key,
      lock_key bigint not null unique,
      worker_ids text[] not null default '{}',
      hostname text not null,
      pid integer not null,
      started_at timestamptz not null default now()
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists worker_processes, upload_runs`.execute(db);
  await sql`alter table batches drop column if exists event_seq`.execute(db);
}
