import { GraphQLError } from 'graphql';
import { encodeGlobalID, resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import type { GraphQLContext } from '../context.ts';
import { adjustBatchCounts, type BatchRow, cancelBatch, findBatch, listBatches, lockBatch } from '../db/batches.ts';
import { listUploads, requeueFailedUploads } from '../db/uploads.ts';
import { type IncomingFile, UploadFailed } from '../http/multipart.ts';
import { batchIntake } from '../services/intake.ts';
import { enqueueProcessBatch } from '../jobs/contract.ts';
import { emitProgress } from '../services/progress.ts';
import { builder } from './builder.ts';
import { AppError, ErrorInterface, requireViewer } from './error.ts';
import { UploadRef } from './upload.ts';
import { DuplicateFileRef, type DuplicateFileShape } from './upload-media.ts';

export const BatchRef = builder.objectRef<BatchRow>('Batch');

const BatchStatus = builder.enumType('BatchStatus', {
  values: ['PENDING', 'PROCESSING', 'COMPLETED', 'CANCELLED'] as const,
});

export const isTerminal = (b: BatchRow) => b.status === 'COMPLETED' || b.status === 'CANCELLED';

builder.node(BatchRef, {
  id: { resolve: (b) => b.id },
  loadOne: (id, ctx) => (ctx.viewer ? findBatch(ctx.db, id, ctx.viewer.id) : null),
  fields: (t) => ({
    status: t.expose('status', { type: BatchStatus }),
    totalUploads: t.exposeInt('totalUploads'),
    processedUploads: t.int({ resolve: (b) => b.successfulUploads + b.failedUploads }),
    successfulUploads: t.exposeInt('successfulUploads'),
    failedUploads: t.exposeInt('failedUploads'),
    progressPercent: t.int({
      description: 'Processed uploads as a whole percentage of the total.',
      resolve: (b) => (b.totalUploads ? Math.floor(((b.successfulUploads + b.failedUploads) * 100) / b.totalUploads) : 100),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    uploads: t.connection({
      type: UploadRef,
      description: 'In the order they were uploaded.',
      resolve: (b, args, ctx) =>
        resolveCursorConnection(
          { args, toCursor: (u) => String(u.position) },
          ({ after, before, limit, inverted }: ResolveCursorConnectionArgs) =>
            listUploads(ctx.db, b.id, {
              after: after === undefined ? undefined : parsePosition(after),
              before: before === undefined ? undefined : parsePosition(before),
              limit,
              inverted,
            }),
        ),
    }),
  }),
});

const badCursor = () => new GraphQLError('Invalid cursor', { extensions: { code: 'BAD_USER_INPUT' } });

function parsePosition(cursor: string) {
  const n = Number(cursor);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 31) throw badCursor();
  return n;
}

const batchCursor = {
  encode: (b: BatchRow) => Buffer.from(`${b.createdAt.toISOString()}|${b.id}`).toString('base64url'),
  decode: (cursor: string) => {
    const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
    const createdAt = new Date(at ?? '');
    const year = createdAt.getUTCFullYear();
    if (!id || !/^[0-9a-f-]{36}$/.test(id) || !(year >= 1970 && year <= 9999)) throw badCursor();
    return { createdAt, id };
  },
};

builder.queryField('batch', (t) =>
  t.field({
    type: BatchRef,
    nullable: true,
    description: "One of the viewer's batches; null for an id that does not exist or is not theirs.",
    args: { id: t.arg.globalID({ required: true, for: BatchRef }) },
    resolve: async (_root, args, ctx) => (await findBatch(ctx.db, args.id.id, requireViewer(ctx).id)) ?? null,
  }),
);

builder.queryField('batches', (t) =>
  t.connection({
    type: BatchRef,
    description: "The viewer's batches, newest first.",
    resolve: (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      return resolveCursorConnection(
        { args, toCursor: batchCursor.encode },
        ({ after, before, limit, inverted }: ResolveCursorConnectionArgs) =>
          listBatches(ctx.db, viewer.id, {
            after: after === undefined ? undefined : batchCursor.decode(after),
            before: before === undefined ? undefined : batchCursor.decode(before),
            limit,
            inverted,
          }),
      );
    },
  }),
);

type RejectedFileShape = { filename: string; code: string; message: string };
const RejectedFile = builder.objectRef<RejectedFileShape>('RejectedFile').implement({
  description: 'A file of the request that was not accepted, and why.',
  fields: (t) => ({
    filename: t.exposeString('filename'),
    code: t.exposeString('code', {
      description: 'FILE_TOO_LARGE, BATCH_TOO_LARGE, TOO_MANY_FILES, EMPTY_FILE, UNSUPPORTED_TYPE or UPLOAD_INCOMPLETE.',
    }),
    message: t.exposeString('message'),
  }),
});

class NoAcceptableFilesError extends AppError {
  readonly rejectedFiles: RejectedFileShape[];
  readonly duplicates: DuplicateFileShape[];
  constructor(rejectedFiles: RejectedFileShape[], duplicates: DuplicateFileShape[] = []) {
    super(
      'NO_ACCEPTABLE_FILES',
      rejectedFiles.length ? 'None of the files could be accepted' : duplicates.length ? 'Every file is already uploaded' : 'No files were sent',
    );
    this.rejectedFiles = rejectedFiles;
    this.duplicates = duplicates;
  }
}
builder.objectType(NoAcceptableFilesError, {
  name: 'NoAcceptableFilesError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    rejectedFiles: t.field({ type: [RejectedFile], resolve: (e) => e.rejectedFiles }),
    duplicates: t.field({ type: [DuplicateFileRef], resolve: (e) => e.duplicates }),
  }),
});

type CreateBatchSuccessShape = { batch: BatchRow; rejectedFiles: RejectedFileShape[]; duplicates: DuplicateFileShape[] };
const CreateBatchSuccess = builder.objectRef<CreateBatchSuccessShape>('CreateBatchSuccess').implement({
  isTypeOf: (o) => typeof o === 'object' && o !== null && 'batch' in o && 'rejectedFiles' in o,
  fields: (t) => ({
    batch: t.field({ type: BatchRef, resolve: (r) => r.batch }),
    rejectedFiles: t.field({ type: [RejectedFile], resolve: (r) => r.rejectedFiles }),
    duplicates: t.field({
      type: [DuplicateFileRef],
      description: 'Files the viewer already has: reported with the existing upload, not added to the batch.',
      resolve: (r) => r.duplicates,
    }),
  }),
});

const CreateBatchResult = builder.errorUnion('CreateBatchResult', {
  types: [CreateBatchSuccess, NoAcceptableFilesError],
});

builder.mutationField('createBatch', (t) =>
  t.field({
    type: CreateBatchResult,
    description:
      'Uploads files (GraphQL multipart request) as one batch. Processing starts with the first file while the rest still arrives; the batch appears (in `batches`, `batch`, `batchProgress`) when the request ends. A request that fails midway (connection lost, malformed or too slow) keeps the files stored before that as a batch: the error names it in extensions.batchId.',
    args: { files: t.arg({ type: ['File'], required: true }) },
    resolve: (_root, args, ctx) => createBatch(ctx, args.files),
  }),
);

async function createBatch(ctx: GraphQLContext, files: IncomingFile[]): Promise<CreateBatchSuccessShape> {
  const viewer = requireViewer(ctx);
  const intake = batchIntake(ctx, viewer.id);
  const rejectedFiles: RejectedFileShape[] = [];
  try {
    // Each file goes to the batch as soon as it has arrived, so processing starts with the first.
    for (const incoming of files) {
      const f = await incoming.received;
      if (f.rejection) rejectedFiles.push({ filename: f.filename, ...f.rejection });
      else intake.add(f);
    }
    await files[0]?.requestEnded; // a body that turns out malformed after its last file fails as a whole
  } catch (err) {
    intake.dispose();
    if (err instanceof UploadFailed) throw await failedRequest(err, intake);
    throw err;
  }
  const { batch, duplicates } = await intake.finish();
  if (!batch) throw new NoAcceptableFilesError(rejectedFiles, duplicates);
  return { batch, rejectedFiles, duplicates };
}

/** Nothing received is lost: what a failed request stored stays a batch of its own, and the error says which. */
async function failedRequest(err: UploadFailed, intake: ReturnType<typeof batchIntake>) {
  const { batch } = await intake.finish();
  const batchId = batch && encodeGlobalID('Batch', batch.id);
  return new GraphQLError(batch ? `${err.message}; the ${batch.totalUploads} files stored before that are kept in batch ${batchId}` : err.message, {
    extensions: { code: err.code, http: { status: err.status }, ...(batch ? { batchId, keptUploads: batch.totalUploads } : {}) },
  });
}

class BatchNotActiveError extends AppError {
  constructor(status: string) {
    super('BATCH_NOT_ACTIVE', `The batch is already ${status.toLowerCase()}`);
  }
}
class BatchNotFinishedError extends AppError {
  constructor(status: string) {
    super(
      'BATCH_NOT_FINISHED',
      status === 'CANCELLED'
        ? 'A cancelled batch cannot be retried'
        : 'Failed uploads can be retried once the batch has completed',
    );
  }
}
class NothingToRetryError extends AppError {
  constructor() {
    super('NOTHING_TO_RETRY', 'The batch has no failed uploads');
  }
}
class BatchNotFoundError extends AppError {
  constructor() {
    super('NOT_FOUND', 'Batch not found');
  }
}
for (const [cls, name] of [
  [BatchNotActiveError, 'BatchNotActiveError'],
  [BatchNotFinishedError, 'BatchNotFinishedError'],
  [NothingToRetryError, 'NothingToRetryError'],
  [BatchNotFoundError, 'BatchNotFoundError'],
] as const) {
  builder.objectType(cls, { name, interfaces: [ErrorInterface], fields: () => ({}) });
}

const BatchResult = builder.objectRef<{ batch: BatchRow }>('BatchResult').implement({
  isTypeOf: (o) => typeof o === 'object' && o !== null && 'batch' in o && !('rejectedFiles' in o),
  fields: (t) => ({ batch: t.field({ type: BatchRef, resolve: (r) => r.batch }) }),
});

builder.mutationField('cancelBatch', (t) =>
  t.field({
    type: builder.errorUnion('CancelBatchResult', { types: [BatchResult, BatchNotFoundError, BatchNotActiveError] }),
    description: 'Stops the batch before its next upload and aborts the one in flight; unstarted uploads stay PENDING.',
    args: { id: t.arg.globalID({ required: true, for: BatchRef }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const batch = await cancelBatch(ctx.db, args.id.id, viewer.id);
      if (!batch) {
        const existing = await findBatch(ctx.db, args.id.id, viewer.id);
        throw existing ? new BatchNotActiveError(existing.status) : new BatchNotFoundError();
      }
      await emitProgress(ctx, { type: 'batch', batchId: batch.id, terminal: true });
      return { batch: (await findBatch(ctx.db, batch.id)) ?? batch };
    },
  }),
);

builder.mutationField('retryFailedUploads', (t) =>
  t.field({
    type: builder.errorUnion('RetryFailedUploadsResult', {
      types: [BatchResult, BatchNotFoundError, BatchNotFinishedError, NothingToRetryError],
    }),
    description: 'Queues the FAILED uploads of a completed batch again, with fresh attempts; the batch returns to PROCESSING.',
    args: { batchId: t.arg.globalID({ required: true, for: BatchRef }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const batch = await ctx.db.transaction().execute(async (trx) => {
        const locked = await lockBatch(trx, args.batchId.id, viewer.id);
        if (!locked) throw new BatchNotFoundError();
        // Only COMPLETED: resuming a cancelled batch would also run uploads it never started.
        if (locked.status !== 'COMPLETED') throw new BatchNotFinishedError(locked.status);
        const requeued = await requeueFailedUploads(trx, locked.id);
        if (requeued.length === 0) throw new NothingToRetryError();
        const batch = await adjustBatchCounts(trx, locked.id, { failed: -requeued.length }, 'PROCESSING');
        await enqueueProcessBatch(trx, { batchId: locked.id });
        return batch;
      });
      await emitProgress(ctx, { type: 'batch', batchId: batch.id, terminal: false });
      return { batch };
    },
  }),
);
