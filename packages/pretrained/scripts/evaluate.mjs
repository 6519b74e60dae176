// Measures the quality of a weights folder written by the recipe (default: this package's weights/) on
// prompts and seeds no stage trained on, and writes results/quality.json:
//   - VAE: PSNR and the oracle's agreement (motion quality, prompt adherence) between each held-out clip
//     and its reconstruction;
//   - generator (default sampler): motion-good and prompt-adherence rates with 95% intervals, on the
//     held-out prompts and on the training prompts with new seeds; time per video;
//   - PAVRM: accuracy per sigma bucket (the paper's five buckets, one random sigma per bucket per video)
//     on held-out generations labelled by the oracle; with --ablations, PAVRMs trained the recipe's way
//     on the same generations (from --run-dir) with another aggregation, another K or the BT loss.
//
//   node scripts/evaluate.mjs [--weights DIR] [--run-dir DIR] [--out results/quality.json]
//                             [--vae-clips 500] [--videos 112] [--reward-videos 336]
//                             [--ablations] [--ablation-steps 600] [--quick]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { formatPrompt } from '@prfl/datasets';
import { evaluateBySigmaBucket } from '@prfl/reward';
import { initBackend, openSafetensors } from '@prfl/tensor';
import {
  disposeEmbedded,
  disposePavrm,
  EMBEDDED_WORLD,
  evaluateGenerator,
  evaluateVae,
  generateJudged,
  loadEmbedded,
  worldPrompts,
} from '@prfl/pretrained';
import { GENERATIONS_FILE, progressLine, trainReward } from '@prfl/pretrained/recipe';

const here = import.meta.dirname;
const { values } = parseArgs({
  options: {
    weights: { type: 'string', default: path.join(here, '..', 'weights') },
    'run-dir': { type: 'string' },
    out: { type: 'string', default: path.join(here, '..', 'results', 'quality.json') },
    'vae-clips': { type: 'string', default: '500' },
    videos: { type: 'string', default: '112' },
    'reward-videos': { type: 'string', default: '336' },
    ablations: { type: 'boolean', default: false },
    'ablation-steps': { type: 'string', default: '600' },
    quick: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'wasm' },
  },
});
const int = (name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(values[name])}`);
  return n;
};
const quick = values.quick;
const vaeClips = quick ? 16 : int('vae-clips');
const videos = quick ? 14 : int('videos');
const rewardVideos = quick ? 28 : int('reward-videos');

const started = performance.now();
await initBackend({ backend: values.backend });
const models = await loadEmbedded({ from: values.weights });
const log = (line) => process.stderr.write(`${line}\n`);
const result = {
  script: 'scripts/evaluate.mjs',
  command: `node scripts/evaluate.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    node: process.version,
    backend: tf.getBackend(),
  },
  weights: { recipe: models.manifest.recipe },
  world: EMBEDDED_WORLD,
};

// VAE.
log(`vae: ${vaeClips} held-out clips`);
result.vae = await evaluateVae(models.vae, { count: vaeClips, seed: 'eval-vae' });

// Generator.
const progress = (stage) => {
  const t = performance.now();
  let last = 0;
  return (done, total) => {
    if (performance.now() - last > 5000 || done === total) {
      last = performance.now();
      log(progressLine(stage, done, total, performance.now() - t));
    }
  };
};
const summary = (e) => ({
  side: e.side,
  motionGood: e.motionGood,
  adherence: e.adherence,
  colour: e.colour,
  shape: e.shape,
  motion: e.motion,
  size: e.size,
  msPerVideo: Math.round(e.msPerVideo),
  backend: e.backend,
  guidanceScale: e.guidanceScale,
  numSteps: e.numSteps,
});
result.generator = {};
for (const side of ['held-out', 'train']) {
  const e = await evaluateGenerator(models, {
    count: videos,
    side,
    seed: 'eval',
    onProgress: progress(`gen ${side}`),
  });
  result.generator[side] = summary(e);
}

// PAVRM on held-out generations.
const heldOut = worldPrompts(EMBEDDED_WORLD, 'held-out').map(formatPrompt);
const prompts = Array.from({ length: rewardVideos }, (_, i) => heldOut[i % heldOut.length]);
const gens = await generateJudged(models, {
  prompts,
  seed: 'eval-reward',
  onProgress: progress('reward data'),
});
const labels = tf.tensor1d(
  gens.videos.map((v) => v.motionGood),
  'float32',
);
const evalData = {
  ids: gens.videos.map((v) => v.seed),
  latents: gens.latents,
  labels,
  conditioning: { text: gens.text },
};
const promptOfSeed = new Map(gens.videos.map((v) => [v.seed, v.prompt]));
const goodRate = gens.videos.filter((v) => v.motionGood).length / gens.videos.length;
const buckets = async (reward) => {
  // groupOf: the ROC-AUC within a prompt too, which knowing the prompt's prior does not raise.
  const e = await evaluateBySigmaBucket(reward, evalData, { seed: 7, groupOf: (id) => promptOfSeed.get(id) });
  return {
    average: e.average.accuracy,
    rocAuc: e.average.rocAuc,
    withinPromptAuc: e.average.withinGroupAuc,
    withinPromptPairs: e.withinGroupPairs,
    buckets: e.buckets.map((b) => ({
      bucket: [b.bucket.low, b.bucket.high],
      accuracy: b.accuracy,
      rocAuc: b.rocAuc,
      withinPromptAuc: b.withinGroupAuc,
      n: b.n,
    })),
  };
};
result.reward = {
  videos: rewardVideos,
  motionGoodRate: goodRate,
  shipped: await buckets(models.reward),
  majorityBaseline: Math.max(goodRate, 1 - goodRate),
};

if (values.ablations) {
  const runDir = values['run-dir'];
  if (runDir === undefined)
    throw new Error(
      '--ablations: give --run-dir, the pretraining run folder (its reward generations are reused)',
    );
  const variants = [
    { name: 'attention', aggregation: 'attention' },
    { name: 'mean', aggregation: 'mean' },
    { name: 'max', aggregation: 'max' },
    { name: 'K=1', blocks: 1 },
    { name: 'K=3', blocks: 3 },
    { name: 'bradley-terry', loss: 'bradley-terry' },
    { name: 'soft labels (oracle score)', target: 'score' },
    { name: 'query-attention (same budget)' },
  ];
  const recipe = models.manifest.recipe.reward ?? {};
  // The run's generations are reused as they are: their cache key (the generator's step) is read from
  // the cache itself, so that no ablation makes (and overwrites) them again.
  const cache = await openSafetensors(path.join(runDir, 'reward', GENERATIONS_FILE));
  const cacheKey = cache.metadata?.cacheKey ?? '';
  await cache.close();
  result.reward.ablations = [];
  for (const v of variants) {
    const { name, ...over } = v;
    log(`ablation: ${name}`);
    const t = performance.now();
    const trained = await trainReward({
      ...recipe,
      ...over,
      models,
      steps: quick ? 4 : int('ablation-steps'),
      runDir: path.join(runDir, 'reward'),
      cacheKey,
      checkpointDir: path.join(runDir, 'ablations', name.replace(/[^a-zA-Z0-9=-]+/g, '-')),
    });
    result.reward.ablations.push({
      name,
      ...over,
      ...(await buckets(trained.reward)),
      seconds: Math.round((performance.now() - t) / 1000),
    });
    disposePavrm(trained.reward);
  }
}
tf.dispose([gens.latents, gens.text, labels]);
disposeEmbedded(models);

result.elapsedSeconds = Math.round((performance.now() - started) / 1000);
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
log(`written ${values.out} (${result.elapsedSeconds} s)`);
