import type { AppContext } from '../context.ts';
import type { UploadOutcome, UploadRow } from '../db/uploads.ts';
import { createThumbnail } from '../services/media.ts';

export type FileStage = 'started' | 'thumbnail' | 'metadata' | 'describing' | 'embedding' | 'retrying' | 'completed' | 'failed';

/**
 * One attempt at turning an upload's original into its renditions, metadata and
 * analysis. Throws on failure; the caller decides about retries and bookkeeping.
 */
export async function runPipeline(
  ctx: AppContext,
  row: UploadRow,
  { signal, onStage: fileEvent }: { signal: AbortSignal; onStage: (stage: FileStage, percent: number) => Promise<unknown> },
): Promise<Extract<UploadOutcome, { status: 'COMPLETED' }>> {
  if (!(await ctx.storage.exists(row.originalKey))) {
    throw new Error('The original file is missing from storage');
  }
  const original = ctx.storage.resolve(row.originalKey);

  await fileEvent('thumbnail', 10);
  const media = await createThumbnail(original, { signal });
  const thumbnailKey = `thumbnails/${row.userId}/${row.id}.webp`;
  await ctx.storage.put(thumbnailKey, media.thumbnail.data);
  await fileEvent('metadata', 40);

  let analysis: { description: string; embedding: number[] } | null = null;
  if (ctx.analyzer) {
    await fileEvent('describing', 50);
    analysis = await ctx.analyzer.analyze(original, {
      signal,
      onStage: (stage, percent) => void fileEvent(stage, 50 + Math.round(percent * 0.45)),
    });
  }
  return {
    status: 'COMPLETED',
    width: media.width,
    height: media.height,
    format: media.format,
    thumbnailKey,
    description: analysis?.description ?? null,
    embedding: analysis?.embedding ?? null,
    analysisStatus: analysis ? 'COMPLETED' : 'SKIPPED',
  };
}
