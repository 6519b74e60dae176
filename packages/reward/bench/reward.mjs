// PAVRM forward and forward+backward time and peak tensor memory per backend, for a tiny and a mid-size
// backbone-like feature extractor (@prfl/reward/toy's video transformer), on the built package in plain
// Node. Writes bench/results/reward.json with the command that made it.
//
//   node bench/reward.mjs [--backends cpu,wasm] [--repeats 3] [--sizes tiny,mid]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend, measureMemory, shutdownBackend, timestep } from '@prfl/tensor';
import { bceWithLogits, Pavrm } from '@prfl/reward';
import { TINY_VIDEO_BACKBONE_PRESETS, TinyVideoBackbone } from '@prfl/reward/toy';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const backends = option('backends', 'cpu,wasm').split(',');
const repeats = Number(option('repeats', '3'));
const sizes = option('sizes', 'tiny,mid').split(',');

/** Latent shapes per size: tiny as in the tests; mid = Wan's [1, 2, 2] patch, 4 x 16 x 16 latents -> 256 tokens. */
const SETUPS = {
  tiny: { backbone: 'tiny', batch: 4, latent: [4, 8, 8, 4], hidden: [64, 32] },
  mid: { backbone: 'mid', batch: 2, latent: [4, 16, 16, 16], hidden: [1024, 512] },
};

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn) {
  const t0 = performance.now();
  const out = fn();
  const values = await Promise.all((Array.isArray(out) ? out : [out]).map((t) => t.data()));
  const ms = performance.now() - t0;
  tf.dispose(out);
  return { ms, values };
}

const results = [];
for (const backend of backends) {
  await initBackend({ backend });
  for (const size of sizes) {
    const setup = SETUPS[size];
    const config = TINY_VIDEO_BACKBONE_PRESETS[setup.backbone];
    const gen = new Generator(`bench/${size}`);
    const backbone = new TinyVideoBackbone(setup.backbone, { seed: 1 });
    const reward = new Pavrm(backbone, { hidden: setup.hidden });
    const b = setup.batch;
    const x = gen.normal([b, ...setup.latent]);
    const text = gen.normal([b, 4, config.textDim]);
    const labels = tf.tensor1d(Array.from({ length: b }, (_, i) => i % 2));
    const ts = Array.from({ length: b }, (_, i) => timestep(100 + 800 * (i / Math.max(1, b - 1))));
    const cond = { text };
    const { backbone: blockVars, head } = reward.trainableVariables();
    const vars = [...blockVars, ...head];
    const forward = () => reward.score(x, ts, cond);
    const forwardBackward = () => {
      const { value, grads } = tf.variableGrads(() => bceWithLogits(reward.score(x, ts, cond), labels), vars);
      return [value, ...Object.values(grads)];
    };
    const headOnly = () => {
      const tokens = tf.tidy(() => reward.features(x, ts, cond));
      const t0 = performance.now();
      const { value, grads } = tf.variableGrads(
        () => bceWithLogits(reward.scoreFeatures(tokens), labels),
        head,
      );
      value.dataSync();
      const ms = performance.now() - t0;
      tf.dispose([tokens, value, ...Object.values(grads)]);
      return ms;
    };
    // Warm-up (kernel compilation, caches), then measured repeats.
    await time(forward);
    await time(forwardBackward);
    const fwd = [];
    const fwdBwd = [];
    const headMs = [];
    for (let r = 0; r < repeats; r++) {
      fwd.push((await time(forward)).ms);
      fwdBwd.push((await time(forwardBackward)).ms);
      headMs.push(headOnly());
    }
    const memForward = measureMemory(() => tf.dispose(forward()));
    const memTrain = measureMemory(() => tf.dispose(forwardBackward()));
    const tokens =
      (setup.latent[0] / config.patchSize[0]) *
      (setup.latent[1] / config.patchSize[1]) *
      (setup.latent[2] / config.patchSize[2]);
    const parameters = (m) => [...m.values()].reduce((a, v) => a + v.size, 0);
    const row = {
      backend,
      size,
      backbone: { ...config },
      head: { ...reward.config },
      batch: b,
      latent: setup.latent,
      tokens,
      parameters: {
        backbone: parameters(backbone.namedVariables()),
        head: parameters(reward.headVariables()),
      },
      forwardMs: Number(median(fwd).toFixed(2)),
      forwardBackwardMs: Number(median(fwdBwd).toFixed(2)),
      headForwardBackwardMs: Number(median(headMs).toFixed(2)),
      peakBytesForward: memForward.peakBytes,
      peakBytesForwardBackward: memTrain.peakBytes,
      peakBufferBytesForward: memForward.peakBufferBytes,
      peakBufferBytesForwardBackward: memTrain.peakBufferBytes,
      repeats,
    };
    results.push(row);
    console.log(
      `${backend.padEnd(4)} ${size.padEnd(4)} B=${b} N=${tokens} D=${config.dim} K=${config.numBlocks}: forward ${row.forwardMs} ms, forward+backward ${row.forwardBackwardMs} ms (head alone ${row.headForwardBackwardMs} ms), peak ${(row.peakBytesForward / 2 ** 20).toFixed(1)} / ${(row.peakBytesForwardBackward / 2 ** 20).toFixed(1)} MiB (distinct buffers ${(row.peakBufferBytesForward / 2 ** 20).toFixed(1)} / ${(row.peakBufferBytesForwardBackward / 2 ** 20).toFixed(1)} MiB)`,
    );
    tf.dispose([x, text, labels]);
    reward.dispose();
    backbone.dispose();
  }
  await shutdownBackend();
}

const out = {
  command: `node bench/reward.mjs ${args.join(' ')}`.trim(),
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  note: 'median of the repeats after one warm-up; peakBytes = rise of tf.memory().numBytes during one call (reshapes and tape clones count again), peakBufferBytes = rise in distinct buffers (measureMemory of @prfl/tensor)',
  results,
};
const file = path.join(import.meta.dirname, 'results', 'reward.json');
mkdirSync(path.dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), file)}`);
