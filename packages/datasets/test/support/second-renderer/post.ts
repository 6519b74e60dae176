/**
 * What a small VAE's decoder (or a generator) does to a clip, by the second renderer's own code:
 * Gaussian blur (edges mirrored, where src/moving-shapes/degrade.ts clamps them), a colour shift
 * (per-channel gain and offset), additive Gaussian noise, and clamping to [-1, 1].
 */
import type { Video } from '../../../src/moving-shapes/video.js';
import type { Rng } from './rng.js';

function mirror(k: number, n: number): number {
  if (k < 0) return Math.min(n - 1, -k - 1);
  if (k >= n) return Math.max(0, 2 * n - k - 1);
  return k;
}

/** Blurs `count` RGB pixels spaced `stride` pixels apart, starting at pixel `start`, in place. */
function blurLine(
  data: Float32Array,
  start: number,
  stride: number,
  count: number,
  weights: Float32Array,
  line: Float32Array,
): void {
  const R = (weights.length - 1) / 2;
  for (let k = 0; k < count; k++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let q = -R; q <= R; q++) {
      const w = weights[q + R] as number;
      const p = 3 * (start + stride * mirror(k + q, count));
      r += w * (data[p] as number);
      g += w * (data[p + 1] as number);
      b += w * (data[p + 2] as number);
    }
    line[3 * k] = r;
    line[3 * k + 1] = g;
    line[3 * k + 2] = b;
  }
  for (let k = 0; k < count; k++) {
    const p = 3 * (start + stride * k);
    data[p] = line[3 * k] as number;
    data[p + 1] = line[3 * k + 1] as number;
    data[p + 2] = line[3 * k + 2] as number;
  }
}

/** Separable Gaussian blur in place. */
export function blur(video: Video, sigma: number): void {
  if (sigma <= 0) return;
  const { frames: F, height: H, width: W, data } = video;
  const R = Math.ceil(3.5 * sigma);
  const weights = new Float32Array(2 * R + 1);
  let total = 0;
  for (let k = -R; k <= R; k++) {
    const w = Math.exp(-(k * k) / (2 * sigma * sigma));
    weights[k + R] = w;
    total += w;
  }
  for (let k = 0; k < weights.length; k++) weights[k] = (weights[k] as number) / total;
  const line = new Float32Array(3 * Math.max(H, W));
  for (let f = 0; f < F; f++) {
    const base = f * H * W;
    for (let i = 0; i < H; i++) blurLine(data, base + i * W, 1, W, weights, line);
    for (let j = 0; j < W; j++) blurLine(data, base + j, W, H, weights, line);
  }
}

/**
 * Per-channel gain 1 +- `amount` and offset +- `amount`, then noise of std `noise`, clamped to [-1, 1].
 * The noise is drawn from a table of 4096 normal values (a clip has 2 x 10^5 values: drawing each
 * afresh would make the noisy renderings the slowest part of the tests).
 */
export function shiftAndNoise(video: Video, amount: number, noise: number, rng: Rng): void {
  const gain = [0, 1, 2].map(() => 1 + rng.uniform(-amount, amount));
  const offset = [0, 1, 2].map(() => rng.uniform(-amount, amount));
  const table = new Float32Array(4096);
  for (let k = 0; k < table.length; k++) table[k] = noise * rng.normal();
  const d = video.data;
  for (let p = 0; p < d.length; p += 3) {
    for (let c = 0; c < 3; c++) {
      let v = (d[p + c] as number) * (gain[c] as number) + (offset[c] as number);
      if (noise > 0) v += table[rng.int(4096)] as number;
      d[p + c] = Math.max(-1, Math.min(v, 1));
    }
  }
}
