// Score video latents with a PAVRM, with nothing but @prfl/reward, @prfl/tensor and tfjs.
//
//   node index.mjs [wasm|cpu]
//
// 1. A PAVRM on a toy backbone: trained on a synthetic latent world (a blob that moves smoothly = good,
//    or jitters = bad), judged by noise level, saved in the reference's file layout and loaded back.
// 2. Latents from a file, as a PyTorch pipeline writes them ([B, C, F, H, W] in a safetensors file):
//    read, converted to prfl's channels-last layout, noised to a few levels and scored.
// 3. A PAVRM head written by PyTorch: the reference's training script saves its query attention and MLP
//    with torch.save (`query_attention_step_N.ckpt`, `mlp_step_N.ckpt`). In a clone of the repository,
//    the head of that format in packages/reward/fixtures/head is loaded as it is and scores token features
//    (what the first K blocks of a generator output) to PyTorch's own numbers. Outside a clone the files
//    are not there and this part says so.
//
// With a real generator, the backbone is its first K blocks (e.g. @prfl/models' `WanDiT.truncate(8)`).
// The exit code is 1 if any check fails.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import {
  Generator,
  initBackend,
  latentsFromTorch,
  latentsToTorch,
  loadSafetensors,
  saveSafetensors,
  sigma,
  sigmaToTimestep,
} from '@prfl/tensor';
import {
  evaluateBySigmaBucket,
  loadReward,
  loadRewardHead,
  Pavrm,
  PavrmTrainer,
  saveReward,
  tensorPointwiseSource,
} from '@prfl/reward';
import { motionLatentBatch, TinyVideoBackbone } from '@prfl/reward/toy';

const backend = process.argv[2] ?? 'wasm';
const started = performance.now();
await initBackend({ backend });

const failures = [];
function check(ok, what) {
  console.log(`  check: ${what}: ${ok ? 'ok' : 'FAILED'}`);
  if (!ok) failures.push(what);
}

// The example's files go to a temporary folder, removed when it ends (also on an error).
const dir = mkdtempSync(path.join(tmpdir(), 'score-latents-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------
// 1. A PAVRM: a backbone (any FeatureBackbone; its embeddings frozen, its blocks trained), query attention
//    over its tokens and an MLP head. Small head widths for a small backbone.
const train = motionLatentBatch(new Generator('train'), 1024); // latents [B, 4, 8, 8, 4], labels, text
const test = motionLatentBatch(new Generator('test'), 128, {}, 'test-');
const reward = new Pavrm(new TinyVideoBackbone('tiny', { seed: 1 }), { hidden: [64, 32] });
console.log(`1. PAVRM ${JSON.stringify(reward.config)}`);

// Pointwise BCE at a random noise level per video. The paper's learning rates (head 1e-5, blocks 1e-6)
// suit a pretrained 14B backbone; a toy trained from scratch needs larger ones.
const trainer = new PavrmTrainer(reward, {
  lrHead: 1e-2,
  lrBackbone: 3e-3,
  sigmaSampler: { kind: 'uniform' },
  onStep: (m) => {
    if (m.step % 16 === 0) {
      console.log(
        `step ${m.step}: loss ${m.loss.toFixed(3)}, batch accuracy ${m.accuracy.toFixed(2)}, ${m.ms.toFixed(0)} ms`,
      );
    }
  },
});
await trainer.fit(tensorPointwiseSource(train), { epochs: 1, batchSize: 16, maxSteps: 64 });

console.log('\nheld-out accuracy by noise level:');
const byBucket = await evaluateBySigmaBucket(reward, test, { log: console.log });
const [cleanest, noisiest] = [byBucket.buckets[0], byBucket.buckets.at(-1)];
check(cleanest.accuracy >= 0.8, `accuracy at sigma <= 0.2 is ${cleanest.accuracy.toFixed(3)} (>= 0.8)`);
check(
  cleanest.accuracy > noisiest.accuracy,
  'the reward sees less at high noise (accuracy falls from the cleanest to the noisiest bucket)',
);

// Save (pavrm.json + query_attention / mlp / transformer safetensors) and load onto a fresh backbone
// object: the backbone's blocks come from the files, whatever its own initial weights.
const pavrmDir = path.join(dir, 'pavrm');
await saveReward(reward, pavrmDir);
const loaded = await loadReward(pavrmDir, new TinyVideoBackbone('tiny', { seed: 42 }));
console.log(`\nsaved to ${pavrmDir} and loaded back`);

// ---------------------------------------------------------------------------------------------------
// 2. Latents from a file. A PyTorch pipeline holds latents as [B, C, F, H, W]; here the held-out ones are
//    written that way, with their text embeddings, to stand in for such a file.
const latentFile = path.join(dir, 'latents.safetensors');
const torchLatents = latentsToTorch(test.latents);
await saveSafetensors(latentFile, { latents: torchLatents, text: test.conditioning.text });
torchLatents.dispose();

const file = await loadSafetensors(latentFile);
const x0 = latentsFromTorch(file.latents); // -> [B, F, H, W, C], channels last
const text = file.text;
const labels = await test.labels.data();
console.log(
  `\n2. ${x0.shape[0]} latents [${x0.shape.slice(1).join(', ')}] read from ${path.basename(latentFile)}`,
);

// A latent at noise level sigma: x_sigma = (1 - sigma) x0 + sigma eps, read at timestep trunc(1000 sigma).
// The same eps for both models, so the loaded model must give the same numbers as the trained one.
const eps = new Generator('eps').normal(x0.shape);
const meanOf = (values, label) => {
  const picked = values.filter((_, i) => labels[i] === label);
  return picked.reduce((a, b) => a + b, 0) / picked.length;
};
for (const level of [0.1, 0.5, 0.9]) {
  const s = sigma(level);
  const xSigma = tf.tidy(() => tf.add(tf.mul(1 - s, x0), tf.mul(s, eps)));
  const t = sigmaToTimestep(s, { truncate: true });
  const pLoaded = await loaded.probability(xSigma, t, { text }).data();
  const pTrained = await reward.probability(xSigma, t, { text }).data();
  xSigma.dispose();
  const good = meanOf(Array.from(pLoaded), 1);
  const bad = meanOf(Array.from(pLoaded), 0);
  const same = pLoaded.every((v, i) => v === pTrained[i]);
  console.log(
    `sigma ${level} (timestep ${t}): mean p(good) ${good.toFixed(3)} on good videos, ${bad.toFixed(3)} on bad ones; first four ${Array.from(pLoaded.slice(0, 4), (v) => v.toFixed(2)).join(', ')} (labels ${Array.from(labels.slice(0, 4)).join(', ')}; same as before saving: ${same})`,
  );
  check(same, `sigma ${level}: the loaded PAVRM scores exactly as the trained one`);
  if (level === 0.1) check(good > bad + 0.3, 'at sigma 0.1, good videos score well above bad ones');
}
tf.dispose([x0, text, eps, file.latents]);

// ---------------------------------------------------------------------------------------------------
// 3. A head saved by PyTorch. `Pavrm.forFeatures(D)` is a PAVRM without a backbone: it scores token
//    features [B, N, D] computed elsewhere (a large generator's first K blocks run once, or in another
//    runtime). The fixture was written by PyTorch 1.13 (packages/reward/scripts/make-fixtures.py): a head
//    of width 16, 4 heads, MLP 12 -> 8, the reference's torch.save files, the tokens and PyTorch's logits.
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.resolve(here, '../../packages/reward/fixtures/head');
console.log("\n3. a PAVRM head saved by PyTorch (torch.save, the reference's .ckpt files)");
if (!existsSync(path.join(fixture, 'head.json'))) {
  console.log(
    `  skipped: ${fixture} is not here. The files are part of a clone of the prfl repository, not of the npm tarballs; run this example from examples/score-latents in a clone to load them.`,
  );
} else {
  const fx = JSON.parse(readFileSync(path.join(fixture, 'head.json'), 'utf8'));
  const { featureDim, numHeads, hidden, batch, tokens: numTokens } = fx.config;
  const head = Pavrm.forFeatures(featureDim, { numHeads, hidden });
  // The torch.save zip archives are read by a restricted unpickler: tensors and plain containers only.
  await loadRewardHead(head, {
    queryAttention: path.join(fixture, 'query_attention_step_100.ckpt'),
    mlp: path.join(fixture, 'mlp_step_100.ckpt'),
  });
  const tokens = tf.tensor3d(fx.tokens, [batch, numTokens, featureDim]);
  const logits = Array.from(await head.scoreFeatures(tokens).data());
  const torchLogits = fx.outputs['query-attention'].logits;
  const worst = Math.max(...logits.map((v, i) => Math.abs(v - torchLogits[i])));
  console.log(`  logits here:    ${logits.map((v) => v.toFixed(6)).join(', ')}`);
  console.log(`  PyTorch's:      ${torchLogits.map((v) => v.toFixed(6)).join(', ')}`);
  check(worst < 1e-4, `largest difference ${worst.toExponential(1)} (< 1e-4)`);
  tokens.dispose();
  head.dispose();
}

if (failures.length > 0) {
  console.error(`\n${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
console.log(`\ndone on ${backend} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
