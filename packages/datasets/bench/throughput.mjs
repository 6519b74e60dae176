// Throughput and oracle agreement of @prfl/datasets (the built package, plain Node):
//   - MovingShapes rendering (spec + pixels) and oracle judging, videos per second;
//   - oracle agreement with the ground truth on 1000 clean and 1000 degraded clips (blur 1 px, noise
//     0.1, colour shift 0.05; and a milder noise 0.05), seeds "bench/..." (the thresholds were tuned
//     on "tune/...", the tests use "test/...");
//   - loader throughput: 512 clips of Wan-sized latents [5, 8, 8, 16] written to a shard store, then
//     streamed as pointwise batches of 32 into tf tensors on cpu and wasm.
// Usage: npm run build && node bench/throughput.mjs [--clips 1000] ; writes bench/results/throughput.json
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  degradeVideo,
  disposeBatch,
  evaluateOracle,
  judgeVideo,
  openJsonlDataset,
  renderClip,
  sampleClip,
  sampleClips,
  writeMovingShapesDataset,
} from '@prfl/datasets';
import { initBackend, shutdownBackend } from '@prfl/tensor';

const args = process.argv.slice(2);
const clipsArg = args.indexOf('--clips');
const COUNT = clipsArg >= 0 ? Number(args[clipsArg + 1]) : 1000;
const here = path.dirname(new URL(import.meta.url).pathname);

function rate(n, ms) {
  return Math.round((n / ms) * 1000 * 10) / 10;
}

const results = {
  command: `node bench/throughput.mjs${args.length ? ` ${args.join(' ')}` : ''}`,
  date: new Date().toISOString(),
  node: process.version,
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model ?? 'unknown',
    platform: `${os.platform()} ${os.arch()}`,
  },
};

// Rendering: sample a spec and draw its 17 x 64 x 64 frames.
{
  for (let i = 0; i < 200; i++) renderClip(sampleClip({ seed: `warm/${i}`, motionDefect: 'random' }));
  const n = 2000;
  const specs = Array.from({ length: n }, (_, i) =>
    sampleClip({ seed: `bench-render/${i}`, motionDefect: i % 2 ? 'random' : 'none' }),
  );
  let t = performance.now();
  const videos = specs.map((s) => renderClip(s));
  const renderMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < n; i++) judgeVideo(videos[i], specs[i].prompt);
  const judgeMs = performance.now() - t;
  const degraded = videos
    .slice(0, 500)
    .map((v, i) => degradeVideo(v, { seed: i, blurSigma: 1, noiseStd: 0.1 }));
  t = performance.now();
  for (let i = 0; i < degraded.length; i++) judgeVideo(degraded[i], specs[i].prompt);
  const judgeDegradedMs = performance.now() - t;
  results.throughput = {
    frames: '17 x 64 x 64 RGB',
    renderVideosPerSecond: rate(n, renderMs),
    oracleVideosPerSecond: rate(n, judgeMs),
    oracleDegradedVideosPerSecond: rate(degraded.length, judgeDegradedMs),
    renderPlusOracleVideosPerSecond: rate(n, renderMs + judgeMs),
  };
  console.log('throughput', results.throughput);
}

// Oracle agreement.
{
  const clips = sampleClips({ count: COUNT, seed: 'bench', alignmentDefectRate: 0.5 });
  const summarise = (r) => ({
    clips: r.count,
    motionQuality: r.motionQuality,
    textAlignment: r.textAlignment,
    physics: r.physics,
    integrity: r.integrity,
    confusion: r.confusion,
    detectionRate: Object.fromEntries(
      Object.entries(r.perDefect).map(([k, d]) => [k, Math.round((d.detected / d.count) * 1000) / 1000]),
    ),
    seconds: Math.round(r.seconds * 10) / 10,
    disagreements: r.disagreements,
  });
  results.agreement = {
    set: `${COUNT} clips, seed "bench": every other clip has one motion defect (uniform over 6 kinds), independently half have one prompt mismatch (uniform over 4 kinds)`,
    clean: summarise(evaluateOracle({ clips })),
    degraded: {
      degradation: { blurSigma: 1, noiseStd: 0.1, colourShift: 0.05 },
      ...summarise(evaluateOracle({ clips, degrade: { blurSigma: 1, noiseStd: 0.1, colourShift: 0.05 } })),
    },
    degradedMild: {
      degradation: { blurSigma: 1, noiseStd: 0.05, colourShift: 0.05 },
      ...summarise(evaluateOracle({ clips, degrade: { blurSigma: 1, noiseStd: 0.05, colourShift: 0.05 } })),
    },
  };
  for (const k of ['clean', 'degraded', 'degradedMild']) {
    const a = results.agreement[k];
    console.log(
      `agreement ${k}: motion quality ${a.motionQuality}, text alignment ${a.textAlignment} (${a.seconds} s)`,
    );
  }
}

// Loaders: write 512 clips, stream them back as batches on cpu and wasm.
{
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prfl-bench-'));
  try {
    const n = 512;
    const C = 16;
    const encode = (video) => {
      // A stand-in encoder: block means of the RGB frames, repeated over 16 channels ([5, 8, 8, 16]).
      const out = new Float32Array(5 * 8 * 8 * C);
      for (let f = 0; f < 5; f++)
        for (let i = 0; i < 8; i++)
          for (let j = 0; j < 8; j++) {
            const p = ((f * 4 * 64 + i * 8) * 64 + j * 8) * 3;
            for (let c = 0; c < C; c++) out[((f * 8 + i) * 8 + j) * C + c] = video.data[p + (c % 3)];
          }
      return { shape: [5, 8, 8, C], data: out };
    };
    const clips = sampleClips({ count: n, seed: 'bench-loader' });
    let t = performance.now();
    await writeMovingShapesDataset({
      clips,
      encode,
      embedText: (prompt) => ({ shape: [16, 64], data: new Float32Array(16 * 64).fill(prompt.length / 100) }),
      manifest: path.join(dir, 'manifest.jsonl'),
      store: path.join(dir, 'store'),
      clipsPerShard: 64,
    });
    const writeMs = performance.now() - t;
    results.loader = {
      clips: n,
      latent: [5, 8, 8, C],
      text: [16, 64],
      writeClipsPerSecond: rate(n, writeMs),
      note: 'write includes rendering each clip and the stand-in encoder',
    };
    for (const backend of ['cpu', 'wasm']) {
      await initBackend({ backend });
      const ds = await openJsonlDataset(path.join(dir, 'manifest.jsonl'), { store: path.join(dir, 'store') });
      const source = ds.pointwise();
      let seen = 0;
      t = performance.now();
      for (let epoch = 0; epoch < 3; epoch++) {
        for await (const b of source.batches({ batchSize: 32, seed: 1, epoch })) {
          seen += b.ids.length;
          disposeBatch(b);
        }
      }
      const ms = performance.now() - t;
      await ds.close();
      results.loader[backend] = {
        batchSize: 32,
        epochs: 3,
        clipsPerSecond: rate(seen, ms),
        megabytesPerSecond: Math.round((seen * (5 * 8 * 8 * C + 16 * 64) * 4) / 1e6 / (ms / 1000)),
      };
      shutdownBackend();
    }
    console.log('loader', results.loader);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(path.join(here, 'results', 'throughput.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${path.join(here, 'results', 'throughput.json')}`);
