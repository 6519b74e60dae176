/**
 * Tiny models behind @prfl/tensor's contracts, small enough for finite differences in float32 and for
 * hundreds of steps in a test: a per-token MLP velocity model with time and text conditioning, a
 * latent reward that likes a positive channel 0, and a decoder.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  Generator,
  type LatentRewardModel,
  type LatentVideo,
  type Timestep,
  type VelocityModel,
} from '@prfl/tensor';
import type { LatentDecoder, VideoBatch } from '../src/index.js';

let instances = 0;

function makeVars(
  prefix: string,
  specs: Record<string, { shape: number[]; std: number; trainable?: boolean }>,
  seed: number,
): Map<string, tf.Variable> {
  const g = new Generator(seed);
  const out = new Map<string, tf.Variable>();
  for (const [name, s] of Object.entries(specs)) {
    const value = g.normal(s.shape, 0, s.std);
    out.set(name, tf.variable(value, s.trainable ?? true, `${prefix}/${name}`));
    value.dispose();
  }
  return out;
}

/** [B, L, D] text -> [B, D] mean over tokens. */
function pooledText(c: Conditioning): tf.Tensor2D {
  return tf.mean(c.text, 1) as tf.Tensor2D;
}

/** Timesteps -> [B, 1] in [0, 1]. */
function timeColumn(ts: readonly Timestep[]): tf.Tensor2D {
  return tf.tensor2d(
    ts.map((t) => t / 1000),
    [ts.length, 1],
  );
}

/**
 * v = tanh(x W1 + b1 + t wt + text Wc) W2 + b2 + x a + frozen, per token. `frozen` is a non-trainable
 * variable (it must never receive a gradient).
 */
export class TinyVelocity implements VelocityModel {
  readonly latentChannels: number;
  readonly vars: Map<string, tf.Variable>;

  constructor(seed = 1, options: { channels?: number; hidden?: number; textDim?: number } = {}) {
    const c = options.channels ?? 4;
    const h = options.hidden ?? 8;
    const d = options.textDim ?? 4;
    this.latentChannels = c;
    this.vars = makeVars(
      `tiny_velocity_${instances++}`,
      {
        w1: { shape: [c, h], std: 0.5 },
        b1: { shape: [h], std: 0.1 },
        wt: { shape: [1, h], std: 0.5 },
        wc: { shape: [d, h], std: 0.5 },
        w2: { shape: [h, c], std: 0.5 },
        b2: { shape: [c], std: 0.1 },
        a: { shape: [c], std: 0.2 },
        frozen: { shape: [c], std: 0.1, trainable: false },
      },
      seed,
    );
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.vars;
  }

  predictVelocity(x: LatentVideo, timesteps: readonly Timestep[], conditioning: Conditioning): LatentVideo {
    const w = (n: string) => this.vars.get(n) as tf.Variable;
    return tf.tidy(() => {
      const [b, f, hh, ww, c] = x.shape;
      const tokens = tf.reshape(x, [b, f * hh * ww, c]);
      const cond = tf.add(
        tf.matMul(timeColumn(timesteps), w('wt')),
        tf.matMul(pooledText(conditioning), w('wc')),
      );
      const pre = tf.add(
        tf.reshape(tf.matMul(tf.reshape(tokens, [-1, c]), w('w1')), [b, f * hh * ww, -1]),
        tf.expandDims(tf.add(cond, w('b1')), 1),
      );
      const hidden = tf.tanh(pre);
      const out = tf.reshape(tf.matMul(tf.reshape(hidden, [b * f * hh * ww, -1]), w('w2')), [
        b,
        f,
        hh,
        ww,
        c,
      ]);
      return tf.add(tf.add(tf.add(out, w('b2')), tf.mul(x, w('a'))), w('frozen')) as LatentVideo;
    });
  }

  /** Copies every value into `other` (same architecture). */
  copyTo(other: TinyVelocity): void {
    for (const [name, v] of this.vars) (other.vars.get(name) as tf.Variable).assign(v);
  }

  dispose(): void {
    tf.dispose([...this.vars.values()]);
  }
}

/**
 * A reward that likes a positive mean of channel 0: r = scale * mean(tanh(x[..., 0] + bias)) + offset,
 * plus a small time term. Its variables are left trainable on purpose: only the run's explicit variable
 * list keeps them from training.
 */
export class TinyReward implements LatentRewardModel {
  readonly vars: Map<string, tf.Variable>;
  readonly scale: number;

  constructor(seed = 2, scale = 4) {
    this.scale = scale;
    this.vars = makeVars(
      `tiny_reward_${instances++}`,
      { bias: { shape: [1], std: 0.1 }, wt: { shape: [1], std: 0.1 } },
      seed,
    );
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.vars;
  }

  score(x: LatentVideo, timesteps: readonly Timestep[]): tf.Tensor1D {
    return tf.tidy(() => {
      const [b] = x.shape;
      const ch0 = tf.slice(x, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1]);
      const per = tf.mean(tf.reshape(tf.tanh(tf.add(ch0, this.vars.get('bias') as tf.Variable)), [b, -1]), 1);
      const time = tf.mul(tf.reshape(timeColumn(timesteps), [b]), this.vars.get('wt') as tf.Variable);
      return tf.add(tf.mul(per, this.scale), time) as tf.Tensor1D;
    });
  }

  dispose(): void {
    tf.dispose([...this.vars.values()]);
  }
}

/**
 * A differentiable decoder: channels -> 3 by a fixed matrix, then each latent frame twice (a decoder makes
 * more frames than it reads).
 */
export class TinyDecoder implements LatentDecoder {
  readonly weight: tf.Tensor2D;
  /** Latent frames of the last call. */
  lastFrames = 0;

  constructor(channels = 4, seed = 3) {
    this.weight = new Generator(seed).normal([channels, 3], 0, 0.5) as tf.Tensor2D;
  }

  decode(latents: LatentVideo): tf.Tensor5D {
    this.lastFrames = latents.shape[1];
    return tf.tidy(() => {
      const [b, f, h, w, c] = latents.shape;
      const rgb = tf.reshape(tf.matMul(tf.reshape(latents, [-1, c]), this.weight), [b, f, 1, h, w, 3]);
      return tf.tanh(tf.reshape(tf.concat([rgb, tf.mul(rgb, 0.5)], 2), [b, f * 2, h, w, 3])) as tf.Tensor5D;
    });
  }

  dispose(): void {
    this.weight.dispose();
  }
}

/** A pixel reward on frames [B, F, H, W, 3]: likes a red first channel. */
export class TinyPixelReward implements LatentRewardModel {
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return new Map();
  }

  score(frames: LatentVideo): tf.Tensor1D {
    return tf.tidy(() => {
      const [b] = frames.shape;
      const red = tf.slice(frames, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1]);
      return tf.mul(tf.mean(tf.reshape(red, [b, -1]), 1), 4) as tf.Tensor1D;
    });
  }
}

/** A batch of clean latents [B, F, H, W, 4] and text [B, 3, 4]. */
export function tinyBatch(seed: number, b = 2, shape: [number, number, number] = [2, 3, 3]): VideoBatch {
  const g = new Generator(seed);
  return {
    latents: g.normal([b, ...shape, 4], 0.5, 0.5) as LatentVideo,
    conditioning: { text: g.normal([b, 3, 4]) as tf.Tensor3D },
  };
}

export function nullConditioning(): Conditioning {
  return { text: tf.zeros([1, 3, 4]) as tf.Tensor3D };
}

export function disposeBatch(batch: VideoBatch): void {
  tf.dispose([batch.latents, batch.conditioning.text]);
}

/** Values of every variable, by name. */
export function snapshot(vars: ReadonlyMap<string, tf.Variable>): Map<string, Float32Array> {
  return new Map([...vars].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}
