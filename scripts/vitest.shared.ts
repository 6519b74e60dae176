import { defineConfig } from 'vitest/config';

/**
 * The vitest set-up every package shares: tests resolve sibling packages to their `src` through the
 * `@prfl/source` export condition (no build needed), run in forked processes (Dawn and wasm are happier
 * outside worker threads), and leave a JSON report that scripts/test-summary.mjs adds up.
 * wasm runs on one thread unless PRFL_WASM_THREADS says otherwise: turbo runs two packages' tests at
 * once, and XNNPACK's pool loses badly when its threads compete for the cores (the `prfl` commands the
 * tests spawn would default to `auto`). The thread tests ask for their counts explicitly. For the same
 * reason the commands run without worker threads (PRFL_WORKERS=1) unless a test asks for them.
 */
export default defineConfig({
  resolve: { conditions: ['@prfl/source'] },
  ssr: { resolve: { conditions: ['@prfl/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    env: {
      PRFL_WASM_THREADS: process.env.PRFL_WASM_THREADS ?? '1',
      PRFL_WORKERS: process.env.PRFL_WORKERS ?? '1',
    },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
