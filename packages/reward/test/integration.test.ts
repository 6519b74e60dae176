/**
 * End to end: a PAVRM on the toy backbone learns a label that needs motion (a smoothly moving blob vs
 * a jittering one) from a brief training run, and is judged on held-out videos by sigma bucket.
 */
import { assertNoLeak, backendsUnderTest, Generator, initBackend, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  disposeBatch,
  evaluateBySigmaBucket,
  formatBucketTable,
  Pavrm,
  PavrmTrainer,
  tensorPairwiseSource,
  tensorPointwiseSource,
} from '../src/index.js';
import { motionLatentBatch, motionLatentPairs, TinyVideoBackbone } from '../src/toy/index.js';

describe.each(backendsUnderTest())('PAVRM learns motion quality on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('BCE: well above chance on held-out videos at low noise, chance-level only where noise hides motion', async () => {
    const train = motionLatentBatch(new Generator('train'), 1024);
    const test = motionLatentBatch(new Generator('held-out'), 128, {}, 'test-');
    const backbone = new TinyVideoBackbone('tiny', { seed: 1 });
    const reward = new Pavrm(backbone, { hidden: [64, 32] });
    const trainer = new PavrmTrainer(reward, {
      lrHead: 1e-2,
      lrBackbone: 3e-3,
      seed: 3,
      sigmaSampler: { kind: 'uniform' },
    });
    const before = await evaluateBySigmaBucket(reward, test);
    const started = performance.now();
    await trainer.fit(tensorPointwiseSource(train), { epochs: 1, batchSize: 16, maxSteps: 64 });
    const seconds = (performance.now() - started) / 1000;
    const after = await evaluateBySigmaBucket(reward, test);
    console.log(
      `${backend}: 64 steps in ${seconds.toFixed(1)} s\nbefore\n${formatBucketTable(before)}\nafter\n${formatBucketTable(after)}`,
    );
    const [low, mid] = after.buckets;
    expect(low!.accuracy).toBeGreaterThan(0.8);
    expect(mid!.accuracy).toBeGreaterThan(0.7);
    expect(low!.rocAuc).toBeGreaterThan(0.9);
    expect(after.average.accuracy).toBeGreaterThan(0.6);
    expect(after.average.accuracy).toBeGreaterThan(before.average.accuracy + 0.1);
    disposeBatch(train);
    disposeBatch(test);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });

  it('Bradley-Terry on pairs: the better video of held-out pairs gets the higher reward at low noise', async () => {
    const pairs = motionLatentPairs(new Generator('bt-train'), 512);
    const test = motionLatentBatch(new Generator('bt-held-out'), 96, {}, 'bt-test-');
    const backbone = new TinyVideoBackbone('tiny', { seed: 2 });
    const reward = new Pavrm(backbone, { hidden: [64, 32] });
    const trainer = new PavrmTrainer(reward, {
      lrHead: 3e-3,
      lrBackbone: 3e-3,
      seed: 4,
      sigmaSampler: { kind: 'uniform' },
    });
    await trainer.fit(tensorPairwiseSource(pairs), { epochs: 1, batchSize: 16, maxSteps: 48 });
    const after = await evaluateBySigmaBucket(reward, test);
    // BT fixes no threshold (logits are defined up to a constant): judge by ranking.
    expect(after.buckets[0]!.rocAuc).toBeGreaterThan(0.8);
    await assertNoLeak(() => evaluateBySigmaBucket(reward, test), { iterations: 2, label: 'evaluation' });
    disposeBatch(pairs);
    disposeBatch(test);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });
});
