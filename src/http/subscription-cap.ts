import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../context.ts';

/**
 * At most `max` open subscriptions per user in this API process, over WebSocket and SSE alike:
 * each one holds a Redis subscription and a database read per event.
 */
export function useSubscriptionCap(max: number): Plugin<GraphQLContext> {
  const active = new Map<string, number>();
  return {
    onSubscribe({ args, subscribeFn, setSubscribeFn, setResultAndStopExecution }) {
      const userId = (args.contextValue as GraphQLContext).viewer?.id;
      if (!userId) return; // the resolver refuses it anyway
      const open = active.get(userId) ?? 0;
      if (open >= max) {
        setResultAndStopExecution({
          errors: [
            new GraphQLError(`At most ${max} subscriptions may be open at once; close one first`, {
              extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
            }),
          ],
        });
        return;
      }
      active.set(userId, open + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const left = (active.get(userId) ?? 1) - 1;
        if (left > 0) active.set(userId, left);
        else active.delete(userId);
      };
      setSubscribeFn(async (a) => {
        let result: Awaited<ReturnType<typeof subscribeFn>>;
        try {
          result = await subscribeFn(a);
        } catch (err) {
          release();
          throw err;
        }
        if (!isAsyncIterable(result)) {
          release(); // refused at subscribe time (e.g. NOT_FOUND): nothing stays open
          return result;
        }
        return releasing(result, release);
      });
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

/**
 * Frees the slot however the stream ends. A hand-written iterator rather than an async generator:
 * a generator would queue return() behind a pending next(), and a quiet batch may never send one.
 */
function releasing<T>(source: AsyncIterable<T>, release: () => void): AsyncIterableIterator<T> & AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const self: AsyncGenerator<T> = {
    [Symbol.asyncIterator]: () => self,
    async next() {
      try {
        const r = await it.next();
        if (r.done) release();
        return r;
      } catch (err) {
        release();
        throw err;
      }
    },
    async return(value?: unknown) {
      release();
      return (await it.return?.(value)) ?? { done: true, value: undefined };
    },
    async throw(err: unknown) {
      release();
      if (it.throw) return it.throw(err);
      throw err;
    },
    [Symbol.asyncDispose]: async () => void (await self.return(undefined)),
  };
  return self;
}
