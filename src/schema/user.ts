import { z } from 'zod';
import { insertSession } from '../db/sessions.ts';
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

type AuthSuccessShape = { token: string; user: UserShape };
const AuthSuccess = builder.objectRef<AuthSuccessShape>('AuthSuccess').implement({
  isTypeOf: (o) => typeof o === 'object' && o !== null && 'token' in o,
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Send as `Authorization: Bearer <token>`.' }),
    user: t.field({ type: UserRef, resolve: (r) => r.user }),
  }),
});

const Email = z.email().max(254);
// Upper bound keeps hashing cost bounded; argon2 input beyond this adds nothing.
const Password = z.string().min(8, 'Password must be at least 8 characters').max(256, 'Password must be at most 256 characters');

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
  types: [AuthSuccess, ValidationError, EmailTakenError, InvalidCredentialsError],
});

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
      // Oversized input is refused before it reaches argon2.
      if (args.password.length > 256 || args.email.length > 254) throw new InvalidCredentialsError();
      const user = await findUserByEmail(ctx.db, args.email.trim());
      if (!(await verifyPassword(user?.passwordHash, args.password)) || !user) throw new InvalidCredentialsError();
      return startSession(ctx, user);
    },
  }),
);
