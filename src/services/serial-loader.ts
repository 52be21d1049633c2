import DataLoader from 'dataloader';

/**
 * A DataLoader whose batches run one at a time: the next is dispatched only once the read before
 * it has settled, and takes every key that arrived meanwhile (at least those of one tick). No
 * cache: every key is read afresh. Reads that overlap on two connections may finish in either
 * order, so a key read later could see older rows than one read before it; one at a time, a
 * later key never does.
 */
export function serialLoader<K, V>(read: (keys: readonly K[]) => Promise<V[]>): DataLoader<K, V> {
  let reading: Promise<unknown> = Promise.resolve();
  return new DataLoader<K, V>(
    (keys) => {
      const rows = read(keys);
      reading = rows.catch(() => {});
      return rows;
    },
    { cache: false, batchScheduleFn: (dispatch) => void reading.then(() => process.nextTick(dispatch)) },
  );
}
