import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, glob, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files live under one root, addressed by server-made keys ("originals/<user>/<uuid>.jpg");
 * no client-supplied name ever becomes part of a path.
 */
export interface Storage {
  readonly root: string;
  /** A fresh path for a file being received; callers write it (at most once), then commit or remove it. */
  createIncoming(): TempFile;
  /**
   * Forces received files' bytes to disk. An original is the one copy there is: its row must
   * not commit before it is durable (renditions can be made again, and are not synced).
   */
  syncIncoming(tempPaths: string[]): Promise<void>;
  /**
   * A fresh path in scratch/ for a file the worker makes before it may store it (the renditions
   * of media work started ahead of its claim); moved with commit() or removed with removeScratch().
   */
  createScratch(): string;
  removeScratch(...paths: string[]): Promise<void>;
  /** Moves a received file to its permanent key (same filesystem, so a rename); see persist(). */
  commit(tempPath: string, key: string): Promise<void>;
  /** Makes the commits of these keys survive a power loss: syncs their directories, once each. */
  persist(keys: string[]): Promise<void>;
  put(key: string, data: Buffer): Promise<void>;
  resolve(key: string): string;
  exists(key: string): Promise<boolean>;
  read(key: string): NodeJS.ReadableStream;
  remove(...keys: (string | null | undefined)[]): Promise<void>;
  /** Removes every file stored for an upload: original and any rendition, whatever exists. */
  removeUpload(userId: string, uploadId: string): Promise<void>;
  /**
   * Removes files in incoming/ and scratch/ older than maxAgeMs: of requests that died
   * mid-upload, and of a worker that died before it stored them.
   */
  sweepIncoming(maxAgeMs: number): Promise<number>;
}

export interface TempFile {
  readonly path: string;
  /** Creates the file, open for writing, for one that arrives in pieces; the caller closes it. */
  open(): Promise<FileHandle>;
  /** Creates the file with all of its content in one thread-pool round trip instead of three. */
  write(data: Buffer): Promise<void>;
}

/**
 * Runs fn, creating dir only when fn finds it missing: a mkdir per file is a thread-pool round
 * trip, and receiving a batch of small photos paid one per file, twice.
 */
async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true });
    return fn();
  }
}

/** Creates `file` with `data`, never over an existing one, in one thread-pool round trip while its directory exists. */
export const writeNewFile = (file: string, data: Buffer) => inDir(path.dirname(file), () => writeFile(file, data, { flag: 'wx' }));

/** Removes these files where they exist. */
export async function removeFiles(...files: string[]) {
  await Promise.all(files.map((f) => rm(f, { force: true })));
}

/** Syncs a file, or a directory (a rename is on disk once its directory is). */
async function sync(target: string, how: (handle: FileHandle) => Promise<void>) {
  const handle = await open(target, 'r');
  try {
    await how(handle);
  } catch (err) {
    // Something that cannot be synced (a pipe, some network filesystems) has nothing to wait for.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    await handle.close();
  }
}

const KEY = /^[a-z]+(\/[A-Za-z0-9-]+)+(\.[a-z0-9]+)?$/;

export function createStorage(root: string): Storage {
  const incomingDir = path.join(root, 'incoming');
  const scratchDir = path.join(root, 'scratch');
  const resolve = (key: string) => {
    if (!KEY.test(key)) throw new Error(`invalid storage key: ${key}`);
    return path.join(root, key);
  };
  return {
    root,
    createIncoming() {
      const file = path.join(incomingDir, randomUUID());
      return {
        path: file,
        open: () => inDir(incomingDir, () => open(file, 'wx')),
        write: (data) => writeNewFile(file, data),
      };
    },
    async syncIncoming(tempPaths) {
      // All at once: the filesystem's journal commits the lot together instead of one by one,
      // which made syncing each file as it was written cost a quarter more time and CPU.
      await Promise.all(tempPaths.map((p) => sync(p, (h) => h.datasync())));
    },
    createScratch: () => path.join(scratchDir, randomUUID()),
    removeScratch: removeFiles,
    async commit(tempPath, key) {
      const target = resolve(key);
      await inDir(path.dirname(target), () => rename(tempPath, target));
    },
    async persist(keys) {
      const dirs = new Set(keys.map((k) => path.dirname(resolve(k))));
      await Promise.all([...dirs].map((dir) => sync(dir, (h) => h.sync())));
    },
    async put(key, data) {
      const target = resolve(key);
      // Write aside and rename so a reader never sees a half-written rendition.
      const tmp = `${target}.${randomUUID()}.tmp`;
      await inDir(path.dirname(target), () => writeFile(tmp, data, { flag: 'wx' }));
      await rename(tmp, target);
    },
    resolve,
    async exists(key) {
      return stat(resolve(key)).then(
        () => true,
        () => false,
      );
    },
    read(key) {
      return createReadStream(resolve(key));
    },
    async remove(...keys) {
      await Promise.all(keys.filter((k): k is string => !!k).map((k) => rm(resolve(k), { force: true })));
    },
    async removeUpload(userId, uploadId) {
      // Keys are <kind>/<user>/<upload>.<ext>, so one pattern finds them all.
      for await (const rel of glob(`*/${userId}/${uploadId}.*`, { cwd: root })) {
        if (!rel.startsWith('incoming')) await rm(path.join(root, rel), { force: true });
      }
    },
    async sweepIncoming(maxAgeMs) {
      let removed = 0;
      for (const dir of [incomingDir, scratchDir]) removed += await sweepDir(dir, maxAgeMs);
      return removed;
    },
  };
}

async function sweepDir(dir: string, maxAgeMs: number) {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const p = path.join(dir, name);
    const s = await stat(p).catch(() => null);
    if (s && Date.now() - s.mtimeMs > maxAgeMs) {
      await rm(p, { force: true });
      removed++;
    }
  }
  return removed;
}
