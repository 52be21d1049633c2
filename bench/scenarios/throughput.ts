import path from 'node:path';
import type { Client } from 'graphql-ws';
import { runBatches } from '../lib/batches.ts';
import { connectWs, createBatch, localId, signUp, terminalAt, watchBatch } from '../lib/client.ts';
import { type BenchContext, scratchDir } from '../lib/context.ts';
import { backendPids, runTimeline } from '../lib/database.ts';
import { cpuLoad, cpuMeter, cpuMsOf } from '../lib/machine.ts';
import { bareLoop, bareLoopByBatch } from '../lib/media-work.ts';
import { deal, type Photo, repeatTo, uploadOf, writePhotos } from '../lib/photos.ts';
import { startApi, startWorkerProcess } from '../lib/service.ts';
import { MiB, ms, num } from '../lib/stats.ts';

interface Setup {
  id: '2a' | '2b' | '2c' | '2d';
  /** Worker slots, and the bare loop's lanes. */
  parallelism: number;
  batches: number;
  /** BATCH_PARALLELISM: lanes one batch may run on idle slots. */
  lanes: number;
  label: string;
}

/**
 * Figures 1 and 2. The same N photos go through the service (createBatch over HTTP to the
 * terminal batchProgress event, API and worker as separate processes) and through the bare
 * sharp loop in this process, alternating, best of R rounds each. At concurrency 1 that is one
 * batch (figure 1, also figure 2's first row); at concurrency = cores the photos are spread
 * over 4 batches per worker slot, since uploads within one batch run one at a time (2b). The
 * same again with BATCH_PARALLELISM = cores (2c), and as one batch with it (2d): the setting
 * lets a batch use slots that no other batch needs.
 */
export async function throughput(b: BenchContext) {
  const n = b.quick ? 40 : 200;
  const rounds = b.quick ? 1 : 3;
  const photos = repeatTo(b.photos, n);
  const files = await writePhotos(path.join(b.tmp, 'bare-photos'), photos);
  const c = b.cores;
  const setups: Setup[] = [
    { id: '2a', parallelism: 1, batches: 1, lanes: 1, label: 'concurrency 1' },
    ...(c > 1
      ? ([
          { id: '2b', parallelism: c, batches: c * 4, lanes: 1, label: `concurrency ${c}` },
          { id: '2c', parallelism: c, batches: c * 4, lanes: c, label: `concurrency ${c}, BATCH_PARALLELISM ${c}` },
          { id: '2d', parallelism: c, batches: 1, lanes: c, label: `concurrency ${c}, BATCH_PARALLELISM ${c}, one batch` },
        ] as const)
      : []),
  ];
  const perSecond = new Map<Setup, { svc: number; bare: number }>();

  for (const setup of setups) {
    const { parallelism, batches, label } = setup;
    const db = await b.dbs.clone();
    const env = {
      databaseUrl: db.url,
      storageDir: await scratchDir(b, 'storage'),
      concurrency: parallelism,
      extra: { BATCH_PARALLELISM: String(setup.lanes) },
    };
    const api = await startApi(env);
    const worker = startWorkerProcess(env);
    const abort = Promise.race([api.exited, worker.exited]);
    try {
      const token = await signUp(api.graphqlUrl);
      const ws = await connectWs(api.wsUrl, token);
      b.log(`${label}: warming up`);
      await runBatches(api.graphqlUrl, ws, token, photos.slice(0, 4 * parallelism), batches, abort);
      await bareLoop(files.slice(0, 4 * parallelism), parallelism);

      const svc: number[] = [];
      const bare: number[] = [];
      const beside: number[] = [];
      // Batches one photo at a time on several slots: the same rule in the bare loop (2b).
      const byBatch = setup.lanes === 1 && batches > 1 && parallelism > 1 ? deal(files, batches) : undefined;
      const ruled: number[] = [];
      let failed = { svc: 0, bare: 0 };
      let cpu: Record<string, number> = {};
      for (let r = 0; r < rounds; r++) {
        const base = await bareLoop(files, parallelism);
        bare.push(base.ms);
        if (byBatch) ruled.push((await bareLoopByBatch(byBatch, parallelism)).ms);
        const stop = await cpuMeter({ api: api.pid, worker: worker.pid, postgres: () => backendPids(db.name) });
        let receiving: Promise<number> | undefined;
        const apiCpu0 = await cpuMsOf(api.pid);
        const client0 = process.cpuUsage();
        const run = await runBatches(api.graphqlUrl, ws, token, photos, batches, abort, () => (receiving = cpuMsOf(api.pid)));
        const used = await stop();
        used.apiReceiving = (await receiving!) - apiCpu0;
        const client = process.cpuUsage(client0);
        used.client = (client.user + client.system) / 1000;
        svc.push(run.ms);
        failed = { svc: run.failed, bare: base.failed };
        if (run.ms <= Math.min(...svc)) {
          const t = await runTimeline(db.url, run.runs.map((r) => localId(r.created.id)));
          cpu = { ...used, bare: base.cpuMs, bareWall: base.ms, created: run.createdMs, runMs: t.runMs, gapMs: t.gapMs, runs: t.runs };
        }
        b.log(`${label} round ${r + 1}: service ${ms(run.ms)}, bare loop ${ms(base.ms)}`);
      }
      // The same batch from a client on a real link: processing runs while the upload does.
      const paced = setup.id === '2a' ? await pacedBatch(api.graphqlUrl, ws, token, photos, abort) : undefined;
      await ws.dispose();

      // The best round's CPU outside the media work, as a plain load beside the bare loop.
      const outside = cpu.api! + cpu.postgres! + cpu.client! + Math.max(0, cpu.worker! - cpu.bare!);
      const share = Math.min(1, outside / Math.min(...bare));
      // With every core busy, the CPU the goal leaves beyond the media work: its time is the bare
      // loop's / 0.85, so at the bare loop's own use of the cores, that much more CPU fits in it.
      // (With a core to spare, extra CPU need not slow the media work: no such bound.)
      const budget = parallelism === b.cores && parallelism > 1 ? (cpu.bare! * (1 / 0.85 - 1)) / n : undefined;
      for (let r = 0; r < rounds; r++) {
        const stopLoad = await cpuLoad(share);
        beside.push((await bareLoop(files, parallelism).finally(stopLoad)).ms);
      }

      const best = { svc: Math.min(...svc), bare: Math.min(...bare) };
      perSecond.set(setup, { svc: (n / best.svc) * 1000, bare: (n / best.bare) * 1000 });
      b.note(
        `${label}, ${n} photos in ${batches} batch(es): service ${svc.map((v) => ms(v)).join(' / ')}; ` +
          `bare loop ${bare.map((v) => ms(v)).join(' / ')} (best of ${rounds} used); failed uploads ${failed.svc} vs ${failed.bare} in the bare loop`,
      );
      if (ruled.length) {
        b.note(
          `${label}, the bare loop under the service's rule (a lane takes a whole batch, in creation order, and does its photos ` +
            `one at a time): ${ruled.map((v) => ms(v)).join(' / ')}, best ${num(Math.min(...ruled) / best.bare, 2)}× the bare loop; ` +
            `the service ${num(best.svc / Math.min(...ruled), 2)}× that`,
        );
      }
      b.note(
        `${label}, the service's CPU outside the media work (${num(outside / n)} ms per photo) as a plain load of ` +
          `${num(share, 2)} core(s) beside the bare loop: ${beside.map((v) => ms(v)).join(' / ')}, best ${num(Math.min(...beside) / best.bare, 2)}× ` +
          `the bare loop alone; the service ${num(best.svc / Math.min(...beside), 2)}× that`,
      );
      if (budget !== undefined) {
        b.note(
          `${label}, the goal's CPU budget: ≥ 0.85 of the bare loop leaves ${num(budget)} ms of CPU per photo beyond ` +
            `its media work (at its own use of the cores, ${num(cpu.bare! / cpu.bareWall!, 2)} of ${b.cores}); the service spent ${num(outside / n)} ms`,
        );
      }
      b.note(
        `${label}, CPU per photo in the best service round: worker ${num(cpu.worker! / n)} ms, ` +
          `API ${num(cpu.api! / n)} ms (${num(cpu.apiReceiving! / n)} ms of it until every createBatch had answered), ` +
          `PostgreSQL backends ${num(cpu.postgres! / n)} ms, this bench as the client ${num(cpu.client! / n)} ms; ` +
          `bare loop ${num(cpu.bare! / n)} ms (its media work alone keeps ${num(cpu.bare! / cpu.bareWall!, 2)} of ${b.cores} cores busy)`,
      );
      b.note(
        `${label}, receiving: every createBatch had answered ${ms(cpu.created!)} after the first request began ` +
          `(${num((100 * cpu.created!) / Math.min(...svc))} % of the best service round, ${num((100 * cpu.created!) / Math.min(...bare))} % of the bare loop's time)`,
      );
      // With more than one lane a batch's runs overlap: there is no gap between them to speak of.
      const gap = setup.lanes > 1 ? 'runs of a batch overlap' : `${num(cpu.gapMs!)} ms between runs of a batch`;
      b.note(
        `${label}, the worker's own records (upload_runs) in the best service round: ${cpu.runs} runs of ` +
          `${num(cpu.runMs!)} ms on average (claim to end of media work and storage writes), ${gap}, ` +
          `${num((cpu.runs! * cpu.runMs!) / best.svc, 2)} in flight on average; the bare loop's media work ${num((best.bare / n) * parallelism)} ms per photo per lane`,
      );
      if (paced) {
        b.note(
          `concurrency 1, the same batch uploaded at ${PACE / MiB} MiB/s (a ${Math.round((PACE * 8) / 1e6)} Mbit/s uplink): ` +
            `its request took ${ms(paced.request)}, the terminal event came ${ms(paced.total)} after it began, ${ms(paced.total - paced.request)} ` +
            `after its last byte (the bare loop's best time for these photos: ${ms(best.bare)})`,
        );
      }
      if (setup.id === '2a') {
        b.report.add({
          id: '1',
          name: `Pipeline overhead: ${n} photos, createBatch → terminal event`,
          darkroom: `${ms(best.svc)} (${num(best.svc / n)} ms/photo)`,
          baseline: `bare sharp loop ${ms(best.bare)} (${num(best.bare / n)} ms/photo)`,
          ratio: best.svc / best.bare,
          goal: '≤ 1.10',
          met: best.svc / best.bare <= 1.1,
        });
      }
    } finally {
      await Promise.allSettled([worker.stop(), api.stop()]);
    }
  }

  for (const [setup, { svc, bare }] of perSecond) {
    const p = setup.parallelism;
    const name =
      setup.id === '2a' || setup.id === '2b'
        ? `Throughput at concurrency ${p}${p === b.cores ? ' (= cores)' : ''}`
        : `Throughput at concurrency ${p}, BATCH_PARALLELISM ${setup.lanes}, ${setup.batches === 1 ? 'one batch' : `${setup.batches} batches`}`;
    b.report.add({
      id: setup.id,
      name,
      darkroom: `${num(svc)} photos/s`,
      baseline: `bare loop ×${p}: ${num(bare)} photos/s`,
      ratio: svc / bare,
      goal: '≥ 0.85',
      met: svc / bare >= 0.85,
    });
  }
}

const PACE = 5 * MiB;

async function pacedBatch(graphqlUrl: string, ws: Client, token: string, photos: Photo[], abort: Promise<never>) {
  const created = await Promise.race([createBatch(graphqlUrl, token, photos.map(uploadOf), PACE), abort]);
  const events = await Promise.race([watchBatch(ws, created.id), abort]);
  return { request: created.respondedAt - created.sentAt, total: terminalAt(events) - created.sentAt };
}
