import { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { initBackend } from '@prfl/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_WORLD, evaluateGenerator, wilson } from '../src/index.js';
import { worldTokenizer } from '../src/recipe/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('wilson', () => {
  it('matches the textbook interval (7 of 20: 0.181 to 0.567) and stays inside [0, 1]', () => {
    const r = wilson(7, 20);
    expect(r.rate).toBe(0.35);
    expect(r.low).toBeCloseTo(0.1812, 3);
    expect(r.high).toBeCloseTo(0.5671, 3);
    expect(wilson(0, 5).low).toBe(0);
    expect(wilson(5, 5).high).toBe(1);
    expect(() => wilson(3, 2)).toThrow(/0 <= k <= n/);
  });
});

describe('evaluateGenerator', () => {
  it('judges one video per held-out prompt, cycled, and counts the rates from the verdicts', async () => {
    const models = {
      vae: new WanVAE('test', { seed: 1 }),
      textEncoder: new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 }),
      dit: new WanDiT({ numLayers: 1, inDim: 4, outDim: 4 }, { base: 'tiny', seed: 3 }),
    };
    const e = await evaluateGenerator(models, { count: 9, numSteps: 2 });
    expect(e.videos).toHaveLength(9);
    expect(e.videos[0]?.prompt).toBe(e.videos[7]?.prompt);
    expect(e.motionGood.n).toBe(9);
    expect(e.motionGood.rate).toBe(e.videos.filter((v) => v.motionGood).length / 9);
    expect(e.adherence.rate).toBe(e.videos.filter((v) => v.adherent).length / 9);
    expect(e.msPerVideo).toBeGreaterThan(0);
    expect(e.backend).toBe('wasm');
  }, 60_000);
});
