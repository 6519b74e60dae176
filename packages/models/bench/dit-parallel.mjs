// Both cores on one training step of the mid Wan DiT: a batch (default 2) forward, and forward+backward with
// an SGD update
// (a) in this process on one wasm thread, (b) on two wasm threads (XNNPACK's pool), (c) data-parallel on
// this thread and a worker thread, one wasm thread each (@prfl/tensor/parallel's ParallelGroup: the batch
// split by videos, the worker's gradients moved back and summed here, as the trainers do), and
// (d) PyTorch (f32, its BLAS) on the same batch at 1 and 2 threads in the same run, through
// bench/dit-torch.py --batch. On the *built* packages. Usage:
//   node bench/dit-parallel.mjs [--preset mid] [--batch 2] [--workers 2] [--min-seconds 3] [--peer] [--out bench/results/dit-parallel.json]
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  Generator,
  initBackend,
  packTensor,
  shardRows,
  shutdownBackend,
  sliceRows,
  sumFlatGradients,
} from '@prfl/tensor';
import { ParallelGroup } from '@prfl/tensor/parallel';
import { forward, forwardBackward } from './dit-parallel-task.mjs';
import { WanDiT, wanDiTConfig, wanDiTFlops } from '@prfl/models';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'mid' },
    batch: { type: 'string', default: '2' },
    workers: { type: 'string', default: '2' },
    'min-seconds': { type: 'string', default: '3' },
    peer: { type: 'boolean', default: false },
    python: { type: 'string', default: '/usr/bin/python3' },
    out: { type: 'string', default: 'bench/results/dit-parallel.json' },
  },
});
const batch = Number(values.batch);
const workers = Number(values.workers);
const minSeconds = Number(values['min-seconds']);
const TASKS = pathToFileURL(path.resolve('bench/dit-parallel-task.mjs')).href;

async function timeIt(run) {
  await run(); // warm-up
  const times = [];
  const start = performance.now();
  while (performance.now() - start < minSeconds * 1000 || times.length < 2) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {
    ms: +times[Math.floor(times.length / 2)].toFixed(1),
    bestMs: +times[0].toFixed(1),
    reps: times.length,
  };
}

function makeModel(config) {
  const model = new WanDiT(config, { seed: 0 });
  // Wan's init zeroes the head; give it weights so the backward pass is the real one.
  const head = model.namedVariables().get('head.head.weight');
  head.assign(new Generator('head').normal(head.shape, 0, 0.02));
  return model;
}

function makeInputs(config) {
  const g = new Generator('bench');
  return {
    x: g.normal([batch, 5, 16, 16, config.inDim]),
    text: g.normal([batch, config.textLen, config.textDim]),
    ts: Array.from({ length: batch }, () => 500),
  };
}

/**
 * A plain SGD update, so that every timed step changes the weights as training does (XNNPACK re-packs a
 * weight whose tensor changed: a cost of every training step, in one process and on the workers alike).
 */
function sgd(vars, grads) {
  for (const v of vars) {
    const g = grads[v.name];
    if (g) v.assign(tf.tidy(() => tf.sub(v, tf.mul(1e-9, g))));
  }
}

/** (a), (b): the batch in this process. */
async function inProcess(threads, config) {
  await initBackend({ backend: 'wasm', threads });
  const model = makeModel(config);
  const { x, text, ts } = makeInputs(config);
  const vars = [...model.namedVariables().values()];
  const fwd = await timeIt(async () => {
    const v = model.predictVelocity(x, ts, { text });
    await v.data();
    v.dispose();
  });
  const fb = await timeIt(async () => {
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(model.predictVelocity(x, ts, { text }))),
      vars,
    );
    await value.data();
    sgd(vars, grads);
    tf.dispose([value, ...Object.values(grads)]);
  });
  tf.dispose([x, text]);
  model.dispose();
  await shutdownBackend();
  return { forward: fwd, forwardBackward: fb };
}

/**
 * (c): data-parallel, this thread and workers - 1 worker threads (ParallelGroup, as the trainers do): the
 * first shard here on the model itself, the others on replicas; gradients summed here into tensors.
 */
async function dataParallel(config) {
  await initBackend({ backend: 'wasm', threads: 1 });
  const model = makeModel(config);
  const { x, text, ts } = makeInputs(config);
  const named = model.namedVariables();
  const group = await ParallelGroup.start({ ways: workers, recipe: model.replicaRecipe(), weights: named });
  const shards = shardRows(batch, workers).map(([s, e]) => {
    const xs = sliceRows(x, s, e);
    const tx = sliceRows(text, s, e);
    const args = {
      x: packTensor(xs),
      text: packTensor(tx),
      timesteps: ts.slice(s, e),
      scale: (e - s) / batch,
    };
    tf.dispose([xs, tx]);
    return args;
  });
  const variables = [...named.values()];
  const fwd = await timeIt(async () => {
    await group.map({ module: TASKS, export: 'forward' }, shards, (a) => forward(model, a));
  });
  const fb = await timeIt(async () => {
    group.publish(); // as the trainers do before every step
    const results = await group.map({ module: TASKS, export: 'forwardBackward' }, shards, (a) =>
      forwardBackward(model, a),
    );
    const grads = sumFlatGradients(
      results.map((r) => r.grads),
      variables,
    );
    sgd(variables, grads);
    tf.dispose(Object.values(grads));
  });
  await group.close();
  tf.dispose([x, text]);
  model.dispose();
  await shutdownBackend();
  return { forward: fwd, forwardBackward: fb };
}

const config = wanDiTConfig(values.preset);
const flops = wanDiTFlops(config, { batch, tokens: 320 });
let peer;
let peerError;
const peerOut = `${values.out.replace(/\.json$/, '')}-torch.json`;
if (values.peer) {
  const run = spawnSync(
    values.python,
    [
      'bench/dit-torch.py',
      '--threads',
      '1,2',
      '--batch',
      String(batch),
      '--presets',
      values.preset,
      '--sgd',
      '--min-seconds',
      String(minSeconds),
      '--out',
      peerOut,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (run.status !== 0) peerError = `dit-torch.py failed (${run.error?.message ?? `exit ${run.status}`})`;
  else peer = JSON.parse(readFileSync(peerOut, 'utf8'));
}
const runs = {
  wasm1: await inProcess(1, config),
  wasm2threads: await inProcess(2, config),
  [`workers${workers}`]: await dataParallel(config),
};
for (const [k, r] of Object.entries(runs)) {
  console.log(
    `${k.padEnd(13)} forward ${String(r.forward.ms).padStart(8)} ms | forward+backward ${String(r.forwardBackward.ms).padStart(8)} ms`,
  );
}
const ratio = (a, b) => +(a / b).toFixed(2);
const dp = runs[`workers${workers}`];
const speedup = {
  threads: {
    forward: ratio(runs.wasm1.forward.ms, runs.wasm2threads.forward.ms),
    forwardBackward: ratio(runs.wasm1.forwardBackward.ms, runs.wasm2threads.forwardBackward.ms),
  },
  workers: {
    forward: ratio(runs.wasm1.forward.ms, dp.forward.ms),
    forwardBackward: ratio(runs.wasm1.forwardBackward.ms, dp.forwardBackward.ms),
  },
};
let overTorchBest;
if (peer) {
  const best = (k) => Math.min(...peer.results.map((r) => r[k]));
  overTorchBest = {
    threads: {
      forward: ratio(runs.wasm2threads.forward.ms, best('forwardMs')),
      forwardBackward: ratio(runs.wasm2threads.forwardBackward.ms, best('forwardBackwardMs')),
    },
    workers: {
      forward: ratio(dp.forward.ms, best('forwardMs')),
      forwardBackward: ratio(dp.forwardBackward.ms, best('forwardBackwardMs')),
    },
    torchThreads: peer.results.map((r) => ({
      threads: r.threads,
      forwardMs: r.forwardMs,
      forwardBackwardMs: r.forwardBackwardMs,
    })),
  };
}
console.log('speed-up over one thread', JSON.stringify(speedup));
if (overTorchBest) {
  console.log(
    'time over PyTorch best',
    JSON.stringify({ threads: overTorchBest.threads, workers: overTorchBest.workers }),
  );
}
const report = {
  benchmark: 'dit-parallel',
  command: `node bench/dit-parallel.mjs --preset ${values.preset} --batch ${batch} --workers ${workers} --min-seconds ${minSeconds}${values.peer ? ' --peer' : ''} --out ${values.out}`,
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    node: process.version,
    loadAverageAtEnd: os.loadavg().map((l) => +l.toFixed(2)),
  },
  tfjs: tf.version_core,
  preset: values.preset,
  input: { batch, frames: 5, height: 16, width: 16, tokens: 320 },
  gflopForward: +(flops.forward / 1e9).toFixed(3),
  gflopForwardBackward: +(flops.forwardBackward / 1e9).toFixed(3),
  notes:
    'ms per batch (median after a warm-up; bestMs the fastest). wasm1: one thread; wasm2threads: XNNPACK with 2 threads; ' +
    `workers${workers}: ${workers}-way data parallel (this thread and ${workers - 1} worker thread(s), one wasm thread each), the batch split by videos. forwardBackward is a ` +
    'training step: forward, backward and a plain SGD update of every weight (XNNPACK re-packs changed weights in every run); ' +
    'on the workers it also includes publishing the weights to shared memory, packing each shard, moving the gradients back ' +
    'and summing them into tensors here. The PyTorch peer (bench/dit-torch.py --sgd) times the same step with the same SGD update.',
  runs,
  speedup,
  ...(overTorchBest ? { overTorchBest } : {}),
  ...(peer ? { torch: peer } : {}),
  ...(peerError ? { peerError } : {}),
};
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${values.out}`);
