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
export async function bareLoop(files: readonly string[], parallelism: number) {
  let next = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallelism }, async () => {
      while (next < files.length) {
        const file = files[next++]!;
        await mediaWork(file).catch(() => failed++);
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, failed, cpuMs: (cpu.user + cpu.system) / 1000 };
}
