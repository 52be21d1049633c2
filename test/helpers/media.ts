import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type FormattedExecutionResult, print } from 'graphql';
import sharp from 'sharp';
import { afterAll, beforeAll } from 'vitest';
import type { UploadFile } from './client.ts';

/** Media fixtures made on the fly, each with a property a wrong pipeline visibly breaks. */

const W = 240;
const H = 160;

function rgbRaw(width: number, height: number, pick: (x: number, y: number) => [number, number, number]) {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set(pick(x, y), (y * width + x) * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

/** CMYK JPEG of pure red (C0 M100 Y100 K0); `profile` embeds a CMYK ICC profile too. */
export const cmykJpeg = (profile = false) => {
  const red = rgbRaw(W, H, () => [255, 0, 0]);
  return (profile ? red.withIccProfile('cmyk') : red.toColourspace('cmyk')).jpeg({ quality: 95 }).toBuffer();
};

/**
 * 16-bit PNG holding sRGB pure green re-encoded as Display P3, with the P3 profile embedded.
 * Stored pixels read about (117, 252, 76); only honouring the profile gives back (0, 255, 0).
 */
export const p3Png16 = () =>
  rgbRaw(W, H, () => [0, 255, 0]).withIccProfile('p3').toColourspace('rgb16').png().toBuffer();

/** Two frames: red, then blue. The rendition must show the first. */
export async function animatedGif() {
  const frame = (background: string) => sharp({ create: { width: W, height: H, channels: 3, background } }).png().toBuffer();
  return sharp([await frame('red'), await frame('blue')], { join: { animated: true } }).gif({ delay: [200, 200] }).toBuffer();
}

export const GPS = { latitude: 48.858222, longitude: 2.2945 };

/** A JPEG with camera EXIF and GPS coordinates (Eiffel Tower). */
export const jpegWithExif = (color: [number, number, number] = [200, 40, 40]) =>
  rgbRaw(W, H, () => color)
    .jpeg({ quality: 90 })
    .withExif({
      IFD0: { Make: 'Canon', Model: 'Canon EOS R5' },
      IFD2: {
        DateTimeOriginal: '2023:06:01 12:34:56',
        OffsetTimeOriginal: '+02:00',
        ExposureTime: '1/250',
        FNumber: '28/10',
        ISOSpeedRatings: '400',
        FocalLength: '50/1',
        LensModel: 'RF24-70mm F2.8 L IS USM',
      },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2960/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 4020/100' },
    })
    .toBuffer();

export const HEIC_FIXTURE = new URL('../fixtures/p3-green-blue.heic', import.meta.url);

/** Share of pixels close to a colour (loose: lossy codecs and colour conversion move values a little). */
export async function shareOf(image: Buffer, [r, g, b]: [number, number, number], tolerance = 60) {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let hits = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (Math.abs(data[i]! - r) + Math.abs(data[i + 1]! - g) + Math.abs(data[i + 2]! - b) <= tolerance) hits++;
  }
  return hits / (info.width * info.height);
}

export async function pixelAt(image: Buffer, xFrac: number, yFrac: number) {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const x = Math.min(info.width - 1, Math.floor(xFrac * info.width));
  const y = Math.min(info.height - 1, Math.floor(yFrac * info.height));
  const i = (y * info.width + x) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!] as const;
}

const run = promisify(execFile);
// Fast settings: the clips only need to exist and decode.
const CODEC_ARGS: Record<string, string[]> = {
  libx264: ['-preset', 'ultrafast'],
  'libvpx-vp9': ['-b:v', '200k', '-deadline', 'realtime'],
  mpeg4: ['-q:v', '3'],
};

/**
 * A clip whose first second is black, followed by two seconds of a red picture with a white
 * grid (detail, so it is neither black nor blank). Made with the same ffmpeg the service uses.
 */
export async function blackStartVideo(
  ext: 'mp4' | 'mov' | 'webm' | 'mkv' | 'avi' = 'mp4',
  opts: { size?: string; extra?: string[]; seconds?: number } = {},
): Promise<Buffer> {
  const size = opts.size ?? '320x240';
  const codec = { mp4: 'libx264', mov: 'libx264', mkv: 'libx264', webm: 'libvpx-vp9', avi: 'mpeg4' }[ext];
  const dir = await mkdtemp(path.join(tmpdir(), 'darkroom-video-'));
  const out = path.join(dir, `clip.${ext}`);
  try {
    await run('ffmpeg', [
      '-v', 'error', '-y',
      '-f', 'lavfi', '-i', `color=black:s=${size}:r=25:d=1`,
      '-f', 'lavfi', '-i', `color=red:s=${size}:r=25:d=${opts.seconds ?? 2},drawgrid=w=40:h=40:t=4:c=white`,
      '-filter_complex', '[0][1]concat=n=2:v=1,format=yuv420p[v]', '-map', '[v]',
      '-c:v', codec, ...(CODEC_ARGS[codec] ?? []),
      ...(opts.extra ?? []), out,
    ]);
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Rewrites a clip's container only (e.g. to add tags a phone writes), keeping its streams as they are. */
export async function remux(data: Buffer, ext: string, args: string[]): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'darkroom-video-'));
  try {
    await writeFile(path.join(dir, `in.${ext}`), data);
    await run('ffmpeg', ['-v', 'error', '-y', '-i', path.join(dir, `in.${ext}`), '-c', 'copy', ...args, path.join(dir, `out.${ext}`)]);
    return await readFile(path.join(dir, `out.${ext}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** createBatch with a caller-chosen document (the shared client's fixes its selection). */
export async function uploadWith<R, V>(
  app: { graphqlUrl: string },
  doc: TypedDocumentNode<R, V>,
  token: string,
  files: UploadFile[],
): Promise<FormattedExecutionResult<R>> {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: print(doc), variables: { files: files.map(() => null) } }));
  form.set('map', JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]]))));
  files.forEach((f, i) => form.set(String(i), new Blob([new Uint8Array(f.data)]), f.name));
  const res = await fetch(app.graphqlUrl, {
    method: 'POST',
    body: form,
    headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${token}` },
  });
  return (await res.json()) as FormattedExecutionResult<R>;
}

export async function fetchImage(url: string) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

/**
 * A temporary directory for this test file's inputs, made before its tests and removed after
 * them; the returned function writes one file into it and gives its path.
 */
export function tempFiles(prefix: string) {
  let dir = '';
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return async (data: Buffer | Promise<Buffer>, ext: string) => {
    const p = path.join(dir, `f${++count}.${ext}`);
    await writeFile(p, await data);
    return p;
  };
}
