import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { latestOnly } from '../src/jobs/upload-progress.ts';

describe('latestOnly (how stages and batch counts are published)', () => {
  it('sends the first at once, then at most one per interval, the newest winning', async () => {
    const sent: string[] = [];
    const t = latestOnly<string>(100, (v) => sent.push(v));
    t.offer('a');
    t.offer('b');
    t.offer('c');
    expect(sent).toEqual(['a']);
    await sleep(150);
    expect(sent).toEqual(['a', 'c']);
    await sleep(150); // a whole interval later, an offer goes out at once
    t.offer('d');
    expect(sent).toEqual(['a', 'c', 'd']);
  });

  it('lets a milestone supersede what waits, and drop or flush what is left', async () => {
    const sent: string[] = [];
    const t = latestOnly<string>(100, (v) => sent.push(v));
    t.now('started');
    t.offer('thumbnail');
    t.now('completed');
    t.offer('late');
    t.drop();
    await sleep(150);
    expect(sent).toEqual(['started', 'completed']);
    t.now('x');
    t.offer('y');
    t.flush();
    expect(sent).toEqual(['started', 'completed', 'x', 'y']);
  });

  it('publishes everything with an interval of 0', () => {
    const sent: number[] = [];
    const t = latestOnly<number>(0, (v) => sent.push(v));
    for (let i = 0; i < 5; i++) t.offer(i);
    expect(sent).toEqual([0, 1, 2, 3, 4]);
  });
});
