import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin, { decodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import type { GraphQLContext } from '../context.ts';
import type { IncomingFile } from '../http/multipart.ts';

const MAX_NODE_IDS = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    File: { Input: IncomingFile; Output: never };
  };
  DefaultFieldNullability: false;
}>({
  plugins: [ErrorsPlugin, RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // Every node id is a UUID: anything else is refused here, before it reaches a query.
    decodeGlobalID: (globalID) => {
      const decoded = decodeGlobalID(globalID);
      if (!UUID.test(decoded.id)) throw new GraphQLError('Invalid ID', { extensions: { code: 'BAD_USER_INPUT' } });
      return decoded;
    },
    // Each id costs a query, and a variable list could carry tens of thousands of them.
    nodesQueryOptions: {
      resolve: (_root, { ids }, _ctx, _info, resolveNodes) => {
        if (ids.length > MAX_NODE_IDS) {
          throw new GraphQLError(`At most ${MAX_NODE_IDS} ids per nodes query`, { extensions: { code: 'BAD_USER_INPUT' } });
        }
        return resolveNodes(ids);
      },
    },
  },
  errors: {
    directResult: true,
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
