import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

// argon2id (the library default) at OWASP's baseline: 19 MiB, 2 passes, 1 lane.
const ARGON = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
// Verified against when the email is unknown, so both paths cost one argon2 run.
const DUMMY_HASH = hash('not-a-real-password', ARGON);

export const hashPassword = (password: string) => hash(password, ARGON);

export async function verifyPassword(passwordHash: string | undefined, password: string) {
  const ok = await verify(passwordHash ?? (await DUMMY_HASH), password).catch(() => false);
  return ok && passwordHash !== undefined;
}

/** Opaque bearer tokens; only their SHA-256 is stored, so a database leak leaks no sessions. */
export function newSessionToken() {
  const token = `drk_${randomBytes(32).toString('base64url')}`;
  return { token, tokenHash: hashToken(token) };
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest();

export function bearerToken(header: string | null | undefined) {
  const m = /^Bearer\s+(\S+)$/i.exec(header?.trim() ?? '');
  return m?.[1];
}

export type FileKind = 'thumbnail' | 'preview';

/**
 * File URLs are signed and expire, so an <img> can load them without a header while
 * only the owner (who alone can read the field) ever receives one. Expiry is rounded
 * up to the hour so a URL stays stable, and cacheable, across queries.
 */
export function signFileUrl(secret: string, kind: FileKind, uploadId: string, ttlSeconds: number, now = Date.now()) {
  const exp = Math.ceil((now / 1000 + ttlSeconds) / 3600) * 3600;
  return `/files/${kind}/${uploadId}?exp=${exp}&sig=${fileSignature(secret, kind, uploadId, exp)}`;
}

export function verifyFileSignature(secret: string, kind: string, uploadId: string, exp: number, sig: string) {
  if (!Number.isFinite(exp) || exp * 1000 < Date.now()) return false;
  const expected = Buffer.from(fileSignature(secret, kind, uploadId, exp));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const fileSignature = (secret: string, kind: string, uploadId: string, exp: number) =>
  createHmac('sha256', secret).update(`${kind}:${uploadId}:${exp}`).digest('base64url');
