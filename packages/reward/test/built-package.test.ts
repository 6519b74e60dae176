/**
 * The built package in plain Node, outside vitest (whose loader hides the ESM quirks of tfjs-core's
 * gradient registration): ESM and CJS, cpu and wasm, with only @prfl/tensor and tfjs installed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

describe('built @prfl/reward in plain Node', () => {
  it('has been built', () => {
    expect(
      existsSync(path.join(root, 'dist/index.js')),
      'dist/index.js is missing: run `npm run build` first',
    ).toBe(true);
    expect(existsSync(path.join(root, 'dist/toy/index.cjs'))).toBe(true);
  });

  it.each([
    ['train-save-load.mjs', 'cpu', 4],
    ['train-save-load.mjs', 'wasm', 4],
    ['train.cjs', 'cpu', 2],
    ['train.cjs', 'wasm', 2],
  ])('%s on %s trains and scores', (file, backend, n) => {
    const out = execFileSync(process.execPath, [path.join(root, 'test/smoke', file), backend], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ backend, finite: true, same: true, n });
  });
});
