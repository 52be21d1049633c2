import { execFileSync } from 'node:child_process';
import type { CodegenConfig } from '@graphql-codegen/cli';

// The Pothos schema is the source of truth; schema.graphql is its committed print.
const sdl = execFileSync(process.execPath, ['scripts/print-schema.ts'], { encoding: 'utf8' });

const config: CodegenConfig = {
  schema: sdl,
  documents: ['test/**/*.ts', '!test/gql/**'],
  ignoreNoDocuments: true,
  generates: {
    'schema.graphql': { plugins: ['schema-ast'], config: { includeDirectives: false } },
    'test/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        emitLegacyCommonJSImports: false,
        scalars: { DateTime: 'string', File: 'File' },
      },
    },
  },
};
export default config;
