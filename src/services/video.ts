import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { type CaptureMetadata, coordinates, NO_METADATA, text } from './exif.ts';
import { MAX_INPUT_PIXELS, MediaError, PREVIEW_SIZE } from './media.ts';

export interface VideoTools {
  ffmpegPath: string;
  ffprobePath: string;
  /** Frames with more pixels are refused before any is decoded (default MAX_INPUT_PIXELS). */
  maxPixels?: number;
  /** Niceness ffprobe and ffmpeg run at (as the worker's media threads; see media-priority.ts). */
  nice?: number;
}

export interface VideoProbe {
  streamIndex: number;
  codec: string;
  /** As displayed: rotation and non-square pixels applied. */
  width: number;
  height: number;
  durationSeconds: number | null;
  frameRate: number | null;
  hdr: boolean;
  anamorphic: boolean;
  metadata: CaptureMetadata;
}

/** ffmpeg/ffprobe are missing or not runnable: an installation problem, not the file's. */
export class VideoUnavailableError extends MediaError {
  override name = 'VideoUnavailableError';
}

const PROBE_TIMEOUT_MS = 30_000;
const FRAMES_TIMEOUT_MS = 120_000;
// Where poster candidates are taken, as fractions of the duration: the opening first,
// then further in, for videos that start on black or on a title card.
const CANDIDATES = [0, 0.1, 0.25, 0.5, 0.75];

export async function probeVideo(file: string, tools: VideoTools, signal?: AbortSignal): Promise<VideoProbe> {
  const out = await run(
    tools.ffprobePath,
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '--', file],
    { signal, timeoutMs: PROBE_TIMEOUT_MS, what: 'ffprobe', nice: tools.nice },
  );
  let info: FfprobeOutput;
  try {
    info = JSON.parse(out.toString('utf8')) as FfprobeOutput;
  } catch {
    throw new MediaError('Could not read video: ffprobe returned no usable information');
  }
  const stream = info.streams?.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!stream?.width || !stream.height) throw new MediaError('Could not read video: the file has no video stream');
  // Every candidate frame is decoded at full size before it is scaled down.
  const maxPixels = tools.maxPixels ?? MAX_INPUT_PIXELS;
  if (stream.width * stream.height > maxPixels) {
    throw new MediaError(`Video frames are too large (over ${maxPixels / 1_000_000} megapixels)`);
  }

  const rotation = Number(stream.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? stream.tags?.rotate ?? 0);
  const sar = ratio(stream.sample_aspect_ratio, ':');
  const anamorphic = sar !== null && sar > 0 && Math.abs(sar - 1) > 0.01;
  const storedWidth = anamorphic ? Math.round(stream.width * sar) : stream.width;
  const turned = Math.abs(rotation) % 180 === 90;
  const duration = Number(info.format?.duration ?? stream.duration);
  const fps = ratio(stream.avg_frame_rate, '/') || ratio(stream.r_frame_rate, '/');
  const tags = { ...lowerKeys(info.format?.tags), ...lowerKeys(stream.tags) };

  return {
    streamIndex: stream.index,
    codec: stream.codec_name ?? 'unknown',
    width: turned ? stream.height : storedWidth,
    height: turned ? storedWidth : stream.height,
    durationSeconds: Number.isFinite(duration) && duration > 0 ? duration : null,
    frameRate: fps && fps > 0 && fps < 1000 ? Math.round(fps * 1000) / 1000 : null,
    hdr: stream.color_transfer === 'smpte2084' || stream.color_transfer === 'arib-std-b67',
    anamorphic,
    metadata: videoMetadata(tags),
  };
}

export interface PosterFrames {
  /** PNG of the chosen poster frame, fitting the preview size. */
  poster: Buffer;
  /** The poster plus later frames worth describing (at most three in all), PNG. */
  frames: Buffer[];
  /** Seconds into the video. */
  posterTime: number;
}

/**
 * Takes a handful of candidate frames in one ffmpeg run and picks the first that is neither
 * black nor blank, so a fade-in or a lens cap does not become the poster.
 */
export async function extractPosterFrames(
  file: string,
  probe: VideoProbe,
  tools: VideoTools,
  signal?: AbortSignal,
): Promise<PosterFrames> {
  const duration = probe.durationSeconds ?? 0;
  const times = duration > 0 ? [...new Set(CANDIDATES.map((f) => Math.round(f * duration * 1000) / 1000))] : [0];
  const dir = await mkdtemp(path.join(tmpdir(), 'darkroom-frames-'));
  try {
    const grab = (hdr: boolean) => {
      const args = ['-v', 'error', '-nostdin', '-y'];
      times.forEach((t) => args.push('-ss', String(t), '-i', file));
      times.forEach((_, i) =>
        args.push('-map', `${i}:${probe.streamIndex}`, '-frames:v', '1', '-vf', frameFilter(probe, hdr),
          '-pix_fmt', 'rgb24', '-c:v', 'png', '-compression_level', '1', path.join(dir, `${i}.png`)),
      );
      return run(tools.ffmpegPath, args, { signal, timeoutMs: FRAMES_TIMEOUT_MS, what: 'ffmpeg', nice: tools.nice });
    };
    try {
      await grab(probe.hdr);
    } catch (err) {
      // Builds without zimg cannot tone-map; an untone-mapped poster beats none.
      if (!probe.hdr || !/zscale|tonemap/i.test(String(err))) throw err;
      await grab(false);
    }
    const candidates: { time: number; png: Buffer; score: FrameScore }[] = [];
    for (const [i, time] of times.entries()) {
      const png = await readFile(path.join(dir, `${i}.png`)).catch(() => null);
      if (png) candidates.push({ time, png, score: await scoreFrame(png) });
    }
    if (candidates.length === 0) throw new MediaError('Could not decode video: no frame could be extracted');
    const good = candidates.filter((c) => c.score.usable);
    const poster = good[0] ?? candidates.reduce((a, b) => (b.score.detail > a.score.detail ? b : a));
    const later = good.filter((c) => c.time > poster.time);
    // Spread the described frames over the video rather than taking the next two.
    const extra = later.length > 2 ? [later[Math.floor(later.length / 2) - 1]!, later.at(-1)!] : later;
    return { poster: poster.png, frames: [poster.png, ...extra.map((c) => c.png)], posterTime: poster.time };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface FrameScore { usable: boolean; detail: number }

/** Black: dark on average. Blank: one flat colour. Thresholds are on the 0–255 scale. */
export async function scoreFrame(png: Buffer): Promise<FrameScore> {
  const { channels } = await sharp(png).stats();
  const [r, g, b] = channels;
  const luma = 0.2126 * (r?.mean ?? 0) + 0.7152 * (g?.mean ?? 0) + 0.0722 * (b?.mean ?? 0);
  const detail = Math.max(...channels.slice(0, 3).map((c) => c.stdev));
  return { usable: luma >= 24 && detail >= 8, detail };
}

function frameFilter(probe: VideoProbe, hdr: boolean): string {
  const steps: string[] = [];
  if (hdr) {
    // PQ/HLG to SDR BT.709, as Immich and Jellyfin do it: linearise, map, re-encode.
    steps.push('zscale=t=linear:npl=100', 'format=gbrpf32le', 'zscale=p=bt709', 'tonemap=hable:desat=0', 'zscale=t=bt709:m=bt709:r=tv');
  }
  if (probe.anamorphic) steps.push('scale=trunc(iw*sar/2)*2:ih', 'setsar=1');
  steps.push(`scale=w='min(${PREVIEW_SIZE},iw)':h='min(${PREVIEW_SIZE},ih)':force_original_aspect_ratio=decrease`);
  return steps.join(',');
}

function videoMetadata(tags: Record<string, string>): CaptureMetadata {
  const created = tags['com.apple.quicktime.creationdate'] ?? tags.creation_time ?? tags.date;
  const takenAt = created ? new Date(created) : null;
  const iso6709 = tags['com.apple.quicktime.location.iso6709'] ?? tags.location ?? tags['location-eng'];
  const m = iso6709 ? /^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)/.exec(iso6709) : null;
  return {
    ...NO_METADATA,
    takenAt: takenAt && !Number.isNaN(takenAt.getTime()) && takenAt.getUTCFullYear() > 1970 ? takenAt : null,
    cameraMake: text(tags['com.apple.quicktime.make'] ?? tags.make),
    cameraModel: text(tags['com.apple.quicktime.model'] ?? tags.model),
    ...coordinates(m ? Number(m[1]) : null, m ? Number(m[2]) : null),
  };
}

function run(bin: string, args: string[], opts: { signal?: AbortSignal; timeoutMs: number; what: string; nice?: number }): Promise<Buffer> {
  opts.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal, timeout: opts.timeoutMs, killSignal: 'SIGKILL' });
    // Right after exec: the decoder threads it starts later inherit it. (It may have exited already.)
    if (opts.nice && child.pid) {
      try {
        setPriority(child.pid, opts.nice);
      } catch {}
    }
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 4000) err += d.toString();
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      if (e.code === 'ENOENT' || e.code === 'EACCES') {
        return reject(
          new VideoUnavailableError(
            `Video processing unavailable: ${opts.what} was not found at "${bin}" (install ffmpeg, or set ${opts.what === 'ffprobe' ? 'FFPROBE_PATH' : 'FFMPEG_PATH'})`,
          ),
        );
      }
      reject(new MediaError(`Could not run ${opts.what}: ${e.message}`));
    });
    child.once('close', (code, sig) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      if (code === 0) return resolve(Buffer.concat(out));
      if (sig) return reject(new MediaError(`Video processing timed out after ${opts.timeoutMs / 1000}s (${opts.what})`));
      const first = err.split('\n').map((l) => l.trim()).find(Boolean) ?? `exit code ${code}`;
      reject(new MediaError(`Could not decode video: ${first.slice(0, 300)}`));
    });
  });
}

function ratio(value: string | undefined, sep: string): number | null {
  const [a, b] = (value ?? '').split(sep).map(Number);
  return a !== undefined && b && Number.isFinite(a / b) ? a / b : null;
}

function lowerKeys(tags: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(tags ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
}

interface FfprobeOutput {
  streams?: {
    index: number;
    codec_type?: string;
    codec_name?: string;
    width?: number;
    height?: number;
    sample_aspect_ratio?: string;
    avg_frame_rate?: string;
    r_frame_rate?: string;
    duration?: string;
    color_transfer?: string;
    disposition?: { attached_pic?: number };
    side_data_list?: { rotation?: number }[];
    tags?: Record<string, string>;
  }[];
  format?: { duration?: string; tags?: Record<string, string> };
}
