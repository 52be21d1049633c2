import { sql } from 'kysely';
import type { Database } from './database.ts';

/**
 * Serialises, until the transaction ends, the owner's requests that carry any of these contents
 * (hex SHA-256), so two of them cannot both find a new file absent and both store it. Requests
 * with other contents go on: one lock per owner made a user's concurrent batches commit one
 * after another, each waiting out the others' renames, syncs and inserts. The locks are taken
 * in one order (unnest reads a sorted array in order), so two requests never wait in a cycle.
 */
export async function lockOwnerContent(trx: Database, userId: string, sha256s: string[]) {
  const keys = [...new Set(sha256s)].sort().map((h) => `darkroom:content:${userId}:${h}`);
  if (keys.length === 0) return;
  await sql`select pg_advisory_xact_lock(hashtextextended(k, 0)) from unnest(${keys}::text[]) as k`.execute(trx);
}

/**
 * The owner's uploads holding any of these contents (hex SHA-256), oldest first. A FAILED
 * upload does not count: sending the file again is how a user gets it processed after all.
 */
export async function findContentOwners(db: Database, userId: string, sha256s: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (sha256s.length === 0) return found;
  // One index lookup per content on (user_id, sha256), both as equalities: as `sha256 = any(…)`
  // PostgreSQL 15 may keep the list as a filter and read every upload of the user instead.
  const { rows } = await sql<{ sha256: Buffer; id: string }>`
    select s.sha256, u.id
      from unnest(${[...new Set(sha256s)].map((h) => Buffer.from(h, 'hex'))}::bytea[]) as s(sha256)
      cross join lateral (
        select id from uploads
         where user_id = ${userId} and sha256 = s.sha256 and status <> 'FAILED'
         order by created_at, position
         limit 1
      ) u`.execute(db);
  for (const r of rows) found.set(r.sha256.toString('hex'), r.id);
  return found;
}
