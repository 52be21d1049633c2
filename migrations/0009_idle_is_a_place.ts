import { type Kysely, sql } from 'kysely';

// receiving_idle said that the batch's worker had caught up with the request and ended its job;
// receiving_place, beside it, where the next job goes in the queue. Two columns for one state:
// the place outlived the idle spell it belonged to. Now the place alone says both, and is null
// whenever the worker is not idle. An idle batch from before 0008 has no place: its creation
// time stands in, as it would for its first job.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    update batches set receiving_place = case when receiving_idle then coalesce(receiving_place, created_at) end
     where receiving_idle or receiving_place is not null`.execute(db);
  await sql`alter table batches drop column receiving_idle`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table batches add column receiving_idle boolean not null default false`.execute(db);
  await sql`update batches set receiving_idle = true where receiving_place is not null`.execute(db);
}
