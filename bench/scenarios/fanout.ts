import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { connectWs, createBatch, localId, type Received, signUp, watchBatch } from '../lib/client.ts';
import { type BenchContext, scratchDir } from '../lib/context.ts';
import { cpuMeter } from '../lib/machine.ts';
import { repeatTo, uploadOf } from '../lib/photos.ts';
import { REDIS_URL, startApi, startInProcessWorker } from '../lib/service.ts';
import { ms, num, percentile } from '../lib/stats.ts';

/**
 * Figure 4. 1,000 graphql-ws connections to one API process, ten per batch over 100 batches,
 * all subscribed before the worker starts. The worker runs in this process, built by the
 * service's own startWorker, with its context's bus wrapped to timestamp every publish, so
 * each FileProgress received can be matched to the moment it was published.
 */
export async function fanout(b: BenchContext) {
  const batchCount = 100;
  const perBatch = 10;
  const photosPerBatch = b.quick ? 1 : 4;
  const db = await b.dbs.clone();
  // One bench user holds all 1,000 subscriptions, so its per-user cap is raised to match.
  const env = {
    databaseUrl: db.url,
    storageDir: await scratchDir(b, 'storage'),
    concurrency: b.cores,
    extra: { MAX_SUBSCRIPTIONS_PER_USER: String(batchCount * perBatch) },
  };
  const api = await startApi(env);
  const clients: Client[] = [];
  let worker: Awaited<ReturnType<typeof startInProcessWorker>> | undefined;
  try {
    const token = await signUp(api.graphqlUrl);
    const photos = repeatTo(b.photos, batchCount * photosPerBatch);
    const batchIds: string[] = [];
    for (let i = 0; i < batchCount; i++) {
      const group = photos.slice(i * photosPerBatch, (i + 1) * photosPerBatch);
      batchIds.push((await createBatch(api.graphqlUrl, token, group.map(uploadOf))).id);
    }

    const t0 = performance.now();
    for (let i = 0; i < batchCount * perBatch; i += 50) {
      clients.push(...(await Promise.all(Array.from({ length: 50 }, () => connectWs(api.wsUrl, token)))));
    }
    const connectMs = performance.now() - t0;
    const snapshots: Promise<void>[] = [];
    const subscriptions = clients.map((client, i) => {
      const batchId = batchIds[i % batchCount]!;
      let seen!: () => void;
      snapshots.push(new Promise((r) => (seen = r)));
      return { batch: localId(batchId), done: watchBatch(client, batchId, () => seen(), 180_000) };
    });
    await Promise.race([Promise.all(snapshots), api.exited]);
    b.log(`${clients.length} subscribers connected in ${ms(connectMs)}; starting the worker`);

    // Per batch: "<uploadId>:<stage>" of every file event → when it was published.
    const published = new Map<string, Map<string, number>>();
    const batchEvents = new Map<string, number>();
    let fileEvents = 0;
    let firstPublish = Infinity;
    let lastPublish = 0;
    const stopCpu = await cpuMeter({ api: api.pid });
    worker = await startInProcessWorker(env, (ctx) => {
      const publish = ctx.bus.publish.bind(ctx.bus);
      ctx.bus.publish = (event) => {
        const now = performance.now();
        firstPublish = Math.min(firstPublish, now);
        lastPublish = now;
        const e = event as { type?: string; batchId?: string; uploadId?: string; stage?: string };
        if (e.type === 'file' && e.batchId) {
          const keys = published.get(e.batchId) ?? new Map<string, number>();
          published.set(e.batchId, keys);
          const key = `${e.uploadId}:${e.stage}`;
          if (!keys.has(key)) keys.set(key, now);
          fileEvents++;
        } else if (e.batchId) {
          batchEvents.set(e.batchId, (batchEvents.get(e.batchId) ?? 0) + 1);
        }
        return publish(event);
      };
    });
    const received = await Promise.race([Promise.all(subscriptions.map((s) => s.done)), api.exited]);
    const apiCpu = (await stopCpu()).api!;
    await worker.stop();
    worker = undefined;

    const latencies: number[] = [];
    let deliveries = 0;
    let lastReceive = 0;
    let lostFile = 0;
    let batchDelivered = 0;
    received.forEach((events: Received[], i) => {
      const expected = published.get(subscriptions[i]!.batch) ?? new Map<string, number>();
      const got = new Set<string>();
      for (const r of events.slice(1)) {
        // events[0] is the snapshot sent on subscribing
        deliveries++;
        lastReceive = Math.max(lastReceive, r.at);
        if (r.event.__typename !== 'FileProgress') {
          batchDelivered++;
          continue;
        }
        const key = `${localId(r.event.upload.id)}:${r.event.stage}`;
        got.add(key);
        const at = expected.get(key);
        if (at !== undefined) latencies.push(r.at - at);
      }
      for (const key of expected.keys()) if (!got.has(key)) lostFile++;
    });
    const batchPublished = [...batchEvents.values()].reduce((a, c) => a + c, 0);

    const seconds = (lastReceive - firstPublish) / 1000;
    const p99 = percentile(latencies, 99);
    const redis = await redisBaseline(fileEvents + batchPublished, (lastPublish - firstPublish) / 1000, batchCount);
    b.report.add({
      id: '4',
      name: `Event fan-out: ${clients.length} graphql-ws subscribers, ${batchCount} batches`,
      darkroom: `${num(deliveries / seconds, 0)} events/s; p50 ${ms(percentile(latencies, 50))}, p99 ${ms(p99)}; lost ${lostFile}`,
      baseline: `Redis PUBLISH → message: p50 ${ms(percentile(redis, 50), 2)}, p99 ${ms(percentile(redis, 99), 2)}`,
      ratio: p99 / percentile(redis, 99),
      goal: 'p99 < 50 ms, none lost',
      met: p99 < 50 && lostFile === 0,
    });
    b.note(`${clients.length} WebSocket connections opened in ${ms(connectMs)}`);
    b.note(
      `worker published ${fileEvents} file + ${batchPublished} batch events in ${ms(lastPublish - firstPublish)}; ` +
        `${deliveries} deliveries in ${num(seconds, 2)} s`,
    );
    b.note(
      `publish → receive (FileProgress, n=${latencies.length}): p50 ${ms(percentile(latencies, 50))}, p90 ${ms(percentile(latencies, 90))}, p99 ${ms(p99)}, max ${ms(Math.max(...latencies))}`,
    );
    b.note(`file events lost: ${lostFile}; BatchProgress delivered ${batchDelivered} for ${batchPublished * perBatch} published × subscribers`);
    b.note(`API process CPU: ${ms(apiCpu)} total, ${num((apiCpu / deliveries) * 1000, 0)} µs per delivered event`);
  } finally {
    await worker?.stop().catch(() => {});
    await Promise.allSettled(clients.map((c) => c.dispose()));
    await api.stop();
  }
}

/** Raw Redis pub/sub at the same message count and rate, one subscriber connection, timestamps in the payload. */
async function redisBaseline(count: number, seconds: number, channels: number): Promise<number[]> {
  const pub = new Redis(REDIS_URL);
  const sub = new Redis(REDIS_URL);
  const prefix = `darkroom-bench:${process.pid}:${Date.now()}:`;
  const names = Array.from({ length: channels }, (_, i) => `${prefix}${i}`);
  const out: number[] = [];
  try {
    await sub.subscribe(...names);
    let left = count;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    sub.on('message', (_channel: string, message: string) => {
      out.push(performance.now() - Number(message));
      if (--left === 0) done();
    });
    const interval = Math.max(0, (seconds * 1000) / count);
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const due = t0 + i * interval;
      const wait = due - performance.now();
      if (wait >= 1) await delay(wait);
      void pub.publish(names[i % channels]!, String(performance.now()));
    }
    await Promise.race([all, delay(10_000)]);
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
  return out;
}
