/**
 * Checks a received file once it is on disk, before anything decodes its pixels: what its
 * header promises (dimensions, frames) and whether it is also something other than an image.
 */
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import type { DetectedType } from '../services/filetype.ts';

export type InspectionCode = 'PIXEL_LIMIT_EXCEEDED' | 'ANIMATION_TOO_LONG' | 'POLYGLOT' | 'CORRUPT_IMAGE';
export interface InspectionLimits {
  maxImagePixels: number;
  maxAnimationFrames: number;
}

const SCAN_BYTES = 64 * 1024;
// Markup a browser or interpreter would act on. Each must be followed by printable text, as a real
// payload is: that keeps the odds of matching random compressed pixel data negligible.
const ACTIVE_CONTENT = /(<script|<html|<body|<iframe|<svg|<\?php|<!doctype|javascript:|<object|<embed)[\t\n\r\x20-\x7e]{8}/i;
const PDF_HEADER = /%PDF-/;

export async function inspectFile(
  path: string,
  byteSize: number,
  detected: DetectedType,
  limits: InspectionLimits,
): Promise<{ code: InspectionCode; message: string } | null> {
  const polyglot = await findPolyglot(path, byteSize);
  if (polyglot) return { code: 'POLYGLOT', message: `The file is also ${polyglot}; refused` };
  // Videos are decoded by ffmpeg in the worker, which bounds them itself.
  if (detected.kind === 'video') return null;

  const header = await readHeader(path);
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

async function readHeader(path: string) {
  try {
    // Header only: no pixel is decoded here, so the size check itself cannot be bombed.
    const m = await sharp(path, { limitInputPixels: false }).metadata();
    if (m.width && m.height) return { width: m.width, height: m.height, frames: m.pages ?? 1 };
  } catch {
    // unreadable: reported below
  }
  return null;
}

async function readRange(path: string, start: number, length: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** Active content in the head or tail (where payloads live), or a ZIP/JAR appended to the image. */
async function findPolyglot(path: string, byteSize: number): Promise<string | null> {
  const head = await readRange(path, 0, Math.min(SCAN_BYTES, byteSize));
  const tail = byteSize > SCAN_BYTES ? await readRange(path, byteSize - SCAN_BYTES, SCAN_BYTES) : head;
  for (const part of [head, tail]) {
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
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== 0x06054b50) continue;
    if (tailStart + i + 22 + tail.readUInt16LE(i + 20) === byteSize) return true;
  }
  return false;
}
