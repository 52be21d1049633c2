import type DataLoader from 'dataloader';
import type { GraphQLContext } from '../context.ts';
import { type BatchRow, findBatch, findBatches } from '../db/batches.ts';
import type { Database } from '../db/database.ts';
import { findUploadsWithBatch, type UploadRow } from '../db/uploads.ts';
import type { ProgressEvent, ResyncEvent, Subscription } from '../services/events.ts';
import { serialLoader } from '../services/serial-loader.ts';
import { BatchRef, isTerminal } from './batch.ts';
import { builder } from './builder.ts';
import { notFound, requireViewer } from './error.ts';
import { UploadRef } from './upload.ts';

type BatchProgressShape = { kind: 'batch'; batch: BatchRow; seq: number };
type FileProgressShape = { kind: 'file'; batch: BatchRow; upload: UploadRow; stage: string; percent: number; seq: number };
type ProgressShape = BatchProgressShape | FileProgressShape;

const SEQ =
  'Increases with every event of the batch, across worker restarts; after a reconnect, drop events whose seq is not above the last one applied.';

const BatchProgress = builder.objectRef<BatchProgressShape>('BatchProgress').implement({
  description:
    'The batch changed (or, as the first event, its current state). While uploads finish quickly, at most one per PROGRESS_INTERVAL_MS with the latest counts; the terminal state always.',
  fields: (t) => ({
    batch: t.field({ type: BatchRef, resolve: (e) => e.batch }),
    seq: t.exposeInt('seq', { description: SEQ }),
  }),
});

const FileProgress = builder.objectRef<FileProgressShape>('FileProgress').implement({
  description: 'One upload moved through a processing stage.',
  fields: (t) => ({
    batch: t.field({ type: BatchRef, resolve: (e) => e.batch }),
    upload: t.field({ type: UploadRef, resolve: (e) => e.upload }),
    stage: t.exposeString('stage', {
      description:
        'started, thumbnail, metadata, describing, embedding, indexing, retrying, completed or failed. The stages between started and the end are published at most once per PROGRESS_INTERVAL_MS, the newest winning.',
    }),
    percent: t.exposeInt('percent', { description: "The upload's own progress, 0–100." }),
    seq: t.exposeInt('seq', { description: SEQ }),
  }),
});

const BatchProgressEvent = builder.unionType('BatchProgressEvent', {
  types: [BatchProgress, FileProgress],
  resolveType: (e) => (e.kind === 'batch' ? BatchProgress : FileProgress),
});

builder.subscriptionField('batchProgress', (t) =>
  t.field({
    type: BatchProgressEvent,
    description:
      'The current state first, then every batch and file change, completing after the terminal state.',
    args: { batchId: t.arg.globalID({ required: true, for: BatchRef }) },
    // Ownership is checked here, before a stream exists: a foreign id fails like a missing one.
    subscribe: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      const batch = await findBatch(ctx.db, args.batchId.id, viewer.id);
      if (!batch) throw notFound('Batch');
      const events = await ctx.bus.subscribe(batch.id);
      return closingFirst(progressStream(ctx, events, batch.id, viewer.id), events);
    },
    resolve: (event: ProgressShape) => event,
  }),
);

/**
 * Given a subscription that is already listening, reads the snapshot: nothing published in between is lost.
 * Every event is resolved against fresh rows: no loader outlives a single event.
 */
async function* progressStream(ctx: GraphQLContext, events: Subscription, batchId: string, userId: string): AsyncGenerator<ProgressShape> {
  // Events that arrive while an earlier one is still being read or sent are read at once, in the
  // same statement as whatever else arrived with them: a burst costs one round trip, not one each.
  events.prefetch = (event) => void rowsFor(ctx, event);
  try {
    // Read like an event, so that no event after it is read from older rows.
    const { batch: snapshot } = await rowsFor(ctx, { type: 'resync', batchId });
    if (snapshot?.userId !== userId) return;
    yield { kind: 'batch', batch: snapshot, seq: snapshot.eventSeq };
    if (isTerminal(snapshot)) return;

    for await (const event of events) {
      const { batch, upload } = await rowsFor(ctx, event);
      if (batch?.userId !== userId) return; // deleted meanwhile
      if (event.type === 'file') {
        if (upload?.userId === userId) yield { kind: 'file', batch, upload, stage: event.stage, percent: event.percent, seq: event.seq };
        continue;
      }
      // A resync has no number of its own: the state read now is as new as the batch's sequence.
      yield { kind: 'batch', batch, seq: event.type === 'batch' ? event.seq : batch.eventSeq };
      // Only the terminal event ends the stream: a fresh read may already show the final
      // status while earlier events still wait in this subscriber's queue. After a Redis
      // outage, though, the resync's read may be the only sign that the batch finished.
      if (event.type === 'batch' ? event.terminal : isTerminal(batch)) return;
    }
  } finally {
    await events.return();
  }
}

type Item = ProgressEvent | ResyncEvent;
type EventRows = { batch: BatchRow | undefined; upload?: UploadRow };
// The bus hands every subscriber in this process the same event object, so one read per
// event serves them all; the entry goes with the event, so no row outlives it.
const eventRows = new WeakMap<Item, Promise<EventRows>>();
const loaders = new WeakMap<Database, DataLoader<Item, EventRows>>();

function rowsFor(ctx: GraphQLContext, event: Item): Promise<EventRows> {
  let rows = eventRows.get(event);
  if (!rows) {
    let loader = loaders.get(ctx.db);
    // One statement at a time: an event read from older rows than one before it showed a
    // subscriber its batch's count going back.
    if (!loader) loaders.set(ctx.db, (loader = serialLoader((events) => readRows(ctx.db, events))));
    eventRows.set(event, (rows = loader.load(event)));
    rows.catch(() => {}); // a prefetched read is awaited, and fails, only if its event is reached
  }
  return rows;
}

async function readRows(db: Database, events: readonly Item[]): Promise<EventRows[]> {
  const uploadIds = new Set(events.flatMap((e) => (e.type === 'file' ? [e.uploadId] : [])));
  const uploads = await findUploadsWithBatch(db, [...uploadIds]);
  const batches = new Map<string, BatchRow>();
  for (const { batch } of uploads.values()) batches.set(batch.id, batch);
  // A missing upload hides its batch from the join, yet only a deleted batch ends the stream.
  const unread = new Set(events.map((e) => e.batchId).filter((id) => !batches.has(id)));
  for (const batch of await findBatches(db, [...unread])) batches.set(batch.id, batch);
  return events.map((e) => (e.type === 'file' && uploads.get(e.uploadId)) || { batch: batches.get(e.batchId) });
}

/**
 * A generator's return() waits for the read it is blocked in, and a quiet batch may never send
 * another event: the listener would outlive the client. Ending the bus subscription first
 * completes that read, so a closed subscription frees everything at once.
 */
function closingFirst<T>(stream: AsyncGenerator<T>, events: Subscription): AsyncGenerator<T> {
  const close = stream.return.bind(stream);
  stream.return = async (value) => {
    await events.return();
    return close(value);
  };
  return stream;
}
