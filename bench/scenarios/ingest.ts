import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBatch, postMultipart, signUp, type UploadSource } from '../lib/client.ts';
import { type BenchContext, scratchDir } from '../lib/context.ts';
import { cpuMeter, memoryOf, peakRssDuring } from '../lib/machine.ts';
import { paddedPhoto } from '../lib/photos.ts';
import { startApi } from '../lib/service.ts';
import { GiB, MiB, mbps, mib, num } from '../lib/stats.ts';

// Mixed sizes, in MiB, dealt in this order until the batch reaches its total.
const SIZES = [0.25, 1, 4, 0.5, 12, 2, 32, 6, 64, 0.75, 3, 24];
const SINK = fileURLToPath(new URL('../lib/sink-server.ts', import.meta.url));

/**
 * Figure 5. An API process alone (no worker, so nothing competes) receives one large batch of
 * mixed sizes, then 10 concurrent single-file uploads. Baseline: the same bytes written to
 * files on the same filesystem by this process, sequentially (by 10 writers for the second).
 * For reference, the same request body also goes to a bare node:http process that only writes
 * it to a file: the most any Node HTTP upload can do here.
 */
export async function ingest(b: BenchContext) {
  const total = b.quick ? 256 * MiB : GiB;
  const concurrentSize = b.quick ? 48 * MiB : 200 * MiB;
  const rounds = b.quick ? 1 : 2;
  const files: UploadSource[] = [];
  for (let left = total, i = 0; left > 0; i++) {
    const size = Math.min(left, Math.round(SIZES[i % SIZES.length]! * MiB));
    files.push(paddedPhoto(b.photos[i % b.photos.length]!, size, i));
    left -= size;
  }
  const sizes = files.map((f) => f.size);
  const db = await b.dbs.clone();
  const storageDir = await scratchDir(b, 'storage');
  const rawDir = await scratchDir(b, 'raw');
  const sinkDir = await scratchDir(b, 'sink');
  const env = {
    databaseUrl: db.url,
    storageDir,
    concurrency: 1,
    extra: { MAX_FILE_BYTES: String(512 * MiB), MAX_BATCH_BYTES: String(4 * GiB), MAX_FILES_PER_BATCH: '1000' },
  };
  const api = await startApi(env);
  const sink = spawn(process.execPath, [SINK, sinkDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [port] = (await once(sink.stdout!, 'data')) as [Buffer];
    const sinkUrl = `http://127.0.0.1:${port.toString().trim()}/`;
    const token = await signUp(api.graphqlUrl);
    await createBatch(api.graphqlUrl, token, files.slice(0, 8));
    await postMultipart(sinkUrl, {}, files.slice(0, 8));
    const idle = await memoryOf(api.pid);

    const svc: { ms: number; growth: number; peak: number; exactPeak: boolean }[] = [];
    const raw: number[] = [];
    const synced: number[] = [];
    const floor: number[] = [];
    const discard: number[] = [];
    // CPU (ms, all threads) of the work any upload must do with the bytes: send and receive them, write them.
    const rawCpu: number[] = [];
    const discardCpu: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const rawMeter = await cpuMeter({ self: process.pid });
      raw.push(await rawWrite(rawDir, files, 1));
      rawCpu.push((await rawMeter()).self!);
      synced.push(await rawWrite(rawDir, files, 1, true));
      const s = await postMultipart(sinkUrl, {}, files);
      floor.push(s.respondedAt - s.sentAt);
      const discardMeter = await cpuMeter({ client: process.pid, server: sink.pid! });
      const d = await postMultipart(`${sinkUrl}discard`, {}, files);
      discard.push(d.respondedAt - d.sentAt);
      const dc = await discardMeter();
      discardCpu.push(dc.client! + dc.server!);
      await emptyDir(sinkDir);
      const t0 = performance.now();
      const m = await peakRssDuring(api.pid, () => Promise.race([createBatch(api.graphqlUrl, token, files), api.exited]));
      svc.push({ ms: performance.now() - t0, growth: m.growth, peak: m.peak, exactPeak: m.exactPeak });
      await rm(path.join(storageDir, 'originals'), { recursive: true, force: true });
      b.log(
        `ingest round ${r + 1}: service ${num(mbps(total, svc.at(-1)!.ms), 0)} MiB/s, bare HTTP sink ${num(mbps(total, floor.at(-1)!), 0)} MiB/s, ` +
          `raw write ${num(mbps(total, raw.at(-1)!), 0)} MiB/s`,
      );
    }
    const best = svc.reduce((a, c) => (c.ms < a.ms ? c : a));
    const rate = mbps(total, best.ms);
    const rawRate = mbps(total, Math.min(...raw));
    const syncedRate = mbps(total, Math.min(...synced));
    const floorRate = mbps(total, Math.min(...floor));
    const growth = Math.max(...svc.map((s) => s.growth));
    // The most a machine of this many cores could receive, hash and store per second, were that
    // work spread perfectly over every core and nothing else needed: parsing, checks, the database
    // and the event loop all come on top. Each part at its cheapest round.
    const hashMs = (total / MiB / hashRate(files)) * 1000;
    const neededCpu = Math.min(...discardCpu) + hashMs + Math.min(...rawCpu);
    const ceiling = mbps(total, neededCpu / b.cores);
    const perGiB = (cpuMs: number) => `${num((cpuMs * GiB) / total, 0)} ms`;

    const concurrent = Array.from({ length: 10 }, (_, i) => paddedPhoto(b.photos[i % b.photos.length]!, concurrentSize, 1000 + i));
    const rawConcurrent = await rawWrite(rawDir, concurrent, 10);
    const t0 = performance.now();
    const c = await peakRssDuring(api.pid, () =>
      Promise.race([Promise.all(concurrent.map((f) => createBatch(api.graphqlUrl, token, [f]))), api.exited]),
    );
    const concurrentMs = performance.now() - t0;
    await rm(path.join(storageDir, 'originals'), { recursive: true, force: true });
    const concurrentRate = mbps(10 * concurrentSize, concurrentMs);
    const rawConcurrentRate = mbps(10 * concurrentSize, rawConcurrent);

    b.report.add({
      id: '5a',
      name: `Ingest: one ${mib(total)} batch of ${files.length} files (${num(Math.min(...sizes) / MiB, 2)}–${mib(Math.max(...sizes))})`,
      darkroom: `${num(rate, 0)} MiB/s`,
      baseline: `raw file writes ${num(rawRate, 0)} MiB/s (each synced to disk ${num(syncedRate, 0)} MiB/s; bare HTTP sink ${num(floorRate, 0)} MiB/s; ${b.cores}-core CPU ceiling ${num(ceiling, 0)} MiB/s, ${num(ceiling / rawRate, 2)} of raw)`,
      ratio: rate / rawRate,
      goal: '≥ 0.50',
      met: rate / rawRate >= 0.5,
    });
    b.report.add({
      id: '5b',
      name: 'Ingest: API peak RSS growth during that batch',
      darkroom: `+${mib(growth)}`,
      baseline: `idle RSS ${mib(idle.rss)}`,
      ratio: NaN,
      goal: '< 100 MB',
      met: growth < 100e6,
    });
    b.report.add({
      id: '5c',
      name: `Ingest: 10 concurrent ${mib(concurrentSize)} uploads, API peak RSS`,
      darkroom: `${mib(c.peak)} (+${mib(c.growth)}); ${num(concurrentRate, 0)} MiB/s`,
      baseline: `raw ×10 writes ${num(rawConcurrentRate, 0)} MiB/s`,
      ratio: concurrentRate / rawConcurrentRate,
      goal: '< 300 MB RSS',
      met: c.peak < 300e6,
    });
    const list = (xs: number[]) => xs.map((t) => `${num(mbps(total, t), 0)} MiB/s`).join(' / ');
    b.note(
      `one batch, best of ${rounds}: service ${svc.map((s) => `${num(mbps(total, s.ms), 0)} MiB/s (+${mib(s.growth)}, peak ${mib(s.peak)})`).join(' / ')}; ` +
        `bare HTTP sink ${list(floor)}; raw writes ${list(raw)}; raw writes, each file synced to disk before the next, as the service ` +
        `syncs what it stores: ${list(synced)}`,
    );
    b.note(`service against the bare HTTP sink: ${num(rate / floorRate, 2)}; the sink against raw writes: ${num(floorRate / rawRate, 2)}`);
    b.note(
      `the same body received and discarded (no write): ${list(discard)}; CPU per GiB, client and receiver together ${perGiB(Math.min(...discardCpu))}, ` +
        `raw writes ${perGiB(Math.min(...rawCpu))}, SHA-256 ${perGiB(hashMs)} (the service hashes every upload for duplicate detection)`,
    );
    b.note(
      `CPU ceiling: receiving, hashing and writing the batch need ${num(neededCpu, 0)} ms of CPU, so ${b.cores} cores could do at most ${num(ceiling, 0)} MiB/s ` +
        `(${num(ceiling / rawRate, 2)} of raw writes; the goal needs ${num(0.5 * rawRate, 0)}); the service reaches ${num(rate / ceiling, 2)} of that ceiling`,
    );
    b.note(`API RSS idle ${mib(idle.rss)}; peaks ${best.exactPeak ? 'from the kernel high-water mark (reset first)' : 'sampled every 20 ms'}`);
    b.note(`10 concurrent: ${num(concurrentMs / 1000, 2)} s, peak RSS ${mib(c.peak)} (before ${mib(c.before)})`);
  } finally {
    sink.kill('SIGTERM');
    await api.stop();
  }
}

async function emptyDir(dir: string) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

/** Writes the files' bytes to fresh files with `parallel` writers, as plain streams (`flush`: each synced before it closes); returns ms. */
async function rawWrite(dir: string, files: UploadSource[], parallel: number, flush = false): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < files.length) {
        const i = next++;
        const out = createWriteStream(path.join(dir, String(i)), { flush });
        for (const chunk of files[i]!.chunks()) if (!out.write(chunk)) await once(out, 'drain');
        out.end();
        await once(out, 'close');
      }
    }),
  );
  const elapsed = performance.now() - t0;
  await emptyDir(dir);
  return elapsed;
}

/** How fast one thread hashes the files' bytes: a floor under any service that must. */
function hashRate(files: UploadSource[]): number {
  const t0 = performance.now();
  let bytes = 0;
  for (const f of files) {
    const hash = createHash('sha256');
    for (const chunk of f.chunks()) hash.update(chunk);
    hash.digest();
    bytes += f.size;
  }
  return mbps(bytes, performance.now() - t0);
}
