/**
 * The published artefact as a user gets it: `npm pack`, installed into an empty project with only the
 * peer dependencies, used from plain Node (ESM and CJS) on cpu and wasm: a gradient, PyTorch-written
 * f32 and bf16 safetensors read bit-exactly, and an f32 file written byte-identical to PyTorch's side.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
let app = '';

describe('npm pack of @prfl/tensor in an empty project', () => {
  beforeAll(() => {
    if (!existsSync(path.join(root, 'dist/index.js')))
      throw new Error('dist/index.js is missing: run `npm run build` first');
    app = mkdtempSync(path.join(tmpdir(), 'prfl-pack-'));
    execFileSync('npm', ['pack', '--silent', '--pack-destination', app], { cwd: root, encoding: 'utf8' });
    const tgz = readdirSync(app).find((f) => f.endsWith('.tgz'))!;
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-smoke', private: true }));
    const peers = [
      '@tensorflow/tfjs-core@4.22.0',
      '@tensorflow/tfjs-backend-cpu@4.22.0',
      '@tensorflow/tfjs-backend-wasm@4.22.0',
    ];
    execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', `./${tgz}`, ...peers],
      {
        cwd: app,
        encoding: 'utf8',
        timeout: 240_000,
      },
    );
    for (const f of ['app.mjs', 'app.cjs']) copyFileSync(path.join(root, 'test/pack', f), path.join(app, f));
  }, 300_000);
  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it.each([
    ['app.mjs', 'cpu'],
    ['app.mjs', 'wasm'],
    ['app.cjs', 'cpu'],
    ['app.cjs', 'wasm'],
  ])('%s on %s', (file, backend) => {
    const out = execFileSync(process.execPath, [file, path.join(root, 'fixtures/safetensors'), backend], {
      cwd: app,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
      backend,
      grad: [2, 4, 6],
      f32: true,
      bf16: true,
      identical: true,
    });
  });
});
