/**
 * npm run bench [-- --quick] [--photos DIR] [--only 1,3] [--json FILE]
 * Measures Darkroom against baselines taken in the same run; see docs/performance.md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkDocuments } from './lib/client.ts';
import type { BenchContext } from './lib/context.ts';
import { createScratchDatabases, statementCost } from './lib/database.ts';
import { describeMachine } from './lib/machine.ts';
import { loadPhotos } from './lib/photos.ts';
import { Report } from './lib/report.ts';
import { killAllChildren } from './lib/service.ts';
import { fanout } from './scenarios/fanout.ts';
import { ingest } from './scenarios/ingest.ts';
import { pickup } from './scenarios/pickup.ts';
import { scaling } from './scenarios/scaling.ts';
import { throughput } from './scenarios/throughput.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    photos: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
  },
});

const SCENARIOS: { ids: string[]; name: string; run: (b: BenchContext) => Promise<void> }[] = [
  { ids: ['1', '2'], name: '1–2 pipeline overhead and parallel throughput', run: throughput },
  { ids: ['3'], name: '3 job pickup latency', run: pickup },
  { ids: ['4'], name: '4 event fan-out', run: fanout },
  { ids: ['5'], name: '5 ingest', run: ingest },
  { ids: ['6'], name: '6 scaling with batch size', run: scaling },
];
const only = args.only?.split(',').map((s) => s.trim());
const selected = SCENARIOS.filter((s) => !only || s.ids.some((id) => only.includes(id)));

const started = performance.now();
const machine = describeMachine();
const log = (m: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${m}`);

console.log(`# Darkroom bench${args.quick ? ' (--quick)' : ''}`);
console.log(`machine: ${machine.cores} cores, ${machine.cpu}, ${machine.memory} RAM, ${machine.os}; load average at start ${machine.loadAverage}`);
console.log(`node ${machine.node}, libvips ${machine.libvips} (sharp concurrency ${machine.sharpConcurrency}), commit ${machine.commit}`);

const tmp = await mkdtemp(path.join(os.tmpdir(), 'darkroom-bench-'));
const report = new Report();
let dbs: BenchContext['dbs'] | undefined;
let exitCode = 0;
// What one statement costs a PostgreSQL backend here (see statementCost), for the header and the JSON.
let statement: Awaited<ReturnType<typeof statementCost>> | undefined;

// Whatever ends the run early still removes what it created: child processes, databases, files.
const emergency = (code: number) => {
  killAllChildren();
  void Promise.allSettled([dbs?.dropAll(), rm(tmp, { recursive: true, force: true })]).then(() => process.exit(code));
};
process.once('SIGINT', () => emergency(130));
process.once('SIGTERM', () => emergency(143));
process.on('uncaughtException', (err) => {
  console.error('bench crashed:', err);
  emergency(1);
});

try {
  await checkDocuments();
  const { source, photos } = await loadPhotos(args.photos);
  console.log(`photos: ${photos.length} from ${source}`);
  dbs = await createScratchDatabases();
  statement = await statementCost();
  console.log(
    `postgres: a statement costs its backend ${statement.backToBackUs.toFixed(0)} µs of CPU back to back, ` +
      `${statement.spacedUs.toFixed(0)} µs when they come 10 ms apart, as the pipeline's do`,
  );
  const base = { quick: args.quick!, photos, cores: machine.cores, dbs, tmp, report, log };
  for (const s of selected) {
    const b: BenchContext = { ...base, note: (line) => report.note(s.name, line) };
    log(`scenario ${s.name}`);
    const t0 = performance.now();
    try {
      await s.run(b);
    } catch (err) {
      exitCode = 1;
      report.note(s.name, `FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      log(`scenario ${s.name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    report.elapsed.set(s.name, performance.now() - t0);
  }
} finally {
  killAllChildren();
  await dbs?.dropAll().catch((err) => log(`could not drop scratch databases: ${err}`));
  await rm(tmp, { recursive: true, force: true });
}

console.log('');
console.log(report.table());
console.log('');
console.log(report.rawNumbers());
console.log('');
console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
if (args.json) await writeFile(args.json, JSON.stringify({ machine: { ...machine, statementCostUs: statement }, quick: args.quick, figures: report.figures, raw: Object.fromEntries(report.raw) }, null, 2));
// Sockets kept alive by clients and pools should not hold the process open.
process.exit(exitCode);
