/**
 * The building blocks of Wan's video VAE (wan/modules/vae.py) on whole clips, channels last
 * [B, T, H, W, C], with no feature cache.
 *
 * Wan runs its encoder on the first frame alone and then on chunks of 4 frames (decoder: one latent
 * frame at a time), carrying the last two input frames of every causal convolution from chunk to chunk
 * (`feat_cache`). That is exactly a convolution over the whole clip with two zero frames padded on the
 * left in time, which is what `causalConv3d` computes. The two places where chunking changes the maths
 * are the temporal resamplers, reproduced here on whole clips:
 * - `downsample` with time: the first chunk skips `time_conv` (its first frame passes through), later
 *   chunks prepend the previous chunk's last frame, so over the clip it is
 *   [x0, conv_valid_stride2(x0 .. x_{T-1})]: T = 1 + 2m frames -> 1 + m. Hence 1 + 4k frames -> 1 + k.
 * - `upsample` with time: the first latent frame skips `time_conv` ('Rep'), and the later frames see
 *   zeros, not frame 0, as their left context; so it is [x0, interleave(causal_conv(x_1 .. x_{T-1}))]:
 *   T -> 1 + 2 (T - 1).
 * scripts/make-vae-fixtures.py runs Wan's chunked, cached algorithm, and the fixture test checks that
 * the whole-clip form here agrees with it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv3d, linear, matMul } from '@prfl/tensor';
import type { VAEModule } from './params.js';

/** Weights by Wan key (tfjs layout). */
export type VAEWeights = (key: string) => tf.Tensor;

/** SiLU: x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/**
 * Wan's RMS_norm: F.normalize over the channels (x / max(||x||, 1e-12)) * sqrt(C) * gamma, channels last.
 * The clamp is applied to the squared norm so the gradient stays finite at x = 0.
 */
export function channelRmsNorm(x: tf.Tensor, gamma: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    const inv = tf.rsqrt(tf.maximum(tf.sum(tf.square(x), -1, true), 1e-24));
    return tf.mul(tf.mul(x, inv), tf.mul(gamma, Math.sqrt(c)));
  });
}

/**
 * Zero-pads frames, height and width of [B, T, H, W, C] through rank-3 and rank-4 pads (whose gradients,
 * slices, are fast on wasm; rank-5 slices are not).
 */
export function padVideo(
  x: tf.Tensor5D,
  time: readonly [number, number],
  height: readonly [number, number],
  width: readonly [number, number],
): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, t, h, w, c] = x.shape;
    let y: tf.Tensor = x;
    let frames = t;
    if (time[0] !== 0 || time[1] !== 0) {
      y = tf.pad(tf.reshape(y, [b, t, h * w * c]), [
        [0, 0],
        [time[0], time[1]],
        [0, 0],
      ]);
      frames = t + time[0] + time[1];
    }
    if (height[0] !== 0 || height[1] !== 0 || width[0] !== 0 || width[1] !== 0) {
      y = tf.pad(tf.reshape(y, [b * frames, h, w, c]), [
        [0, 0],
        [height[0], height[1]],
        [width[0], width[1]],
        [0, 0],
      ]);
    }
    return tf.reshape(y, [b, frames, h + height[0] + height[1], w + width[0] + width[1], c]);
  });
}

/** Frames [start, start + count) of [B, T, H, W, C], through a rank-3 slice (fast on wasm). */
export function sliceFrames(x: tf.Tensor5D, start: number, count: number): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, t, h, w, c] = x.shape;
    const y = tf.slice(tf.reshape(x, [b, t, h * w * c]), [0, start, 0], [b, count, h * w * c]);
    return tf.reshape(y, [b, count, h, w, c]);
  });
}

/** Splits the channels of [..., C] into `parts` equal tensors (a rank-2 split; fast on wasm). */
export function splitChannels(x: tf.Tensor, parts: number): tf.Tensor[] {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    const lead = x.shape.slice(0, -1);
    const pieces = tf.split(tf.reshape(x, [-1, c]), parts, 1);
    return pieces.map((p) => tf.reshape(p, [...lead, c / parts]));
  });
}

/**
 * Wan's CausalConv3d with PyTorch padding (pt, ph, pw): time padded with 2 pt zero frames on the left
 * only, height and width with ph, pw on both sides. `weight` is a tf.conv3d filter [t, h, w, in, out].
 */
export function causalConv3d(
  x: tf.Tensor5D,
  weight: tf.Tensor,
  bias: tf.Tensor,
  padding: readonly [number, number, number],
  strides: [number, number, number] = [1, 1, 1],
): tf.Tensor5D {
  return tf.tidy(() => {
    const [pt, ph, pw] = padding;
    const kt = weight.shape[0] as number;
    if (x.shape[1] === 1 && pt > 0 && kt === 2 * pt + 1 && strides[0] === 1) {
      // One frame after 2 pt zero frames, 2 pt + 1 taps: only the last tap reads a frame that is not
      // zero. Convolving with that tap alone is the same sum without the products with zeros, a third of
      // the work of Wan's 3-tap convolutions (single-frame training batches, the first latent frame).
      const rest = weight.shape.slice(1) as number[];
      const size = rest.reduce((a, b) => a * b, 1);
      const lastTap = tf.reshape(tf.slice(tf.reshape(weight, [kt, size]), [kt - 1, 0], [1, size]), [
        1,
        ...rest,
      ]);
      const paddedFrame = padVideo(x, [0, 0], [ph, ph], [pw, pw]);
      return tf.add(conv3d(paddedFrame, lastTap as tf.Tensor5D, strides), bias) as tf.Tensor5D;
    }
    const padded = padVideo(x, [2 * pt, 0], [ph, ph], [pw, pw]);
    return tf.add(conv3d(padded, weight as tf.Tensor5D, strides), bias) as tf.Tensor5D;
  });
}

/** A 1x1x1 convolution as a linear layer over channels (weight stored as a [1, 1, 1, in, out] filter). */
export function pointwiseConv(x: tf.Tensor5D, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor5D {
  return tf.tidy(() => {
    const [, , , cin, cout] = weight.shape as number[];
    return linear(x, tf.reshape(weight, [cin as number, cout as number]), bias as tf.Tensor1D) as tf.Tensor5D;
  });
}

/** Wan's ResidualBlock: RMS -> SiLU -> conv3 -> RMS -> SiLU -> conv3, plus a 1x1 shortcut when widths differ. */
export function residualBlock(
  w: VAEWeights,
  m: Extract<VAEModule, { kind: 'residual' }>,
  x: tf.Tensor5D,
): tf.Tensor5D {
  return tf.tidy(() => {
    const p = m.prefix;
    const h = m.inDim !== m.outDim ? pointwiseConv(x, w(`${p}.shortcut.weight`), w(`${p}.shortcut.bias`)) : x;
    let y = silu(channelRmsNorm(x, w(`${p}.residual.0.gamma`))) as tf.Tensor5D;
    y = causalConv3d(y, w(`${p}.residual.2.weight`), w(`${p}.residual.2.bias`), [1, 1, 1]);
    y = silu(channelRmsNorm(y, w(`${p}.residual.3.gamma`))) as tf.Tensor5D;
    y = causalConv3d(y, w(`${p}.residual.6.weight`), w(`${p}.residual.6.bias`), [1, 1, 1]);
    return tf.add(y, h) as tf.Tensor5D;
  });
}

/** Wan's AttentionBlock: single-head self-attention over the H x W positions of each frame, residual. */
export function attentionBlock(
  w: VAEWeights,
  m: Extract<VAEModule, { kind: 'attention' }>,
  x: tf.Tensor5D,
): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, t, h, wd, c] = x.shape;
    const p = m.prefix;
    const n = tf.reshape(channelRmsNorm(x, w(`${p}.norm.gamma`)), [b * t, h * wd, c]);
    const qkv = linear(n, w(`${p}.to_qkv.weight`) as tf.Tensor2D, w(`${p}.to_qkv.bias`) as tf.Tensor1D);
    const [q, k, v] = splitChannels(qkv, 3) as [tf.Tensor, tf.Tensor, tf.Tensor];
    const probs = tf.softmax(tf.mul(matMul(q, k, false, true), 1 / Math.sqrt(c)));
    const out = linear(
      matMul(probs, v),
      w(`${p}.proj.weight`) as tf.Tensor2D,
      w(`${p}.proj.bias`) as tf.Tensor1D,
    );
    return tf.add(x, tf.reshape(out, x.shape)) as tf.Tensor5D;
  });
}

/**
 * Wan's Resample in 'downsample2d' / 'downsample3d' mode: ZeroPad2d((0, 1, 0, 1)) and a stride-2 3x3
 * convolution per frame; with time, then [first frame, valid stride-2 (3, 1, 1) convolution over all
 * frames] (see the file comment). Needs an odd frame count with time.
 */
export function downsample(
  w: VAEWeights,
  m: Extract<VAEModule, { kind: 'downsample' }>,
  x: tf.Tensor5D,
): tf.Tensor5D {
  return tf.tidy(() => {
    const p = m.prefix;
    const padded = padVideo(x, [0, 0], [0, 1], [0, 1]);
    let y = tf.add(
      conv3d(padded, w(`${p}.resample.1.weight`) as tf.Tensor5D, [1, 2, 2]),
      w(`${p}.resample.1.bias`),
    ) as tf.Tensor5D;
    if (m.temporal && y.shape[1] > 1) {
      const first = sliceFrames(y, 0, 1);
      const rest = causalConv3d(
        y,
        w(`${p}.time_conv.weight`),
        w(`${p}.time_conv.bias`),
        [0, 0, 0],
        [2, 1, 1],
      );
      y = tf.concat([first, rest], 1);
    }
    return y;
  });
}

/** Nearest-neighbour 2x upsampling of height and width (PyTorch 'nearest-exact' at scale 2), channels last. */
export function upsampleNearest2x(x: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, t, h, w, c] = x.shape;
    const rows = tf.reshape(x, [b * t * h, 1, w * c]);
    const tallRows = tf.reshape(tf.concat([rows, rows], 1), [b * t * 2 * h * w, 1, c]);
    return tf.reshape(tf.concat([tallRows, tallRows], 1), [b, t, 2 * h, 2 * w, c]);
  });
}

/**
 * Wan's Resample in 'upsample2d' / 'upsample3d' mode. With time: frame 0 passes through; frames 1..T-1
 * go through a causal (3, 1, 1) convolution to 2C channels (zeros, not frame 0, on their left) whose two
 * halves become two frames; then per frame a nearest 2x upsample and a 3x3 convolution to C / 2.
 */
export function upsample(
  w: VAEWeights,
  m: Extract<VAEModule, { kind: 'upsample' }>,
  x: tf.Tensor5D,
): tf.Tensor5D {
  return tf.tidy(() => {
    const p = m.prefix;
    let y = x;
    const [b, t, h, wd, c] = x.shape;
    if (m.temporal && t > 1) {
      const first = sliceFrames(x, 0, 1);
      const rest = sliceFrames(x, 1, t - 1);
      const doubled = causalConv3d(rest, w(`${p}.time_conv.weight`), w(`${p}.time_conv.bias`), [1, 0, 0]);
      // [.., 2C] holds (frame 2i, frame 2i + 1) as channel halves: move the half index next to time.
      const pairs = tf.transpose(tf.reshape(doubled, [b * (t - 1), h * wd, 2, c]), [0, 2, 1, 3]);
      y = tf.concat([first, tf.reshape(pairs, [b, 2 * (t - 1), h, wd, c])], 1);
    }
    return causalConv3d(
      upsampleNearest2x(y),
      w(`${p}.resample.1.weight`),
      w(`${p}.resample.1.bias`),
      [0, 1, 1],
    );
  });
}

/** Runs one module of a VAE stage. */
export function runModule(w: VAEWeights, m: VAEModule, x: tf.Tensor5D): tf.Tensor5D {
  switch (m.kind) {
    case 'residual':
      return residualBlock(w, m, x);
    case 'attention':
      return attentionBlock(w, m, x);
    case 'downsample':
      return downsample(w, m, x);
    case 'upsample':
      return upsample(w, m, x);
  }
}
