// matMul throughput per backend for the shapes prfl's models use: [tokens, width] x [width, width]
// (linear layers) and [heads, tokens, 64] x [heads, 64, tokens] (attention scores).
// Runs on the *built* package in plain Node. Usage:
//   node bench/matmul.mjs [--backends cpu,wasm,webgpu] [--out bench/results/matmul.json]
// Shapes too slow for a backend (above its FLOP budget) are listed as skipped, not silently dropped.
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, describeBackend, initBackend, matMul, shutdownBackend } from '@prfl/tensor';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,wasm,webgpu' },
    out: { type: 'string', default: 'bench/results/matmul.json' },
    'min-seconds': { type: 'string', default: '0.3' },
  },
});
const minSeconds = Number(values['min-seconds']);
// The backend's matMul peak is the best forward 2-D tf.matMul rate measured in this run.
// Largest single matMul (in GFLOP) worth timing on each backend on this class of machine.
const budget = { cpu: 1.0, wasm: 25, webgpu: 0.4 };

const shapes = [];
for (const tokens of [64, 256, 1024, 4096]) {
  for (const width of [128, 384, 1536])
    shapes.push({ kind: 'linear', a: [tokens, width], b: [width, width] });
}
for (const tokens of [256, 1024]) shapes.push({ kind: 'attention', a: [8, tokens, 64], b: [8, 64, tokens] });

function flops(s) {
  const batch = s.a.length === 3 ? s.a[0] : 1;
  const [m, k] = s.a.slice(-2);
  const n = s.b[s.b.length - 1];
  return 2 * batch * m * k * n;
}

// Forward, or forward + backward (the cost of a training step: 3x the FLOPs), through tf.matMul or
// @prfl/tensor's matMul (which avoids wasm's slow batched/transposed kernels).
const ops = { tf: tf.matMul, prfl: matMul };
async function timeOne(s, op, backward) {
  const gen = new Generator(`${s.a}x${s.b}`);
  const a = gen.normal(s.a);
  const b = gen.normal(s.b);
  const f = ops[op];
  const grads = tf.grads((x, y) => tf.sum(f(x, y)));
  const run = backward ? () => tf.tidy(() => tf.addN(grads([a, b]).map((g) => tf.sum(g)))) : () => f(a, b);
  // Warm-up (shader compile, XNNPACK packing).
  const w = run();
  await w.data();
  w.dispose();
  let reps = 0;
  const start = performance.now();
  while (performance.now() - start < minSeconds * 1000 || reps < 2) {
    const y = run();
    await y.data();
    y.dispose();
    reps++;
  }
  const ms = (performance.now() - start) / reps;
  a.dispose();
  b.dispose();
  return { ms, reps };
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
  if (name === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  const rows = [];
  for (const s of shapes) {
    for (const [op, backward] of [
      ['tf', false],
      ['prfl', false],
      ['tf', true],
      ['prfl', true],
    ]) {
      const gflop = (flops(s) * (backward ? 3 : 1)) / 1e9;
      const mode = backward ? 'forward+backward' : 'forward';
      const label = `${s.kind} [${s.a}] x [${s.b}] ${op} ${mode}`;
      if (gflop > budget[name]) {
        rows.push({ ...s, op, mode, gflop, skipped: `above the ${budget[name]} GFLOP budget for ${name}` });
        continue;
      }
      const { ms, reps } = await timeOne(s, op, backward);
      const gflops = gflop / (ms / 1000);
      rows.push({ ...s, op, mode, gflop, ms: +ms.toFixed(3), reps, gflops: +gflops.toFixed(2) });
      console.log(
        `${name.padEnd(7)} ${label.padEnd(62)} ${ms.toFixed(2).padStart(9)} ms ${gflops.toFixed(2).padStart(8)} GFLOP/s`,
      );
    }
  }
  const timed = rows.filter((r) => r.gflops !== undefined && r.op === 'tf' && r.mode === 'forward');
  const peak = Math.max(...timed.map((r) => r.gflops));
  results.push({
    backend: name,
    available: true,
    description: describeBackend(info),
    adapter: info.adapter,
    peakGflops: peak,
    rows,
  });
  await shutdownBackend();
}

const report = {
  benchmark: 'matmul',
  command: `node bench/matmul.mjs --backends ${values.backends} --out ${values.out}`,
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
