// The backend's 2-D matMul rate, the ceiling the decoder's GFLOP/s are read against: the same shapes and
// method as packages/models/bench/dit.mjs (median and best of repeated products after a warm-up), plus
// the VAE's own widths (a 3x3 tap of a 384-channel convolution on an 8x8 or 64x64 frame is a
// [HW, 9 x 384] x [9 x 384, 384] product inside XNNPACK).
import * as tf from '@tensorflow/tfjs-core';
import { Generator, matMul } from '@prfl/tensor';

const SHAPES = [
  [512, 512, 512],
  [320, 384, 384],
  [320, 384, 1024],
  [1024, 1024, 1024],
  [4096, 864, 96],
];

async function timeMs(fn, minSeconds) {
  fn().dispose();
  const times = [];
  const start = performance.now();
  while (performance.now() - start < minSeconds * 1000 || times.length < 3) {
    const t0 = performance.now();
    const y = fn();
    await y.data();
    y.dispose();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], best: times[0] };
}

/** @returns {Promise<{ peakGflops: number, peakGflopsBest: number, rows: object[] }>} */
export async function matmulPeak(minSeconds = 1) {
  const rows = [];
  for (const [m, k, n] of SHAPES) {
    const gflop = (2 * m * k * n) / 1e9;
    // The cpu backend needs seconds per large product; its peak shows on the small ones.
    if (tf.getBackend() === 'cpu' && gflop > 0.5) continue;
    const g = new Generator(`matmul/${m}x${k}x${n}`);
    const a = g.normal([m, k]);
    const b = g.normal([k, n]);
    const t = await timeMs(() => matMul(a, b), minSeconds);
    tf.dispose([a, b]);
    rows.push({
      shape: [m, k, n],
      ms: +t.ms.toFixed(3),
      bestMs: +t.best.toFixed(3),
      gflops: +(gflop / (t.ms / 1000)).toFixed(2),
      gflopsBest: +(gflop / (t.best / 1000)).toFixed(2),
    });
  }
  return {
    peakGflops: Math.max(...rows.map((r) => r.gflops)),
    peakGflopsBest: Math.max(...rows.map((r) => r.gflopsBest)),
    rows,
  };
}
