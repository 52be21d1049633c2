import { Logger, run } from 'graphile-worker';
import pg from 'pg';
import { batchStart, connectWs, createBatch, signUp, watchBatch } from '../lib/client.ts';
import { type BenchContext, scratchDir } from '../lib/context.ts';
import { uploadOf } from '../lib/photos.ts';
import { startApi, startWorkerProcess } from '../lib/service.ts';
import { ms, percentile } from '../lib/stats.ts';

/**
 * Figure 3: createBatch response → the batch's first upload starting, one batch at a time on an
 * idle worker. The job is enqueued with the batch, as its first file is stored, so the start
 * usually comes before the response: then the latency is negative, and the client waits for
 * nothing. Both ends are on this machine's clock (the start is PostgreSQL's timestamp, ms
 * resolution). Baseline: graphile-worker's own add_job → task start on the same database, no
 * Darkroom code involved; the server-side split (upload started − batch created) is Darkroom's.
 */
export async function pickup(b: BenchContext) {
  const count = b.quick ? 50 : 100;
  const db = await b.dbs.clone();
  const baseline = await graphileAddToStart(db.url, count);

  const env = { databaseUrl: db.url, storageDir: await scratchDir(b, 'storage'), concurrency: b.cores };
  const api = await startApi(env);
  const worker = startWorkerProcess(env);
  const abort = Promise.race([api.exited, worker.exited]);
  try {
    const token = await signUp(api.graphqlUrl);
    const ws = await connectWs(api.wsUrl, token);
    // The two smallest photos: short batches.
    const smallest = [...b.photos].sort((x, y) => x.data.length - y.data.length).slice(0, 2);
    const latencies: number[] = [];
    const serverSide: number[] = [];
    for (let i = -5; i < count; i++) {
      const created = await Promise.race([createBatch(api.graphqlUrl, token, smallest.map(uploadOf)), abort]);
      const respondedAt = performance.timeOrigin + created.respondedAt;
      // Done before the next: each batch meets an idle worker.
      await Promise.race([watchBatch(ws, created.id), abort]);
      if (i < 0) continue; // warm-up
      const { createdAt, firstStartedAt } = await batchStart(api.graphqlUrl, token, created.id);
      latencies.push(firstStartedAt - respondedAt);
      serverSide.push(firstStartedAt - createdAt);
    }
    await ws.dispose();

    const p95 = percentile(latencies, 95);
    const early = latencies.filter((l) => l < 0).length;
    b.report.add({
      id: '3',
      name: `Job pickup: createBatch response → first upload started, ${count} batches`,
      darkroom: `p50 ${ms(percentile(latencies, 50))}, p95 ${ms(p95)} (${early} of ${count} before the response)`,
      baseline: `graphile-worker add_job → start: p50 ${ms(percentile(baseline, 50))}, p95 ${ms(percentile(baseline, 95))}`,
      ratio: Math.max(0, p95) / percentile(baseline, 95),
      goal: 'p95 < 50 ms',
      met: p95 < 50,
    });
    b.note(`client (negative: started before the response): p50 ${ms(percentile(latencies, 50))}, p95 ${ms(p95)}, max ${ms(Math.max(...latencies))}; ${early} of ${count} before the response`);
    b.note(
      `server (first upload started − batch created, PostgreSQL clock, ms resolution): p50 ${ms(percentile(serverSide, 50))}, p95 ${ms(percentile(serverSide, 95))}, max ${ms(Math.max(...serverSide))}`,
    );
    b.note(`graphile-worker alone: p50 ${ms(percentile(baseline, 50))}, p95 ${ms(percentile(baseline, 95))}, max ${ms(Math.max(...baseline))}`);
  } finally {
    await Promise.allSettled([worker.stop(), api.stop()]);
  }
}

/** add_job (committed) → the task function starting, with a no-op task on a runner like the service's. */
async function graphileAddToStart(url: string, count: number): Promise<number[]> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // A client dropped at shutdown is not a result, idle or checked out.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  let started: ((t: number) => void) | undefined;
  const runner = await run({
    pgPool: pool,
    concurrency: 1,
    pollInterval: 2000,
    noHandleSignals: true,
    crontab: '',
    logger: new Logger(() => () => {}),
    taskList: { bench_noop: async () => started?.(performance.now()) },
  });
  const out: number[] = [];
  try {
    for (let i = -5; i < count; i++) {
      const start = new Promise<number>((resolve) => (started = resolve));
      await pool.query(`select graphile_worker.add_job('bench_noop', '{}'::json)`);
      const addedAt = performance.now();
      const startedAt = await start;
      if (i >= 0) out.push(startedAt - addedAt);
    }
  } finally {
    await runner.stop();
    await pool.end();
  }
  return out;
}
