import { fileTypeFromBuffer } from 'file-type';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif' | 'tiff' | 'heif';
export type VideoFormat = 'mp4' | 'mov' | 'webm' | 'mkv' | 'avi';
export type MediaFormat = ImageFormat | VideoFormat;

export interface DetectedType {
  mime: string;
  ext: string;
  format: MediaFormat;
  /** Videos are decoded by ffmpeg, not sharp: header checks meant for images do not apply. */
  kind: 'image' | 'video';
}

/** How many leading bytes detection needs (file-type's own sample size). */
export const DETECTION_BYTES = 4100;

const FORMAT_BY_MIME: Record<string, MediaFormat> = {
  'image/jpeg': 'jpeg',
  'image/png': 'png',
  'image/apng': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
  'image/tiff': 'tiff',
  'image/heic': 'heif',
  'image/heif': 'heif',
  'image/heic-sequence': 'heif',
  'image/heif-sequence': 'heif',
  'video/mp4': 'mp4',
  'video/x-m4v': 'mp4',
  'video/quicktime': 'mov',
  'video/webm': 'webm',
  'video/matroska': 'mkv',
  'video/x-matroska': 'mkv',
  'video/vnd.avi': 'avi',
  'video/x-msvideo': 'avi',
};

/** Identifies an accepted image or video format from its magic bytes alone; null for anything else. */
export async function detectImageType(head: Uint8Array): Promise<DetectedType | null> {
  const result = await fileTypeFromBuffer(head);
  const format = result && FORMAT_BY_MIME[result.mime];
  if (!result || !format) return null;
  return { mime: result.mime, ext: result.ext, format, kind: result.mime.startsWith('video/') ? 'video' : 'image' };
}

/** A human-readable reason for refusing content that detectImageType did not accept. */
export async function describeUnsupported(head: Uint8Array): Promise<string> {
  const result = await fileTypeFromBuffer(head);
  if (result) return `detected ${result.mime}`;
  return looksLikeText(head) ? 'detected text/plain' : 'unrecognised content';
}

function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  try {
    // stream: true tolerates a multi-byte character cut off at the sample boundary.
    const text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, 1024), { stream: true });
    return !/[\u0000-\u0008\u000e-\u001f]/.test(text);
  } catch {
    return false;
  }
}
