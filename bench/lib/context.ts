import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { ScratchDatabases } from './database.ts';
import type { Photo } from './photos.ts';
import type { Report } from './report.ts';

export interface BenchContext {
  quick: boolean;
  photos: Photo[];
  cores: number;
  dbs: ScratchDatabases;
  /** The run's temporary root; everything under it is removed at the end. */
  tmp: string;
  report: Report;
  log(message: string): void;
  /** A raw-numbers line under the running scenario. */
  note(line: string): void;
}

/** A fresh directory under the run's temporary root (same filesystem as every STORAGE_DIR). */
export const scratchDir = (b: BenchContext, label: string) => mkdtemp(path.join(b.tmp, `${label}-`));
