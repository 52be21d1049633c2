import type { CompiledQuery, PostgresPool, PostgresPoolClient, QueryResult } from 'kysely';
import pg from 'pg';
import type { Database } from './database.ts';

// Statement text → name. A text marked once is prepared on every connection that runs it.
const names = new Map<string, string>();

/**
 * Marks a query to run as a named prepared statement: each connection parses and plans it once,
 * then only binds. Meant for the few statements run for every upload and event, whose planning
 * cost PostgreSQL more than executing them (the claim: 0.7 ms to plan, 0.3 ms to run). Only
 * for fixed texts (no IN lists that vary in length): every distinct text stays prepared on
 * every connection that ran it, for the connection's life.
 */
function prepared<Q extends CompiledQuery>(query: Q): Q {
  if (!names.has(query.sql)) names.set(query.sql, `darkroom_${names.size + 1}`);
  return query;
}

/** A query builder, or a raw `sql` query (which compiles against a database). */
type Buildable<R> = { compile(db: Database): CompiledQuery<R> };

/** Stands for a value while a statement's text is built; see `statement`. */
class Slot {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
  // A value spliced into the text itself (sql.lit, sql.ref, a template string) would be frozen
  // into every later execution: refuse it while building.
  toString(): string {
    throw new Error(`statement value "${this.key}" used in the statement's text; pass it as a parameter`);
  }
}

/**
 * A statement run for every upload or event, built and compiled once and then only bound, as a
 * named prepared statement (see `prepared`). Kysely builds a query as a tree of frozen nodes,
 * copies it through the camel-case plugin and compiles it anew on every call: 90–130 µs of CPU
 * for the claim and the outcome in a warm loop, and in the worker, between media threads,
 * query building was a fifth of its main thread's time (V8 profile). `build` gets a stand-in
 * for each of `values` and must pass them as parameters only, never branch on them: what
 * changes the text goes in `shape`, and each shape is compiled once. Every Database here is
 * made by createDb with the same dialect and plugins, so one text serves all, transactions too.
 */
export function statement<V extends object, R, S extends string = never>(build: (db: Database, values: V, shape: S) => Buildable<R>) {
  const compiled = new Map<string, { query: CompiledQuery<R>; keys: (string | undefined)[] }>();
  return async (db: Database, values: V, ...[shape]: [S] extends [never] ? [] : [S]): Promise<QueryResult<R>> => {
    const given = Object.entries(values);
    // Kysely leaves out a column set to undefined, so which ones are is part of the text.
    const absent = given.filter(([, v]) => v === undefined).map(([k]) => k);
    const key = `${shape ?? ''}|${absent.join()}`;
    let entry = compiled.get(key);
    if (!entry) {
      const slots = Object.fromEntries(given.map(([k, v]) => [k, v === undefined ? undefined : new Slot(k)])) as V;
      const query = prepared(build(db, slots, shape as S).compile(db));
      const keys = query.parameters.map((p) => (p instanceof Slot ? p.key : undefined));
      const unused = given.filter(([k, v]) => v !== undefined && !keys.includes(k)).map(([k]) => k);
      if (unused.length) throw new Error(`statement values not used as parameters: ${unused.join(', ')}`);
      compiled.set(key, (entry = { query, keys }));
    }
    const { query, keys } = entry;
    const bound = values as Record<string, unknown>;
    return db.executeQuery({ ...query, parameters: keys.map((k, i) => (k === undefined ? query.parameters[i] : bound[k])) });
  };
}

/**
 * The shared pool as Kysely sees it, running the marked statements as prepared ones. The pool
 * itself stays as it is: graphile-worker uses it directly and never meets a named statement.
 * (Behind PgBouncer in transaction mode, named statements need PgBouncer 1.21 or later.)
 */
export function preparingPool(pool: pg.Pool): PostgresPool {
  // Kysely keeps per-client state keyed by the client object: one wrapper per client.
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => ({
    get processID() {
      return (client as pg.PoolClient & { processID?: number }).processID;
    },
    query: ((text: string, values: unknown[]) => {
      const name = names.get(text);
      return name ? client.query({ name, text, values }) : client.query(text, values);
    }) as unknown as PostgresPoolClient['query'],
    release: (destroy?: boolean) => client.release(destroy),
  });
  return {
    Client: pg.Client as unknown as PostgresPool['Client'],
    options: pool.options,
    async connect() {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (!wrapper) wrappers.set(client, (wrapper = wrap(client)));
      return wrapper;
    },
    end: () => pool.end(),
  };
}
