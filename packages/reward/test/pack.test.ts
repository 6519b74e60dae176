/**
 * "Use alone": the packed @prfl/reward and @prfl/tensor installed into an empty project with only tfjs,
 * running examples/score-latents (train, save, load, score) in plain Node on wasm.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const tensorRoot = path.resolve(root, '../tensor');
const example = path.resolve(root, '../../examples/score-latents/index.mjs');
let app = '';

describe('npm pack of @prfl/reward with only @prfl/tensor and tfjs', () => {
  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('trains, saves, loads and scores in an empty project', () => {
    for (const dir of [root, tensorRoot]) {
      if (!existsSync(path.join(dir, 'dist/index.js')))
        throw new Error(`${dir}/dist is missing: run the build first`);
    }
    app = mkdtempSync(path.join(tmpdir(), 'prfl-reward-pack-'));
    for (const dir of [root, tensorRoot]) {
      execFileSync('npm', ['pack', '--silent', '--pack-destination', app], { cwd: dir, encoding: 'utf8' });
    }
    const tarballs = readdirSync(app).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(2);
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'reward-alone', private: true, type: 'module' }),
    );
    const peers = [
      '@tensorflow/tfjs-core@4.22.0',
      '@tensorflow/tfjs-backend-cpu@4.22.0',
      '@tensorflow/tfjs-backend-wasm@4.22.0',
    ];
    execFileSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--loglevel=error',
        ...tarballs.map((t) => `./${t}`),
        ...peers,
      ],
      { cwd: app, encoding: 'utf8', timeout: 240_000 },
    );
    expect(existsSync(path.join(app, 'node_modules/@prfl/models'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules/@prfl/schedulers'))).toBe(false);
    copyFileSync(example, path.join(app, 'index.mjs'));
    const out = execFileSync(process.execPath, ['index.mjs', 'wasm'], {
      cwd: app,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(out).toMatch(/same as before saving: true/);
    expect(out).toMatch(/done on wasm/);
  }, 400_000);
});
