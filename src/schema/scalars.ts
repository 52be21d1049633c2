import { GraphQLError, Kind } from 'graphql';
import { IncomingFile } from '../http/multipart.ts';
import { builder } from './builder.ts';

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp in UTC.',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const d = typeof value === 'string' ? new Date(value) : undefined;
    if (!d || Number.isNaN(d.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return d;
  },
  parseLiteral: (ast) => {
    const d = ast.kind === Kind.STRING ? new Date(ast.value) : undefined;
    if (!d || Number.isNaN(d.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return d;
  },
});

builder.scalarType('File', {
  description: 'A file part of a multipart request (GraphQL multipart request spec).',
  serialize: () => {
    throw new GraphQLError('File is an input-only scalar');
  },
  parseValue: (value) => {
    if (value instanceof IncomingFile) return value;
    throw new GraphQLError('File variables must be sent as a multipart request (GraphQL multipart request spec)', {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  },
});
