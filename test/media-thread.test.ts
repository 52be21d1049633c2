import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readExif } from '../src/services/exif.ts';
import { MediaError, renderImage } from '../src/services/media.ts';
import { renderImageInThread, renderImageToFiles, stopMediaThreads } from '../src/services/media-thread.ts';
import * as fixtures from './helpers/images.ts';
import * as media from './helpers/media.ts';

const file = media.tempFiles('darkroom-media-thread-');
afterAll(() => stopMediaThreads());

describe('renderImageInThread', () => {
  it('gives what renderImage and readExif give in this thread, byte for byte, as Buffers', async () => {
    const input = await file(media.jpegWithExif(), 'jpg');
    const here = await renderImage(input, { modelImage: true });
    const there = await renderImageInThread(input, { modelImage: true });

    expect(there.metadata).toEqual(await readExif(here.exif));
    expect(there.metadata.cameraModel).toBe('Canon EOS R5');
    expect(there.metadata.latitude).toBeCloseTo(media.GPS.latitude, 4);
    for (const key of ['preview', 'thumbnail'] as const) {
      expect(Buffer.isBuffer(there[key].data)).toBe(true);
      expect(there[key].data.equals(here[key].data)).toBe(true);
    }
    expect(Buffer.isBuffer(there.modelImage) && there.modelImage.equals(here.modelImage!)).toBe(true);
    expect(there).toMatchObject({ width: here.width, height: here.height, format: 'jpeg', placeholderHash: here.placeholderHash });
    expect(there).not.toHaveProperty('exif');
  });

  it('writes the renditions to the files named instead of sending them back, and removes them when given up', async () => {
    const input = await file(media.jpegWithExif(), 'jpg');
    const here = await renderImage(input);
    const dir = path.dirname(input);
    const to = (n: string) => ({ preview: path.join(dir, 'aside', `${n}-p`), thumbnail: path.join(dir, 'aside', `${n}-t`) });
    const written = await renderImageToFiles(input, to('a'));
    expect(written.preview).toEqual({ file: to('a').preview, width: here.preview.width, height: here.preview.height, format: 'jpeg' });
    expect(written.thumbnail).toEqual({ file: to('a').thumbnail, width: here.thumbnail.width, height: here.thumbnail.height });
    expect((await readFile(to('a').preview)).equals(here.preview.data)).toBe(true);
    expect((await readFile(to('a').thumbnail)).equals(here.thumbnail.data)).toBe(true);
    expect(written.metadata.cameraModel).toBe('Canon EOS R5');

    // Given up on: whatever the thread wrote by then is removed once it is done.
    const big = await file(fixtures.jpeg({ width: 6000, height: 4000 }), 'jpg');
    const controller = new AbortController();
    const rendering = renderImageToFiles(big, to('b'), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 30);
    await expect(rendering).rejects.toThrow('stop');
    await renderImageInThread(big); // the thread is done with the one given up
    for (const f of Object.values(to('b'))) await expect(access(f)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails a bad file with the same MediaError as in this thread', async () => {
    const input = await file(fixtures.corruptFile(), 'jpg');
    const expected = await renderImage(input).then(() => null, (e: unknown) => e as Error);
    const err = await renderImageInThread(input).then(() => null, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(MediaError);
    expect(err?.message).toBe(expected?.message);
    expect(err?.message).toMatch(/^(Not a supported image format|Could not decode image)/);
    await expect(renderImageInThread(path.join(path.dirname(input), 'nowhere.jpg'))).rejects.toThrow(new MediaError('Image file is missing'));
  });

  it('stops waiting when aborted, and the thread goes on serving', async () => {
    const big = await file(fixtures.jpeg({ width: 6000, height: 4000 }), 'jpg');
    const controller = new AbortController();
    const rendering = renderImageInThread(big, { signal: controller.signal });
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(rendering).rejects.toBe(reason);
    await expect(renderImageInThread(big, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);

    const small = await renderImageInThread(await file(fixtures.png({ width: 64, height: 48 }), 'png'));
    expect(small.thumbnail).toMatchObject({ width: 64, height: 48 });
  });

  it('runs the photos of one chain one after another, in the order sent; others beside them', async () => {
    const big = await file(fixtures.jpeg({ width: 6000, height: 4000 }), 'jpg');
    const small = await file(fixtures.png({ width: 64, height: 48 }), 'png');
    const order: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => order.push(name));
    // Unchained, the small photo is done long before the big one.
    await Promise.all([track('big', renderImageInThread(big)), track('small', renderImageInThread(small))]);
    expect(order).toEqual(['small', 'big']);
    // On one chain it waits for the big one; a photo of another chain does not.
    order.length = 0;
    await Promise.all([
      track('big', renderImageInThread(big, { chain: 'a' })),
      track('small, same chain', renderImageInThread(small, { chain: 'a' })),
      track('small, other chain', renderImageInThread(small, { chain: 'b' })),
    ]);
    expect(order).toEqual(['small, other chain', 'big', 'small, same chain']);
  });

  it('never starts a chained photo given up while it waits, and the chain goes on', async () => {
    const big = await file(fixtures.jpeg({ width: 6000, height: 4000 }), 'jpg');
    const small = await file(fixtures.png({ width: 64, height: 48 }), 'png');
    // A FIFO as the photo given up: opening it to read would block until a writer comes.
    const fifo = path.join(path.dirname(small), 'given-up.jpg');
    execFileSync('mkfifo', [fifo]);
    const first = renderImageInThread(big, { chain: 'c' });
    const controller = new AbortController();
    const waiting = renderImageInThread(fifo, { chain: 'c', signal: controller.signal });
    const reason = new Error('superseded');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await first;
    const third = await renderImageInThread(small, { chain: 'c' });
    expect(third.thumbnail).toMatchObject({ width: 64, height: 48 });
    // Nothing ever opened it: a writer that does not wait finds no reader.
    await expect(open(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).rejects.toMatchObject({ code: 'ENXIO' });
  });

  it('fails what a thread was doing when it ends, and starts a new thread for the next photo', async () => {
    const big = await file(fixtures.jpeg({ width: 6000, height: 4000 }), 'jpg');
    const rendering = renderImageInThread(big);
    await stopMediaThreads();
    await expect(rendering).rejects.toThrow(/media thread ended/);

    const next = await renderImageInThread(big);
    expect(next.preview).toMatchObject({ width: 1440, height: 960, format: 'jpeg' });
  });
});
