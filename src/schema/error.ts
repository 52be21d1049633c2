import { GraphQLError } from 'graphql';
import type { GraphQLContext, Viewer } from '../context.ts';
import { builder } from './builder.ts';

/** An expected failure, returned as a typed member of a result union. */
export class AppError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export const ErrorInterface = builder.interfaceRef<AppError>('Error').implement({
  description: 'Every expected failure: a stable machine-readable code and a human message.',
  fields: (t) => ({
    message: t.exposeString('message'),
    code: t.exposeString('code'),
  }),
});

export class ValidationError extends AppError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('VALIDATION_FAILED', message);
    this.field = field;
  }
}

builder.objectType(ValidationError, {
  name: 'ValidationError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ field: t.exposeString('field') }),
});

/** Unexpected or unauthenticated access is a top-level GraphQL error, not a result member. */
export function requireViewer(ctx: GraphQLContext): Viewer {
  if (!ctx.viewer) {
    throw new GraphQLError('Authentication required: send Authorization: Bearer <token>', {
      extensions: { code: 'UNAUTHENTICATED' },
    });
  }
  return ctx.viewer;
}

export function notFound(what: string) {
  return new GraphQLError(`${what} not found`, { extensions: { code: 'NOT_FOUND' } });
}
