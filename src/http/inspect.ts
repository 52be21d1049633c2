/**
 * Checks a received file before anything decodes its pixels: what its header promises
 * (dimensions, frames) and whether it is also something other than an image.
 */
import sharp from 'sharp';
import type { DetectedType } from '../services/filetype.ts';
import { readImageHeader } from './image-header.ts';

export type InspectionCode = 'PIXEL_LIMIT_EXCEEDED' | 'ANIMATION_TOO_LONG' | 'POLYGLOT' | 'CORRUPT_IMAGE';
export interface InspectionLimits {
  maxImagePixels: number;
  maxAnimationFrames: number;
}

export const SCAN_BYTES = 64 * 1024;
// Markup a browser or interpreter would act on. Each must be followed by printable text, as a real
// payload is: that keeps the odds of matching random compressed pixel data negligible.
const ACTIVE_CONTENT = /(<script|<html|<body|<iframe|<svg|<\?php|<!doctype|javascript:|<object|<embed)[\t\n\r\x20-\x7e]{8}/i;
const PDF_HEADER = /%PDF-/;
const EOCD = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/**
 * What the receiver kept of the file while writing it: all of it when small (reading it back
 * would cost more than the checks), else its first and last SCAN_BYTES.
 */
export interface ReceivedContent {
  path: string;
  byteSize: number;
  data: Buffer | null;
  head: Buffer;
  tail: Buffer;
}

export async function inspectFile(
  file: ReceivedContent,
  detected: DetectedType,
  limits: InspectionLimits,
): Promise<{ code: InspectionCode; message: string } | null> {
  const polyglot = findPolyglot(file);
  if (polyglot) return { code: 'POLYGLOT', message: `The file is also ${polyglot}; refused` };
  // Videos are decoded by ffmpeg in the worker, which bounds them itself.
  if (detected.kind === 'video') return null;

  const header = readImageHeader(detected.mime, file.data ?? file.head) ?? (await readHeader(file.data ?? file.path));
  if (!header) return { code: 'CORRUPT_IMAGE', message: `The ${detected.format} header could not be read` };
  const pixels = header.width * header.height;
  if (pixels > limits.maxImagePixels) {
    return {
      code: 'PIXEL_LIMIT_EXCEEDED',
      message: `${header.width}×${header.height} is ${(pixels / 1e6).toFixed(1)} megapixels; at most ${limits.maxImagePixels / 1e6} are allowed`,
    };
  }
  if (header.frames > limits.maxAnimationFrames) {
    return {
      code: 'ANIMATION_TOO_LONG',
      message: `${header.frames} frames; at most ${limits.maxAnimationFrames} are allowed`,
    };
  }
  return null;
}

/** What libvips reads of the header: for the formats and cases readImageHeader leaves to it. */
async function readHeader(input: Buffer | string) {
  try {
    // Header only: no pixel is decoded here, so the size check itself cannot be bombed.
    // From a path, libvips opens the file once per loader it asks whether the format is its own.
    const m = await sharp(input, { limitInputPixels: false }).metadata();
    if (m.width && m.height) return { width: m.width, height: m.height, frames: m.pages ?? 1 };
  } catch {
    // unreadable: reported below
  }
  return null;
}

/** Active content in the head or tail (where payloads live), or a ZIP/JAR appended to the image. */
function findPolyglot({ head, tail, byteSize }: ReceivedContent): string | null {
  for (const part of byteSize > SCAN_BYTES ? [head, tail] : [head]) {
    const m = ACTIVE_CONTENT.exec(part.toString('latin1'));
    if (m) return `HTML/script (found "${m[1]!.toLowerCase()}")`;
  }
  if (PDF_HEADER.test(head.subarray(0, 1024).toString('latin1'))) return 'a PDF document';
  if (hasZipDirectory(tail, byteSize)) return 'a ZIP archive';
  return null;
}

/** A ZIP's end-of-central-directory record: its signature, with a comment that ends exactly at EOF. */
function hasZipDirectory(tail: Buffer, byteSize: number): boolean {
  const tailStart = byteSize - tail.length;
  let i = tail.length >= 22 ? tail.lastIndexOf(EOCD, tail.length - 22) : -1;
  while (i >= 0) {
    if (tailStart + i + 22 + tail.readUInt16LE(i + 20) === byteSize) return true;
    // lastIndexOf counts a negative start from the end: stop at 0 instead.
    i = i > 0 ? tail.lastIndexOf(EOCD, i - 1) : -1;
  }
  return false;
}
