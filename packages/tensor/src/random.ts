import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from './errors.js';

/** The serialisable state of a `Generator`: four 32-bit words of xoshiro128**. */
export interface GeneratorState {
  readonly s: readonly [number, number, number, number];
}

/** splitmix32: spreads a 32-bit seed over the state so nearby seeds give unrelated streams. */
function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a over a string, for seeding from labels. */
function hashString(text: string, start = 0x811c9dc5): number {
  let h = start >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function seedWords(seed: number | string): [number, number, number, number] {
  let mix: () => number;
  if (typeof seed === 'string') mix = splitmix32(hashString(seed));
  else {
    if (!Number.isSafeInteger(seed)) {
      throw new InvalidArgumentError(`seed: expected a safe integer or a string, got ${String(seed)}`);
    }
    // Both halves of a 53-bit seed take part.
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    const lo = seed >>> 0;
    mix = splitmix32(lo ^ Math.imul(hi, 0x9e3779b1));
  }
  const s: [number, number, number, number] = [mix(), mix(), mix(), mix()];
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  return s;
}

/**
 * A seeded random generator whose numbers are made in JavaScript, not by a backend kernel: the same seed
 * gives bit-identical noise on cpu, wasm and webgpu (tfjs's own random ops differ between backends).
 * xoshiro128** for uniforms, Box-Muller for normals; the state can be saved and restored (checkpoints).
 */
export class Generator {
  private s: [number, number, number, number];
  private readonly origin: number | string;

  constructor(seed: number | string) {
    this.origin = seed;
    this.s = seedWords(seed);
  }

  /** A new, independent stream named by `label`, derived from this generator's seed (not its position). */
  derive(label: string | number): Generator {
    return new Generator(`${String(this.origin)}/${String(label)}`);
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [0, n). */
  nextInt(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new InvalidArgumentError(`nextInt: expected a positive integer bound, got ${String(n)}`);
    }
    return Math.floor(this.nextDouble() * n);
  }

  /** Fills a Float32Array with standard normals (Box-Muller, both values of each pair used). */
  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      // 1 - u keeps the log argument in (0, 1].
      const r = Math.sqrt(-2 * Math.log(1 - this.nextDouble()));
      const theta = 2 * Math.PI * this.nextDouble();
      out[i] = mean + std * r * Math.cos(theta);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(theta);
    }
    return out;
  }

  /** Fills a Float32Array with uniforms in [low, high). */
  uniformArray(n: number, low = 0, high = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.nextDouble();
    return out;
  }

  /** A float32 tensor of standard normals (noise eps). */
  normal<R extends tf.Rank>(shape: tf.ShapeMap[R], mean = 0, std = 1): tf.Tensor<R> {
    return tf.tensor(this.normalArray(checkedSize(shape), mean, std), shape, 'float32') as tf.Tensor<R>;
  }

  /** A float32 tensor of uniforms in [low, high). */
  uniform<R extends tf.Rank>(shape: tf.ShapeMap[R], low = 0, high = 1): tf.Tensor<R> {
    return tf.tensor(this.uniformArray(checkedSize(shape), low, high), shape, 'float32') as tf.Tensor<R>;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      [p[i], p[j]] = [p[j] as number, p[i] as number];
    }
    return p;
  }

  /** The current position, to save in a checkpoint. */
  getState(): GeneratorState {
    return { s: [...this.s] as [number, number, number, number] };
  }

  /** Restores a position saved by getState. */
  setState(state: GeneratorState): void {
    const s = state?.s;
    if (
      !Array.isArray(s) ||
      s.length !== 4 ||
      s.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)
    ) {
      throw new InvalidArgumentError(
        `generator state: expected { s: [four uint32 words] }, got ${JSON.stringify(state)}`,
      );
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) {
      throw new InvalidArgumentError('generator state: all-zero state is invalid for xoshiro128**');
    }
    this.s = [s[0], s[1], s[2], s[3]];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function checkedSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new InvalidArgumentError(`shape: expected non-negative integers, got [${shape.join(', ')}]`);
    }
    n *= d;
  }
  return n;
}

/**
 * Starting noise for a batch of seeds, [N, ...shape]: row i is `new Generator(seeds[i]).normal([1,
 * ...shape])`, so any one video of the batch can be made again alone from its seed.
 */
export function seededNoise(seeds: readonly string[], shape: readonly number[]): tf.Tensor {
  if (seeds.length === 0) {
    throw new InvalidArgumentError('seededNoise: expected at least one seed, got none');
  }
  return tf.tidy(() => tf.concat(seeds.map((s) => new Generator(s).normal([1, ...shape]))));
}
