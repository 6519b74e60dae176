/**
 * The RGB ReFL baseline's pixel reward as the benchmark times it: @prfl/reward's PixelVideoReward
 * (untrained, which does not change its cost) computed on @prfl/tensor's conv3d after explicit 'same'
 * padding, as packages/refl/bench/lib/conv-path-pixel-reward.mjs does. PixelVideoReward convolves with
 * tf.conv3d, which tfjs-backend-wasm 4.22 runs in plain loops and whose input gradient (the one RGB
 * ReFL back-propagates into the decoder) it gets wrong; @prfl/tensor's conv3d is XNNPACK's conv2d per
 * time tap with correct gradients. The same function of the same variables, so the baseline is timed
 * as fast (and as right) as it can be made, not slowed by a kernel PRFL never calls.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PixelVideoReward } from '@prfl/reward';
import { conv3d, type LatentRewardModel, type LatentVideo, linear } from '@prfl/tensor';

/** TensorFlow's 'same' padding of one axis: [before, after]. */
export function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Zero-pads time, height and width of [B, T, H, W, C] through rank-3 and rank-4 pads (fast on wasm). */
function padVideo(
  x: tf.Tensor5D,
  [t0, t1]: [number, number],
  [h0, h1]: [number, number],
  [w0, w1]: [number, number],
): tf.Tensor5D {
  const [b, t, h, w, c] = x.shape;
  let y: tf.Tensor = x;
  if (t0 + t1 > 0) {
    y = tf.pad(tf.reshape(y, [b, t, h * w * c]), [
      [0, 0],
      [t0, t1],
      [0, 0],
    ]);
  }
  const frames = t + t0 + t1;
  if (h0 + h1 + w0 + w1 > 0) {
    y = tf.pad(tf.reshape(y, [b * frames, h, w, c]), [
      [0, 0],
      [h0, h1],
      [w0, w1],
      [0, 0],
    ]);
  }
  return tf.reshape(y, [b, frames, h + h0 + h1, w + w0 + w1, c]) as tf.Tensor5D;
}

/** PixelVideoReward's logits on @prfl/tensor's conv3d: same variables, same values. */
export class ConvPathPixelReward implements LatentRewardModel {
  readonly inner: PixelVideoReward;

  constructor(inner: PixelVideoReward) {
    this.inner = inner;
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.inner.namedVariables();
  }

  /** Logits [B] of frames [B, F, H, W, 3]; the timesteps and the conditioning are ignored, as the inner reward ignores them. */
  score(frames: LatentVideo): tf.Tensor1D {
    const vars = this.inner.namedVariables();
    const get = (name: string) => vars.get(name) as tf.Variable;
    const { channels, strides } = this.inner.config;
    return tf.tidy(() => {
      let h = frames as tf.Tensor5D;
      channels.forEach((_, i) => {
        const s = strides[i] as readonly [number, number, number];
        const w = get(`conv${i + 1}.weight`) as tf.Tensor5D;
        const [kt, kh, kw] = w.shape;
        const [, t, hh, ww] = h.shape;
        const padded = padVideo(
          h,
          samePadding(t, kt, s[0]),
          samePadding(hh, kh, s[1]),
          samePadding(ww, kw, s[2]),
        );
        const conv = conv3d(padded, w, [s[0], s[1], s[2]]);
        h = tf.relu(tf.add(conv, get(`conv${i + 1}.bias`))) as tf.Tensor5D;
      });
      const pooled = tf.mean(h, [1, 2, 3]) as tf.Tensor2D;
      const hidden = tf.relu(
        linear(pooled, get('fc1.weight') as tf.Tensor2D, get('fc1.bias') as tf.Tensor1D),
      ) as tf.Tensor2D;
      return tf.reshape(
        linear(hidden, get('fc2.weight') as tf.Tensor2D, get('fc2.bias') as tf.Tensor1D),
        [-1],
      ) as tf.Tensor1D;
    });
  }
}
