// Wan DiT throughput per backend, on the *built* package in plain Node: forward and forward+backward time,
// peak tensor memory and matmul GFLOP/s for the tiny and mid presets, next to the backend's 2-D matMul
// GFLOP/s measured in the same run. Usage:
//   node bench/dit.mjs [--backends cpu,wasm] [--presets tiny,mid] [--threads 1,2] [--min-seconds 2] [--out bench/results/dit.json]
// --threads: the wasm backend is measured at each of these thread counts (XNNPACK's pool; default 1).
// --peer: also run the PyTorch peer (bench/dit-torch.py, /usr/bin/python3 or --python) in the same run,
// at 1 and 2 threads, and write the ratios (wasm time over PyTorch's best thread setting; wasm's
// speed-up from 1 thread) into the JSON.
// bench/dit-torch.py measures PyTorch on the same configs; its results (bench/results/dit-torch.json),
// when present, are printed alongside.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  Generator,
  describeBackend,
  initBackend,
  matMul,
  measureMemory,
  segmentedGradients,
  shutdownBackend,
} from '@prfl/tensor';
import { WanDiT, wanDiTConfig, wanDiTFlops, wanDiTParameterCount } from '@prfl/models';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,wasm' },
    presets: { type: 'string', default: 'tiny,mid' },
    threads: { type: 'string', default: '1' },
    peer: { type: 'boolean', default: false },
    python: { type: 'string', default: '/usr/bin/python3' },
    'min-seconds': { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/dit.json' },
    torch: { type: 'string', default: 'bench/results/dit-torch.json' },
  },
});
const minSeconds = Number(values['min-seconds']);

// One latent of 5 x 16 x 16 (16 channels) -> 5 x 8 x 8 = 320 tokens, the size the PyTorch peer
// (bench/dit-torch.py) times; full-length text (padded to textLen, as Wan does).
const INPUT = { batch: 1, frames: 5, height: 16, width: 16 };

async function timeIt(run) {
  // Warm-up (XNNPACK packing, first-use kernels), measured for peak memory, then repeat for at least
  // minSeconds (at least once more).
  const warm = measureMemory(() => {
    const w = run();
    w.dataSync();
    w.dispose();
  });
  const times = [];
  const start = performance.now();
  while (performance.now() - start < minSeconds * 1000 || times.length < 1) {
    const t0 = performance.now();
    const y = run();
    await y.data();
    y.dispose();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {
    ms: times[Math.floor(times.length / 2)],
    best: times[0],
    reps: times.length,
    peakBytes: warm.peakBytes,
    peakBufferBytes: warm.peakBufferBytes,
  };
}

async function matmulPeak() {
  const rows = [];
  for (const [m, k, n] of [
    [512, 512, 512],
    [320, 384, 384],
    [320, 384, 1024],
    [1024, 1024, 1024],
  ]) {
    const g = new Generator(`mm${m}`);
    const a = g.normal([m, k]);
    const b = g.normal([k, n]);
    const gflop = (2 * m * k * n) / 1e9;
    if (tf.getBackend() === 'cpu' && gflop > 0.5) continue;
    const t = await timeIt(() => matMul(a, b));
    rows.push({
      shape: [m, k, n],
      ms: +t.ms.toFixed(3),
      bestMs: +t.best.toFixed(3),
      gflops: +(gflop / (t.ms / 1000)).toFixed(2),
      gflopsBest: +(gflop / (t.best / 1000)).toFixed(2),
    });
    tf.dispose([a, b]);
  }
  return {
    peakGflops: Math.max(...rows.map((r) => r.gflops)),
    peakGflopsBest: Math.max(...rows.map((r) => r.gflopsBest)),
    rows,
  };
}

async function benchPreset(name) {
  const config = wanDiTConfig(name);
  const model = new WanDiT(config, { seed: 0 });
  // Wan's init zeroes the head; give it weights so the backward pass is the real one.
  const head = model.namedVariables().get('head.head.weight');
  head.assign(new Generator('head').normal(head.shape, 0, 0.02));
  const g = new Generator('bench');
  const x = g.normal([INPUT.batch, INPUT.frames, INPUT.height, INPUT.width, config.inDim]);
  const text = g.normal([INPUT.batch, config.textLen, config.textDim]);
  const ts = Array.from({ length: INPUT.batch }, () => 500);
  const cond = { text };
  const [pt, ph, pw] = config.patchSize;
  const tokens = (INPUT.frames / pt) * (INPUT.height / ph) * (INPUT.width / pw);
  const flops = wanDiTFlops(config, { batch: INPUT.batch, tokens });
  const vars = [...model.namedVariables().values()];

  const forward = () => model.predictVelocity(x, ts, cond);
  const forwardBackward = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.mean(tf.square(model.predictVelocity(x, ts, cond))),
        vars,
      );
      tf.dispose(Object.values(grads));
      return value;
    });
  // The same gradients with one block's tape at a time (@prfl/tensor's segmented backprop).
  const forwardBackwardSegmented = () => {
    const chain = model.segments(x, ts, cond);
    const { value, grads } = segmentedGradients({
      segments: chain.segments,
      input: chain.input,
      loss: (a) => tf.mean(tf.square(chain.output(a))),
      variables: vars,
    });
    tf.dispose(Object.values(grads));
    chain.dispose();
    return value;
  };
  const fwd = await timeIt(forward);
  const fb = await timeIt(forwardBackward);
  const seg = await timeIt(forwardBackwardSegmented);
  tf.dispose([x, text]);
  model.dispose();
  const row = (t, gflop) => ({
    ms: +t.ms.toFixed(2),
    bestMs: +t.best.toFixed(2),
    reps: t.reps,
    gflops: +(gflop / (t.ms / 1000)).toFixed(2),
    gflopsBest: +(gflop / (t.best / 1000)).toFixed(2),
    peakBytes: t.peakBytes,
    peakBufferBytes: t.peakBufferBytes,
  });
  return {
    preset: name,
    parameters: wanDiTParameterCount(config),
    input: { ...INPUT, channels: config.inDim, tokens, textTokens: config.textLen },
    gflopForward: +(flops.forward / 1e9).toFixed(4),
    gflopForwardBackward: +(flops.forwardBackward / 1e9).toFixed(4),
    forward: row(fwd, flops.forward / 1e9),
    forwardBackward: row(fb, flops.forwardBackward / 1e9),
    // Segmented backprop re-runs each block's forward: more FLOPs done, same FLOPs counted.
    forwardBackwardSegmented: row(seg, flops.forwardBackward / 1e9),
  };
}

let peerError;
// The peer of this run goes next to this run's JSON (the committed dit-torch.json is a run of its own).
const peerOut = `${values.out.replace(/\.json$/, '')}-torch.json`;
if (values.peer) {
  // The peer first, so that both measure the same minutes of this machine as closely as they can.
  const run = spawnSync(
    values.python,
    ['bench/dit-torch.py', '--threads', '1,2', '--min-seconds', values['min-seconds'], '--out', peerOut],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (run.status !== 0) {
    peerError = `${values.python} bench/dit-torch.py failed (${run.error?.message ?? `exit ${run.status}`}); install python3-torch (apt-get install python3-torch libopenblas0-pthread)`;
    console.log(peerError);
  }
}
const torchFile = values.peer ? peerOut : values.torch;
const torch = !peerError && existsSync(torchFile) ? JSON.parse(readFileSync(torchFile, 'utf8')) : undefined;
const results = [];
const runs = values.backends
  .split(',')
  .flatMap((backend) =>
    backend === 'wasm'
      ? values.threads.split(',').map((t) => ({ backend, threads: Number(t) }))
      : [{ backend }],
  );
for (const { backend, threads } of runs) {
  let info;
  try {
    info = await initBackend({ backend, threads });
  } catch (e) {
    console.log(`${backend}: not available (${e.message})`);
    results.push({ backend, threads, available: false, reason: e.message });
    continue;
  }
  const label = threads === undefined ? backend : `${backend} ${threads}t`;
  const matmul = await matmulPeak();
  console.log(
    `${label.padEnd(8)} 2-D matMul peak ${matmul.peakGflops} GFLOP/s median, ${matmul.peakGflopsBest} best (${JSON.stringify(matmul.rows.map((r) => [r.shape.join('x'), r.gflopsBest]))})`,
  );
  const presets = [];
  for (const name of values.presets.split(',')) {
    const r = await benchPreset(name);
    for (const k of ['forward', 'forwardBackward', 'forwardBackwardSegmented']) {
      r[k].fractionOfMatmulPeak = +(r[k].gflops / matmul.peakGflops).toFixed(3);
      r[k].fractionOfMatmulPeakBest = +(r[k].gflopsBest / matmul.peakGflopsBest).toFixed(3);
    }
    presets.push(r);
    const fmt = (label, t) =>
      `${label} median ${t.ms.toFixed(1).padStart(8)} ms ${String(t.gflops).padStart(6)} GFLOP/s = ${(100 * t.fractionOfMatmulPeak).toFixed(0).padStart(3)}% of matMul | best ${t.bestMs.toFixed(1).padStart(8)} ms = ${(100 * t.fractionOfMatmulPeakBest).toFixed(0).padStart(3)}% | peak ${(t.peakBufferBytes / 2 ** 20).toFixed(1)} MiB`;
    console.log(
      `${label.padEnd(8)} ${name.padEnd(5)} ${r.input.tokens} tokens, ${(r.parameters / 1e6).toFixed(2)}M parameters`,
    );
    console.log(`   ${fmt('forward          ', r.forward)}`);
    console.log(`   ${fmt('forward+backward ', r.forwardBackward)}`);
    console.log(`   ${fmt('  segmented      ', r.forwardBackwardSegmented)}`);
  }
  results.push({
    backend,
    threads: info.wasm?.threads,
    available: true,
    description: describeBackend(info),
    matmul,
    presets,
  });
  await shutdownBackend();
}
if (torch) {
  for (const r of torch.results) {
    console.log(
      `torch ${r.preset.padEnd(5)} ${r.threads} thread(s)  forward median ${r.forwardMs.toFixed(1).padStart(8)} ms (best ${r.forwardBestMs.toFixed(1)}) | fwd+bwd median ${r.forwardBackwardMs.toFixed(1).padStart(8)} ms (best ${r.forwardBackwardBestMs.toFixed(1)})  [torch ${torch.torch}, 1024^3 matmul ${torch.matmulPeakGflops[r.threads]} GFLOP/s, ${torch.date}]`,
    );
  }
}

// Ratios inside this run: wasm's speed-up over its own 1-thread run, and its time over PyTorch's best
// thread setting (only when the peer ran in this run).
const comparison = [];
const wasmRuns = results.filter((r) => r.available && r.backend === 'wasm');
const oneThread = wasmRuns.find((r) => r.threads === 1);
for (const r of wasmRuns) {
  for (const p of r.presets) {
    const base = oneThread?.presets.find((q) => q.preset === p.preset);
    const peers = values.peer ? (torch?.results ?? []).filter((t) => t.preset === p.preset) : [];
    const bestPeer = (key) => (peers.length > 0 ? Math.min(...peers.map((t) => t[key])) : undefined);
    const ratio = (a, b) => (a === undefined || b === undefined ? undefined : +(a / b).toFixed(2));
    comparison.push({
      preset: p.preset,
      threads: r.threads,
      speedupOverOneThread: base
        ? {
            forward: ratio(base.forward.ms, p.forward.ms),
            forwardBackward: ratio(base.forwardBackward.ms, p.forwardBackward.ms),
            matmulPeak: ratio(r.matmul.peakGflops, oneThread.matmul.peakGflops),
          }
        : undefined,
      timeOverTorchBest: {
        forward: ratio(p.forward.ms, bestPeer('forwardMs')),
        forwardBackward: ratio(p.forwardBackward.ms, bestPeer('forwardBackwardMs')),
      },
    });
  }
}
for (const c of comparison) console.log(`compare ${JSON.stringify(c)}`);

const report = {
  benchmark: 'dit',
  command: `node bench/dit.mjs --backends ${values.backends} --presets ${values.presets} --threads ${values.threads}${values.peer ? ' --peer' : ''} --min-seconds ${values['min-seconds']} --out ${values.out}`,
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverageAtEnd: os.loadavg().map((l) => +l.toFixed(2)),
  },
  tfjs: tf.version_core,
  notes:
    'GFLOP/s count matmul FLOPs only (linear layers and attention products; backward = 2x forward). ' +
    'ms are medians after one warm-up (bestMs the fastest run). peakBufferBytes: highest memory in distinct ' +
    'tensor buffers above the start during the warm-up call (peakBytes: tf.memory().numBytes, which counts shared buffers per tensor). ' +
    'forwardBackwardSegmented: the same gradients via model.segments + segmentedGradients (one block on the tape at a time). ' +
    'fractionOfMatmulPeak: DiT GFLOP/s over the best 2-D matMul GFLOP/s of the same backend in the same run (medians); ' +
    'fractionOfMatmulPeakBest: the same from the fastest runs (less sensitive to other processes on a shared machine, see loadAverageAtEnd).',
  results,
  comparison,
  torch,
  torchInThisRun: values.peer && peerError === undefined,
  ...(peerError ? { peerError } : {}),
};
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${values.out}`);
