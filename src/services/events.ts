import { EventEmitter } from 'node:events';
import { Repeater, SlidingBuffer } from '@repeaterjs/repeater';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

export type BatchEvent = { type: 'batch'; batchId: string; terminal: boolean };
export type FileEvent = { type: 'file'; batchId: string; uploadId: string; stage: string; percent: number };
/** Emitted locally, never published: the subscriber may have missed events and should re-read state. */
export type ResyncEvent = { type: 'resync'; batchId: string };
export type ProgressEvent = BatchEvent | FileEvent;

export interface EventBus {
  /** Never rejects: progress is best-effort, the database is the record. */
  publish(event: ProgressEvent): Promise<boolean>;
  subscribe(batchId: string): AsyncIterableIterator<ProgressEvent | ResyncEvent> & { return(): Promise<unknown> };
  close(): Promise<void>;
}

export const batchTopic = (batchId: string) => `darkroom:batch:${batchId}`;

// A subscriber that stops reading keeps only the newest events instead of growing without bound.
const BUFFER = 1000;

type Listener = (e: ProgressEvent | ResyncEvent) => void;

function repeaterFor(add: (l: Listener) => void, remove: (l: Listener) => void) {
  return new Repeater<ProgressEvent | ResyncEvent>(async (push, stop) => {
    const listener: Listener = (e) => void push(e);
    add(listener);
    await stop;
    remove(listener);
  }, new SlidingBuffer(BUFFER));
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
    subscribe(batchId) {
      const topic = batchTopic(batchId);
      return repeaterFor(
        (l) => emitter.on(topic, l),
        (l) => emitter.off(topic, l),
      );
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
  const pub = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
  const sub = new Redis(url, { maxRetriesPerRequest: null, autoResubscribe: true });
  const listeners = new Map<string, Set<Listener>>();
  let everReady = false;
  let lastWarn = 0;
  const warn = (err: unknown, msg: string) => {
    if (Date.now() - lastWarn > 10_000) {
      lastWarn = Date.now();
      logger.warn({ err }, msg);
    }
  };
  pub.on('error', (err) => warn(err, 'redis publisher error'));
  sub.on('error', (err) => warn(err, 'redis subscriber error'));
  sub.on('ready', () => {
    // After an outage the channel was silent for a while: every subscriber re-reads state.
    if (everReady) for (const [channel, set] of listeners) for (const l of set) l({ type: 'resync', batchId: channel.slice(batchTopic('').length) });
    everReady = true;
  });
  sub.on('message', (channel: string, message: string) => {
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

  return {
    async publish(event) {
      try {
        await pub.publish(batchTopic(event.batchId), JSON.stringify(event));
        return true;
      } catch (err) {
        warn(err, 'progress event not published');
        return false;
      }
    },
    subscribe(batchId) {
      const topic = batchTopic(batchId);
      return repeaterFor(
        (l) => {
          let set = listeners.get(topic);
          if (!set) {
            listeners.set(topic, (set = new Set()));
            sub.subscribe(topic).catch((err) => warn(err, 'redis subscribe failed'));
          }
          set.add(l);
        },
        (l) => {
          const set = listeners.get(topic);
          if (!set) return;
          set.delete(l);
          if (set.size === 0) {
            listeners.delete(topic);
            sub.unsubscribe(topic).catch((err) => warn(err, 'redis unsubscribe failed'));
          }
        },
      );
    },
    async close() {
      listeners.clear();
      pub.disconnect();
      sub.disconnect();
    },
  };
}
