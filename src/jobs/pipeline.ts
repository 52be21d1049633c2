import type { AppContext } from '../context.ts';
import type { MediaSource } from '../db/upload-runs.ts';
import type { UploadOutcome, UploadRow } from '../db/uploads.ts';
import { analyzeMedia, type Analysis } from '../services/analyzer.ts';
import type { CaptureMetadata } from '../services/exif.ts';
import { modelImageOf, raceAbort, type RenderOptions, renderFrame } from '../services/media.ts';
import { renderImageToFiles } from '../services/media-thread.ts';
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
 * stores nothing (a photo's renditions wait in scratch/ until store()), so it may start before
 * the upload is claimed (see process-batch.ts). A photo's work waits in the media thread for the
 * one sent before it with the same `chain`.
 */
export async function renderMedia(ctx: AppContext, source: MediaSource, signal: AbortSignal, chain?: string): Promise<Rendered> {
  const original = ctx.storage.resolve(source.originalKey);
  const modelImage = !!ctx.analyzer;
  try {
    return await (isVideo(source)
      ? video(ctx, original, modelImage, signal)
      : image(ctx, original, { signal, modelImage, maxPixels: ctx.config.limits.maxImagePixels, chain }));
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

  const media = rendering ?? renderMedia(ctx, row, signal);
  const written: string[] = [];
  try {
    onStage('thumbnail', at.thumbnail);
    const rendered = await raceAbort(media, signal);
    onRendered?.();
    const thumbnailKey = `thumbnails/${row.userId}/${row.id}.webp`;
    const previewKey = `previews/${row.userId}/${row.id}.${rendered.previewFormat === 'jpeg' ? 'jpg' : 'webp'}`;
    written.push(thumbnailKey, previewKey);
    await rendered.store({ thumbnail: thumbnailKey, preview: previewKey });

    onStage('metadata', at.metadata);
    const metadata = await rendered.metadata();

    let analysis: Analysis | null = null;
    if (analyzer) {
      const from = at.describing;
      const span = at.indexing - from;
      analysis = await analyzeMedia(
        analyzer,
        { images: rendered.modelImages, kind: rendered.video ? 'video' : 'image' },
        { signal, onStage: (stage, done) => onStage(stage, from + Math.round(done * span)) },
      );
    }
    // The row's search document is rebuilt as the outcome is written, right after this.
    onStage('indexing', at.indexing);
    return {
      status: 'COMPLETED',
      width: rendered.width,
      height: rendered.height,
      format: rendered.format,
      thumbnailKey,
      previewKey,
      placeholderHash: rendered.placeholderHash,
      ...metadata,
      durationSeconds: rendered.video?.durationSeconds ?? null,
      videoCodec: rendered.video?.codec ?? null,
      frameRate: rendered.video?.frameRate ?? null,
      description: analysis?.description ?? null,
      embedding: analysis?.embedding ?? null,
      analysisStatus: analysis ? 'COMPLETED' : 'SKIPPED',
    };
  } catch (err) {
    // A failed attempt leaves nothing behind; a successful retry writes the same keys anew.
    // Media work given up on may still be writing aside: whatever it wrote goes when it ends.
    void media.then((r) => r.discard(), () => {});
    await ctx.storage.remove(...written).catch(() => {});
    throw err;
  }
}

export interface Rendered {
  width: number;
  height: number;
  format: string;
  previewFormat: 'jpeg' | 'webp';
  /** ThumbHash of the picture, base64. */
  placeholderHash: string;
  modelImages: Buffer[];
  metadata: () => Promise<CaptureMetadata>;
  /** Puts the thumbnail and the preview at their keys. */
  store(keys: { thumbnail: string; preview: string }): Promise<void>;
  /** Removes what the media work wrote aside, for renditions that will never be stored. */
  discard(): Promise<void>;
  video?: { durationSeconds: number | null; codec: string; frameRate: number | null };
}

export const isVideo = (source: Pick<MediaSource, 'mimeType'>) => source.mimeType.startsWith('video/');

/** The media thread writes a photo's renditions aside, in scratch/; store() moves them into place. */
async function image(ctx: AppContext, file: string, opts: RenderOptions & { chain?: string }): Promise<Rendered> {
  const aside = { preview: ctx.storage.createScratch(), thumbnail: ctx.storage.createScratch() };
  const r = await renderImageToFiles(file, aside, opts);
  return {
    width: r.width,
    height: r.height,
    format: r.format,
    previewFormat: r.preview.format,
    placeholderHash: r.placeholderHash,
    modelImages: r.modelImage ? [r.modelImage] : [],
    metadata: async () => r.metadata,
    async store(keys) {
      await Promise.all([ctx.storage.commit(r.thumbnail.file, keys.thumbnail), ctx.storage.commit(r.preview.file, keys.preview)]);
    },
    discard: () => ctx.storage.removeScratch(r.preview.file, r.thumbnail.file),
  };
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
    previewFormat: r.preview.format,
    placeholderHash: r.placeholderHash,
    async store(keys) {
      await Promise.all([ctx.storage.put(keys.thumbnail, r.thumbnail.data), ctx.storage.put(keys.preview, r.preview.data)]);
    },
    discard: async () => {},
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
