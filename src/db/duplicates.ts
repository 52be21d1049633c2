import { sql } from 'kysely';
import type { Database } from './database.ts';

/**
 * Serialises createBatch per owner until the transaction ends, so two requests carrying the
 * same new file cannot both find it absent and both store it.
 */
export async function lockOwnerContent(trx: Database, userId: string) {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`darkroom:content:${userId}`}, 0))`.execute(trx);
}

/**
 * The owner's uploads holding any of these contents (hex SHA-256), oldest first. A FAILED
 * upload does not count: sending the file again is how a user gets it processed after all.
 */
export async function findContentOwners(db: Database, userId: string, sha256s: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (sha256s.length === 0) return found;
  const rows = await db
    .selectFrom('uploads')
    .select(['id', 'sha256'])
    .where('userId', '=', userId)
    .where('sha256', 'in', [...new Set(sha256s)].map((h) => Buffer.from(h, 'hex')))
    .where('status', '!=', 'FAILED')
    .orderBy('createdAt')
    .orderBy('position')
    .execute();
  for (const r of rows) {
    const hex = r.sha256!.toString('hex');
    if (!found.has(hex)) found.set(hex, r.id);
  }
  return found;
}
