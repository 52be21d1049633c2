import sharp from 'sharp';

/** Fixture factories: every test makes its own inputs, so no binary files live in the repo. */

export type Color = 'red' | 'green' | 'blue' | 'white' | 'black';
export interface SolidOptions { width?: number; height?: number; color?: Color }

function solid({ width = 64, height = 48, color = 'red' }: SolidOptions = {}) {
  return sharp({ create: { width, height, channels: 3, background: color } });
}

export const png = (o?: SolidOptions) => solid(o).png().toBuffer();
export const jpeg = (o?: SolidOptions) => solid(o).jpeg().toBuffer();
export const webp = (o?: SolidOptions) => solid(o).webp().toBuffer();
export const gif = (o?: SolidOptions) => solid(o).gif().toBuffer();

/**
 * A JPEG whose stored pixels are width×height (left half red, right half blue) tagged with an
 * EXIF Orientation. For orientation 6 (rotate 90° CW to display) the red half ends up on TOP
 * and the display size is height×width.
 */
export async function jpegWithOrientation({ width = 300, height = 200, orientation = 6 } = {}): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      raw[(y * width + x) * 3 + (x < width / 2 ? 0 : 2)] = 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
}

/** Samples the decoded pixel at a fractional position; loose thresholds absorb JPEG/WebP loss. */
export async function dominantColorAt(buffer: Buffer, xFrac: number, yFrac: number): Promise<'red' | 'blue' | 'other'> {
  const { data, info } = await sharp(buffer).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const x = Math.min(info.width - 1, Math.floor(xFrac * info.width));
  const y = Math.min(info.height - 1, Math.floor(yFrac * info.height));
  const i = (y * info.width + x) * info.channels;
  const [r, g, b] = [data[i] ?? 0, data[i + 1] ?? 0, data[i + 2] ?? 0];
  if (r > 180 && g < 80 && b < 80) return 'red';
  if (b > 180 && r < 80 && g < 80) return 'blue';
  return 'other';
}

/** A real PNG cut short: the header (and size) parse, pixel decoding fails part-way. */
export async function truncatedPng(): Promise<Buffer> {
  // Noise defeats compression, so 40% of the file still holds the header plus partial pixel data.
  const full = await sharp({
    create: { width: 512, height: 512, channels: 3, background: 'black', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
  })
    .png()
    .toBuffer();
  return full.subarray(0, Math.floor(full.length * 0.4));
}

export function corruptFile(): Buffer {
  return Buffer.from('this is not an image');
}
