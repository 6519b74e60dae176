/**
 * The built package in plain Node, outside vitest (whose module loader hides the extension-less ESM
 * imports that break tfjs-core's gradient registration in Node): ESM and CJS, cpu and wasm. Each script
 * loads the PyTorch fixture checkpoint with loadWanDiT, predicts the velocity and takes gradients.
 * Skipped, with a note, when dist/ has not been built (turbo builds it first).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = [
  'dist/index.js',
  'dist/index.cjs',
  '../tensor/dist/index.js',
  '../tensor/dist/index.cjs',
].every((f) => existsSync(path.join(root, f)));

describe.skipIf(!built)(
  'built @prfl/models in plain Node (needs `npm run build` here and in packages/tensor)',
  () => {
    it.each([
      ['dit.mjs', 'cpu'],
      ['dit.mjs', 'wasm'],
      ['dit.cjs', 'cpu'],
      ['dit.cjs', 'wasm'],
    ])('%s on %s matches PyTorch and differentiates, leaking nothing', (file, backend) => {
      const out = execFileSync(process.execPath, [path.join(root, 'test/smoke', file), backend], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      });
      const result = JSON.parse(out.trim().split('\n').at(-1)!);
      expect(result).toMatchObject({
        format: file.endsWith('.mjs') ? 'esm' : 'cjs',
        backend,
        gradients: 123,
        leaked: 0,
      });
      expect(result.error).toBeLessThan(1e-5);
      expect(result.gradError).toBeLessThan(1e-4);
    });
  },
);
