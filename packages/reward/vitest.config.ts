import { defineConfig } from 'vitest/config';

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
