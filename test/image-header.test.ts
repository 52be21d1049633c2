import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readImageHeader } from '../src/http/image-header.ts';
import * as hostile from './helpers/hostile.ts';

/** What libvips reads of the same bytes: the reader must give exactly this, or leave it to libvips. */
async function libvips(data: Buffer) {
  const m = await sharp(data, { limitInputPixels: false }).metadata();
  return { width: m.width, height: m.height, frames: m.pages ?? 1 };
}

const noisy = (width: number, height: number, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background: 'gray', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });

describe('readImageHeader (ingest’s size check without libvips)', () => {
  it('reads what libvips reads from plain JPEGs and PNGs', async () => {
    const cases: [string, string, Buffer][] = [
      ['baseline JPEG', 'image/jpeg', await noisy(640, 480).jpeg().toBuffer()],
      ['progressive JPEG', 'image/jpeg', await noisy(333, 777).jpeg({ progressive: true }).toBuffer()],
      ['JPEG with EXIF orientation', 'image/jpeg', await noisy(300, 200).jpeg().withMetadata({ orientation: 6 }).toBuffer()],
      ['4:4:4 JPEG', 'image/jpeg', await noisy(65, 33).jpeg({ chromaSubsampling: '4:4:4' }).toBuffer()],
      ['greyscale JPEG', 'image/jpeg', await noisy(50, 70).greyscale().jpeg().toBuffer()],
      ['CMYK JPEG', 'image/jpeg', await noisy(64, 32).toColourspace('cmyk').jpeg().toBuffer()],
      ['RGB PNG', 'image/png', await noisy(120, 90).png().toBuffer()],
      ['RGBA PNG', 'image/png', await noisy(121, 91, 4).png().toBuffer()],
      ['palette PNG', 'image/png', await noisy(40, 30).png({ palette: true }).toBuffer()],
      ['16-bit greyscale PNG', 'image/png', await noisy(20, 10).toColourspace('grey16').png().toBuffer()],
      ['interlaced PNG', 'image/png', await noisy(99, 101).png({ progressive: true }).toBuffer()],
      ['PNG with text before its data', 'image/png', await hostile.pngWithText('a caption')],
      ['a pixel bomb’s header', 'image/png', hostile.bombPng()],
    ];
    for (const [name, mime, data] of cases) {
      const expected = await libvips(data);
      expect(readImageHeader(mime, data), name).toEqual(expected);
    }
  });

  it('leaves every other case to libvips', async () => {
    const jpeg = await noisy(64, 48).jpeg().toBuffer();
    const png = await noisy(64, 48).png().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    const edited = (b: Buffer, edit: (copy: Buffer) => void) => {
      const copy = Buffer.from(b);
      edit(copy);
      return copy;
    };
    const cases: Record<string, [string, Buffer]> = {
      'a lossless JPEG': ['image/jpeg', edited(jpeg, (b) => (b[sof + 1] = 0xc3))],
      'an arithmetic-coded JPEG': ['image/jpeg', edited(jpeg, (b) => (b[sof + 1] = 0xc9))],
      'a 12-bit JPEG': ['image/jpeg', edited(jpeg, (b) => (b[sof + 4] = 12))],
      'a JPEG whose height comes after its scan (DNL)': ['image/jpeg', edited(jpeg, (b) => b.writeUInt16BE(0, sof + 5))],
      'a JPEG with a segment longer than the file': ['image/jpeg', edited(jpeg, (b) => b.writeUInt16BE(0xfff0, 4))],
      'a JPEG cut before its first scan': ['image/jpeg', jpeg.subarray(0, sof + 12)],
      'the bytes of a corrupt JPEG': ['image/jpeg', hostile.corruptJpeg()],
      'a PNG whose header fails its CRC': ['image/png', edited(png, (b) => (b[29]! ^= 0xff))],
      'a PNG with a bit depth its colour type forbids': [
        'image/png',
        Buffer.concat([png.subarray(0, 8), hostile.pngChunk('IHDR', edited(png.subarray(16, 29), (h) => (h[8] = 3))), png.subarray(33)]),
      ],
      'an animated PNG': ['image/png', Buffer.concat([png.subarray(0, 33), hostile.pngChunk('acTL', Buffer.alloc(8)), png.subarray(33)])],
      'a PNG cut before its data': ['image/png', png.subarray(0, 40)],
      'a WebP': ['image/webp', await noisy(64, 48).webp().toBuffer()],
    };
    for (const [name, [mime, data]] of Object.entries(cases)) expect(readImageHeader(mime, data), name).toBeUndefined();
  });
});
