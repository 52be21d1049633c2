import { encodeGlobalID } from '@pothos/plugin-relay';
import { adjustBatchCounts, type BatchRow, findBatch } from '../db/batches.ts';
import { deleteUploadRow, findUpload, lockUpload, type UploadRow } from '../db/uploads.ts';
import { signFileUrl } from '../services/auth.ts';
import { emitProgress } from '../services/progress.ts';
import { BatchRef } from './batch.ts';
import { builder } from './builder.ts';
import { AppError, ErrorInterface, requireViewer } from './error.ts';

export const UploadRef = builder.objectRef<UploadRow>('Upload');

const UploadStatus = builder.enumType('UploadStatus', {
  values: ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'] as const,
});
const AnalysisStatus = builder.enumType('AnalysisStatus', {
  description: 'SKIPPED means no model server was configured; a description is never invented.',
  values: ['PENDING', 'COMPLETED', 'SKIPPED'] as const,
});

builder.node(UploadRef, {
  id: { resolve: (u) => u.id },
  loadOne: (id, ctx) => (ctx.viewer ? findUpload(ctx.db, id, ctx.viewer.id) : null),
  fields: (t) => ({
    batch: t.field({
      type: BatchRef,
      resolve: async (u, _args, ctx) => {
        const batch = await findBatch(ctx.db, u.batchId, u.userId);
        if (!batch) throw new Error('upload without batch');
        return batch;
      },
    }),
    filename: t.exposeString('filename', { description: 'The client-supplied name, sanitized for display.' }),
    byteSize: t.float({ description: 'Size of the original in bytes.', resolve: (u) => Number(u.byteSize) }),
    mimeType: t.exposeString('mimeType', { description: 'Detected from the content, not from the client.' }),
    status: t.expose('status', { type: UploadStatus }),
    attempts: t.exposeInt('attempts', { description: 'Processing attempts that ran to a result (at most 2).' }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    format: t.exposeString('format', { nullable: true }),
    description: t.exposeString('description', { nullable: true }),
    analysisStatus: t.expose('analysisStatus', { type: AnalysisStatus }),
    thumbnailUrl: t.string({
      nullable: true,
      description: 'WebP, fits in 256 px. A signed, expiring URL an <img> can load; only the owner receives it.',
      resolve: (u, _args, ctx) =>
        u.thumbnailKey ? ctx.baseUrl + signFileUrl(ctx.config.tokenSecret, 'thumbnail', u.id, ctx.config.fileUrlTtlSeconds) : null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.queryField('upload', (t) =>
  t.field({
    type: UploadRef,
    nullable: true,
    description: "One of the viewer's uploads; null for an id that does not exist or is not theirs.",
    args: { id: t.arg.globalID({ required: true, for: UploadRef }) },
    resolve: async (_root, args, ctx) => (await findUpload(ctx.db, args.id.id, requireViewer(ctx).id)) ?? null,
  }),
);

class UploadNotFoundError extends AppError {
  constructor() {
    super('NOT_FOUND', 'Upload not found');
  }
}
builder.objectType(UploadNotFoundError, { name: 'UploadNotFoundError', interfaces: [ErrorInterface], fields: () => ({}) });

type DeleteUploadSuccessShape = { deletedUploadId: string; batch: BatchRow };
const DeleteUploadSuccess = builder.objectRef<DeleteUploadSuccessShape>('DeleteUploadSuccess').implement({
  isTypeOf: (o) => typeof o === 'object' && o !== null && 'deletedUploadId' in o,
  fields: (t) => ({
    deletedUploadId: t.id({ resolve: (r) => encodeGlobalID('Upload', r.deletedUploadId) }),
    batch: t.field({ type: BatchRef, description: 'The batch with its totals updated.', resolve: (r) => r.batch }),
  }),
});

builder.mutationField('deleteUpload', (t) =>
  t.field({
    type: builder.errorUnion('DeleteUploadResult', { types: [DeleteUploadSuccess, UploadNotFoundError] }),
    description: 'Deletes an upload and its files at any time; a worker processing it moves on.',
    args: { id: t.arg.globalID({ required: true, for: UploadRef }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      // Upload row first, then the batch: the same lock order as the worker's outcome write.
      const { deleted, batch } = await ctx.db.transaction().execute(async (trx) => {
        const upload = await lockUpload(trx, args.id.id, viewer.id);
        if (!upload) throw new UploadNotFoundError();
        const deleted = (await deleteUploadRow(trx, upload.id))!;
        const batch = await adjustBatchCounts(trx, upload.batchId, {
          total: -1,
          successful: deleted.status === 'COMPLETED' ? -1 : 0,
          failed: deleted.status === 'FAILED' ? -1 : 0,
        });
        return { deleted, batch };
      });
      await ctx.storage.removeUpload(deleted.userId, deleted.id);
      await emitProgress(ctx, { type: 'batch', batchId: batch.id, terminal: false });
      return { deletedUploadId: deleted.id, batch };
    },
  }),
);
