import type pg from 'pg';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Logger } from './logger.ts';
import type { Analyzer } from './services/analyzer.ts';
import type { EventBus } from './services/events.ts';
import type { Storage } from './services/storage.ts';

/** Everything a request or a job needs, built once per process and passed explicitly. */
export interface AppContext {
  config: Config;
  pool: pg.Pool;
  db: Database;
  storage: Storage;
  bus: EventBus;
  logger: Logger;
  /** Absent when no model server is configured: analysis is then skipped, never faked. */
  analyzer: Analyzer | undefined;
}

export interface Viewer {
  id: string;
  email: string;
  sessionId: string;
}

export interface GraphQLContext extends AppContext {
  viewer: Viewer | null;
  /** Origin used to make absolute file URLs (PUBLIC_URL, else the request's own origin). */
  baseUrl: string;
}
