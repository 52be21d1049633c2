import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectImageType } from '../src/services/filetype.ts';
import { renderFrame } from '../src/services/media.ts';
import { extractPosterFrames, probeVideo, scoreFrame, VideoUnavailableError } from '../src/services/video.ts';
import * as media from './helpers/media.ts';

const tools = { ffmpegPath: process.env.FFMPEG_PATH ?? 'ffmpeg', ffprobePath: process.env.FFPROBE_PATH ?? 'ffprobe' };
const RED: [number, number, number] = [255, 0, 0];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'darkroom-video-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function save(data: Buffer, ext: string) {
  const p = path.join(dir, `${Math.random().toString(36).slice(2)}.${ext}`);
  await writeFile(p, data);
  return p;
}

describe('an MP4 whose first second is black', () => {
  let file: string;
  beforeAll(async () => {
    file = await save(await media.blackStartVideo('mp4'), 'mp4');
  });

  it('is probed for duration, codec, size and frame rate', async () => {
    const probe = await probeVideo(file, tools);
    expect(probe).toMatchObject({ codec: 'h264', width: 320, height: 240, frameRate: 25, hdr: false });
    expect(probe.durationSeconds).toBeCloseTo(3, 1);
  });

  it('gets a poster from after the black, and renditions from that poster', async () => {
    const probe = await probeVideo(file, tools);
    const frames = await extractPosterFrames(file, probe, tools);
    // The opening frame is there, but was judged black.
    expect(frames.posterTime).toBeGreaterThanOrEqual(1);
    expect((await scoreFrame(frames.poster)).usable).toBe(true);
    expect(frames.frames[0]).toBe(frames.poster);
    expect(frames.frames.length).toBeGreaterThan(1);

    const r = await renderFrame(frames.poster, { modelImage: true });
    expect(r.thumbnail).toMatchObject({ width: 256, height: 192 });
    expect(r.preview).toMatchObject({ width: 320, height: 240 });
    for (const rendition of [r.thumbnail.data, r.preview.data]) {
      expect(await media.shareOf(rendition, RED, 90)).toBeGreaterThan(0.5);
    }
    expect((await sharp(r.thumbnail.data).metadata()).format).toBe('webp');
    expect((await sharp(r.preview.data).metadata()).format).toBe('jpeg');
    expect(await media.shareOf(r.modelImage!, RED, 90)).toBeGreaterThan(0.5);
  });
});

it('judges black and flat frames unusable, and detailed ones usable', async () => {
  const flat = (background: string) => sharp({ create: { width: 64, height: 48, channels: 3, background } }).png().toBuffer();
  expect((await scoreFrame(await flat('black'))).usable).toBe(false);
  expect((await scoreFrame(await flat('#808080'))).usable).toBe(false);
  const noisy = await sharp({ create: { width: 64, height: 48, channels: 3, background: 'gray', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .png()
    .toBuffer();
  expect((await scoreFrame(noisy)).usable).toBe(true);
});

describe.each([
  ['mov', 'video/quicktime', 'h264'],
  ['webm', 'video/webm', 'vp9'],
  ['mkv', 'video/matroska', 'h264'],
  ['avi', 'video/vnd.avi', 'mpeg4'],
] as const)('%s', (ext, mime, codec) => {
  it('is accepted by content, probed, and given a non-black poster', async () => {
    const data = await media.blackStartVideo(ext);
    expect(await detectImageType(data.subarray(0, 4100))).toMatchObject({ mime, format: ext, kind: 'video' });
    const file = await save(data, ext);
    const probe = await probeVideo(file, tools);
    expect(probe).toMatchObject({ codec, width: 320, height: 240 });
    expect(probe.durationSeconds).toBeCloseTo(3, 0);
    const { poster } = await extractPosterFrames(file, probe, tools);
    expect(await media.shareOf(poster, RED, 90)).toBeGreaterThan(0.5);
  });
});

it('turns a rotated phone video upright and reads its capture time and place', async () => {
  const data = await media.remux(await media.blackStartVideo('mp4'), 'mp4', [
    '-metadata:s:v', 'rotate=90', '-metadata', 'creation_time=2024-01-02T03:04:05Z', '-metadata', 'location=+48.8582+002.2945/',
  ]);
  const file = await save(data, 'mp4');
  const probe = await probeVideo(file, tools);
  expect(probe).toMatchObject({ width: 240, height: 320 });
  expect(probe.metadata).toMatchObject({ takenAt: new Date('2024-01-02T03:04:05Z'), latitude: 48.8582, longitude: 2.2945 });
  const { poster } = await extractPosterFrames(file, probe, tools);
  expect(await sharp(poster).metadata()).toMatchObject({ width: 240, height: 320 });
});

it('fits a large video frame into the preview size', async () => {
  const file = await save(await media.blackStartVideo('mp4', { size: '1920x1080', seconds: 1 }), 'mp4');
  const probe = await probeVideo(file, tools);
  expect(probe).toMatchObject({ width: 1920, height: 1080 });
  const { poster } = await extractPosterFrames(file, probe, tools);
  expect(await sharp(poster).metadata()).toMatchObject({ width: 1440, height: 810 });
});

it('tone-maps an HDR (PQ) video instead of failing', async () => {
  const file = await save(
    await media.blackStartVideo('mp4', { extra: ['-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc'] }),
    'mp4',
  );
  const probe = await probeVideo(file, tools);
  expect(probe.hdr).toBe(true);
  const { poster } = await extractPosterFrames(file, probe, tools);
  expect((await scoreFrame(poster)).usable).toBe(true);
});

it('says "video processing unavailable" when ffprobe or ffmpeg is missing', async () => {
  const file = await save(await media.blackStartVideo('mp4', { seconds: 1 }), 'mp4');
  const missing = { ...tools, ffprobePath: path.join(dir, 'no-such-ffprobe') };
  const err = await probeVideo(file, missing).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(VideoUnavailableError);
  expect((err as Error).message).toMatch(/^Video processing unavailable: ffprobe was not found .*FFPROBE_PATH/);

  const probe = await probeVideo(file, tools);
  const noFfmpeg = { ...tools, ffmpegPath: path.join(dir, 'no-such-ffmpeg') };
  await expect(extractPosterFrames(file, probe, noFfmpeg)).rejects.toThrow(/^Video processing unavailable: ffmpeg/);
});

it('rejects a file without a video stream', async () => {
  const file = await save(Buffer.from('not a video at all'), 'mp4');
  await expect(probeVideo(file, tools)).rejects.toThrow(/^Could not (read|decode) video/);
});

it('stops ffmpeg when aborted', async () => {
  const file = await save(await media.blackStartVideo('mp4', { seconds: 1 }), 'mp4');
  const reason = new Error('job cancelled');
  await expect(probeVideo(file, tools, AbortSignal.abort(reason))).rejects.toBe(reason);
  const probe = await probeVideo(file, tools);
  const controller = new AbortController();
  const promise = extractPosterFrames(file, probe, tools, controller.signal);
  controller.abort(reason);
  await expect(promise).rejects.toBe(reason);
});

it('runs ffprobe and ffmpeg at the niceness it is given (MEDIA_NICE)', async () => {
  // A stand-in ffprobe that reports its own niceness once it is running (it waits a moment: the
  // niceness is set right after it starts, before a real ffmpeg starts its decoding threads).
  const report = path.join(dir, 'niceness');
  const probe = path.join(dir, 'fake-ffprobe');
  await writeFile(probe, `#!/bin/sh\nsleep 0.2\nawk '{ print $19 }' /proc/$$/stat > '${report}'\nexit 1\n`, { mode: 0o755 });
  const file = await save(Buffer.from('whatever'), 'mp4');
  await expect(probeVideo(file, { ...tools, ffprobePath: probe, nice: 7 })).rejects.toThrow(/^Could not decode video/);
  expect((await readFile(report, 'utf8')).trim()).toBe('7');
});
