// Early pruning with a process reward: sample 32 candidate videos, score them with PAVRM part-way through
// sampling (PAVRM reads noisy latents), continue only the best 8, and count the generator evaluations
// that were never paid for.
//
//   node index.mjs [wasm|cpu]
//
// The exit code is 1 if a check fails: the kept seeds must be better than a random pick, the compute must
// add up, and every survivor must end exactly on its target (pruning must not disturb the others).
//
// The "generator" is a toy: each seed has a clean target video (good or bad motion, known to us as the
// oracle but not to the reward), and its velocity v = (x - x0) / sigma follows the straight
// rectified-flow path to it. Any sampler works the same way: `sampleWithEarlyPruning` only needs a
// `step` callback that advances the live candidates, or call `pruneByReward` between the steps of your
// own loop.
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend, sigma, sigmaToTimestep } from '@prfl/tensor';
import {
  evaluateBySigmaBucket,
  Pavrm,
  PavrmTrainer,
  sampleWithEarlyPruning,
  tensorPointwiseSource,
} from '@prfl/reward';
import { motionLatentBatch, TinyVideoBackbone } from '@prfl/reward/toy';

const backend = process.argv[2] ?? 'wasm';
const started = performance.now();
await initBackend({ backend });

// 1. A process reward: a PAVRM trained briefly on the toy latent world (see examples/score-latents).
const reward = new Pavrm(new TinyVideoBackbone('tiny', { seed: 1 }), { hidden: [64, 32] });
const train = motionLatentBatch(new Generator('train'), 1024);
await new PavrmTrainer(reward, { lrHead: 1e-2, lrBackbone: 3e-3, sigmaSampler: { kind: 'uniform' } }).fit(
  tensorPointwiseSource(train),
  { epochs: 2, batchSize: 16, maxSteps: 128 },
);
const validation = motionLatentBatch(new Generator('validation'), 128, {}, 'val-');
const byBucket = await evaluateBySigmaBucket(reward, validation, { log: console.log });

// 2. The sampler: 20 Euler steps from sigma 1 to 0 (shift 1). Prune in the noisiest bucket where the
//    reward is at least 85% accurate (at the bucket's middle): earlier is cheaper but blinder.
const numSteps = 20;
const sigmas = Array.from({ length: numSteps + 1 }, (_, i) => 1 - i / numSteps);
const reliable = byBucket.buckets.filter((b) => b.accuracy >= 0.85).map((b) => b.bucket);
const noisiest = reliable.reduce((a, b) => (b.high > a.high ? b : a), { low: 0, high: 0 });
const pruneAt = (noisiest.low + noisiest.high) / 2;
const pruneAfter = sigmas.findIndex((s) => s <= pruneAt + 1e-9);
console.log(
  `\nreward >= 85% accurate up to sigma ${noisiest.high}: prune after step ${pruneAfter} of ${numSteps} (sigma ${sigmas[pruneAfter].toFixed(2)})`,
);

// 3. 32 seeds: each has a target video the toy generator will produce (half good, half bad).
const n = 32;
const targets = motionLatentBatch(new Generator('seeds'), n, {}, 'seed-');
const oracle = Array.from(await targets.labels.data());
const noise = new Generator('noise').normal(targets.latents.shape);

const result = await sampleWithEarlyPruning({
  reward,
  initial: noise,
  conditioning: targets.conditioning,
  numSteps,
  timestepAfter: (k) => sigmaToTimestep(sigma(sigmas[k]), { truncate: true }),
  pruneAfter,
  keep: { topK: 8 },
  evaluationsPerStep: 2, // a generator with classifier-free guidance runs twice per step
  // One Euler step of the live candidates; `candidates` says which seeds they are.
  step: ({ sample, index, candidates }) =>
    tf.tidy(() => {
      const x0 = tf.gather(targets.latents, tf.tensor1d(candidates, 'int32'));
      const [s, next] = [sigmas[index], sigmas[index + 1]];
      const velocity = tf.div(tf.sub(sample, x0), s);
      return tf.add(sample, tf.mul(velocity, next - s));
    }),
});

const decision = result.decisions[0];
console.log('\nseed  oracle  p(good) at the pruning point');
decision.candidates.forEach((c, i) => {
  const kept = decision.kept.includes(c) ? '  kept' : '';
  console.log(
    `${String(c).padStart(4)}  ${oracle[c] ? 'good' : 'bad '}    ${decision.probabilities[i].toFixed(2)}${kept}`,
  );
});
const goodKept = result.candidates.filter((c) => oracle[c] === 1).length;
const c = result.compute;
console.log(
  `\nkept ${result.candidates.length} of ${n}: ${goodKept} good (a random pick would average ${(result.candidates.length * oracle.filter(Boolean).length) / n})`,
);
console.log(
  `generator evaluations: ${c.evaluations} instead of ${c.evaluationsWithoutPruning} (saved ${c.evaluationsSaved}, ${(100 * c.fractionSaved).toFixed(0)}%), for ${c.rewardEvaluations} reward forwards of ${reward.config.blocks} blocks each`,
);
console.log(`final samples: [${result.samples.shape.join(', ')}]`);

// Checks. The toy generator's velocity is exact for the straight path, so Euler lands every survivor on
// its own target: a survivor whose rows were mixed up with another seed's would not.
const failures = [];
const check = (ok, what) => {
  console.log(`  check: ${what}: ${ok ? 'ok' : 'FAILED'}`);
  if (!ok) failures.push(what);
};
const randomPick = (result.candidates.length * oracle.filter(Boolean).length) / n;
check(result.candidates.length === 8, `8 seeds kept (got ${result.candidates.length})`);
check(goodKept > randomPick, `more good seeds kept than a random pick (${goodKept} > ${randomPick})`);
const expected = 2 * (n * pruneAfter + result.candidates.length * (numSteps - pruneAfter));
check(
  c.evaluations === expected,
  `generator evaluations ${c.evaluations} = 2 x (32 x ${pruneAfter} + 8 x ${numSteps - pruneAfter})`,
);
check(
  c.evaluationsSaved > 0 && c.evaluationsSaved === c.evaluationsWithoutPruning - c.evaluations,
  'evaluations saved add up',
);
const wanted = tf.gather(targets.latents, tf.tensor1d(result.candidates, 'int32'));
const error = tf.max(tf.abs(tf.sub(result.samples, wanted))).dataSync()[0];
check(error < 1e-4, `every survivor ends on its own target (largest error ${error.toExponential(1)})`);
if (failures.length > 0) {
  console.error(`\n${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
console.log(`\ndone on ${backend} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
