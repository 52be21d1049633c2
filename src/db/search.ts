import { type RawBuilder, sql } from 'kysely';
import type { Database } from './database.ts';
import { type UploadRow, uploadRowSql } from './fragments.ts';

export type ScoredUpload = UploadRow & { score: number };

// Reciprocal rank fusion: each list contributes 1/(K + rank). It needs no calibration between
// full-text ranks and cosine similarities, which live on unrelated scales. Equal scores share
// a rank, so an arbitrary tie-break in one list cannot outweigh a real difference in the other.
const RRF_K = 60;
// Each list is cut here; ranks further down add almost nothing to a fused score.
const CANDIDATES = 1000;

const pgvectorByDb = new WeakMap<Database, Promise<boolean>>();

/** Whether the vector extension is installed in this database (checked once per pool). */
export function hasPgvector(db: Database): Promise<boolean> {
  let known = pgvectorByDb.get(db);
  if (!known) {
    known = sql<{ ok: boolean }>`select exists(select 1 from pg_extension where extname = 'vector') as ok`
      .execute(db)
      .then((r) => r.rows[0]?.ok === true);
    pgvectorByDb.set(db, known);
  }
  return known;
}

/** Cosine similarity of uploads.embedding to a vector: pgvector's operator when present, else plain SQL. */
function similarity(vector: number[], pgvector: boolean): RawBuilder<number> {
  return pgvector
    ? sql<number>`(1 - (embedding::vector <=> ${vector}::real[]::vector))`
    : sql<number>`darkroom_cosine(embedding, ${vector}::real[])`;
}

export interface SearchInput {
  userId: string;
  query: string;
  /** The query's embedding; null searches text only. */
  vector: number[] | null;
  minSimilarity: number;
  limit: number;
  offset: number;
}

/**
 * The owner's uploads matching a query by full text (descriptions, filenames, camera text),
 * by meaning (embedding similarity), or both, best first. Both at once ranks highest.
 */
export async function searchUploads(db: Database, input: SearchInput): Promise<ScoredUpload[]> {
  const { userId, query, vector } = input;
  const vectorHits = vector
    ? sql`
        select id, rank() over (order by sim desc) as r
        from (
          select id, created_at, ${similarity(vector, await hasPgvector(db))} as sim
          from uploads
          where user_id = ${userId} and embedding is not null and cardinality(embedding) = ${vector.length}
        ) s
        where sim >= ${input.minSimilarity}
        order by r
        limit ${CANDIDATES}`
    : sql`select null::uuid as id, 0::bigint as r where false`;
  const { rows } = await sql<ScoredUpload>`
    with text_hits as (
      select id, rank() over (order by rank desc) as r
      from (
        select id, created_at, ts_rank_cd(search_document, q) as rank
        from uploads, websearch_to_tsquery('english', ${query}) q
        where user_id = ${userId} and search_document @@ q
      ) t
      order by r
      limit ${CANDIDATES}
    ),
    vector_hits as (${vectorHits}),
    fused as (
      select id, sum(1.0 / (${RRF_K} + r))::float8 as score
      from (select * from text_hits union all select * from vector_hits) hits
      group by id
    )
    select ${uploadRowSql('u')}, f.score
    from fused f
    join uploads u on u.id = f.id
    order by f.score desc, u.created_at desc, u.id
    limit ${input.limit} offset ${input.offset}`.execute(db);
  return rows;
}

/** The owner's other uploads nearest in meaning to one of theirs; none when it has no embedding. */
export async function similarUploads(
  db: Database,
  input: { userId: string; uploadId: string; limit: number; offset: number },
): Promise<ScoredUpload[]> {
  const source = await db
    .selectFrom('uploads')
    .select('embedding')
    .where('id', '=', input.uploadId)
    .where('userId', '=', input.userId)
    .executeTakeFirst();
  if (!source?.embedding?.length) return [];
  const vector = source.embedding;
  const { rows } = await sql<ScoredUpload>`
    select ${uploadRowSql('u')}, ${similarity(vector, await hasPgvector(db))}::float8 as score
    from uploads u
    where user_id = ${input.userId} and id <> ${input.uploadId}
      and embedding is not null and cardinality(embedding) = ${vector.length}
    order by score desc, created_at desc, id
    limit ${input.limit} offset ${input.offset}`.execute(db);
  return rows;
}
