import { defineConfig } from 'vitest/config';

/**
 * The vitest set-up every package shares: tests resolve sibling packages to their `src` through the
 * `@prfl/source` export condition (no build needed), run in forked processes (Dawn and wasm are happier
 * outside worker threads), and leave a JSON report that scripts/test-summary.mjs adds up.
 */
export default defineConfig({
  resolve: { conditions: ['@prfl/source'] },
  ssr: { resolve: { conditions: ['@prfl/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
