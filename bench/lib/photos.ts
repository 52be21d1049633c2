import { randomBytes, randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { UploadSource } from './client.ts';

export interface Photo {
  name: string;
  type: string;
  data: Buffer;
}

const TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.avif': 'image/avif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.heic': 'image/heic',
};

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DEFAULT_PHOTOS = path.resolve(REPO, '../shared/fixtures/photos');

/** --photos DIR, else the shared fixture photos when present, else images generated here. */
export async function loadPhotos(dir: string | undefined): Promise<{ source: string; photos: Photo[] }> {
  const chosen = dir ?? (existsSync(DEFAULT_PHOTOS) ? DEFAULT_PHOTOS : undefined);
  if (!chosen) return { source: 'generated (no fixture photos found)', photos: await generatePhotos() };
  const names = (await readdir(chosen)).filter((n) => TYPES[path.extname(n).toLowerCase()]).sort();
  if (names.length === 0) throw new Error(`no images in ${chosen}`);
  const photos = await Promise.all(
    names.map(async (name) => ({ name, type: TYPES[path.extname(name).toLowerCase()]!, data: await readFile(path.join(chosen, name)) })),
  );
  return { source: path.relative(process.cwd(), chosen) || chosen, photos };
}

/** Camera-like stand-ins: noise defeats compression, so decoding costs what a real photo's would. */
async function generatePhotos(): Promise<Photo[]> {
  const sizes = [
    [640, 480],
    [1024, 768],
    [1600, 1200],
    [2048, 1536],
    [1200, 1600],
    [800, 800],
  ] as const;
  const photos: Photo[] = [];
  for (let i = 0; i < 24; i++) {
    const [width, height] = sizes[i % sizes.length]!;
    const image = sharp({
      create: { width, height, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 }, noise: { type: 'gaussian', mean: 120, sigma: 30 } },
    });
    const webp = i % 6 === 5;
    const data = await (webp ? image.webp({ quality: 80 }) : image.jpeg({ quality: 85 })).toBuffer();
    photos.push({ name: `generated-${i}.${webp ? 'webp' : 'jpg'}`, type: webp ? 'image/webp' : 'image/jpeg', data });
  }
  return photos;
}

/** The photo list cycled to exactly n entries. */
export function repeatTo(photos: Photo[], n: number): Photo[] {
  return Array.from({ length: n }, (_, i) => photos[i % photos.length]!);
}

/** Items dealt round-robin into `count` groups, as the bench deals photos into batches. */
export function deal<T>(items: readonly T[], count: number): T[][] {
  return Array.from({ length: count }, (_, g) => items.filter((_, i) => i % count === g)).filter((g) => g.length);
}

/** A small real image: what is left of a per-upload cost once decoding is nearly free. */
export async function tinyPhoto(): Promise<Photo> {
  const data = await sharp({ create: { width: 160, height: 120, channels: 3, background: 'gray', noise: { type: 'gaussian', mean: 128, sigma: 30 } } })
    .jpeg({ quality: 80 })
    .toBuffer();
  return { name: 'tiny.jpg', type: 'image/jpeg', data };
}

/** Writes photos as files (the bare loop reads from disk, as the worker does) and returns their paths. */
export async function writePhotos(dir: string, photos: Photo[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written = new Map<Photo, string>();
  const paths: string[] = [];
  for (const p of photos) {
    let file = written.get(p);
    if (!file) {
      file = path.join(dir, `${written.size}-${p.name}`);
      await writeFile(file, p.data);
      written.set(p, file);
    }
    paths.push(file);
  }
  return paths;
}

const TAG_BYTES = 16;
const runTag = randomBytes(8);
let tags = 0n;
/**
 * 16 bytes no upload shares: the service skips content its owner already has, so every copy of a
 * repeated photo must differ. Appended after the image's end, where decoders never read
 * (renditions of every fixture photo are byte-identical with and without it).
 */
function uniqueTag(): Buffer {
  const tag = Buffer.alloc(TAG_BYTES);
  runTag.copy(tag, 0);
  tag.writeBigUInt64BE(++tags, 8);
  return tag;
}

/** A photo as an upload: its bytes plus a fresh unique tag each time it is sent. */
export const uploadOf = (p: Photo, i: number): UploadSource => ({
  name: `${i}-${p.name}`,
  type: p.type,
  size: p.data.length + TAG_BYTES,
  chunks: () => [p.data, uniqueTag()],
});

const POOL_BYTES = 64 * 1024 * 1024;
let pool: Buffer | undefined;
const CHUNK = 1024 * 1024;

/**
 * A file of exactly `size` bytes: a whole real photo, then incompressible padding from a
 * shared random pool, then a unique tag. The service sees a valid image; the bytes after its
 * end cost it what any bytes would.
 */
export function paddedPhoto(photo: Photo, size: number, seed: number): UploadSource {
  pool ??= randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
  const p = pool;
  const headBytes = Math.min(photo.data.length, size - TAG_BYTES);
  return {
    name: `padded-${seed}-${photo.name}`,
    type: photo.type,
    size,
    *chunks() {
      yield photo.data.subarray(0, headBytes);
      let left = size - headBytes - TAG_BYTES;
      let offset = (seed * 7919 * 4096) % POOL_BYTES;
      while (left > 0) {
        const n = Math.min(left, CHUNK, POOL_BYTES - offset);
        yield p.subarray(offset, offset + n);
        left -= n;
        offset = (offset + n) % POOL_BYTES;
      }
      yield uniqueTag();
    },
  };
}
