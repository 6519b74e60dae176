// The shared set-up: scripts/vitest.shared.ts.
export { default } from '../../scripts/vitest.shared.js';
