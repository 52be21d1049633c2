import type { AppContext } from '../context.ts';
import type { MediaSource } from '../db/upload-runs.ts';
import type { UploadOutcome, UploadRow } from '../db/uploads.ts';
import { analyzeMedia, type Analysis } from '../services/analyzer.ts';
import type { CaptureMetadata } from '../services/exif.ts';
import { modelImageOf, raceAbort, type RenderOptions, type Renditions, renderFrame } from '../services/media.ts';
import { renderImageInThread } from '../services/media-thread.ts';
import { extractPosterFrames, probeVideo } from '../services/video.ts';

export type FileStage =
  | 'started'
  | 'thumbnail'
  | 'metadata'
  | 'describing'
  | 'embedding'
  | 'indexing'
  | 'retrying'
  | 'completed'
  | 'failed';

type Completed = Extract<UploadOutcome, { status: 'COMPLETED' }>;
// Reporting never waits: progress is off the media work's path (upload-progress.ts).
type OnStage = (stage: FileStage, percent: number) => void;

// Relative cost of each step, so `percent` is the share of this upload's work already done.
// Which steps run is known up front (analysis only with a model server), so the shares are exact.
const WEIGHT = { thumbnail: 40, metadata: 5, describing: 40, embedding: 10, indexing: 5 } as const;
type Step = keyof typeof WEIGHT;

/** Percent done as each planned step starts. */
function plan(steps: Step[]): Record<Step, number> {
  const total = steps.reduce((sum, s) => sum + WEIGHT[s], 0);
  const at = {} as Record<Step, number>;
  let done = 0;
  for (const s of steps) {
    at[s] = Math.round((done * 100) / total);
    done += WEIGHT[s];
  }
  return at;
}

/**
 * The media work of an attempt: renditions and what the decoder reads. It reads the original and
 * writes nothing, so it may start before the upload is claimed (see process-batch.ts). A photo's
 * work waits in the media thread for the one sent before it with the same `chain`.
 */
export async function renderMedia(ctx: AppContext, source: MediaSource, signal: AbortSignal, chain?: string): Promise<Rendered> {
  const original = ctx.storage.resolve(source.originalKey);
  const modelImage = !!ctx.analyzer;
  try {
    return await (isVideo(source)
      ? video(ctx, original, modelImage, signal)
      : image(original, { signal, modelImage, maxPixels: ctx.config.limits.maxImagePixels, chain }));
  } catch (err) {
    // Asked only once the decoder failed: asked first, it was a round trip through the thread
    // pool (busy with the previous upload's writes) in front of every upload's media work.
    if (!signal.aborted && !(await ctx.storage.exists(source.originalKey))) {
      throw new Error('The original file is missing from storage', { cause: err });
    }
    throw err;
  }
}

/**
 * One attempt at turning an upload's original into its renditions, metadata and analysis,
 * from `rendering` when its media work already started; `onRendered` is told when the pixel
 * work is done. Throws on failure; the caller decides about retries and bookkeeping.
 */
export async function runPipeline(
  ctx: AppContext,
  row: UploadRow,
  { signal, onStage, rendering, onRendered }: { signal: AbortSignal; onStage: OnStage; rendering?: Promise<Rendered>; onRendered?: () => void },
): Promise<Completed> {
  const analyzer = ctx.analyzer;
  const at = plan(analyzer ? ['thumbnail', 'metadata', 'describing', 'embedding', 'indexing'] : ['thumbnail', 'metadata', 'indexing']);

  const written: string[] = [];
  const put = async (key: string, data: Buffer) => {
    written.push(key);
    await ctx.storage.put(key, data);
  };
  try {
    onStage('thumbnail', at.thumbnail);
    const media = await raceAbort(rendering ?? renderMedia(ctx, row, signal), signal);
    onRendered?.();
    const thumbnailKey = `thumbnails/${row.userId}/${row.id}.webp`;
    const previewKey = `previews/${row.userId}/${row.id}.${media.preview.format === 'jpeg' ? 'jpg' : 'webp'}`;
    await Promise.all([put(thumbnailKey, media.thumbnail.data), put(previewKey, media.preview.data)]);

    onStage('metadata', at.metadata);
    const metadata = await media.metadata();

    let analysis: Analysis | null = null;
    if (analyzer) {
      const from = at.describing;
      const span = at.indexing - from;
      analysis = await analyzeMedia(
        analyzer,
        { images: media.modelImages, kind: media.video ? 'video' : 'image' },
        { signal, onStage: (stage, done) => onStage(stage, from + Math.round(done * span)) },
      );
    }
    // The row's search document is rebuilt as the outcome is written, right after this.
    onStage('indexing', at.indexing);
    return {
      status: 'COMPLETED',
      width: media.width,
      height: media.height,
      format: media.format,
      thumbnailKey,
      previewKey,
      placeholderHash: media.placeholderHash,
      ...metadata,
      durationSeconds: media.video?.durationSeconds ?? null,
      videoCodec: media.video?.codec ?? null,
      frameRate: media.video?.frameRate ?? null,
      description: analysis?.description ?? null,
      embedding: analysis?.embedding ?? null,
      analysisStatus: analysis ? 'COMPLETED' : 'SKIPPED',
    };
  } catch (err) {
    // A failed attempt leaves nothing behind; a successful retry writes the same keys anew.
    await ctx.storage.remove(...written).catch(() => {});
    throw err;
  }
}

export interface Rendered extends Renditions {
  width: number;
  height: number;
  format: string;
  modelImages: Buffer[];
  metadata: () => Promise<CaptureMetadata>;
  video?: { durationSeconds: number | null; codec: string; frameRate: number | null };
}

export const isVideo = (source: Pick<MediaSource, 'mimeType'>) => source.mimeType.startsWith('video/');

async function image(file: string, opts: RenderOptions & { chain?: string }): Promise<Rendered> {
  const { metadata, ...r } = await renderImageInThread(file, opts);
  return { ...r, modelImages: r.modelImage ? [r.modelImage] : [], metadata: async () => metadata };
}

async function video(ctx: AppContext, file: string, wantModelImages: boolean, signal: AbortSignal): Promise<Rendered> {
  // The same pixel bound as ingest's header check and the photos'.
  const maxPixels = ctx.config.limits.maxImagePixels;
  const tools = { ...ctx.config.media, maxPixels, nice: ctx.config.worker.mediaNice };
  const probe = await probeVideo(file, tools, signal);
  const frames = await extractPosterFrames(file, probe, tools, signal);
  const r = await renderFrame(frames.poster, { signal, modelImage: wantModelImages, maxPixels });
  const extra = wantModelImages ? await Promise.all(frames.frames.slice(1).map((f) => modelImageOf(f, maxPixels))) : [];
  return {
    ...r,
    width: probe.width,
    height: probe.height,
    format: formatOf(file),
    modelImages: r.modelImage ? [r.modelImage, ...extra] : [],
    metadata: async () => probe.metadata,
    video: { durationSeconds: probe.durationSeconds, codec: probe.codec, frameRate: probe.frameRate },
  };
}

const VIDEO_FORMATS: Record<string, string> = { mp4: 'mp4', m4v: 'mp4', mov: 'mov', webm: 'webm', mkv: 'mkv', avi: 'avi' };
function formatOf(file: string) {
  const ext = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
  return VIDEO_FORMATS[ext] ?? ext;
}
