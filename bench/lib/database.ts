import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { createDb, createPool } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/logger.ts';

/** The PostgreSQL server the scratch databases live on (the local one, like the tests). */
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string) {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(ADMIN_URL, fn);
}

/** One short-lived connection to `url`, closed whatever fn does. */
async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export type ScratchDatabases = Awaited<ReturnType<typeof createScratchDatabases>>;

/**
 * One migrated template per bench run; every scenario gets a fresh clone of it (a file copy),
 * so no scenario measures against rows another left behind. dropAll() removes them all.
 */
export async function createScratchDatabases() {
  const template = `darkroom_bench_${randomBytes(4).toString('hex')}`;
  const created: string[] = [];
  await withAdmin((c) => c.query(`create database ${template}`));
  created.push(template);
  const pool = createPool(databaseUrl(template), 2, createLogger('warn'));
  const db = createDb(pool);
  try {
    await migrate(db, pool);
  } finally {
    await db.destroy();
  }
  let n = 0;
  return {
    name: template,
    async clone(): Promise<{ name: string; url: string }> {
      const name = `${template}_${++n}`;
      await withAdmin((c) => c.query(`create database ${name} template ${template}`));
      created.push(name);
      return { name, url: databaseUrl(name) };
    },
    async dropAll() {
      await withAdmin(async (c) => {
        for (const name of created.reverse()) await c.query(`drop database if exists ${name} with (force)`);
      });
      created.length = 0;
    },
  };
}

/**
 * Transactions a database has done so far. (Its rows-returned counter is not used: it counts
 * catalog reads and autovacuum's too, which swamp a small batch; see tableActivity.)
 * PostgreSQL publishes a backend's counters when it ends or every second or so while busy,
 * so callers stop the service's processes (closing their connections) before reading.
 */
export async function databaseActivity(name: string) {
  return withAdmin(async (c) => {
    await c.query('select pg_stat_clear_snapshot()');
    const { rows } = await c.query<{ xacts: string }>(
      `select xact_commit + xact_rollback as xacts from pg_stat_database where datname = $1`,
      [name],
    );
    return { transactions: Number(rows[0]?.xacts ?? NaN) };
  });
}

/** PostgreSQL backend processes currently serving a database (to attribute CPU time). */
export async function backendPids(name: string): Promise<number[]> {
  return withAdmin(async (c) => {
    const { rows } = await c.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name]);
    return rows.map((r) => r.pid);
  });
}

/**
 * Rows each table has yielded so far to index scans and to sequential scans (same caveat as
 * above). Kept apart: on a small table the planner rightly prefers a sequential scan, while a
 * query that walks an index over the whole batch per upload is what must not happen.
 */
export async function tableActivity(url: string): Promise<Map<string, { index: number; seq: number }>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string; idx: string; seq: string }>(
      `select schemaname || '.' || relname as name, coalesce(idx_tup_fetch, 0) as idx, coalesce(seq_tup_read, 0) as seq
         from pg_stat_all_tables where schemaname not in ('pg_catalog', 'information_schema', 'pg_toast')`,
    );
    return new Map(rows.map((r) => [r.name, { index: Number(r.idx), seq: Number(r.seq) }]));
  });
}

/**
 * The worker's timeline from its own records (`upload_runs`, one row per attempt) for the given
 * batches: the mean run (claim to end of media work and storage writes) and the mean gap between
 * one run's end and the next run's start in the same batch (uploads of a batch run one at a time): claim and scheduling.
 */
export async function runTimeline(url: string, batchIds: string[]) {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ runs: string; run_ms: number; gap_ms: number | null }>(
      `with r as (
         select started_at, finished_at,
                lag(finished_at) over (partition by batch_id order by started_at) as previous_end
           from upload_runs where batch_id = any($1::uuid[]))
       select count(*) as runs,
              avg(extract(epoch from finished_at - started_at) * 1000)::float8 as run_ms,
              avg(extract(epoch from started_at - previous_end) * 1000)::float8 as gap_ms
         from r`,
      [batchIds],
    );
    const row = rows[0]!;
    return { runs: Number(row.runs), runMs: row.run_ms, gapMs: row.gap_ms ?? NaN };
  });
}

/**
 * What one statement costs its PostgreSQL backend on this machine, in µs of CPU: back to back,
 * and arriving every 10 ms, as every statement of the pipeline does (the backend has slept and
 * other work has run meanwhile). Read from the scheduler's own runtime (/proc/<pid>/schedstat,
 * in ns), not from tick-sampled CPU times. Machines differ most in the second: waking a process
 * costs far more on some virtual machines than on others.
 */
export async function statementCost() {
  return withAdmin(async (client) => {
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    const runtime = async () => Number((await readFile(`/proc/${rows[0]!.pid}/schedstat`, 'utf8')).split(' ')[0]) / 1000;
    const per = async (n: number, gapMs: number) => {
      const q = { name: 'bench_probe', text: 'select 1' };
      await client.query(q);
      const t0 = await runtime();
      for (let i = 0; i < n; i++) {
        await client.query(q);
        if (gapMs) await delay(gapMs);
      }
      return ((await runtime()) - t0) / n;
    };
    return { backToBackUs: await per(1000, 0), spacedUs: await per(150, 10) };
  });
}
