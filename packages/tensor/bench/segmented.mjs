// Segmented (checkpointed) backprop against the plain tape on a pre-norm residual MLP chain: time per
// gradient step and peak tensor memory, plus what measuring memory costs (MemoryMeter against
// tf.profile against nothing). Runs on the *built* package in plain Node. Usage:
//   node bench/segmented.mjs [--backends cpu,wasm] [--depth 8] [--width 256] [--hidden 1024]
//                            [--batch 256] [--reps 3] [--out bench/results/segmented.json]
// PRFL_TENSOR_ENTRY=/path/to/bundle.js points the script at another build of @prfl/tensor.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';

const lib = await import(process.env.PRFL_TENSOR_ENTRY ?? '@prfl/tensor');
const {
  initBackend,
  shutdownBackend,
  describeBackend,
  segmentedGradients,
  measureMemory,
  MemoryMeter,
  formatBytes,
} = lib;

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,wasm' },
    depth: { type: 'string', default: '8' },
    width: { type: 'string', default: '256' },
    hidden: { type: 'string', default: '1024' },
    batch: { type: 'string', default: '256' },
    reps: { type: 'string', default: '3' },
    out: { type: 'string', default: 'bench/results/segmented.json' },
  },
});
const depth = Number(values.depth);
const width = Number(values.width);
const hidden = Number(values.hidden);
const batch = Number(values.batch);
const reps = Number(values.reps);

function makeChain() {
  let seed = 1;
  const v = (shape, scale, trainable = true) =>
    tf.variable(
      tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed++), scale)),
      trainable,
    );
  const blocks = Array.from({ length: depth }, () => ({
    gamma: tf.variable(tf.ones([width])),
    beta: v([width], 0.1),
    w1: v([width, hidden], 1 / Math.sqrt(width)),
    b1: v([hidden], 0.1),
    w2: v([hidden, width], 1 / Math.sqrt(hidden)),
  }));
  const head = v([width, 8], 1 / Math.sqrt(width));
  const target = tf.randomNormal([1, 8], 0, 1, 'float32', 7);
  const segments = blocks.map((b) => (x) => {
    const { mean, variance } = tf.moments(x, -1, true);
    const n = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), b.gamma), b.beta);
    const h = tf.add(tf.matMul(n, b.w1), b.b1);
    const a = tf.mul(h, tf.sigmoid(tf.mul(h, 1.702)));
    return tf.add(x, tf.matMul(a, b.w2));
  });
  const loss = (out) => tf.mean(tf.square(tf.sub(tf.matMul(out, head), target)));
  const variables = [head, ...blocks.flatMap((b) => [b.gamma, b.beta, b.w1, b.b1, b.w2])];
  return { segments, loss, variables };
}

async function settle(result) {
  // Wait for the backend to finish (matters on GPU), then free everything the step returned.
  const tensors = [result.value, ...Object.values(result.grads)];
  await Promise.all(tensors.map((t) => t.data()));
  tf.dispose(tensors);
}

async function timeInterleaved(fns) {
  for (const fn of fns) await fn(); // warm-up
  const total = fns.map(() => 0);
  for (let i = 0; i < reps; i++) {
    for (const [j, fn] of fns.entries()) {
      const start = performance.now();
      await fn();
      total[j] += performance.now() - start;
    }
  }
  return total.map((t) => t / reps);
}

const results = [];
for (const name of values.backends.split(',')) {
  let info;
  try {
    info = await initBackend({ backend: name });
  } catch (e) {
    console.log(`${name}: not available (${e.message})`);
    results.push({ backend: name, available: false, reason: e.message });
    continue;
  }
  const chain = makeChain();
  const x = tf.randomNormal([batch, width], 0, 1, 'float32', 3);
  const plain = () => {
    const r = tf.variableGrads(() => chain.loss(chain.segments.reduce((h, s) => s(h), x)), chain.variables);
    return { value: r.value, grads: r.grads };
  };
  const segmented = () =>
    segmentedGradients({ segments: chain.segments, input: x, loss: chain.loss, variables: chain.variables });

  const memPlain = measureMemory(plain);
  await settle(memPlain.result);
  const memSeg = measureMemory(segmented);
  await settle(memSeg.result);

  const meter = new MemoryMeter();
  const profiled = async () => {
    const p = await tf.profile(() => {
      const r = plain();
      return [r.value, ...Object.values(r.grads)];
    });
    await Promise.all(p.result.map((t) => t.data()));
    tf.dispose(p.result);
  };
  // Interleaved, so that drift (JIT warm-up, thermal) hits every variant alike.
  const [plainMs, segMs, meterMs, profileMs] = await timeInterleaved([
    () => settle(plain()),
    () => settle(segmented()),
    () => settle(meter.measure('plain step', plain)),
    profiled,
  ]);
  const pct = (ms) => +((100 * (ms - plainMs)) / plainMs).toFixed(1);

  const row = {
    backend: name,
    available: true,
    description: describeBackend(info),
    model: { depth, width, hidden, batch, params: chain.variables.reduce((n, v) => n + v.size, 0) },
    plain: {
      ms: +plainMs.toFixed(2),
      peakBytes: memPlain.peakBytes,
      peakBufferBytes: memPlain.peakBufferBytes,
    },
    segmented: {
      ms: +segMs.toFixed(2),
      peakBytes: memSeg.peakBytes,
      peakBufferBytes: memSeg.peakBufferBytes,
    },
    peakRatio: +(memSeg.peakBufferBytes / memPlain.peakBufferBytes).toFixed(3),
    timeRatio: +(segMs / plainMs).toFixed(3),
    gradientBytes: memSeg.retainedBytes,
    measuring: {
      noneMs: +plainMs.toFixed(2),
      memoryMeterMs: +meterMs.toFixed(2),
      memoryMeterOverheadPct: pct(meterMs),
      tfProfileMs: +profileMs.toFixed(2),
      tfProfileOverheadPct: pct(profileMs),
    },
  };
  results.push(row);
  console.log(
    `${name}: plain ${plainMs.toFixed(0)} ms, peak ${formatBytes(memPlain.peakBytes)} (buffers ${formatBytes(memPlain.peakBufferBytes)}) | segmented ${segMs.toFixed(0)} ms, peak ${formatBytes(memSeg.peakBytes)} (buffers ${formatBytes(memSeg.peakBufferBytes)}) | gradients ${formatBytes(memSeg.retainedBytes)}`,
  );
  console.log(
    `${name}: measuring the plain step: none ${plainMs.toFixed(2)} ms, MemoryMeter ${meterMs.toFixed(2)} ms (${pct(meterMs)}%), tf.profile ${profileMs.toFixed(2)} ms (${pct(profileMs)}%)`,
  );
  await shutdownBackend();
}

const report = {
  benchmark: 'segmented',
  command: `node bench/segmented.mjs --backends ${values.backends} --depth ${depth} --width ${width} --hidden ${hidden} --batch ${batch} --reps ${reps}`,
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  },
  tfjs: tf.version_core,
  results,
};
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${values.out}`);
