import exifr from 'exifr';

/** What Darkroom keeps of a capture's metadata. Location is owner-only and never enters a rendition. */
export interface CaptureMetadata {
  takenAt: Date | null;
  cameraMake: string | null;
  cameraModel: string | null;
  lensModel: string | null;
  /** Seconds. */
  exposureTime: number | null;
  fNumber: number | null;
  iso: number | null;
  /** Millimetres. */
  focalLength: number | null;
  latitude: number | null;
  longitude: number | null;
}

export const NO_METADATA: CaptureMetadata = {
  takenAt: null,
  cameraMake: null,
  cameraModel: null,
  lensModel: null,
  exposureTime: null,
  fNumber: null,
  iso: null,
  focalLength: null,
  latitude: null,
  longitude: null,
};

const PICK = [
  'Make', 'Model', 'LensModel', 'LensMake', 'DateTimeOriginal', 'CreateDate', 'OffsetTimeOriginal', 'OffsetTime',
  'ExposureTime', 'FNumber', 'ISO', 'FocalLength', 'GPSLatitude', 'GPSLatitudeRef', 'GPSLongitude', 'GPSLongitudeRef',
];

/**
 * Parses the EXIF block sharp extracted while reading the header (JPEG, PNG, WebP, HEIF, AVIF,
 * TIFF all carry one the same way), so the file is not read a second time. A damaged block
 * yields no metadata rather than a failed upload.
 */
export async function readExif(block: Buffer | undefined): Promise<CaptureMetadata> {
  if (!block || block.length < 8) return NO_METADATA;
  // JPEG's APP1 payload starts with an "Exif\0\0" marker; the TIFF structure follows.
  const tiff = block.subarray(0, 6).toString('latin1') === 'Exif\0\0' ? block.subarray(6) : block;
  let tags: Record<string, unknown> | undefined;
  try {
    tags = await exifr.parse(tiff, { pick: PICK, gps: true, reviveValues: false, translateValues: false });
  } catch {
    return NO_METADATA;
  }
  if (!tags) return NO_METADATA;
  const lens = text(tags.LensModel);
  const lensMake = text(tags.LensMake);
  const { latitude, longitude } = coordinates(tags.latitude, tags.longitude);
  return {
    takenAt: exifDate(tags.DateTimeOriginal ?? tags.CreateDate, tags.OffsetTimeOriginal ?? tags.OffsetTime),
    cameraMake: text(tags.Make),
    cameraModel: text(tags.Model),
    lensModel: lens && lensMake && !lens.startsWith(lensMake) ? `${lensMake} ${lens}` : lens,
    exposureTime: positive(tags.ExposureTime),
    fNumber: positive(tags.FNumber),
    iso: positive(Array.isArray(tags.ISO) ? tags.ISO[0] : tags.ISO, true),
    focalLength: positive(tags.FocalLength),
    latitude,
    longitude,
  };
}

/** Camera strings are NUL-padded, sometimes blank, occasionally garbage: keep them short and printable. */
export function text(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const clean = value.replace(/[\p{Cc}]/gu, '').trim().slice(0, 200);
  return clean || null;
}

function positive(value: unknown, integer = false): number | null {
  const n = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(n) || n <= 0) return null;
  return integer ? Math.round(n) : n;
}

/** 0,0 is what many devices write when they had no fix. */
export function coordinates(lat: unknown, lon: unknown): { latitude: number | null; longitude: number | null } {
  const ok =
    typeof lat === 'number' && typeof lon === 'number' &&
    Number.isFinite(lat) && Number.isFinite(lon) &&
    Math.abs(lat) <= 90 && Math.abs(lon) <= 180 && !(lat === 0 && lon === 0);
  return ok ? { latitude: lat, longitude: lon } : { latitude: null, longitude: null };
}

/**
 * EXIF times are wall-clock ("2024:05:04 10:20:30"); with an offset tag they name an instant,
 * without one they are stored as if UTC, so the wall-clock reading survives unchanged.
 */
export function exifDate(value: unknown, offset: unknown): Date | null {
  if (typeof value !== 'string') return null;
  const m = /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(value.trim());
  if (!m) return null;
  const zone = typeof offset === 'string' && /^[+-]\d{2}:\d{2}$/.test(offset.trim()) ? offset.trim() : 'Z';
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${zone}`);
  const year = date.getUTCFullYear();
  return Number.isNaN(date.getTime()) || year < 1900 || year > 2200 ? null : date;
}
