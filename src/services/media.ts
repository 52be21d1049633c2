import sharp from 'sharp';

export interface Rendition { key: string; width: number; height: number; format: 'webp'; byteSize: number }
export interface MediaResult {
  width: number;
  height: number;
  format: string;
  thumbnail: { width: number; height: number; data: Buffer };
}

/** A permanent failure to read the image: retrying the same bytes won't help. */
export class MediaError extends Error {
  override name = 'MediaError';
}

const THUMBNAIL_SIZE = 256;
// Uploads are untrusted: refuse decompression bombs well below sharp's 268 MP default.
export const MAX_INPUT_PIXELS = 100_000_000;

export async function createThumbnail(
  inputPath: string,
  opts: { signal?: AbortSignal; timeoutSeconds?: number } = {},
): Promise<MediaResult> {
  const { signal, timeoutSeconds = 60 } = opts;
  signal?.throwIfAborted();
  const work = render(inputPath, timeoutSeconds);
  return signal ? raceAbort(work, signal) : work;
}

async function render(inputPath: string, timeoutSeconds: number): Promise<MediaResult> {
  const image = sharp(inputPath, {
    failOn: 'error',
    limitInputPixels: MAX_INPUT_PIXELS,
    autoOrient: true,
    animated: false,
    sequentialRead: true,
  }).timeout({ seconds: timeoutSeconds });
  try {
    // metadata() only parses the header; pixels are decoded once, by toBuffer().
    const meta = await image.metadata();
    const { data, info } = await image
      .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 })
      .toBuffer({ resolveWithObject: true });
    return {
      // meta.width/height are the stored pixels; autoOrient gives what a viewer displays.
      width: meta.autoOrient.width,
      height: meta.autoOrient.height,
      format: meta.format,
      thumbnail: { width: info.width, height: info.height, data },
    };
  } catch (err) {
    throw new MediaError(describeSharpError(err, timeoutSeconds), { cause: err });
  }
}

function describeSharpError(err: unknown, timeoutSeconds: number): string {
  const raw = err instanceof Error ? err.message : String(err);
  const first = raw.split('\n')[0]?.trim() || 'unknown error';
  if (/unsupported image format/i.test(first)) return 'Not a supported image format';
  if (/pixel limit/i.test(first)) return `Image is too large (over ${MAX_INPUT_PIXELS / 1_000_000} megapixels)`;
  if (/input file is missing/i.test(first)) return 'Image file is missing';
  if (/timeout/i.test(first)) return `Image processing timed out after ${timeoutSeconds}s`;
  return `Could not decode image: ${first}`;
}

/** sharp can't be cancelled mid-operation, so stop waiting for it instead. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
