import { readFile } from 'node:fs/promises';
import { crc32, deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';
import { decodeHeic } from './heic.ts';

export interface Rendition { data: Buffer; width: number; height: number }
export interface Renditions {
  /** WebP fitting 256 px. */
  thumbnail: Rendition;
  /** Fitting 1440 px: JPEG, or WebP when the picture has transparency. */
  preview: Rendition & { format: 'jpeg' | 'webp' };
  /** ThumbHash of the picture, base64: a ~25-byte blurred stand-in a client paints at once. */
  placeholderHash: string;
  /** JPEG fitting 1024 px for a vision model; only made when asked for. */
  modelImage?: Buffer;
}
export interface ImageResult extends Renditions {
  /** As displayed, i.e. after orientation. */
  width: number;
  height: number;
  format: string;
  /** The raw EXIF block (a TIFF structure), for the metadata stage; never copied into renditions. */
  exif?: Buffer;
}

/** A permanent failure to read the media: retrying the same bytes won't help. */
export class MediaError extends Error {
  override name = 'MediaError';
}

export const THUMBNAIL_SIZE = 256;
export const PREVIEW_SIZE = 1440;
const MODEL_IMAGE_SIZE = 1024;
// Uploads are untrusted: refuse decompression bombs well below sharp's 268 MP default.
// The service passes its MAX_IMAGE_PIXELS (the limit ingest checks headers against) instead.
export const MAX_INPUT_PIXELS = 100_000_000;

export interface RenderOptions {
  signal?: AbortSignal;
  timeoutSeconds?: number;
  /** Also produce the JPEG a vision model is sent. */
  modelImage?: boolean;
  /** Images with more pixels are refused before decoding (default MAX_INPUT_PIXELS). */
  maxPixels?: number;
}

/** Decodes an image file once and derives every rendition from that one decode. */
export async function renderImage(inputPath: string, opts: RenderOptions = {}): Promise<ImageResult> {
  const { signal, timeoutSeconds = 60 } = opts;
  signal?.throwIfAborted();
  return raceAbort(renderImageFile(inputPath, opts, timeoutSeconds), signal);
}

/** Renditions of an already-decoded frame (a video poster), same pipeline as a photo. */
export async function renderFrame(frame: Buffer, opts: RenderOptions = {}): Promise<Renditions> {
  const { signal, timeoutSeconds = 60 } = opts;
  signal?.throwIfAborted();
  const work = (async () => {
    try {
      return await derive(open(frame, opts.maxPixels), false, opts, timeoutSeconds);
    } catch (err) {
      throw new MediaError(describeSharpError(err, timeoutSeconds, opts.maxPixels), { cause: err });
    }
  })();
  return raceAbort(work, signal);
}

/** The model-sized JPEG of an extra frame (videos are described from several). */
export async function modelImageOf(frame: Buffer, maxPixels = MAX_INPUT_PIXELS): Promise<Buffer> {
  return toModelImage(sharp(frame, { failOn: 'error', limitInputPixels: maxPixels }));
}

const open = (input: string | Buffer, maxPixels = MAX_INPUT_PIXELS) =>
  sharp(input, { failOn: 'error', limitInputPixels: maxPixels, autoOrient: true, animated: false, sequentialRead: true });

async function renderImageFile(inputPath: string, opts: RenderOptions, timeoutSeconds: number): Promise<ImageResult> {
  try {
    // metadata() parses the header only; pixels are decoded once, in derive().
    const maxPixels = opts.maxPixels ?? MAX_INPUT_PIXELS;
    const meta = await open(inputPath, maxPixels).metadata();
    let source: Sharp;
    let width = meta.autoOrient.width;
    let height = meta.autoOrient.height;
    if (meta.format === 'heif' && meta.compression === 'hevc') {
      if (width * height > maxPixels) throw new Error('Input image exceeds pixel limit');
      const heic = await decodeHeic(await readFile(inputPath), opts.signal);
      ({ width, height } = heic);
      source = await heicSource(heic, meta.icc, meta.hasAlpha, maxPixels);
    } else {
      source = open(inputPath, maxPixels);
    }
    const renditions = await derive(source, meta.hasProfile, opts, timeoutSeconds);
    return { ...renditions, width, height, format: meta.format, exif: meta.exif };
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw new MediaError(describeSharpError(err, timeoutSeconds, opts.maxPixels), { cause: err });
  }
}

/**
 * The single decode: orientation applied, the embedded ICC profile (or CMYK, or 16 bits)
 * converted to 8-bit sRGB, shrunk to the preview size. Everything else is made from
 * these pixels, so no rendition ever carries the original's metadata.
 */
async function derive(source: Sharp, hasProfile: boolean, opts: RenderOptions, timeoutSeconds: number): Promise<Renditions> {
  let image = source
    .timeout({ seconds: timeoutSeconds })
    .resize(PREVIEW_SIZE, PREVIEW_SIZE, { fit: 'inside', withoutEnlargement: true });
  // Unlike the default conversion, this also honours the profile of 16-bit input. Only applied
  // when there is a profile: on untagged (already sRGB) pixels it would be a costly no-op.
  if (hasProfile) image = image.withIccProfile('srgb', { attach: false });
  const { data, info } = await image.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const raw = { width: info.width, height: info.height, channels: info.channels };
  const pixels = () => sharp(data, { raw }).timeout({ seconds: timeoutSeconds });
  let derived: [PromiseSettledResult<Rendition>, PromiseSettledResult<Rendition>, PromiseSettledResult<string>, PromiseSettledResult<Buffer | undefined>];
  let previewFormat: 'jpeg' | 'webp';
  try {
    // WebP costs over ten times JPEG's encoding time at this size; only transparency needs it.
    // (GIF and palette PNG decode with an alpha channel even when every pixel is opaque.)
    const transparent = info.channels === 4 && !(await pixels().stats()).isOpaque;
    previewFormat = transparent ? 'webp' : 'jpeg';
    // Settled, not all: until every pipeline has ended, libvips may still be reading the pixels.
    derived = await Promise.allSettled([
      encode(transparent ? pixels() : pixels().removeAlpha(), previewFormat),
      encode(pixels().resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true }), 'webp'),
      thumbHash(pixels()),
      opts.modelImage ? toModelImage(pixels()) : undefined,
    ]);
  } finally {
    release(data);
  }
  const [preview, thumbnail, placeholderHash, modelImage] = derived.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  }) as [Rendition, Rendition, string, Buffer | undefined];
  return { preview: { ...preview, format: previewFormat }, thumbnail, placeholderHash, ...(modelImage ? { modelImage } : {}) };
}

/**
 * Frees a decode's pixels now instead of at the next full garbage collection. They are a few
 * megabytes outside V8's heap per photo, and V8 answers that much external memory with a full
 * collection of the whole heap every dozen photos or so: in the worker's media thread some 50
 * of them per 600 photos (6 without), and the bench's bare loop paid about 4 ms per photo for
 * them in its own larger heap (docs/performance.md). Only once nothing reads them: libvips works
 * on the buffer's memory in place. A buffer sharing its memory with others is left alone.
 */
function release(pixels: Buffer) {
  const memory = pixels.buffer;
  if (pixels.byteOffset === 0 && pixels.byteLength === memory.byteLength && memory instanceof ArrayBuffer) memory.transfer(0);
}

async function encode(image: Sharp, format: 'jpeg' | 'webp'): Promise<Rendition> {
  const encoded = format === 'jpeg' ? image.jpeg({ quality: 80, progressive: true }) : image.webp({ quality: 80 });
  const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function thumbHash(image: Sharp): Promise<string> {
  // ThumbHash takes at most 100×100.
  const { data, info } = await image
    .resize(100, 100, { fit: 'inside' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString('base64');
}

function toModelImage(image: Sharp): Promise<Buffer> {
  return (
    image
      .resize(MODEL_IMAGE_SIZE, MODEL_IMAGE_SIZE, { fit: 'inside', withoutEnlargement: true })
      // JPEG has no alpha; sharp would otherwise flatten transparency to black.
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 85 })
      .toBuffer()
  );
}

/**
 * sharp takes raw pixels as sRGB. To have the HEIC's own profile (Display P3 on iPhones)
 * converted like any other image's, the pixels travel as a fast, uncompressed PNG carrying it.
 */
async function heicSource(heic: { width: number; height: number; data: Uint8Array }, icc: Buffer | undefined, hasAlpha: boolean, maxPixels: number) {
  const raw = { width: heic.width, height: heic.height, channels: 4 as const };
  let image = sharp(heic.data, { raw, limitInputPixels: maxPixels });
  if (!hasAlpha) image = image.removeAlpha();
  if (!icc) return image;
  const png = await image.png({ compressionLevel: 0, adaptiveFiltering: false }).toBuffer();
  return open(withIccChunk(png, icc), maxPixels);
}

/** Inserts an iCCP chunk right after IHDR, where the PNG specification wants it. */
export function withIccChunk(png: Buffer, icc: Buffer): Buffer {
  const IHDR_END = 8 + 8 + 13 + 4;
  const body = Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]);
  const typeAndBody = Buffer.concat([Buffer.from('iCCP', 'latin1'), body]);
  const chunk = Buffer.alloc(4 + typeAndBody.length + 4);
  chunk.writeUInt32BE(body.length, 0);
  typeAndBody.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(typeAndBody), 4 + typeAndBody.length);
  return Buffer.concat([png.subarray(0, IHDR_END), chunk, png.subarray(IHDR_END)]);
}

export function describeSharpError(err: unknown, timeoutSeconds: number, maxPixels = MAX_INPUT_PIXELS): string {
  const raw = err instanceof Error ? err.message : String(err);
  const first = raw.split('\n')[0]?.trim() || 'unknown error';
  if (/unsupported image format/i.test(first)) return 'Not a supported image format';
  if (/pixel limit/i.test(first)) return `Image is too large (over ${maxPixels / 1_000_000} megapixels)`;
  if (/input file is missing/i.test(first)) return 'Image file is missing';
  if (/timeout/i.test(first)) return `Image processing timed out after ${timeoutSeconds}s`;
  return `Could not decode image: ${first}`;
}

/** sharp can't be cancelled mid-operation, so stop waiting for it instead. */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {}); // no longer anyone's to handle
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
