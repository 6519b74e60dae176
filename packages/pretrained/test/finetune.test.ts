import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { Pavrm } from '@prfl/reward';
import { initBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_WORLD, finetuneWithPrfl } from '../src/index.js';
import { worldTokenizer } from '../src/recipe/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-pretrained-finetune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

function setup() {
  const models = {
    vae: new WanVAE('test', { seed: 1 }),
    textEncoder: new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 }),
    dit: new WanDiT({ numLayers: 2, inDim: 4, outDim: 4 }, { base: 'tiny', seed: 3 }),
  };
  const reward = new Pavrm(models.dit.truncate(1), { hidden: [8], seed: 4 });
  return { models, reward };
}

const snapshot = (m: { namedVariables(): ReadonlyMap<string, { dataSync(): ArrayLike<number> }> }) =>
  new Map([...m.namedVariables()].map(([k, v]) => [k, Array.from(v.dataSync())]));

describe('finetuneWithPrfl', () => {
  it('moves the DiT, not the reward, and resumes exactly from its checkpoint', async () => {
    const a = setup();
    const before = snapshot(a.models.dit);
    const rewardBefore = snapshot(a.reward);
    const opts = { clips: 8, batchSize: 2, prfl: { numSteps: 4 } };
    const whole = await finetuneWithPrfl({
      ...a,
      ...opts,
      steps: 4,
      checkpointDir: path.join(tmp, 'a'),
      checkpointEvery: 2,
    });
    expect(whole.step).toBe(4);
    expect(whole.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(whole.metrics.every((m) => Number.isFinite(m.loss) && m.sftLoss !== null)).toBe(true);
    const after = snapshot(a.models.dit);
    expect([...after].some(([k, v]) => v.some((x, i) => x !== before.get(k)?.[i]))).toBe(true);
    expect(snapshot(a.reward)).toEqual(rewardBefore);

    const b = setup();
    await finetuneWithPrfl({
      ...b,
      ...opts,
      steps: 2,
      checkpointDir: path.join(tmp, 'b'),
      checkpointEvery: 2,
    });
    const resumed = await finetuneWithPrfl({
      ...b,
      ...opts,
      steps: 4,
      checkpointDir: path.join(tmp, 'b'),
      checkpointEvery: 2,
    });
    expect(resumed.metrics.map((m) => m.step)).toEqual([3, 4]);
    expect(snapshot(b.models.dit)).toEqual(after);
  }, 60_000);

  it('refuses a bad budget', async () => {
    const a = setup();
    await expect(finetuneWithPrfl({ ...a, steps: 0 })).rejects.toThrow(
      /steps must be a positive integer, got 0/,
    );
  });
});
