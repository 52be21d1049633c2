/**
 * Bounds on what one GraphQL document may ask for, applied to HTTP and WebSocket alike (both run
 * through Yoga's envelop). docs/security.md explains every number.
 */
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import type { GraphQLArmorRejectCallback } from '@escape.tech/graphql-armor-types';
import {
  type FragmentDefinitionNode,
  getNamedType,
  type GraphQLNamedType,
  GraphQLError,
  isListType,
  isNonNullType,
  isObjectType,
  isInterfaceType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  validate,
  type FieldNode,
  type GraphQLOutputType,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

export const GRAPHQL_LIMITS = {
  /** Fields deep, fragments flattened: batches → edges → node → uploads → edges → node → url is 7. */
  maxDepth: 7,
  maxAliases: 10,
  /** Only @include and @skip exist. */
  maxDirectives: 10,
  maxTokens: 1000,
  /** Worst-case resolved values; see costLimitRule. */
  maxCost: 5000,
  /** Pothos' page-size cap (resolveCursorConnection's maxSize) and its default page. */
  maxPageSize: 100,
  defaultPageSize: 20,
} as const;

// Armor depends on graphql 16. package.json overrides that with our graphql 17, which its three
// rules work with (test/security-graphql.test.ts), instead of a copy of graphql 16 under each
// armor package: seven copies, 13 MB of every API process's heap. Its rejections are reported as
// our own errors, with a code, into graphql 17's validation context: ordinary 400s.
const report =
  (code: string): GraphQLArmorRejectCallback =>
  (ctx, error) =>
    (ctx as unknown as ValidationContext | null)?.reportError(
      new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { code } }),
    );

export function useGraphQLLimits({ production }: { production: boolean }): Plugin[] {
  const armor = EnvelopArmorPlugin({
    maxDepth: { n: GRAPHQL_LIMITS.maxDepth, flattenFragments: true, propagateOnRejection: false, onReject: [report('QUERY_TOO_DEEP')] },
    maxAliases: { n: GRAPHQL_LIMITS.maxAliases, propagateOnRejection: false, onReject: [report('TOO_MANY_ALIASES')] },
    maxDirectives: { n: GRAPHQL_LIMITS.maxDirectives, propagateOnRejection: false, onReject: [report('TOO_MANY_DIRECTIVES')] },
    // graphql 17's own parser counts tokens (below) and its validate hides suggestions.
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: false },
    // Armor's cost ignores page sizes given as variables (`first: $n` costs 1); ours does not.
    costLimit: { enabled: false },
  });
  return [
    armor as Plugin,
    {
      onParse({ setParseFn }) {
        setParseFn((source, options) => parse(source, { ...options, maxTokens: GRAPHQL_LIMITS.maxTokens }));
      },
      onValidate({ addValidationRule, setValidationFn }) {
        addValidationRule(costLimitRule(GRAPHQL_LIMITS.maxCost));
        if (!production) return;
        addValidationRule(NoSchemaIntrospectionCustomRule);
        // "Did you mean …" would map the schema for someone who cannot introspect it.
        setValidationFn((schema, document, rules) => validate(schema, document, rules, { hideSuggestions: true, maxErrors: 20 }));
      },
      // graphql 17 reads hideSuggestions from the execution args; envelop's types predate it.
      onExecute({ executeFn, setExecuteFn }) {
        if (production) setExecuteFn((args) => executeFn({ ...args, hideSuggestions: true } as typeof args));
      },
      onSubscribe({ subscribeFn, setSubscribeFn }) {
        if (production) setSubscribeFn((args) => subscribeFn({ ...args, hideSuggestions: true } as typeof args));
      },
    },
  ];
}

/**
 * Cost = the worst-case number of values an operation resolves. Each field counts once per parent
 * item; a connection multiplies its selection by its page size (the literal first/last, or the
 * page cap when it comes from a variable), a list argument such as nodes(ids:) by its length.
 */
export function costLimitRule(maxCost: number): ValidationRule {
  return (context) => {
    const fragmentCosts = new Map<string, number>();
    const typeOf = (name: string | undefined) => (name ? context.getSchema().getType(name) : undefined);

    function selectionCost(set: SelectionSetNode, parent: GraphQLNamedType | undefined | null, inProgress: Set<string>): number {
      let total = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          const fieldType = fieldTypeOf(parent, sel.name.value);
          const items = sel.selectionSet ? selectionCost(sel.selectionSet, fieldType && getNamedType(fieldType), inProgress) : 0;
          total += 1 + multiplier(sel, fieldType) * items;
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          total += selectionCost(sel.selectionSet, typeOf(sel.typeCondition?.name.value) ?? parent, inProgress);
        } else {
          total += fragmentCost(context.getFragment(sel.name.value), inProgress);
        }
      }
      return total;
    }

    // Memoised, so fragments spreading fragments cannot make counting itself exponential.
    function fragmentCost(fragment: FragmentDefinitionNode | null | undefined, inProgress: Set<string>): number {
      if (!fragment) return 0;
      const name = fragment.name.value;
      const known = fragmentCosts.get(name);
      if (known !== undefined) return known;
      if (inProgress.has(name)) return 0; // a cycle: NoFragmentCyclesRule reports it
      inProgress.add(name);
      const cost = selectionCost(fragment.selectionSet, typeOf(fragment.typeCondition.name.value), inProgress);
      inProgress.delete(name);
      fragmentCosts.set(name, cost);
      return cost;
    }

    return {
      OperationDefinition(op) {
        const root = context.getSchema().getRootType(op.operation);
        const cost = selectionCost(op.selectionSet, root, new Set());
        if (cost > maxCost) {
          context.reportError(
            new GraphQLError(`Query cost limit of ${maxCost} exceeded, found ${cost}`, {
              nodes: [op],
              extensions: { code: 'QUERY_TOO_COSTLY' },
            }),
          );
        }
      },
    };
  };
}

function fieldTypeOf(parent: GraphQLNamedType | undefined | null, name: string): GraphQLOutputType | undefined {
  return parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name]?.type : undefined;
}

function multiplier(field: FieldNode, type: GraphQLOutputType | undefined): number {
  const { maxPageSize, defaultPageSize } = GRAPHQL_LIMITS;
  const size = field.arguments?.find((a) => a.name.value === 'first' || a.name.value === 'last')?.value;
  if (size) return size.kind === Kind.INT ? Math.min(Number(size.value), maxPageSize) : maxPageSize;
  const named = type && getNamedType(type);
  if (named && isObjectType(named) && named.getFields().edges && named.getFields().pageInfo) return defaultPageSize;
  const list = field.arguments?.find((a) => a.value.kind === Kind.LIST || a.value.kind === Kind.VARIABLE);
  const unwrapped = type && isNonNullType(type) ? type.ofType : type;
  if (list && unwrapped && isListType(unwrapped)) return list.value.kind === Kind.LIST ? list.value.values.length : maxPageSize;
  return 1;
}
