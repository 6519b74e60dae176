// PAVRM on its own: a reward model for noisy video latents, trained, evaluated by noise level, saved,
// loaded and used, with nothing but @prfl/reward, @prfl/tensor and tfjs.
//
//   node index.mjs [wasm|cpu]
//
// The backbone here is @prfl/reward/toy's small video transformer and the data a synthetic latent world
// (a blob that moves smoothly = good, or jitters = bad). With a real generator, pass its first K blocks
// instead (e.g. @prfl/models' `WanDiT.truncate(8)`) and your own labelled latents.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend, sigma, sigmaToTimestep } from '@prfl/tensor';
import {
  evaluateBySigmaBucket,
  loadReward,
  Pavrm,
  PavrmTrainer,
  saveReward,
  tensorPointwiseSource,
} from '@prfl/reward';
import { motionLatentBatch, TinyVideoBackbone } from '@prfl/reward/toy';

const backend = process.argv[2] ?? 'wasm';
const started = performance.now();
await initBackend({ backend });

// 1. Data: labelled latents [B, F, H, W, C] = [., 4, 8, 8, 4] with (uninformative) text embeddings.
const train = motionLatentBatch(new Generator('train'), 1024);
const test = motionLatentBatch(new Generator('test'), 128, {}, 'test-');

// 2. The model: a backbone (any FeatureBackbone; its embeddings frozen, its blocks trained), query
//    attention over its tokens and an MLP head. Small head widths for a small backbone.
const backbone = new TinyVideoBackbone('tiny', { seed: 1 });
const reward = new Pavrm(backbone, { hidden: [64, 32] });
console.log(`PAVRM: ${JSON.stringify(reward.config)}`);

// 3. Training: pointwise BCE at a random noise level per video. The paper's learning rates (head 1e-5,
//    blocks 1e-6) suit a pretrained 14B backbone; a toy from scratch needs larger ones.
const trainer = new PavrmTrainer(reward, {
  lrHead: 1e-2,
  lrBackbone: 3e-3,
  sigmaSampler: { kind: 'uniform' },
  onStep: (m) => {
    if (m.step % 16 === 0) {
      console.log(
        `step ${m.step}: loss ${m.loss.toFixed(3)}, batch accuracy ${m.accuracy.toFixed(2)}, grad norm ${m.gradNorm.toFixed(2)}, ${m.ms.toFixed(0)} ms`,
      );
    }
  },
});
await trainer.fit(tensorPointwiseSource(train), { epochs: 1, batchSize: 16, maxSteps: 64 });

// 4. Evaluation as in the paper: accuracy per sigma bucket on held-out videos.
console.log('\nheld-out accuracy by noise level:');
await evaluateBySigmaBucket(reward, test, { log: console.log });

// 5. Save (the reference's file layout: pavrm.json, query_attention / mlp / transformer safetensors) and
//    load onto a fresh backbone object.
//    The folder is temporary here: removed when the example ends, also on an error.
const dir = mkdtempSync(path.join(tmpdir(), 'pavrm-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
await saveReward(reward, dir);
const loaded = await loadReward(dir, new TinyVideoBackbone('tiny', { seed: 42 }));
console.log(`\nsaved to ${dir} and loaded back (removed when the example ends)`);

// 6. Use: reward probabilities of the first four test videos at a low and a high noise level, with the
//    same noise for both models.
const x0 = tf.slice(test.latents, [0, 0, 0, 0, 0], [4, -1, -1, -1, -1]);
const text = tf.slice(test.conditioning.text, [0, 0, 0], [4, -1, -1]);
const eps = new Generator('eps').normal(x0.shape);
const labels = Array.from(await tf.slice(test.labels, [0], [4]).data());
for (const level of [0.1, 0.9]) {
  const s = sigma(level);
  const xSigma = tf.add(tf.mul(1 - s, x0), tf.mul(s, eps));
  const t = Array(4).fill(sigmaToTimestep(s, { truncate: true }));
  const p = Array.from(await loaded.probability(xSigma, t, { text }).data());
  const q = Array.from(await reward.probability(xSigma, t, { text }).data());
  console.log(
    `sigma ${level}: p(good) = ${p.map((v) => v.toFixed(2)).join(', ')}  (labels ${labels.join(', ')}; same as before saving: ${p.every((v, i) => v === q[i])})`,
  );
}
console.log(`\ndone on ${backend} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
