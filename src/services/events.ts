import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/** `seq` increases with every event of a batch (batches.event_seq), across processes and restarts. */
export type BatchEvent = { type: 'batch'; batchId: string; seq: number; terminal: boolean };
export type FileEvent = { type: 'file'; batchId: string; seq: number; uploadId: string; stage: string; percent: number };
/** Emitted locally, never published: the subscriber may have missed events and should re-read state. */
export type ResyncEvent = { type: 'resync'; batchId: string };
export type ProgressEvent = BatchEvent | FileEvent;

export interface EventBus {
  /** Never rejects: progress is best-effort, the database is the record. */
  publish(event: ProgressEvent): Promise<boolean>;
  /**
   * Listening has begun when this resolves (Redis confirmed the SUBSCRIBE, or gave up
   * waiting during an outage), so a state read afterwards misses nothing.
   */
  subscribe(batchId: string): Promise<Subscription>;
  close(): Promise<void>;
}

export const batchTopic = (batchId: string) => `darkroom:batch:${batchId}`;

type Item = ProgressEvent | ResyncEvent;
type Listener = (e: Item) => void;

// A subscriber that stops reading keeps only the newest events instead of growing without bound.
const BUFFER = 1000;
// Of those, the first few are prefetched; a subscriber that stops reading holds no more rows than that.
const PREFETCH = 16;
const SUBSCRIBE_WAIT_MS = 2000;
const MISSED_MAX = 10_000;

/** Buffers from the moment it is created, not from the first next(). */
export class Subscription implements AsyncIterableIterator<Item> {
  #queue: Item[] = [];
  #waiting: ((r: IteratorResult<Item>) => void) | undefined;
  #closed = false;
  #onClose: () => void;
  readonly listener: Listener = (e) => this.#push(e);
  /** Told of each item as it arrives, while few wait (to start work on it early). */
  prefetch: ((e: Item) => void) | undefined;

  constructor(onClose: (l: Listener) => void) {
    this.#onClose = () => onClose(this.listener);
  }

  #push(e: Item) {
    if (this.#closed) return;
    if (this.#queue.length < PREFETCH) this.prefetch?.(e);
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = undefined;
      w({ value: e, done: false });
      return;
    }
    this.#queue.push(e);
    if (this.#queue.length > BUFFER) this.#queue.shift();
  }

  next(): Promise<IteratorResult<Item>> {
    const e = this.#queue.shift();
    if (e) return Promise.resolve({ value: e, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  async return(): Promise<IteratorResult<Item>> {
    if (!this.#closed) {
      this.#closed = true;
      this.#queue = [];
      this.#onClose();
      this.#waiting?.({ value: undefined, done: true });
      this.#waiting = undefined;
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/** Single-process mode only: publisher and subscribers share this process. */
export function createLocalEventBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    async publish(event) {
      emitter.emit(batchTopic(event.batchId), event);
      return true;
    },
    async subscribe(batchId) {
      const topic = batchTopic(batchId);
      const sub = new Subscription((l) => emitter.off(topic, l));
      emitter.on(topic, sub.listener);
      return sub;
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/**
 * Redis pub/sub with the topic name as the channel. Hand-written rather than
 * @graphql-yoga/redis-event-target: that package peers on ioredis 5 and fires its
 * publish/subscribe promises without handling them, so a Redis outage becomes
 * unhandled rejections in both the worker and the API.
 */
export function createRedisEventBus(url: string, logger: Logger): EventBus {
  // Fail fast while disconnected: a progress event that cannot go out now is stale later.
  // Auto-pipelining sends the events published in one tick (a numbered burst) in one write.
  const pub = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false, enableAutoPipelining: true });
  const redis = new Redis(url, { maxRetriesPerRequest: null, autoResubscribe: true });
  const listeners = new Map<string, Set<Listener>>();
  const subscribed = new Map<string, Promise<boolean>>();
  let everReady = false;
  let lastWarn = 0;
  const warn = (err: unknown, msg: string) => {
    if (Date.now() - lastWarn > 10_000) {
      lastWarn = Date.now();
      logger.warn({ err }, msg);
    }
  };
  pub.on('error', (err) => warn(err, 'redis publisher error'));
  redis.on('error', (err) => warn(err, 'redis subscriber error'));
  redis.on('ready', () => {
    // After an outage the channel was silent for a while: every subscriber re-reads state.
    if (everReady) for (const [channel, set] of listeners) for (const l of set) l({ type: 'resync', batchId: channel.slice(batchTopic('').length) });
    everReady = true;
  });
  redis.on('message', (channel: string, message: string) => {
    const set = listeners.get(channel);
    if (!set) return;
    let event: ProgressEvent;
    try {
      event = JSON.parse(message) as ProgressEvent;
    } catch {
      return;
    }
    for (const l of set) l(event);
  });

  // The latest batch event per batch that could not go out during an outage, published again
  // once Redis is back: a subscriber whose resync read the batch before it finished would
  // otherwise never hear of the end.
  const missed = new Map<string, ProgressEvent>();
  async function publish(event: ProgressEvent) {
    try {
      await pub.publish(batchTopic(event.batchId), JSON.stringify(event));
      if (event.type === 'batch') missed.delete(event.batchId);
      return true;
    } catch (err) {
      warn(err, 'progress event not published');
      if (event.type === 'batch') {
        missed.delete(event.batchId);
        missed.set(event.batchId, event);
        if (missed.size > MISSED_MAX) missed.delete(missed.keys().next().value!);
      }
      return false;
    }
  }
  pub.on('ready', () => {
    const again = [...missed.values()];
    missed.clear();
    for (const e of again) void publish(e);
  });

  return {
    publish,
    async subscribe(batchId) {
      const topic = batchTopic(batchId);
      const subscription = new Subscription((l) => {
        const set = listeners.get(topic);
        if (!set) return;
        set.delete(l);
        if (set.size === 0) {
          listeners.delete(topic);
          subscribed.delete(topic);
          redis.unsubscribe(topic).catch((err) => warn(err, 'redis unsubscribe failed'));
        }
      });
      let set = listeners.get(topic);
      if (!set) listeners.set(topic, (set = new Set()));
      set.add(subscription.listener);
      let confirmed = subscribed.get(topic);
      if (!confirmed) {
        confirmed = redis.subscribe(topic).then(
          () => true,
          (err) => (warn(err, 'redis subscribe failed'), false),
        );
        subscribed.set(topic, confirmed);
      }
      // During an outage, go on after a short wait: the resync on reconnect covers the gap.
      await Promise.race([confirmed, delay(SUBSCRIBE_WAIT_MS, false, { ref: false })]);
      return subscription;
    },
    async close() {
      listeners.clear();
      pub.disconnect();
      redis.disconnect();
    },
  };
}
