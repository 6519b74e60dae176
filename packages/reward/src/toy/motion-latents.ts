/**
 * A synthetic preference world in latent space for tests, examples and benchmarks: each "video" is a
 * latent [F, H, W, C] holding one Gaussian blob (a C-vector colour, the same for all by default). Good videos (label 1)
 * move the blob smoothly at constant velocity, bouncing off the borders; bad videos (label 0) make it
 * jitter: every frame it jumps to a random nearby position. Telling them apart needs comparing frames,
 * which is what a video reward model must learn; the label is a property of the clean video and holds
 * at every noise level (docs/method.md §4), though at high sigma it can no longer be seen.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Generator, InvalidArgumentError, type PairwiseBatch, type PointwiseBatch } from '@prfl/tensor';

export interface MotionLatentOptions {
  /** Latent frames. Default 4. */
  frames?: number;
  /** Latent height and width. Default 8. */
  size?: number;
  /** Latent channels. Default 4. */
  channels?: number;
  /** Width of the (uninformative) text embeddings. Default 8. */
  textDim?: number;
  /** Text tokens. Default 2. */
  textLength?: number;
  /** Blob radius (std of the Gaussian, in latent pixels). Default size / 4. */
  radius?: number;
  /**
   * Give every blob the same colour (all channels 1). Default true; with random colours (false) the classes
   * differ only in second-order statistics and a tiny model needs many more steps to tell them apart.
   */
  fixedColour?: boolean;
  /** Distance a smoothly moving blob travels per frame, in latent pixels. Default 0.5. */
  speed?: number;
  /** Largest jump of a jittering blob per frame, in latent pixels (jumps are half to all of it). Default 0.75 size. */
  jitter?: number;
}

interface Resolved {
  frames: number;
  size: number;
  channels: number;
  textDim: number;
  textLength: number;
  radius: number;
  fixedColour: boolean;
  speed: number;
  jitter: number;
}

function resolve(o: MotionLatentOptions): Resolved {
  const size = o.size ?? 8;
  const r: Resolved = {
    frames: o.frames ?? 4,
    size,
    channels: o.channels ?? 4,
    textDim: o.textDim ?? 8,
    textLength: o.textLength ?? 2,
    radius: o.radius ?? size / 4,
    speed: o.speed ?? 0.5,
    fixedColour: o.fixedColour ?? true,
    jitter: o.jitter ?? 0.75 * size,
  };
  for (const [k, v] of Object.entries(r)) {
    if (k === 'fixedColour') continue;
    if (
      !Number.isFinite(v) ||
      v <= 0 ||
      (!['radius', 'speed', 'jitter'].includes(k) && !Number.isInteger(v))
    ) {
      throw new InvalidArgumentError(
        `motion latents: ${k} must be a positive ${['radius', 'speed', 'jitter'].includes(k) ? 'number' : 'integer'}, got ${String(v)}`,
      );
    }
  }
  return r;
}

/** The blob's path: [frames] of (row, col) positions. */
function path(gen: Generator, o: Resolved, good: boolean): Array<[number, number]> {
  const lo = 1;
  const hi = o.size - 2;
  let y = lo + gen.nextDouble() * (hi - lo);
  let x = lo + gen.nextDouble() * (hi - lo);
  const out: Array<[number, number]> = [[y, x]];
  const angle = gen.nextDouble() * 2 * Math.PI;
  let vy = o.speed * Math.sin(angle);
  let vx = o.speed * Math.cos(angle);
  for (let f = 1; f < o.frames; f++) {
    if (good) {
      y += vy;
      x += vx;
      if (y < lo || y > hi) {
        vy = -vy;
        y = Math.min(hi, Math.max(lo, y));
      }
      if (x < lo || x > hi) {
        vx = -vx;
        x = Math.min(hi, Math.max(lo, x));
      }
    } else {
      const a = gen.nextDouble() * 2 * Math.PI;
      const jump = o.jitter * (0.5 + 0.5 * gen.nextDouble());
      y = Math.min(hi, Math.max(lo, y + jump * Math.sin(a)));
      x = Math.min(hi, Math.max(lo, x + jump * Math.cos(a)));
    }
    out.push([y, x]);
  }
  return out;
}

/** One latent [F, H, W, C] (flat, channels last) with the blob along its path. */
function render(gen: Generator, o: Resolved, good: boolean): Float32Array {
  const { frames, size, channels, radius } = o;
  const out = new Float32Array(frames * size * size * channels);
  const colour = o.fixedColour ? new Float32Array(channels).fill(1) : gen.normalArray(channels);
  let norm = 0;
  for (const c of colour) norm += c * c;
  const scale = 2 / Math.sqrt(norm / channels + 1e-6);
  const positions = path(gen, o, good);
  positions.forEach(([cy, cx], f) => {
    for (let yy = 0; yy < size; yy++) {
      for (let xx = 0; xx < size; xx++) {
        const g = Math.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius * radius));
        const base = ((f * size + yy) * size + xx) * channels;
        for (let c = 0; c < channels; c++) out[base + c] = g * (colour[c] as number) * scale;
      }
    }
  });
  return out;
}

/**
 * `count` labelled latents, half good and half bad (shuffled), with uninformative text embeddings:
 * a PointwiseBatch (the caller disposes its tensors). Ids are `${prefix}${index}`.
 */
export function motionLatentBatch(
  gen: Generator,
  count: number,
  options: MotionLatentOptions = {},
  prefix = 'motion-',
): PointwiseBatch {
  const o = resolve(options);
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(
      `motionLatentBatch: count must be a positive integer, got ${String(count)}`,
    );
  }
  const order = gen.permutation(count);
  const labels = order.map((i) => (i % 2 === 0 ? 1 : 0));
  const per = o.frames * o.size * o.size * o.channels;
  const data = new Float32Array(count * per);
  labels.forEach((label, i) => {
    data.set(render(gen, o, label === 1), i * per);
  });
  return {
    ids: labels.map((_, i) => `${prefix}${i}`),
    latents: tf.tensor5d(data, [count, o.frames, o.size, o.size, o.channels]),
    conditioning: {
      text: tf.tensor3d(gen.normalArray(count * o.textLength * o.textDim, 0, 0.5), [
        count,
        o.textLength,
        o.textDim,
      ]),
    },
    labels: tf.tensor1d(labels, 'float32'),
  };
}

/** `count` (good, bad) pairs sharing a text embedding: a PairwiseBatch (the caller disposes its tensors). */
export function motionLatentPairs(
  gen: Generator,
  count: number,
  options: MotionLatentOptions = {},
  prefix = 'pair-',
): PairwiseBatch {
  const o = resolve(options);
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(
      `motionLatentPairs: count must be a positive integer, got ${String(count)}`,
    );
  }
  const per = o.frames * o.size * o.size * o.channels;
  const win = new Float32Array(count * per);
  const lose = new Float32Array(count * per);
  for (let i = 0; i < count; i++) {
    win.set(render(gen, o, true), i * per);
    lose.set(render(gen, o, false), i * per);
  }
  const shape: [number, number, number, number, number] = [count, o.frames, o.size, o.size, o.channels];
  return {
    ids: Array.from({ length: count }, (_, i) => [`${prefix}${i}-good`, `${prefix}${i}-bad`] as const),
    win: tf.tensor5d(win, shape),
    lose: tf.tensor5d(lose, shape),
    conditioning: {
      text: tf.tensor3d(gen.normalArray(count * o.textLength * o.textDim, 0, 0.5), [
        count,
        o.textLength,
        o.textDim,
      ]),
    },
  };
}
