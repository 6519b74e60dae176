// PRFL in Node, end to end at toy size: a tiny Wan DiT fine-tuned against a frozen latent reward (PAVRM
// on a frozen copy of the DiT's first two blocks), with the paper's step (SFT term, untaped rollout to a
// random step k of Wan's 40-step UniPC schedule, step k under the tape, the reward at t_{k+1}, hinge,
// accumulation, clipping, AdamW), per-step metrics, the frozen reward's mean score on held-out noise and
// prompts before and after, and a checkpoint written, resumed and removed.
//
//   node index.mjs [wasm|cpu]
//
// Toy choices, each marked below: random "videos" and prompts instead of a dataset, a PAVRM head that is
// untrained (it stands in for one trained as in examples/score-latents: PRFL only needs *a* frozen
// latent reward), a learning rate for an untrained model instead of the paper's 5e-6, and no SFT term.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend } from '@prfl/tensor';
import { WanDiT } from '@prfl/models';
import { Pavrm } from '@prfl/reward';
import { FlowUniPCScheduler } from '@prfl/schedulers';
import { evaluateProcessReward, PrflTrainer, tensorVideoSource } from '@prfl/refl';

const backend = process.argv[2] ?? 'wasm';
const started = performance.now();
await initBackend({ backend });

// 1. The generator to fine-tune and the frozen reward. Wan's init zeroes the DiT's output head (a
//    pretrained generator's is not): give it small weights so the generator starts from a non-trivial
//    velocity. PAVRM reads a frozen *copy* of the generator's first two blocks (truncate copies).
const generator = new WanDiT('tiny', { seed: 1 });
const head = generator.namedVariables().get('head.head.weight');
head.assign(tf.tidy(() => new Generator('head').normal(head.shape, 0, 0.02)));
const backbone = generator.truncate(2);
const reward = new Pavrm(backbone, { hidden: [64, 32], seed: 3 });

// 2. Data: 8 training "videos" (latents [F, H, W, C] = [2, 4, 4, 16], what the tiny VAE makes of 5
//    frames of 32 x 32) with 8-token prompt embeddings, and held-out noise and prompts for evaluation.
//    Toy: random values; a real run reads VAE latents and text-encoder embeddings.
const data = new Generator('data');
const videos = {
  latents: data.normal([8, 2, 4, 4, 16], 0, 1),
  conditioning: { text: data.normal([8, 8, 32]) },
};
const heldOut = new Generator('held-out');
const evalNoise = heldOut.normal([4, 2, 4, 4, 16]);
const evalText = { text: heldOut.normal([4, 8, 32]) };
const nullConditioning = { text: tf.zeros([1, 8, 32]) }; // the empty prompt's embedding, for text dropout

// 3. The held-out score: sample the whole 40-step chain from fixed noise without gradient and average
//    sigmoid(PAVRM) over the latents it passes through (the number PRFL raises).
const scheduler = new FlowUniPCScheduler();
const schedule = scheduler.schedule(40, { shift: 5 });
const heldOutScore = () =>
  evaluateProcessReward({
    generator,
    reward,
    scheduler,
    schedule,
    noise: evalNoise,
    conditioning: evalText,
    at: [10, 20, 30, 40],
  }).mean;
const before = heldOutScore();
console.log(`held-out mean reward before: ${before.toFixed(4)}`);

// 4. Train: the paper's defaults except a toy learning rate, a 2-step window and sftWeight 0 (the paper's
//    "without SFT" rows). Toy: the SFT term regresses the velocity onto real videos to keep the generator
//    on their manifold; on random latents and an untrained DiT its gradient is ~100x the reward's and
//    would only teach noise. A real run keeps the default sftWeight 1.
const dir = mkdtempSync(path.join(tmpdir(), 'prfl-train-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const options = {
  lr: 3e-3,
  sftWeight: 0,
  accumulationSteps: 2,
  seed: 0,
  onStep: (m) => {
    console.log(
      `step ${String(m.step).padStart(2)}  k ${String(m.k).padStart(2)}  sigma ${m.sigma.toFixed(3)} -> ${m.sigmaNext.toFixed(3)}  loss ${m.loss.toFixed(4)} (reward term ${m.rewardLoss.toFixed(4)}, sft ${m.sftLoss?.toFixed(4) ?? 'off'})  reward ${m.reward.mean.toFixed(4)}  grad ${m.gradNorm.reward.toFixed(3)}${m.updatesThisStep ? '  update' : ''}  ${m.ms.toFixed(0)} ms`,
    );
  },
};
const components = { generator, reward, nullConditioning, scheduler, schedule };
const trainer = new PrflTrainer(components, options);
const source = tensorVideoSource(videos);
await trainer.fit(source, {
  epochs: 20,
  batchSize: 2,
  maxSteps: 24,
  checkpointDir: dir,
  checkpointEvery: 12,
});
const after = heldOutScore();
console.log(
  `held-out mean reward after ${trainer.position.updates} updates: ${after.toFixed(4)} (before ${before.toFixed(4)})`,
);

// 5. The checkpoint: weights, AdamW state, the open window, random streams and data position, written
//    atomically; a new trainer resumes from it exactly where the first one stopped.
console.log(`checkpoint in ${dir}: ${readdirSync(dir).sort().join(', ')} (removed when the example ends)`);
const resumed = await PrflTrainer.resume(dir, components, { ...options, onStep: undefined });
console.log(
  `resumed at step ${resumed.position.step}, epoch ${resumed.position.epoch}, ${resumed.position.updates} updates`,
);
resumed.dispose();
trainer.dispose();

if (!(after > before)) {
  console.error('the held-out reward did not rise');
  process.exitCode = 1;
}
console.log(`\ndone on ${backend} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
