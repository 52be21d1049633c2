import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { serialLoader } from '../src/services/serial-loader.ts';

/** A read the test finishes by hand, so that two reads could overlap if the loader let them. */
function controlledReads() {
  const reads: { keys: string[]; finish: (fail?: Error) => void }[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const read = (keys: readonly string[]) =>
    new Promise<string[]>((resolve, reject) => {
      const n = reads.length + 1;
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      reads.push({
        keys: [...keys],
        finish: (fail) => {
          running--;
          if (fail) reject(fail);
          else resolve(keys.map((k) => `${k}@read${n}`));
        },
      });
    });
  return { read, reads, mostAtOnce: () => mostAtOnce };
}

describe('serialLoader (how events are read for subscribers)', () => {
  it('reads one batch at a time, the next taking every key that arrived meanwhile', async () => {
    const { read, reads, mostAtOnce } = controlledReads();
    const loader = serialLoader(read);
    const a = loader.load('a');
    const b = loader.load('b');
    await tick();
    expect(reads.map((r) => r.keys)).toEqual([['a', 'b']]);

    // Two more ticks' keys while the first read runs: they wait for it, then go in one read.
    const c = loader.load('c');
    await tick();
    const d = loader.load('d');
    await tick();
    expect(reads).toHaveLength(1);
    reads[0]!.finish();
    expect(await Promise.all([a, b])).toEqual(['a@read1', 'b@read1']);
    await tick();
    expect(reads.map((r) => r.keys)).toEqual([['a', 'b'], ['c', 'd']]);
    reads[1]!.finish();
    expect(await Promise.all([c, d])).toEqual(['c@read2', 'd@read2']);
    expect(mostAtOnce()).toBe(1);
  });

  it('fails only the keys of a read that failed, and reads fresh every time', async () => {
    const { read, reads } = controlledReads();
    const loader = serialLoader(read);
    const first = loader.load('a');
    await tick();
    const again = loader.load('a'); // no cache: a second read of the same key
    await tick();
    reads[0]!.finish(new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    await tick();
    expect(reads.map((r) => r.keys)).toEqual([['a'], ['a']]);
    reads[1]!.finish();
    expect(await again).toBe('a@read2');
  });
});
