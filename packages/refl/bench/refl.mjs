// PRFL against RGB ReFL, on the *built* packages in plain Node: median time per training micro-step and
// peak memory per phase for PRFL, RGB ReFL decoding the first latent frame and RGB ReFL decoding all of
// them, each with and without the SFT term, on the same generator, batch, k and backend; the VAE
// decoder's GFLOP/s against the backend's matMul peak; the wasm heap each run needed; a 200-step tensor
// leak check on the tiny WanDiT; and, when Debian's python3-torch is installed, the same settings in
// PyTorch (bench/refl-torch.py). Writes bench/results/refl.json.
//
//   node bench/refl.mjs [--settings tiny,mid] [--mid-frames 17,33] [--backends wasm]
//                       [--methods prfl,rgb-first,rgb-all] [--sft both|on|off] [--k 30]
//                       [--repeats 5] [--mid-repeats 2] [--quick] [--leak-steps 200] [--mid-decoder-all]
//                       [--torch auto|off] [--torch-threads 1] [--out bench/results/refl.json]
//
// Settings: `tiny` is the MovingShapes world (tiny WanDiT and VAE, 17 x 64 x 64 -> [5, 8, 8, 16]);
// `mid` is the mid DiT (dim 384, 8 layers) with a VAE of Wan2.1's real width (127M parameters, random
// weights) on 17 and more 64 x 64 frames. Every measurement runs in a process of its own (bench/cells/),
// so each reports its own wasm heap and a run out of memory ends only itself. Default run: about 10
// minutes on 2 cores; --quick (2 tiny rounds, 1 mid round, 50 leak steps) about 6; more rounds with
// --repeats / --mid-repeats; --mid-decoder-all adds the 127M decoder's forward on all 17 frames (~1 min).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { WASM_HEAP_LIMIT } from './lib/wasm-heap.mjs';

const here = import.meta.dirname;
const { values } = parseArgs({
  options: {
    settings: { type: 'string', default: 'tiny,mid' },
    'mid-frames': { type: 'string', default: '17,33' },
    backends: { type: 'string', default: 'wasm' },
    methods: { type: 'string', default: 'prfl,rgb-first,rgb-all' },
    sft: { type: 'string', default: 'both' },
    k: { type: 'string', default: '30' },
    repeats: { type: 'string' },
    'mid-repeats': { type: 'string' },
    quick: { type: 'boolean', default: false },
    'mid-decoder-all': { type: 'boolean', default: false },
    'leak-steps': { type: 'string' },
    torch: { type: 'string', default: 'auto' },
    'torch-threads': { type: 'string', default: '1' },
    out: { type: 'string', default: path.join(here, 'results', 'refl.json') },
  },
});

function positiveInt(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`--${name}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

const quick = values.quick;
const options = {
  settings: values.settings.split(','),
  midFrames: values['mid-frames'].split(',').map((f) => positiveInt('mid-frames', f)),
  backends: values.backends.split(','),
  methods: values.methods.split(','),
  sft: { both: [false, true], on: [true], off: [false] }[values.sft],
  k: positiveInt('k', values.k),
  repeats: positiveInt('repeats', values.repeats ?? (quick ? '2' : '5')),
  midRepeats: positiveInt('mid-repeats', values['mid-repeats'] ?? (quick ? '1' : '2')),
  leakSteps: positiveInt('leak-steps', values['leak-steps'] ?? (quick ? '50' : '200')),
  // The 127M-parameter decoder on all 17 frames, forward only (with a tape it does not fit in wasm's
  // heap): one cold run of about a minute, so only on request.
  midDecoderAllFrames: values['mid-decoder-all'],
  torch: values.torch,
  torchThreads: positiveInt('torch-threads', values['torch-threads']),
};
if (options.sft === undefined) throw new Error(`--sft: expected both, on or off, got '${values.sft}'`);
if (options.k < 1 || options.k > 38)
  throw new Error(`--k: expected 1..38 (a step of the 40-step schedule), got ${options.k}`);

const startedAt = Date.now();
const loadAtStart = os.loadavg().map((l) => +l.toFixed(2));
const MiB = (b) => (b === null || b === undefined ? '   -   ' : (b / 2 ** 20).toFixed(1));

/** Runs one cell (bench/cells/<kind>.mjs) in its own Node process; resolves to its JSON line. */
function cell(kind, spec, timeoutMs = 30 * 60_000) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, 'cells', `${kind}.mjs`), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ ...JSON.parse(line), exitCode: code });
      } catch {
        resolve({
          error: signal
            ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs / 1000} s)` : ''}`
            : `exit ${code}`,
          output: out.slice(-500),
        });
      }
    });
  });
}

// 1. What the baseline is measured against: the backend's matMul peak; and why the pixel reward is
//    wrapped (its tf.conv3d input gradient on wasm).
const results = { matmul: {}, pixelRewardCheck: null, decoder: [], steps: [], comparison: [], leak: {} };
for (const backend of options.backends) {
  console.log(`${backend}: matMul peak`);
  results.matmul[backend] = await cell('matmul', { backend, minSeconds: 1 });
  console.log(
    `${backend}: matMul ${results.matmul[backend].peakGflops} GFLOP/s median, ${results.matmul[backend].peakGflopsBest} best`,
  );
}
if (options.backends.includes('wasm')) {
  results.pixelRewardCheck = await cell('pixel-check', { backend: 'wasm' });
  const p = results.pixelRewardCheck;
  console.log(
    `pixel reward frame gradient on wasm vs cpu: PixelVideoReward (tf.conv3d) max error ${p.pixelVideoReward?.gradError?.toExponential(2)}, conv path ${p.convPath?.gradError?.toExponential(2)} (largest gradient ${p.maxAbsFrameGradient?.toExponential(2)})`,
  );
}

// 2. The settings: decoder throughput, then every method with and without SFT.
const METHOD_ORDER = ['prfl', 'rgb-first', 'rgb-all'];
/** Mean k of each method's own range on the 40-step schedule: full {0..38}, late third {26..38}. */
const OWN_RANGE_MEAN_K = { prfl: 19, 'rgb-first': 32, 'rgb-all': 32 };

for (const backend of options.backends) {
  for (const setting of options.settings) {
    const frameCounts = setting === 'tiny' ? [17] : options.midFrames;
    const repeats = setting === 'tiny' ? options.repeats : options.midRepeats;
    const decoderSpecs = [
      { which: 'first', passes: ['forward', 'forwardBackward'], warmup: 1, repeats },
      setting === 'tiny'
        ? { which: 'all', passes: ['forward', 'forwardBackward'], warmup: 1, repeats }
        : options.midDecoderAllFrames
          ? // Forward only, one cold run: the taped pass does not fit in the 4 GiB heap (see the steps).
            { which: 'all', passes: ['forward'], warmup: 0, repeats: 1 }
          : null,
    ].filter(Boolean);
    for (const d of decoderSpecs) {
      const r = await cell('decoder', { backend, setting, frames: 17, ...d });
      results.decoder.push({ backend, setting, frames: 17, ...r });
      const peak = results.matmul[backend]?.peakGflops;
      for (const pass of d.passes) {
        const t = r[pass];
        if (!t) {
          console.log(`${backend} ${setting} decoder ${d.which} ${pass}: ${r.error}`);
          continue;
        }
        t.fractionOfMatmulPeak = peak ? +(t.gflops / peak).toFixed(3) : null;
        console.log(
          `${backend} ${setting} decoder ${d.which.padEnd(5)} ${pass.padEnd(15)} ${t.ms.toFixed(0).padStart(7)} ms  ${String(t.gflops).padStart(6)} GFLOP/s = ${(100 * (t.fractionOfMatmulPeak ?? 0)).toFixed(0)}% of matMul  (${r[pass === 'forward' ? 'gflopForward' : 'gflopForwardBackward']} GFLOP, ${r.gflopOnCausalZeroFrames} of the forward's on causal zero frames)`,
        );
      }
    }
    for (const frames of frameCounts) {
      const methods = METHOD_ORDER.filter((m) => options.methods.includes(m));
      // Methods that fit in the heap share one process, their steps interleaved (cells/compare.mjs);
      // RGB ReFL on all frames with Wan2.1's VAE width runs alone (cells/step.mjs): running out of the
      // heap ends a wasm process.
      const alone = setting === 'mid' ? methods.filter((m) => m === 'rgb-all') : [];
      const together = methods.filter((m) => !alone.includes(m));
      const rows = [];
      if (together.length > 0) {
        console.log(
          `${backend} ${setting} ${frames} frames: ${together.join(', ')} (with and without SFT), interleaved`,
        );
        const r = await cell('compare', {
          backend,
          setting,
          frames,
          methods: together,
          sft: options.sft,
          k: options.k,
          warmup: 1,
          repeats,
        });
        for (const method of together) {
          for (const sft of options.sft) {
            const m = r.methods?.[`${method}${sft ? '+sft' : ''}`];
            rows.push({
              backend,
              setting,
              frames,
              method,
              sft,
              k: options.k,
              repeats,
              process: 'together',
              ...(m
                ? { summary: m.summary, steps: m.steps, wasmHeapBytes: m.wasmHeapBytesAfterWarmup }
                : {
                    error: r.error ?? 'missing',
                    outOfMemory: r.outOfMemory,
                    numBytesAtError: r.numBytesAtError,
                  }),
              world: r.world,
            });
          }
        }
      }
      for (const method of alone) {
        for (const sft of options.sft) {
          // A larger clip, or the SFT term on top, needs at least the memory of a run that already ran
          // out of the heap: skip it instead of spending a minute on the same failure.
          const smaller = results.steps
            .concat(rows)
            .find(
              (s) =>
                s.backend === backend &&
                s.setting === setting &&
                s.method === method &&
                s.outOfMemory &&
                (s.frames < frames || (s.frames === frames && !s.sft && sft)),
            );
          const spec = { backend, setting, frames, method, sft, k: options.k, warmup: 1, repeats };
          let r;
          if (smaller) {
            r = {
              skipped: `needs more memory than ${smaller.frames} frames${smaller.sft ? ' with SFT' : ' without SFT'}, which ran out of the ${MiB(WASM_HEAP_LIMIT)} MiB wasm heap`,
            };
          } else {
            console.log(`${backend} ${setting} ${frames} frames: ${method}${sft ? ' + SFT' : ''} alone`);
            r = await cell('step', spec);
          }
          rows.push({ ...spec, process: 'alone', ...r });
        }
      }
      results.steps.push(...rows);
      results.comparison.push(...compare(backend, setting, frames, rows));
      printTable(backend, setting, frames, rows);
    }
  }
}

/** PRFL against each RGB ReFL variant at the same SFT setting: speed-up, memory, and where time goes. */
function compare(backend, setting, frames, rows) {
  const out = [];
  for (const sft of options.sft) {
    const prfl = rows.find((r) => r.method === 'prfl' && r.sft === sft && r.summary);
    if (!prfl) continue;
    const common = (r) =>
      ['sft', 'rollout', 'update'].reduce((a, p) => a + (r.summary.phases[p]?.ms ?? 0), 0);
    const ownRange = (r) => {
      const rollout = r.summary.phases.rollout?.ms ?? 0;
      return r.summary.ms - rollout + (rollout / options.k) * OWN_RANGE_MEAN_K[r.method];
    };
    for (const method of ['rgb-first', 'rgb-all']) {
      const rgb = rows.find((r) => r.method === method && r.sft === sft);
      if (!rgb) continue;
      const ok = Boolean(rgb.summary);
      out.push({
        backend,
        setting,
        frames,
        sft,
        baseline: method,
        k: options.k,
        prflMs: prfl.summary.ms,
        baselineMs: ok ? rgb.summary.ms : null,
        speedup: ok ? +(rgb.summary.ms / prfl.summary.ms).toFixed(3) : null,
        speedupOfBest: ok ? +(rgb.summary.bestMs / prfl.summary.bestMs).toFixed(3) : null,
        // The part that differs: step k's forward, the decode, the reward and the backward.
        readoutMs: {
          prfl: +(prfl.summary.ms - common(prfl)).toFixed(1),
          baseline: ok ? +(rgb.summary.ms - common(rgb)).toFixed(1) : null,
        },
        // SFT, rollout and update: the same work in both methods.
        commonMs: { prfl: +common(prfl).toFixed(1), baseline: ok ? +common(rgb).toFixed(1) : null },
        // With each method's own k range (PRFL: all 39 steps, mean k 19; RGB ReFL: the late third, mean
        // 32): the rollout scales with k, everything else does not.
        ownRangeSpeedup: ok ? +(ownRange(rgb) / ownRange(prfl)).toFixed(3) : null,
        peakBufferBytes: {
          prfl: prfl.summary.peakBufferBytes,
          baseline: ok ? rgb.summary.peakBufferBytes : null,
        },
        wasmHeapBytes: { prfl: prfl.wasmHeapBytes, baseline: rgb.wasmHeapBytes ?? null },
        baselineOutOfMemory: Boolean(rgb.outOfMemory || rgb.skipped),
        baselineUsesMoreMemory: ok
          ? rgb.summary.peakBufferBytes > prfl.summary.peakBufferBytes
          : Boolean(rgb.outOfMemory || rgb.skipped),
      });
    }
  }
  return out;
}

function printTable(backend, setting, frames, rows) {
  console.log(
    `\n${backend} ${setting}, ${frames} frames (k = ${options.k}), median of ${rows.find((r) => r.summary)?.repeats ?? '?'} steps:`,
  );
  console.log(
    '  method          ms/step   best   step peak MiB  heap MiB  | sft  rollout taped decode reward backward update (ms)',
  );
  for (const r of rows) {
    const name = `${r.method}${r.sft ? '+sft' : ''}`.padEnd(14);
    if (!r.summary) {
      console.log(
        `  ${name}  ${r.skipped ? `skipped: ${r.skipped}` : `failed: ${r.error}${r.outOfMemory ? ` (out of memory at ${MiB(r.numBytesAtError)} MiB of tensors, heap ${MiB(r.wasmHeapBytes)} MiB)` : ''}`}`,
      );
      continue;
    }
    const s = r.summary;
    const p = (n) => (s.phases[n]?.ms ?? 0).toFixed(0).padStart(6);
    console.log(
      `  ${name} ${s.ms.toFixed(0).padStart(8)} ${s.bestMs.toFixed(0).padStart(6)}  ${MiB(s.peakBufferBytes).padStart(13)}  ${MiB(r.wasmHeapBytes).padStart(8)}  |${p('sft')}${p('rollout')}${p('taped-step')}${p('decode')}${p('reward')}${p('backward')}${p('update')}`,
    );
  }
  for (const c of results.comparison.filter(
    (x) => x.backend === backend && x.setting === setting && x.frames === frames,
  )) {
    console.log(
      `  PRFL vs ${c.baseline}${c.sft ? ' (both + SFT)' : ''}: ${c.speedup ?? '-'}x per step at k = ${c.k} (readout ${c.readoutMs.prfl} vs ${c.readoutMs.baseline ?? '-'} ms), ${c.ownRangeSpeedup ?? '-'}x with each method's own k range; memory ${c.baselineUsesMoreMemory ? 'higher' : 'not higher'} for the baseline`,
    );
  }
  console.log('');
}

// 3. Tensor count and bytes over many PRFL steps (the tiny WanDiT + PAVRM).
if (options.leakSteps > 0) {
  for (const backend of options.backends) {
    console.log(`${backend}: ${options.leakSteps} PRFL steps, tensor count at every window boundary`);
    results.leak[backend] = await cell('leak', { backend, steps: options.leakSteps });
    const l = results.leak[backend];
    console.log(
      `${backend}: flat ${l.flat} (${l.distinctCounts?.join(', ')} tensors, ${l.distinctBytes?.join(', ')} bytes, ${l.updates} updates, ${l.msPerStep} ms/step)`,
    );
  }
}

// 4. PyTorch on the same settings, when Debian's python3-torch is there.
let torch = null;
const python = '/usr/bin/python3';
if (options.torch !== 'off') {
  const probe = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0) {
    torch = {
      skipped: `no PyTorch (${python} -c 'import torch' failed); apt-get install -y python3-torch python3-numpy`,
    };
    console.log(`torch: ${torch.skipped}`);
  } else {
    const file = path.join(os.tmpdir(), `prfl-refl-torch-${process.pid}.json`);
    const args = [
      path.join(here, 'refl-torch.py'),
      '--settings',
      options.settings.join(','),
      '--mid-frames',
      options.midFrames.join(','),
      '--k',
      String(options.k),
      '--repeats',
      String(Math.max(1, options.midRepeats)),
      '--threads',
      String(options.torchThreads),
      '--out',
      file,
    ];
    console.log(
      `torch ${probe.stdout.trim()}: ${python} ${args.map((a) => (path.isAbsolute(a) ? path.basename(a) : a)).join(' ')}`,
    );
    const r = spawnSync(python, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 20 * 60_000 });
    try {
      torch = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      torch = { error: `refl-torch.py exited with ${r.status ?? r.signal}` };
    }
    rmSync(file, { force: true });
  }
}

const report = {
  benchmark: 'refl',
  command: `node bench/refl.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  elapsedSeconds: Math.round((Date.now() - startedAt) / 1000),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: os.loadavg().map((l) => +l.toFixed(2)),
  },
  tfjs: tf.version_core,
  options,
  notes: [
    'steps: process "together": the methods of a setting and clip length ran in one Node process (bench/cells/compare.mjs), their measured steps interleaved round by round with the order rotating, so load from other processes falls on all alike; process "alone": in a process of its own (bench/cells/step.mjs; RGB ReFL on all frames at Wan2.1 width, which can run out of the heap). ms: median wall time of a whole micro-step (prflStep), bestMs the fastest; warm-up steps ran at k = 1 in a discarded run. Every method at the same fixed k (--k) so that the methods differ only in the readout; accumulationSteps 1, so each measured step includes one AdamW update (the paper amortises it over 5 micro-steps: subtract 4/5 of phases.update.ms for that figure).',
    'ownRangeSpeedup: the same comparison with each method drawing k from its own default range (PRFL all 39 steps, mean 19; RGB ReFL the late third, mean 32), estimated from the measured rollout cost per step (the rollout is the only phase that scales with k).',
    "peakBufferBytes: highest rise of tensor memory (distinct buffers) above the step start, measured around the whole step; per phase the same from prflStep metrics. wasmHeapBytes: the wasm backend memory buffer byteLength (it never shrinks: a process peak, weights and allocator slack included; 4 GiB is the limit); in a 'together' process read after the method's warm-up, PRFL first and the VAE built only after PRFL, so PRFL's reading is its own and later ones the peak so far; in an 'alone' process at its end.",
    'Decoder GFLOP/s count the causal 3-D convolutions only (lib/vae-flops.mjs), at their padded input (gflopOnCausalZeroFrames is the share spent on the zero frames of causal padding); forwardBackward = forward + input gradients (the decoder is frozen; @prfl/tensor conv3d computes no filter gradient off the tape path). fractionOfMatmulPeak: against the median 2-D matMul GFLOP/s of the same backend in the same run.',
    'RGB ReFL scores decoded frames with @prfl/reward PixelVideoReward evaluated through @prfl/tensor conv3d (lib/conv-path-pixel-reward.mjs): its own tf.conv3d gives a wrong frame gradient on wasm (pixelRewardCheck) and runs in plain loops.',
    'Out-of-memory rows: the run exceeded the 4 GiB wasm heap; numBytesAtError is the tensor memory held when it failed; larger clips of the same method are then skipped.',
  ],
  ...results,
  torch,
};
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), values.out)} (${report.elapsedSeconds} s)`);
