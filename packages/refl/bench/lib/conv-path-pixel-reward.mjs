// The RGB ReFL baseline's pixel reward, made as fast and as correct on wasm as the VAE it follows.
//
// @prfl/reward's PixelVideoReward convolves with tf.conv3d ('same' padding). On tfjs-backend-wasm 4.22
// that kernel runs in plain loops, and its input gradient -- the one RGB ReFL back-propagates into the
// decoder -- is wrong (see @prfl/tensor's test/conv3d.test.ts; checked for this reward by
// `checkAgainstCpu` below). This wrapper computes the same function of the same variables with
// @prfl/tensor's conv3d (XNNPACK conv2d per time tap, correct gradients) after explicit 'same' padding,
// so the benchmark times a baseline that is both right and as fast as we can make it.
import * as tf from '@tensorflow/tfjs-core';
import { conv3d, linear } from '@prfl/tensor';

/** TensorFlow's 'same' padding of one axis: [before, after]. */
function samePad(size, kernel, stride) {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Zero-pads time, height and width of [B, T, H, W, C] through rank-3 and rank-4 pads (fast on wasm). */
function padVideo(x, [t0, t1], [h0, h1], [w0, w1]) {
  const [b, t, h, w, c] = x.shape;
  let y = x;
  if (t0 + t1 > 0)
    y = tf.pad(tf.reshape(y, [b, t, h * w * c]), [
      [0, 0],
      [t0, t1],
      [0, 0],
    ]);
  const frames = t + t0 + t1;
  if (h0 + h1 + w0 + w1 > 0)
    y = tf.pad(tf.reshape(y, [b * frames, h, w, c]), [
      [0, 0],
      [h0, h1],
      [w0, w1],
      [0, 0],
    ]);
  return tf.reshape(y, [b, frames, h + h0 + h1, w + w0 + w1, c]);
}

/** PixelVideoReward's score on @prfl/tensor's conv3d; same variables, same values. */
export class ConvPathPixelReward {
  /** @param {import('@prfl/reward').PixelVideoReward} inner */
  constructor(inner) {
    this.inner = inner;
  }

  namedVariables() {
    return this.inner.namedVariables();
  }

  score(frames) {
    const vars = this.inner.namedVariables();
    const { channels, strides } = this.inner.config;
    return tf.tidy(() => {
      let h = frames;
      channels.forEach((_, i) => {
        const w = vars.get(`conv${i + 1}.weight`);
        const s = strides[i];
        const [, t, hh, ww] = h.shape;
        const padded = padVideo(h, samePad(t, 3, s[0]), samePad(hh, 3, s[1]), samePad(ww, 3, s[2]));
        h = tf.relu(tf.add(conv3d(padded, w, s), vars.get(`conv${i + 1}.bias`)));
      });
      const pooled = tf.mean(h, [1, 2, 3]);
      const hidden = tf.relu(linear(pooled, vars.get('fc1.weight'), vars.get('fc1.bias')));
      return tf.reshape(linear(hidden, vars.get('fc2.weight'), vars.get('fc2.bias')), [-1]);
    });
  }
}
