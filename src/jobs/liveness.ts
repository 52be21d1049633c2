import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { makeWorkerUtils } from 'graphile-worker';
import { sql } from 'kysely';
import type pg from 'pg';
import type { AppContext } from '../context.ts';
import { PROCESS_BATCH } from './contract.ts';

export interface LivenessOptions {
  sweepIntervalMs: number;
  /** How long a job may stay locked by a worker id no live process has registered. */
  orphanGraceMs: number;
}

export interface Liveness {
  /** Aborts when this process can no longer prove it is alive: its jobs must stop. */
  readonly signal: AbortSignal;
  /** Records a worker id of this process; awaited before a job does any work. */
  addWorker(workerId: string): Promise<void>;
  /** The worker pool these ids belonged to has ended: free whatever they still hold. */
  retireWorkers(): Promise<void>;
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * graphile-worker frees a dead worker's job only after a 4-hour lock timeout. Instead,
 * every worker process holds a PostgreSQL session advisory lock for its whole life;
 * when the process dies its connection goes and the lock with it. Any live process can
 * then take that lock, which proves the owner dead, and unlock the owner's jobs at once.
 */
export async function startLiveness(ctx: AppContext, opts: LivenessOptions): Promise<Liveness> {
  const log = ctx.logger.child({ component: 'liveness' });
  const utils = await makeWorkerUtils({ pgPool: ctx.pool });
  const id = randomUUID();
  const workerIds = new Set<string>();
  let lost = new AbortController();
  let client: pg.PoolClient | undefined;
  let stopped = false;

  async function register() {
    const c = await ctx.pool.connect();
    try {
      const lockKey = BigInt.asIntN(64, randomBytes(8).readBigUInt64BE()).toString();
      await c.query('select pg_advisory_lock($1)', [lockKey]);
      await ctx.db
        .insertInto('workerProcesses')
        .values({ id, lockKey, workerIds: [...workerIds], hostname: os.hostname(), pid: process.pid })
        .onConflict((oc) => oc.column('id').doUpdateSet({ lockKey, workerIds: [...workerIds] }))
        .execute();
    } catch (err) {
      c.release(true); // half-registered: drop the connection, and its lock with it
      throw err;
    }
    // The lock lives exactly as long as this connection; losing it means we may be
    // presumed dead, so our jobs stop (the signal) and we register afresh.
    c.once('error', () => onLost(c));
    c.once('end', () => onLost(c));
    if (stopped) {
      c.release(true);
      return;
    }
    client = c;
  }

  function onLost(c: pg.PoolClient) {
    if (client !== c || stopped) return;
    client = undefined;
    c.release(true);
    log.error('liveness connection lost: stopping running jobs and re-registering');
    lost.abort(new Error('worker liveness lost'));
    lost = new AbortController();
    const retry = () =>
      register().catch((err) => {
        log.warn({ err }, 'could not re-register liveness; retrying');
        if (!stopped) setTimeout(retry, 1000).unref();
      });
    retry();
  }

  async function sweep() {
    if (!client) return 0;
    const c = client;
    const others = await ctx.db.selectFrom('workerProcesses').select(['id', 'lockKey', 'workerIds']).where('id', '!=', id).execute();
    const dead: string[] = [];
    for (const p of others) {
      const { rows } = await c.query<{ got: boolean }>('select pg_try_advisory_lock($1) as got', [p.lockKey]);
      if (!rows[0]?.got) continue;
      dead.push(...p.workerIds);
      await ctx.db.deleteFrom('workerProcesses').where('id', '=', p.id).execute();
      await c.query('select pg_advisory_unlock($1)', [p.lockKey]);
    }
    const live = await ctx.db.selectFrom('workerProcesses').select('workerIds').execute();
    const liveIds = live.flatMap((p) => p.workerIds);
    const { rows: stale } = await sql<{ id: string; lockedBy: string; attempts: number }>`
      select id, locked_by, attempts from graphile_worker.jobs
      where task_identifier = ${PROCESS_BATCH} and locked_by is not null
        and (locked_by = any(${dead}::text[])
          or (not locked_by = any(${liveIds}::text[]) and locked_at < now() - ${`${opts.orphanGraceMs} milliseconds`}::interval))`.execute(ctx.db);
    if (stale.length === 0) return 0;
    await utils.forceUnlockWorkers([...new Set(stale.map((j) => j.lockedBy))]);
    // A crash is not the job's failure: give back the attempt the dead run used.
    for (const j of stale) {
      await utils.rescheduleJobs([j.id], { attempts: Math.max(0, j.attempts - 1), runAt: new Date() });
    }
    // Unlocking is no insert, so nobody is told: wake idle workers as add_job would.
    await sql`select pg_notify('jobs:insert', '')`.execute(ctx.db);
    log.info({ jobs: stale.map((j) => j.id), workers: [...new Set(stale.map((j) => j.lockedBy))] }, 'unlocked jobs of dead workers');
    return stale.length;
  }

  await register();
  let sweeping: Promise<unknown> = Promise.resolve();
  const runSweep = () => {
    sweeping = sweeping.then(sweep).catch((err) => log.warn({ err }, 'liveness sweep failed'));
  };
  runSweep();
  const timer = setInterval(runSweep, opts.sweepIntervalMs);
  timer.unref();

  return {
    get signal() {
      return lost.signal;
    },
    async addWorker(workerId) {
      if (workerIds.has(workerId)) return;
      workerIds.add(workerId);
      await ctx.db.updateTable('workerProcesses').set({ workerIds: [...workerIds] }).where('id', '=', id).execute();
    },
    async retireWorkers() {
      const ids = [...workerIds];
      if (ids.length) await utils.forceUnlockWorkers(ids);
      workerIds.clear();
      await ctx.db.updateTable('workerProcesses').set({ workerIds: [] }).where('id', '=', id).execute();
    },
    sweep: async () => {
      await sweeping;
      return sweep();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await sweeping;
      await ctx.db.deleteFrom('workerProcesses').where('id', '=', id).execute().catch(() => {});
      // Pooled connections outlive us here: drop the lock before handing this one back.
      await client?.query('select pg_advisory_unlock_all()').catch(() => {});
      client?.release();
      client = undefined;
      await utils.release();
    },
  };
}
