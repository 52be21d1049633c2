import { resolveOffsetConnection } from '@pothos/plugin-relay';
import type { GraphQLContext } from '../context.ts';
import { type ScoredUpload, searchUploads, similarUploads } from '../db/search.ts';
import { embedQuery } from '../services/analyzer.ts';
import { builder } from './builder.ts';
import { requireViewer } from './error.ts';
import { UploadRef } from './upload.ts';

const MAX_QUERY_CHARS = 500;
const QUERY_EMBED_TIMEOUT_MS = 10_000;
const PAGE = { defaultSize: 20, maxSize: 100 };

// Paging through one query re-asks the model for the same vector; a small memo spares that.
const recentVectors = new Map<string, number[] | null>();
async function queryVector(ctx: GraphQLContext, query: string): Promise<number[] | null> {
  if (!ctx.analyzer) return null;
  const key = `${ctx.analyzer.name}\n${query}`;
  if (recentVectors.has(key)) return recentVectors.get(key)!;
  const vector = await embedQuery(ctx.analyzer, query, { signal: AbortSignal.timeout(QUERY_EMBED_TIMEOUT_MS) });
  // A failure is not remembered: the next page may find the model back.
  if (vector) {
    recentVectors.set(key, vector);
    if (recentVectors.size > 100) recentVectors.delete(recentVectors.keys().next().value!);
  }
  return vector;
}

// Search functions return rows with their score attached; the edge exposes it.
const scoreOf = (edge: { node: unknown }) => (edge.node as ScoredUpload).score;

builder.queryField('search', (t) =>
  t.connection(
    {
      type: UploadRef,
      description:
        "The viewer's uploads matching `query`, best first: full text over descriptions, filenames and camera " +
        'details, fused with similarity of meaning when a model server can embed the query.',
      args: { query: t.arg.string({ required: true }) },
      resolve: async (_root, args, ctx) => {
        const viewer = requireViewer(ctx);
        // Split like indexed filenames are, so "IMG_0001.jpg" finds itself.
        const query = args.query.slice(0, MAX_QUERY_CHARS).replace(/[._]+/g, ' ').trim();
        const vector = query ? await queryVector(ctx, query) : null;
        return resolveOffsetConnection({ args, ...PAGE }, ({ offset, limit }) =>
          query
            ? searchUploads(ctx.db, {
                userId: viewer.id,
                query,
                vector,
                minSimilarity: ctx.config.media.searchMinSimilarity,
                limit,
                offset,
              })
            : [],
        );
      },
    },
    { name: 'SearchConnection' },
    {
      name: 'SearchEdge',
      fields: (te) => ({
        score: te.float({
          description: 'Reciprocal-rank-fusion score of the text and similarity rankings; only the order means anything.',
          resolve: scoreOf,
        }),
      }),
    },
  ),
);

builder.queryField('similarUploads', (t) =>
  t.connection(
    {
      type: UploadRef,
      description: "The viewer's other uploads closest in meaning to this one, by embedding; empty when it has none.",
      args: { id: t.arg.globalID({ required: true, for: UploadRef }) },
      resolve: (_root, args, ctx) => {
        const viewer = requireViewer(ctx);
        return resolveOffsetConnection({ args, ...PAGE }, ({ offset, limit }) =>
          similarUploads(ctx.db, { userId: viewer.id, uploadId: args.id.id, limit, offset }),
        );
      },
    },
    { name: 'SimilarUploadsConnection' },
    {
      name: 'SimilarUploadsEdge',
      fields: (te) => ({ score: te.float({ description: 'Cosine similarity of the two embeddings, −1 to 1.', resolve: scoreOf }) }),
    },
  ),
);
