import { sql } from 'kysely';
import type { Database } from './database.ts';

export async function insertUser(db: Database, user: { email: string; passwordHash: string }) {
  return db
    .insertInto('users')
    .values(user)
    .onConflict((oc) => oc.expression(sql`lower(${sql.ref('email')})`).doNothing())
    .returning(['id', 'email', 'createdAt'])
    .executeTakeFirst();
}

export async function findUserByEmail(db: Database, email: string) {
  return db
    .selectFrom('users')
    .select(['id', 'email', 'passwordHash', 'createdAt'])
    .where((eb) => eb(eb.fn('lower', ['email']), '=', email.toLowerCase()))
    .executeTakeFirst();
}

export async function findUser(db: Database, id: string) {
  return db.selectFrom('users').select(['id', 'email', 'createdAt']).where('id', '=', id).executeTakeFirst();
}
