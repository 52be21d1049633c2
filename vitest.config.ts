import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Our code, transformed by Vite, would resolve graphql with the "development"
// condition (its __dev__ build) while the libraries Node loads (Pothos, Yoga) get
// the regular build: two graphql realms. Pin our imports to the file Node picks.
const graphql = fileURLToPath(new URL('./node_modules/graphql/index.mjs', import.meta.url));

export default defineConfig({
  resolve: { alias: [{ find: /^graphql$/, replacement: graphql }] },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file gets its own database cloned from a migrated template, so files run in parallel.
    pool: 'forks',
    maxWorkers: 2,
  },
});
