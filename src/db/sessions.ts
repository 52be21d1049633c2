import type { Database } from './database.ts';

export async function insertSession(db: Database, s: { userId: string; tokenHash: Buffer; expiresAt: Date }) {
  return db.insertInto('sessions').values(s).returning('id').executeTakeFirstOrThrow();
}

/** The live session (unexpired) for a token hash, with its user. */
export async function findSessionByTokenHash(db: Database, tokenHash: Buffer) {
  return db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.userId')
    .select(['sessions.id as sessionId', 'users.id', 'users.email'])
    .where('sessions.tokenHash', '=', tokenHash)
    .where('sessions.expiresAt', '>', new Date())
    .executeTakeFirst();
}

export async function deleteSession(db: Database, id: string) {
  await db.deleteFrom('sessions').where('id', '=', id).execute();
}
