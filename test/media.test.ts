import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import exifr from 'exifr';
import sharp from 'sharp';
import { thumbHashToApproximateAspectRatio, thumbHashToAverageRGBA } from 'thumbhash';
import { describe, expect, it } from 'vitest';
import { readExif } from '../src/services/exif.ts';
import { MediaError, renderImage } from '../src/services/media.ts';
import * as fixtures from './helpers/images.ts';
import * as media from './helpers/media.ts';

const file = media.tempFiles('darkroom-media-');

async function expectClean(rendition: Buffer) {
  const meta = await sharp(rendition).metadata();
  expect(['webp', 'jpeg']).toContain(meta.format);
  expect(meta.exif).toBeUndefined();
  expect(meta.icc).toBeUndefined();
  expect(meta.xmp).toBeUndefined();
  // exifr finds nothing at all, GPS least of all.
  expect(await exifr.parse(rendition, { gps: true }).catch(() => undefined)).toBeUndefined();
}

describe('renderImage', () => {
  it.each([
    ['png', () => fixtures.png({ width: 640, height: 480 }), 'png'],
    ['jpeg', () => fixtures.jpeg({ width: 640, height: 480 }), 'jpg'],
    ['webp', () => fixtures.webp({ width: 640, height: 480 }), 'webp'],
    ['gif', () => fixtures.gif({ width: 640, height: 480 }), 'gif'],
  ] as const)('turns a %s into a 256 px WebP thumbnail and an unenlarged JPEG preview', async (format, make, ext) => {
    const result = await renderImage(await file(make(), ext));
    expect(result).toMatchObject({ width: 640, height: 480, format });
    expect(result.thumbnail).toMatchObject({ width: 256, height: 192 });
    expect(result.preview).toMatchObject({ width: 640, height: 480, format: 'jpeg' });
    expect(await sharp(result.thumbnail.data).metadata()).toMatchObject({ format: 'webp', width: 256, height: 192 });
    expect(await sharp(result.preview.data).metadata()).toMatchObject({ format: 'jpeg', width: 640, height: 480 });
  });

  it('keeps transparency: the preview is then WebP with alpha', async () => {
    const input = await sharp({ create: { width: 300, height: 200, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.25 } } })
      .png()
      .toBuffer();
    const result = await renderImage(await file(input, 'png'));
    expect(result.preview.format).toBe('webp');
    for (const r of [result.preview, result.thumbnail]) {
      const meta = await sharp(r.data).metadata();
      expect(meta).toMatchObject({ format: 'webp', hasAlpha: true });
      const { data } = await sharp(r.data).raw().toBuffer({ resolveWithObject: true });
      expect(data[3]).toBeGreaterThan(50);
      expect(data[3]).toBeLessThan(80);
    }
  });

  it('fits a large image into 1440 px for the preview', async () => {
    const result = await renderImage(await file(fixtures.jpeg({ width: 3000, height: 2000 }), 'jpg'));
    expect(result.preview).toMatchObject({ width: 1440, height: 960 });
    expect(result.thumbnail).toMatchObject({ width: 256, height: 171 });
  });

  it('never enlarges small images', async () => {
    const result = await renderImage(await file(fixtures.png({ width: 64, height: 48 }), 'png'));
    expect(result.thumbnail).toMatchObject({ width: 64, height: 48 });
    expect(result.preview).toMatchObject({ width: 64, height: 48 });
  });

  it('applies EXIF orientation to the reported size and to both renditions', async () => {
    const input = await fixtures.jpegWithOrientation({ width: 300, height: 200, orientation: 6 });
    // The fixture's stored pixels are landscape, red on the left.
    expect(await fixtures.dominantColorAt(input, 0.25, 0.5)).toBe('red');

    const result = await renderImage(await file(input, 'jpg'));
    expect(result).toMatchObject({ width: 200, height: 300, format: 'jpeg' });
    expect(result.thumbnail).toMatchObject({ width: 171, height: 256 });
    expect(result.preview).toMatchObject({ width: 200, height: 300 });
    // Orientation 6 = rotate 90° clockwise, so the left (red) half becomes the top.
    for (const r of [result.thumbnail, result.preview]) {
      expect(await fixtures.dominantColorAt(r.data, 0.5, 0.2)).toBe('red');
      expect(await fixtures.dominantColorAt(r.data, 0.5, 0.8)).toBe('blue');
    }
  });

  it.each([
    ['without', false],
    ['with', true],
  ])('converts a CMYK JPEG %s an embedded profile to sRGB', async (_, profile) => {
    const input = await media.cmykJpeg(profile);
    expect(await sharp(input).metadata()).toMatchObject({ space: 'cmyk', channels: 4, hasProfile: profile });
    const result = await renderImage(await file(input, 'jpg'));
    for (const r of [result.thumbnail, result.preview]) {
      const [red, green, blue] = await media.pixelAt(r.data, 0.5, 0.5);
      expect(red).toBeGreaterThan(200);
      expect(green).toBeLessThan(60);
      expect(blue).toBeLessThan(60);
      await expectClean(r.data);
    }
  });

  it('honours the ICC profile of a 16-bit PNG', async () => {
    const input = await media.p3Png16();
    const meta = await sharp(input).metadata();
    expect(meta).toMatchObject({ format: 'png', depth: 'ushort', hasProfile: true });
    // The stored values are P3: read as if sRGB, green has a large red component.
    const [storedRed] = await media.pixelAt(await sharp(input, { ignoreIcc: true }).png().toBuffer(), 0.5, 0.5);
    expect(storedRed).toBeGreaterThan(100);

    const result = await renderImage(await file(input, 'png'));
    for (const r of [result.thumbnail, result.preview]) {
      const [red, green, blue] = await media.pixelAt(r.data, 0.5, 0.5);
      expect(red).toBeLessThan(30);
      expect(green).toBeGreaterThan(230);
      expect(blue).toBeLessThan(30);
      await expectClean(r.data);
    }
  });

  it('renders the first frame of an animated GIF at the frame size', async () => {
    const input = await media.animatedGif();
    expect((await sharp(input).metadata()).pages).toBe(2);
    const result = await renderImage(await file(input, 'gif'));
    expect(result).toMatchObject({ width: 240, height: 160, format: 'gif' });
    expect(result.preview).toMatchObject({ width: 240, height: 160 });
    expect(await media.shareOf(result.thumbnail.data, [255, 0, 0])).toBeGreaterThan(0.95);
    expect(await media.shareOf(result.preview.data, [255, 0, 0])).toBeGreaterThan(0.95);
    expect((await sharp(result.preview.data).metadata()).pages ?? 1).toBe(1);
  });

  it('decodes a real HEVC HEIC (which sharp alone cannot), converting its Display P3 to sRGB', async () => {
    const heicPath = fileURLToPath(media.HEIC_FIXTURE);
    const meta = await sharp(heicPath).metadata();
    expect(meta).toMatchObject({ format: 'heif', compression: 'hevc', hasProfile: true });
    await expect(sharp(heicPath).png().toBuffer()).rejects.toThrow(/HEVC|codec|compression/i);

    const result = await renderImage(heicPath, { modelImage: true });
    expect(result).toMatchObject({ width: 320, height: 240, format: 'heif' });
    expect(result.thumbnail).toMatchObject({ width: 256, height: 192 });
    expect(result.preview).toMatchObject({ width: 320, height: 240 });
    const [r, g, b] = await media.pixelAt(result.preview.data, 0.25, 0.5);
    expect(r).toBeLessThan(40); // 117 if the profile were ignored
    expect(g).toBeGreaterThan(230);
    expect(b).toBeLessThan(40);
    const [r2, g2, b2] = await media.pixelAt(result.thumbnail.data, 0.75, 0.5);
    expect([r2 < 40, g2 < 40, b2 > 220]).toEqual([true, true, true]);
    expect(await sharp(result.modelImage!).metadata()).toMatchObject({ format: 'jpeg', width: 320, height: 240 });
    expect(result.preview.format).toBe('jpeg');
    await expectClean(result.preview.data);
    await expectClean(result.thumbnail.data);

    expect(await readExif(result.exif)).toMatchObject({
      cameraMake: 'Apple',
      cameraModel: 'iPhone 15 Pro',
      takenAt: new Date('2024-05-04T17:20:30Z'),
      latitude: expect.closeTo(37.775, 4),
      longitude: expect.closeTo(-122.4194, 3),
    });
  });

  it('keeps GPS and every other tag out of the renditions while reading them from the original', async () => {
    const input = await media.jpegWithExif();
    expect(await exifr.gps(input)).toMatchObject({ latitude: expect.closeTo(media.GPS.latitude, 4) });
    const result = await renderImage(await file(input, 'jpg'));
    await expectClean(result.thumbnail.data);
    await expectClean(result.preview.data);
    expect(result.preview.data.includes('Canon')).toBe(false);
    expect(await readExif(result.exif)).toEqual({
      takenAt: new Date('2023-06-01T10:34:56Z'),
      cameraMake: 'Canon',
      cameraModel: 'Canon EOS R5',
      lensModel: 'RF24-70mm F2.8 L IS USM',
      exposureTime: 0.004,
      fNumber: 2.8,
      iso: 400,
      focalLength: 50,
      latitude: expect.closeTo(media.GPS.latitude, 5),
      longitude: expect.closeTo(media.GPS.longitude, 5),
    });
  });

  it('makes a ThumbHash placeholder with the picture’s colour and aspect ratio', async () => {
    const result = await renderImage(await file(fixtures.png({ width: 300, height: 150, color: 'blue' }), 'png'));
    const hash = Buffer.from(result.placeholderHash, 'base64');
    expect(hash.length).toBeLessThan(40);
    const avg = thumbHashToAverageRGBA(hash);
    expect(avg.b).toBeGreaterThan(0.8);
    expect(avg.r).toBeLessThan(0.2);
    expect(thumbHashToApproximateAspectRatio(hash)).toBeCloseTo(2, 0);
  });

  it('reads no metadata from an image without EXIF', async () => {
    const result = await renderImage(await file(fixtures.png(), 'png'));
    expect(await readExif(result.exif)).toMatchObject({ takenAt: null, cameraMake: null, latitude: null });
  });

  it('rejects a truncated PNG with a readable message', async () => {
    const promise = renderImage(await file(fixtures.truncatedPng(), 'png'));
    await expect(promise).rejects.toBeInstanceOf(MediaError);
    await expect(promise).rejects.toThrow(/^Could not decode image: \S/);
  });

  it('refuses more pixels than the limit it is given, before decoding, HEIC included', async () => {
    const png = await file(fixtures.png({ width: 64, height: 48 }), 'png'); // 3,072 pixels
    await expect(renderImage(png, { maxPixels: 3000 })).rejects.toThrow('Image is too large (over 0.003 megapixels)');
    expect((await renderImage(png, { maxPixels: 3072 })).width).toBe(64);
    await expect(renderImage(fileURLToPath(media.HEIC_FIXTURE), { maxPixels: 3000 })).rejects.toThrow('Image is too large');
  });

  it('rejects bytes that are not an image', async () => {
    await expect(renderImage(await file(fixtures.corruptFile(), 'jpg'))).rejects.toThrow('Not a supported image format');
  });

  it('rejects with the abort reason when already aborted', async () => {
    const reason = new Error('job cancelled');
    const input = await file(fixtures.png(), 'png');
    await expect(renderImage(input, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('rejects with the abort reason when aborted mid-flight, HEIC decoding included', async () => {
    const reason = new Error('job cancelled');
    for (const input of [await file(fixtures.png({ width: 2000, height: 2000 }), 'png'), fileURLToPath(media.HEIC_FIXTURE)]) {
      const controller = new AbortController();
      const promise = renderImage(input, { signal: controller.signal });
      controller.abort(reason);
      await expect(promise).rejects.toBe(reason);
    }
    // The decoder pool recovers from a thread killed mid-decode.
    const again = await renderImage(fileURLToPath(media.HEIC_FIXTURE));
    expect(again.width).toBe(320);
  });
});

describe('readExif', () => {
  it('drops 0,0 coordinates, which devices write when they had no fix', async () => {
    const input = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } })
      .jpeg()
      .withExif({ IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '0/1 0/1 0/1', GPSLongitudeRef: 'E', GPSLongitude: '0/1 0/1 0/1' } })
      .toBuffer();
    const { exif } = await sharp(input).metadata();
    expect(await readExif(exif)).toMatchObject({ latitude: null, longitude: null });
  });

  it('survives a damaged EXIF block', async () => {
    const { exif } = await sharp(await media.jpegWithExif()).metadata();
    const damaged = Buffer.from(exif!);
    damaged.fill(0xff, 20, 60);
    await expect(readExif(damaged)).resolves.toBeTypeOf('object');
    await expect(readExif(await readFile(fileURLToPath(media.HEIC_FIXTURE)))).resolves.toBeTypeOf('object');
  });
});
