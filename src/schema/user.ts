import { z } from 'zod';
import { deleteSession, insertSession } from '../db/sessions.ts';
import { findUser, findUserByEmail, insertUser } from '../db/users.ts';
import { hashPassword, newSessionToken, verifyPassword } from '../services/auth.ts';
import { builder } from './builder.ts';
import { AppError, ErrorInterface, requireViewer, ValidationError } from './error.ts';

type UserShape = { id: string; email: string; createdAt: Date };

export const UserRef = builder.objectRef<UserShape>('User');

builder.node(UserRef, {
  id: { resolve: (u) => u.id },
  // Only the viewer's own user is visible; anyone else's id reads as nonexistent.
  loadOne: (id, ctx) => (ctx.viewer?.id === id ? findUser(ctx.db, id) : null),
  fields: (t) => ({
    email: t.exposeString('email'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

class EmailTakenError extends AppError {
  constructor() {
    super('EMAIL_TAKEN', 'An account with this email already exists');
  }
}
class InvalidCredentialsError extends AppError {
  constructor() {
    super('INVALID_CREDENTIALS', 'Email or password is incorrect');
  }
}
for (const [cls, name] of [
  [EmailTakenError, 'EmailTakenError'],
  [InvalidCredentialsError, 'InvalidCredentialsError'],
] as const) {
  builder.objectType(cls, { name, interfaces: [ErrorInterface], fields: () => ({}) });
}

class TooManyAttemptsError extends AppError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super('TOO_MANY_ATTEMPTS', `Too many attempts; try again in ${retryAfterSeconds} seconds`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
builder.objectType(TooManyAttemptsError, {
  name: 'TooManyAttemptsError',
  description: 'Sign-in and sign-up are rate-limited per client address, sign-in also per account.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ retryAfterSeconds: t.exposeInt('retryAfterSeconds') }),
});

type AuthSuccessShape = { token: string; user: UserShape };
const AuthSuccess = builder.objectRef<AuthSuccessShape>('AuthSuccess').implement({
  isTypeOf: (o) => typeof o === 'object' && o !== null && 'token' in o,
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Send as `Authorization: Bearer <token>`.' }),
    user: t.field({ type: UserRef, resolve: (r) => r.user }),
  }),
});

const MAX_EMAIL = 254;
const MAX_PASSWORD = 256;
const Email = z.email().max(MAX_EMAIL);
// Upper bound keeps hashing cost bounded; argon2 input beyond this adds nothing.
const Password = z
  .string()
  .min(8, 'Password must be at least 8 characters')
  .max(MAX_PASSWORD, `Password must be at most ${MAX_PASSWORD} characters`)
  .refine((p) => p.trim().length > 0, 'Password must not be only spaces');

function parseOrThrow<T>(schema: z.ZodType<T>, field: string, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(field, r.error.issues[0]?.message ?? `Invalid ${field}`);
  return r.data;
}

async function startSession(ctx: Parameters<typeof requireViewer>[0], user: UserShape): Promise<AuthSuccessShape> {
  const { token, tokenHash } = newSessionToken();
  await insertSession(ctx.db, { userId: user.id, tokenHash, expiresAt: new Date(Date.now() + ctx.config.sessionTtlMs) });
  return { token, user };
}

const AuthResult = builder.errorUnion('AuthResult', {
  types: [AuthSuccess, ValidationError, EmailTakenError, InvalidCredentialsError, TooManyAttemptsError],
});

/** Counts the attempt before any argon2 work is spent on it. */
async function throttle(ctx: Parameters<typeof requireViewer>[0], email?: string) {
  const wait = await ctx.security.authLimiter.attempt(ctx.security.clientIp, email);
  if (wait > 0) throw new TooManyAttemptsError(wait);
}

builder.queryField('viewer', (t) =>
  t.field({
    type: UserRef,
    description: 'The signed-in user.',
    resolve: async (_root, _args, ctx) => {
      const user = await findUser(ctx.db, requireViewer(ctx).id);
      if (!user) throw new Error('session user vanished');
      return user;
    },
  }),
);

builder.mutationField('signUp', (t) =>
  t.field({
    type: AuthResult,
    args: { email: t.arg.string({ required: true }), password: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const email = parseOrThrow(Email, 'email', args.email.trim());
      const password = parseOrThrow(Password, 'password', args.password);
      await throttle(ctx);
      const user = await insertUser(ctx.db, { email, passwordHash: await hashPassword(password) });
      if (!user) throw new EmailTakenError();
      return startSession(ctx, user);
    },
  }),
);

builder.mutationField('signIn', (t) =>
  t.field({
    type: AuthResult,
    args: { email: t.arg.string({ required: true }), password: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      // Oversized input is refused before it reaches argon2 (or the rate limiter's keys).
      if (args.password.length > MAX_PASSWORD || args.email.length > MAX_EMAIL) throw new InvalidCredentialsError();
      const email = args.email.trim();
      await throttle(ctx, email);
      const user = await findUserByEmail(ctx.db, email);
      if (!(await verifyPassword(user?.passwordHash, args.password)) || !user) throw new InvalidCredentialsError();
      await ctx.security.authLimiter.succeeded(email);
      return startSession(ctx, user);
    },
  }),
);

builder.mutationField('signOut', (t) =>
  t.boolean({
    description: 'Revokes the token this request was made with; it is refused from then on, over HTTP and WebSocket.',
    resolve: async (_root, _args, ctx) => {
      await deleteSession(ctx.db, requireViewer(ctx).sessionId);
      return true;
    },
  }),
);
