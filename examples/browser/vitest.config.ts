import { defineConfig } from 'vitest/config';

/**
 * The end-to-end test builds the app with Vite (from the built packages, as `npm run build` leaves them)
 * and drives it in Chromium; it runs in one forked process, one page at a time (2-core budget).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
