/**
 * The built package in plain Node, outside vitest (whose module loader hides the extension-less ESM
 * imports that break tfjs-core's gradient registration in Node): ESM and CJS, cpu and wasm.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

describe('built @prfl/tensor in plain Node', () => {
  it('has been built', () => {
    expect(
      existsSync(path.join(root, 'dist/index.js')),
      'dist/index.js is missing: run `npm run build` first',
    ).toBe(true);
  });

  it.each([
    ['gradient.mjs', 'cpu'],
    ['gradient.mjs', 'wasm'],
    ['gradient.cjs', 'cpu'],
    ['gradient.cjs', 'wasm'],
  ])('%s on %s computes gradients', (file, backend) => {
    const out = execFileSync(process.execPath, [path.join(root, 'test/smoke', file), backend], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const result = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(result).toEqual({ backend, da: [5, 5, 5, 5], slice: [1, 0, 1, 0, 1, 0] });
  });

  it.each(['threads.mjs', 'threads.cjs'])(
    '%s: wasm at 2 threads computes what 1 thread computes, and the process exits on its own',
    (file) => {
      const run = (threads: number) =>
        JSON.parse(
          execFileSync(process.execPath, [path.join(root, 'test/smoke', file), String(threads)], {
            cwd: root,
            encoding: 'utf8',
            timeout: 60_000,
            env: { ...process.env, PRFL_WASM_THREADS: '' },
          })
            .trim()
            .split('\n')
            .at(-1)!,
        ) as { backend: string; threads: number; hash: string };
      const one = run(1);
      const two = run(2);
      expect(one.threads).toBe(1);
      expect(two).toEqual({ backend: 'wasm (simd, 2 threads)', threads: 2, hash: one.hash });
    },
  );
});
