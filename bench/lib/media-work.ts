import { readExif } from '../../src/services/exif.ts';
import { renderImage } from '../../src/services/media.ts';

/**
 * One photo's media work, done by the very functions src/jobs/pipeline.ts calls for an image
 * (one decode into every rendition, then the EXIF read), so the baseline follows every change
 * of renditions or settings in src/services/media.ts. When the pipeline gains a media step of
 * its own, it is added here, and nothing else.
 */
export async function mediaWork(file: string): Promise<void> {
  const rendered = await renderImage(file, { modelImage: false });
  await readExif(rendered.exif);
}

/**
 * The bare loop: `parallelism` lanes pulling files from one shared queue, nothing else.
 * Files that fail to decode are counted, as the pipeline counts them.
 */
export function bareLoop(files: readonly string[], parallelism: number) {
  return lanes(files.map((f) => [f]), parallelism);
}

/**
 * The bare loop under the service's rule for batches: each lane takes a whole batch (`batches`,
 * in order) and works through it one file at a time, as a worker slot does. Beside bareLoop on
 * the same files, what the rule alone costs with these batches, none of Darkroom's work included.
 */
export function bareLoopByBatch(batches: readonly (readonly string[])[], parallelism: number) {
  return lanes(batches, parallelism);
}

/** `parallelism` lanes, each taking the next list of files from one queue and doing them in order. */
async function lanes(lists: readonly (readonly string[])[], parallelism: number) {
  let next = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallelism }, async () => {
      while (next < lists.length) {
        for (const file of lists[next++]!) await mediaWork(file).catch(() => failed++);
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, failed, cpuMs: (cpu.user + cpu.system) / 1000 };
}
