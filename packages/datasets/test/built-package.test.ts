/**
 * The built package in plain Node, outside vitest: ESM and CJS on cpu and wasm, and a writer process
 * killed with SIGKILL mid-append, after which the store must open (checksums verified) and read back.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LatentShardStore } from '../src/index.js';

const root = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-built-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(file: string, ...args: string[]): unknown {
  const out = execFileSync(process.execPath, [path.join(root, 'test/smoke', file), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out.trim().split('\n').at(-1) as string);
}

describe('built @prfl/datasets in plain Node', () => {
  it('has been built', () => {
    expect(
      existsSync(path.join(root, 'dist/index.js')),
      'dist/index.js is missing: run `npm run build` first',
    ).toBe(true);
  });

  it.each(['cpu', 'wasm'])('ESM on %s: render, judge, store, batch', (backend) => {
    expect(run('roundtrip.mjs', backend, path.join(tmp, `esm-${backend}`))).toEqual({
      backend,
      motionQuality: 0,
      truth: 0,
      shape: [2, 5, 8, 8, 4],
    });
  });

  it.each(['cpu', 'wasm'])('CJS on %s', (backend) => {
    expect(run('roundtrip.cjs', backend)).toEqual({ backend, adherence: 1, sum: 10 });
  });

  it('keeps the store valid when the writer is killed mid-append (5 kills)', async () => {
    const dir = path.join(tmp, 'killed');
    let total = 0;
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, [path.join(root, 'test/smoke/append-forever.mjs'), dir], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let lines = 0;
      await new Promise<void>((resolve, reject) => {
        // Kill somewhere inside an append: after a few shards, at a delay that varies per round.
        child.stdout.on('data', (chunk: Buffer) => {
          lines += chunk.toString().split('\n').filter(Boolean).length;
          if (lines >= 2) setTimeout(() => child.kill('SIGKILL'), 3 + 7 * round);
        });
        child.on('exit', () => resolve());
        child.on('error', reject);
      });
      const store = await LatentShardStore.open(dir, { verify: 'checksum' });
      expect(store.size).toBeGreaterThanOrEqual(total + 2);
      total = store.size;
      // Every listed tensor reads back with the value it was written with.
      const keys = store.keys();
      for (const k of [keys[0], keys.at(-1)] as string[]) {
        const i = Number(/clip-(\d+)/.exec(k)?.[1]);
        const a = await store.read(k);
        expect(a.data[0]).toBe(i);
        expect(a.data[a.data.length - 1]).toBe(i);
      }
      expect(keys).toEqual(Array.from({ length: keys.length }, (_, i) => `clip-${i}/latent`));
      await store.close();
    }
  });
});
