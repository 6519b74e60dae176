/**
 * Degradations that stand in for a small VAE's round trip (and for a blurry generator): Gaussian blur,
 * additive Gaussian noise and a slight colour shift (per-channel gain and offset), clamped to [-1, 1].
 * The oracle must keep its labels under these (>= 95 % agreement at blur 1 px, noise 0.05-0.1).
 */
import { Generator, InvalidArgumentError } from '@prfl/tensor';
import { assertVideo, type Video } from './video.js';

export interface DegradeOptions {
  /** Gaussian blur standard deviation in pixels (0 = none). Default 1. */
  blurSigma?: number;
  /** Standard deviation of additive noise (values live in [-1, 1]). Default 0.075. */
  noiseStd?: number;
  /** Maximum per-channel offset and gain change (gain in 1 +- shift, offset in +- shift). Default 0.05. */
  colourShift?: number;
  /** Seed of the noise and of the colour shift. */
  seed: number | string;
}

/** Separable Gaussian blur of every frame and channel, edges clamped. Returns a new video. */
export function blurVideo(video: Video, sigma: number): Video {
  assertVideo('blurVideo: video', video);
  if (!Number.isFinite(sigma) || sigma < 0) {
    throw new InvalidArgumentError(`blurVideo: sigma must be a finite number >= 0, got ${String(sigma)}`);
  }
  const { frames: F, height: H, width: W } = video;
  const out = new Float32Array(video.data);
  if (sigma === 0) return { ...video, data: out };
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) {
    const v = Math.exp(-(k * k) / (2 * sigma * sigma));
    kernel[k + radius] = v;
    sum += v;
  }
  for (let k = 0; k < kernel.length; k++) kernel[k] = (kernel[k] as number) / sum;
  const tmp = new Float32Array(H * W * 3);
  for (let f = 0; f < F; f++) {
    const base = f * H * W * 3;
    // Horizontal pass into tmp.
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = -radius; k <= radius; k++) {
          let jj = j + k;
          jj = jj < 0 ? 0 : jj >= W ? W - 1 : jj;
          const w = kernel[k + radius] as number;
          const p = base + 3 * (i * W + jj);
          r += w * (out[p] as number);
          g += w * (out[p + 1] as number);
          b += w * (out[p + 2] as number);
        }
        const q = 3 * (i * W + j);
        tmp[q] = r;
        tmp[q + 1] = g;
        tmp[q + 2] = b;
      }
    }
    // Vertical pass back into out.
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = -radius; k <= radius; k++) {
          let ii = i + k;
          ii = ii < 0 ? 0 : ii >= H ? H - 1 : ii;
          const w = kernel[k + radius] as number;
          const q = 3 * (ii * W + j);
          r += w * (tmp[q] as number);
          g += w * (tmp[q + 1] as number);
          b += w * (tmp[q + 2] as number);
        }
        const p = base + 3 * (i * W + j);
        out[p] = r;
        out[p + 1] = g;
        out[p + 2] = b;
      }
    }
  }
  return { ...video, data: out };
}

/** Blur, then colour shift, then noise, then clamp to [-1, 1]. Deterministic in `seed`. Returns a new video. */
export function degradeVideo(video: Video, options: DegradeOptions): Video {
  const sigma = options.blurSigma ?? 1;
  const noiseStd = options.noiseStd ?? 0.075;
  const shift = options.colourShift ?? 0.05;
  for (const [name, v] of [
    ['noiseStd', noiseStd],
    ['colourShift', shift],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) {
      throw new InvalidArgumentError(`degradeVideo: ${name} must be a finite number >= 0, got ${String(v)}`);
    }
  }
  const out = blurVideo(video, sigma);
  const rng = new Generator(options.seed);
  const gain = [0, 1, 2].map(() => 1 + shift * (2 * rng.nextDouble() - 1));
  const offset = [0, 1, 2].map(() => shift * (2 * rng.nextDouble() - 1));
  const noise = noiseStd > 0 ? gaussianNoise(out.data.length, noiseStd, rng.derive('noise')) : undefined;
  const d = out.data;
  for (let p = 0; p < d.length; p++) {
    const c = p % 3;
    let v = (d[p] as number) * (gain[c] as number) + (offset[c] as number);
    if (noise) v += noise[p] as number;
    d[p] = v < -1 ? -1 : Math.min(v, 1);
  }
  return out;
}

/**
 * n Gaussian values (Marsaglia's polar method) from a xorshift128 stream seeded by `rng`: a few times
 * faster than Generator.normalArray, which matters for the 2 x 10^5 values of every degraded clip.
 */
function gaussianNoise(n: number, std: number, rng: Generator): Float32Array {
  let a = rng.nextUint32() | 1;
  let b = rng.nextUint32();
  let c = rng.nextUint32();
  let d = rng.nextUint32();
  const next = (): number => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return d / 2147483648 - 1; // uniform in [-1, 1)
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let u: number;
    let v: number;
    let s: number;
    do {
      u = next();
      v = next();
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = std * Math.sqrt((-2 * Math.log(s)) / s);
    out[i] = u * m;
    if (i + 1 < n) out[i + 1] = v * m;
  }
  return out;
}
