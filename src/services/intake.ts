/**
 * Turns the files of one createBatch request into a batch while the request is still arriving,
 * so the worker starts on the first photo instead of after the last byte. Files are stored and
 * inserted in groups, into a batch that stays hidden from its owner and cannot complete until
 * finish(). A request that fails midway keeps what it stored: finish() ends it all the same.
 */
import { randomUUID } from 'node:crypto';
import type { Insertable } from 'kysely';
import type { AppContext } from '../context.ts';
import type { Database } from '../db/database.ts';
import type { Uploads } from '../db/types.ts';
import { type BatchRow, extendReceiving, finishReceiving, insertBatch } from '../db/batches.ts';
import { findContentOwners, lockOwnerContent } from '../db/duplicates.ts';
import { insertUploads } from '../db/uploads.ts';
import type { ReceivedFile } from '../http/multipart.ts';
import { enqueueProcessBatch } from '../jobs/contract.ts';

/** How long a batch stays claimed by its request without a sign of life; renewed meanwhile. */
export const RECEIVING_LEASE_MS = 120_000;
// A group is a transaction of some eight statements, so files are not committed one by one: the
// first at once (the worker starts on it), then groups that double up to MAX_GROUP, and on a
// slow link whatever has waited GROUP_WAIT_MS. MAX_GROUP also bounds the content locks a group's
// transaction holds (one per file, see lockOwnerContent) within PostgreSQL's default lock table.
const MAX_GROUP = 64;
const GROUP_WAIT_MS = 100;

export type Duplicate = { filename: string; existingUploadId: string; userId: string };

export function batchIntake(ctx: Pick<AppContext, 'db' | 'storage' | 'logger'>, userId: string) {
  const waiting: ReceivedFile[] = [];
  // Content this request stored, by SHA-256: later copies in it are duplicates of the first.
  const owners = new Map<string, string>();
  const duplicates: Duplicate[] = [];
  let batchId: string | undefined;
  let position = 0;
  let draining: Promise<void> | undefined;
  let failure: unknown;
  let heartbeat: NodeJS.Timeout | undefined;
  let groupSize = 1;
  let waitTimer: NodeJS.Timeout | undefined;
  const leaseEnd = () => new Date(Date.now() + RECEIVING_LEASE_MS);

  async function commit(group: ReceivedFile[]) {
    // Before the transaction: syncing a large file takes a while, and a request of this owner
    // with the same content would wait for its lock meanwhile.
    await ctx.storage.syncIncoming(group.map((f) => f.tempPath!));
    const created = await ctx.db.transaction().execute(async (trx) => {
      // Content the owner already has, or that came earlier in this request, is not stored again.
      const contents = group.map((f) => f.sha256);
      await lockOwnerContent(trx, userId, contents);
      const existing = await findContentOwners(trx, userId, contents);
      const fresh: { file: ReceivedFile; id: string }[] = [];
      for (const file of group) {
        const known = owners.get(file.sha256) ?? existing.get(file.sha256);
        if (known) duplicates.push({ filename: file.filename, existingUploadId: known, userId });
        else {
          const id = randomUUID();
          owners.set(file.sha256, id);
          fresh.push({ file, id });
        }
      }
      if (fresh.length === 0) return batchId;
      const rows = fresh.map(({ file: f, id }, i) => ({
        id,
        userId,
        position: position + i,
        filename: f.filename,
        mimeType: f.detected!.mime,
        byteSize: f.byteSize,
        sha256: Buffer.from(f.sha256, 'hex'),
        originalKey: `originals/${userId}/${id}.${f.detected!.ext}`,
      }));
      // Files move into place, and are on disk, before the rows commit: the job never meets a
      // row without its file, and createBatch answering means stored. The rows go in meanwhile
      // (no one sees them before the commit): the renames and the directory sync took as long
      // as the inserts, one after the other, in front of every group's commit.
      const placing = place(fresh.map(({ file }, i) => ({ file, key: rows[i]!.originalKey })));
      const inserting = insert(trx, rows);
      const [placed, inserted] = await Promise.allSettled([placing, inserting]);
      if (placed.status === 'rejected') throw placed.reason;
      if (inserted.status === 'rejected') throw inserted.reason;
      position += rows.length;
      const id = inserted.value;
      if (id === batchId) {
        // The batch row last, once the files are in place: the worker updates it with every
        // outcome, so it waits on this transaction's row lock only for its commit. The worker
        // may have caught up with the request and ended its job: it then needs a new one, in
        // the batch's place in the queue, not behind batches created after it.
        const extended = await extendReceiving(trx, id, rows.length, leaseEnd());
        if (extended?.idlePlace) await enqueueProcessBatch(trx, { batchId: id }, extended.idlePlace);
      }
      return id;
    });
    if (created && !batchId) {
      batchId = created;
      heartbeat = setInterval(() => {
        extendReceiving(ctx.db, created, 0, leaseEnd()).catch((err) => ctx.logger.warn({ err, batchId }, 'receiving lease not renewed'));
      }, RECEIVING_LEASE_MS / 4);
      heartbeat.unref();
    }
  }

  async function place(files: { file: ReceivedFile; key: string }[]) {
    await Promise.all(
      files.map(async ({ file, key }) => {
        await ctx.storage.commit(file.tempPath!, key);
        file.claimed = true;
      }),
    );
    await ctx.storage.persist(files.map((f) => f.key));
  }

  /** The group's upload rows, with the first group the batch and its job too; the batch's id. */
  async function insert(trx: Database, rows: Omit<Insertable<Uploads>, 'batchId'>[]) {
    const id = batchId ?? (await insertBatch(trx, { userId, totalUploads: rows.length, receivingUntil: leaseEnd() })).id;
    await insertUploads(trx, rows.map((row) => ({ ...row, batchId: id })));
    if (!batchId) await enqueueProcessBatch(trx, { batchId: id });
    return id;
  }

  /**
   * Commits whatever waits, in groups of at least groupSize; `all` (the group timer) takes
   * whatever waits now, however few. Files that arrive during that commit form groups of their
   * own again: taking them as they came left the rest of a request committing two or three files
   * per transaction, one after another.
   */
  async function drain(all: boolean) {
    for (let any = all; failure === undefined && waiting.length > 0 && (any || waiting.length >= groupSize); any = false) {
      try {
        await commit(waiting.splice(0));
      } catch (err) {
        failure = err;
      }
      groupSize = Math.min(groupSize * 2, MAX_GROUP);
    }
  }
  // One drain at a time. `draining` is cleared by the promise it holds, never before it is set.
  function kick(all: boolean) {
    if (draining) return;
    clearTimeout(waitTimer);
    waitTimer = undefined;
    draining = drain(all).finally(() => {
      draining = undefined;
      if (waiting.length && failure === undefined) later();
    });
  }
  // Files that do not fill a group wait at most GROUP_WAIT_MS.
  function later() {
    waitTimer ??= setTimeout(() => {
      waitTimer = undefined;
      kick(true);
    }, GROUP_WAIT_MS);
  }

  // Everything received is committed (or the request failed) before it ends.
  const settle = async () => {
    for (;;) {
      while (draining) await draining;
      if (waiting.length === 0 || failure !== undefined) break;
      kick(true);
    }
    clearTimeout(waitTimer);
    waitTimer = undefined;
  };

  return {
    /** An accepted file; stored and inserted with the group it falls into. */
    add(file: ReceivedFile) {
      waiting.push(file);
      if (waiting.length >= groupSize) kick(false);
      else later();
    },
    /**
     * The request ended, well or not: the batch becomes visible and may complete (undefined
     * when nothing was stored). Throws what kept a group from committing, if anything did;
     * the batch is then left to end when its lease runs out.
     */
    async finish(): Promise<{ batch: BatchRow | undefined; duplicates: Duplicate[] }> {
      await settle();
      clearInterval(heartbeat);
      if (failure !== undefined) throw failure;
      if (!batchId) return { batch: undefined, duplicates };
      const id = batchId;
      const done = await ctx.db.transaction().execute(async (trx) => {
        const done = await finishReceiving(trx, id);
        if (done?.idlePlace) await enqueueProcessBatch(trx, { batchId: id }, done.idlePlace);
        return done;
      });
      if (!done) throw new Error(`batch ${id} was ended by another while its request was still arriving`);
      return { batch: done.batch, duplicates };
    },
    /** Stops renewing the lease: after an unexpected error finish() may never run, and the lease then ends the batch. */
    dispose() {
      clearInterval(heartbeat);
      clearTimeout(waitTimer);
    },
  };
}
