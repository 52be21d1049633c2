import path from 'node:path';
import { type BatchRun, runBatch } from '../lib/batches.ts';
import { connectWs, localId, signUp } from '../lib/client.ts';
import { type BenchContext, scratchDir } from '../lib/context.ts';
import { databaseActivity, tableActivity } from '../lib/database.ts';
import { bareLoop } from '../lib/media-work.ts';
import { type Photo, repeatTo, tinyPhoto, writePhotos } from '../lib/photos.ts';
import { startApi, startWorkerProcess } from '../lib/service.ts';
import { median, ms, num } from '../lib/stats.ts';

const SIZES = [10, 100, 1000];

interface SizeResult {
  n: number;
  cycle: number;
  /** The bare media work per upload, around this size's session. */
  bare: number;
  overhead: number;
  ingest: number;
  events: number;
  xacts: number;
  /** Rows fetched through indexes per upload, all tables. */
  indexRows: number;
  tables: Map<string, { index: number; seq: number }>;
}

/**
 * Figure 6. Batches of 10, 100 and 1,000 small uploads (decoding nearly free, so what is left
 * is Darkroom's own cost), each on fresh processes and a fresh database. Per upload: the
 * processing cycle (median interval between consecutive uploads' last events, minus the bare
 * media time measured around the same session; the batch of 10 runs ten times, so each median
 * is over some 100 intervals a round, and the sizes take turns for two rounds), events
 * delivered, and rows PostgreSQL read (through indexes, the figure; and by sequential scans,
 * which the planner rightly picks for small tables). Processes are stopped
 * before the database's counters are read (so every backend has published its statistics), and
 * a run with no batch at all measures what startup and warm-up read, to be subtracted.
 */
export async function scaling(b: BenchContext) {
  const photo = await tinyPhoto();
  const bareFiles = await writePhotos(path.join(b.tmp, 'tiny'), repeatTo([photo], 100));
  await bareLoop(bareFiles.slice(0, 20), 1);
  // Measured around each size's session: the overhead is a few ms, so a machine that speeds up
  // or slows down by a tenth between the baseline and the batch would otherwise swamp it.
  const bareNow = async () => (await bareLoop(bareFiles, 1)).ms / bareFiles.length;

  const control = await session(b, photo, 0, 0);
  // The sizes take turns, twice in a full run, so a drift of the machine's speed falls on all.
  const rounds = b.quick ? 1 : 2;
  const sessions = new Map<number, { s: Session; bare: number }[]>(SIZES.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const n of SIZES) {
      // Small batches run several times, so that every size's median has some 100 cycles a round.
      const before = await bareNow();
      const s = await session(b, photo, n, Math.ceil(100 / n));
      sessions.get(n)!.push({ s, bare: (before + (await bareNow())) / 2 });
    }
  }
  const results: SizeResult[] = [];
  for (const n of SIZES) {
    const all = sessions.get(n)!;
    // Each upload's last event ends its cycle; gaps between them leave each batch's own start and end out.
    const cycles = all.flatMap(({ s }) =>
      s.runs.flatMap((run) => {
        const lastEvent = new Map<string, number>();
        for (const r of run.events) if (r.event.__typename === 'FileProgress') lastEvent.set(localId(r.event.upload.id), r.at);
        const ends = [...lastEvent.values()].sort((x, y) => x - y);
        return ends.slice(1).map((t, i) => t - ends[i]!);
      }),
    );
    const cycle = median(cycles);
    const bare = all.reduce((sum, x) => sum + x.bare, 0) / all.length;
    // Rows and transactions are counted alike in every round: the first one's are used.
    const { s } = all[0]!;
    const uploads = s.runs.reduce((sum, run) => sum + run.created.totalUploads, 0);
    const tables = new Map(
      [...s.tables].map(([t, v]) => {
        const c = control.tables.get(t) ?? { index: 0, seq: 0 };
        return [t, { index: (v.index - c.index) / uploads, seq: (v.seq - c.seq) / uploads }];
      }),
    );
    const sum = (f: (run: BatchRun) => number) => s.runs.reduce((total, run) => total + f(run), 0);
    results.push({
      n,
      cycle,
      bare,
      overhead: cycle - bare,
      ingest: sum((run) => run.created.respondedAt - run.created.sentAt) / uploads,
      events: sum((run) => run.events.length - 1) / uploads,
      xacts: (s.xacts - control.xacts) / uploads,
      indexRows: [...tables.values()].reduce((sum, t) => sum + t.index, 0),
      tables,
    });
    b.log(`batch of ${n}: ${ms(cycle, 2)} per upload cycle`);
  }

  const [r10, r100, r1000] = results as [SizeResult, SizeResult, SizeResult];
  for (const r of [r100, r1000]) {
    b.report.add({
      id: r === r100 ? '6a' : '6b',
      name: `Scaling: per-upload overhead, batch of ${r.n} vs batch of ${r10.n}`,
      darkroom: `${ms(r.overhead, 2)} per upload`,
      baseline: `${ms(r10.overhead, 2)} per upload`,
      ratio: r.overhead / r10.overhead,
      goal: 'flat (≤ 1.20)',
      met: r.overhead / r10.overhead <= 1.2,
    });
  }
  // Per-batch reads (createBatch, start, completion) weigh on the 10-upload figure, so a flat
  // implementation comes out below 1 here: a ratio above it means reads that grow with the batch.
  b.report.add({
    id: '6c',
    name: `Scaling: rows read through indexes per upload, batch of ${r1000.n} vs batch of ${r10.n}`,
    darkroom: `${num(r1000.indexRows, 0)} rows/upload`,
    baseline: `${num(r10.indexRows, 0)} rows/upload`,
    ratio: r1000.indexRows / r10.indexRows,
    goal: 'flat (≤ 1.20)',
    met: r1000.indexRows / r10.indexRows <= 1.2,
  });
  for (const r of results) {
    b.note(
      `batch of ${r.n}: cycle ${ms(r.cycle, 2)} (overhead ${ms(r.overhead, 2)} over the bare media work's ${ms(r.bare, 2)} for the ` +
        `${photo.data.length}-byte test image, measured before and after), createBatch ${ms(r.ingest, 2)} per upload, ` +
        `${num(r.events, 2)} events, ${num(r.xacts, 1)} transactions, ${num(r.indexRows, 0)} rows read through indexes per upload`,
    );
  }
  const top = (r: SizeResult) =>
    [...r.tables]
      .filter(([, v]) => v.index + v.seq >= 1)
      .sort((x, y) => y[1].index + y[1].seq - (x[1].index + x[1].seq))
      .slice(0, 3)
      .map(([t, v]) => `${t} ${num(v.index, 0)} by index + ${num(v.seq, 0)} by seq scan`)
      .join(', ');
  b.note(`rows read per upload by table: ${results.map((r) => `batch of ${r.n}: ${top(r)}`).join('; ')}`);
}

type Session = Awaited<ReturnType<typeof session>>;

/** Fresh database and processes; a warm-up batch, then `times` measured batches of n, one after the other; stopped before counting. */
async function session(b: BenchContext, photo: Photo, n: number, times: number) {
  const db = await b.dbs.clone();
  const env = { databaseUrl: db.url, storageDir: await scratchDir(b, 'storage'), concurrency: 1, extra: { MAX_FILES_PER_BATCH: '1000' } };
  const before = await databaseActivity(db.name);
  const api = await startApi(env);
  const worker = startWorkerProcess(env);
  const abort = Promise.race([api.exited, worker.exited]);
  const runs: BatchRun[] = [];
  try {
    const token = await signUp(api.graphqlUrl);
    const ws = await connectWs(api.wsUrl, token);
    await Promise.race([runBatch(api.graphqlUrl, ws, token, repeatTo([photo], 5)), abort]);
    for (let i = 0; i < times; i++) runs.push(await Promise.race([runBatch(api.graphqlUrl, ws, token, repeatTo([photo], n)), abort]));
    await ws.dispose();
  } finally {
    await Promise.allSettled([worker.stop(), api.stop()]);
  }
  const after = await databaseActivity(db.name);
  return { runs, xacts: after.transactions - before.transactions, tables: await tableActivity(db.url) };
}
