/**
 * The built package in plain Node (no Vite): test/node-smoke.mjs (ESM) and test/node-smoke.cjs (CJS) run a
 * 10-step UniPC loop with a gradient on the cpu backend from dist/; their output must equal the same loop
 * run here on the sources. Skipped, with a note, when dist/ has not been built (turbo builds it first).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend, shutdownBackend } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { FlowUniPCScheduler, schedulerFromConfig } from '../src/index.js';
import type { SmokeResult } from './node-smoke-loop.mjs';
import { smokeLoop } from './node-smoke-loop.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
// Our dist and @prfl/tensor's (which the built package imports) must both exist.
const built = [
  'dist/index.js',
  'dist/index.cjs',
  '../tensor/dist/index.js',
  '../tensor/dist/index.cjs',
].every((f) => existsSync(`${root}/${f}`));

function runNode(script: string): SmokeResult & { format: string } {
  const out = execFileSync(process.execPath, [script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1) as string);
}

describe.skipIf(!built)('built package in plain Node (needs `npx tsup` here and in packages/tensor)', () => {
  afterAll(() => shutdownBackend());

  it('ESM and CJS builds run a 10-step UniPC loop with a gradient, equal to the sources', async () => {
    await initBackend({ backend: 'cpu' });
    const expected = await smokeLoop(tf, { FlowUniPCScheduler, schedulerFromConfig });
    for (const script of ['test/node-smoke.mjs', 'test/node-smoke.cjs']) {
      const got = runNode(script);
      expect(got.format).toBe(script.endsWith('.mjs') ? 'esm' : 'cjs');
      expect(got.timesteps).toEqual([999, 978, 952, 920, 882, 833, 768, 681, 555, 356]);
      expect(got.sample).toEqual(expected.sample);
      expect(got.gradient).toEqual(expected.gradient);
      expect(got.leakedTensors).toBe(0);
    }
    expect(expected.leakedTensors).toBe(0);
  });
});
