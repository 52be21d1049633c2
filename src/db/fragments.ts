import { type ExpressionBuilder, sql } from 'kysely';
import type { DB } from './types.ts';

export const now = () => sql<Date>`now()`;

/** Restricts a batch or upload to its owner; `undefined` means a trusted caller (the worker). */
export function ownedBy(userId: string | undefined) {
  return () => (userId === undefined ? sql<boolean>`true` : sql<boolean>`${sql.ref('userId')} = ${userId}`);
}

/** Uploads the worker still has to finish (a PROCESSING one was interrupted by a crash). */
export function unfinished(eb: ExpressionBuilder<DB, 'uploads'>) {
  return eb('uploads.status', 'in', ['PENDING', 'PROCESSING']);
}
