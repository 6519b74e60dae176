/**
 * A 'valid' 3-D convolution of channels-last video (the VAE's and the pixel reward's), [B, T, H, W, Cin] * [kt, kh, kw, Cin, Cout], fast on
 * every backend and differentiable.
 *
 * tfjs's wasm backend runs Conv3D and its gradients in plain loops at about 0.5 GFLOP/s, while its
 * Conv2D goes through XNNPACK, 20-50x faster at the VAE's widths (bench: 17x64x64x8, 3x3x3 kernel:
 * conv3d 750 ms, three conv2d 14 ms). So on wasm, a conv3d is computed as the sum over
 * the kt time taps of a conv2d on the frames that tap reads, with its own gradient: the input gradient
 * is again a conv2d (of the zero-padded upstream gradient with the rotated kernel) or, for spatial
 * stride 2, tfjs's conv2d transpose; the filter gradient is a conv2d with batch and channels swapped
 * (inputs [Cin, H, W, N], upstream gradient [Ho, Wo, N, Cout] as the kernel, dilated by the stride),
 * since wasm has no Conv2DBackpropFilter. Other backends use tf.conv3d.
 *
 * This is also a correctness fix: tfjs-backend-wasm 4.22's own Conv3DBackpropInputV2 returns wrong input
 * gradients, and its Conv3DBackpropFilterV2 wrong filter gradients for strided convolutions (checked
 * against the cpu backend in test/conv3d.test.ts), so tf.conv3d must not be differentiated on wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '../errors.js';

/** Strides of a 3-D convolution along [time, height, width]. */
export type Strides = readonly [number, number, number];

/**
 * Frames dt, dt + st, ..., dt + st (to - 1) of x [B, T, H, W, C] as a batch of images [B * to, H, W, C],
 * through rank-3 and rank-4 pads and slices (wasm's rank-5 slice is ~50x slower).
 */
function framesFrom(x: tf.Tensor5D, dt: number, to: number, st: number): tf.Tensor4D {
  const [b, t, h, w, c] = x.shape;
  const n = h * w * c;
  let flat: tf.Tensor = tf.reshape(x, [b, t, n]);
  if (st === 1) return tf.reshape(tf.slice(flat, [0, dt, 0], [b, to, n]), [b * to, h, w, c]);
  const need = dt + st * to;
  if (need > t)
    flat = tf.pad(flat, [
      [0, 0],
      [0, need - t],
      [0, 0],
    ]);
  const window = tf.reshape(tf.slice(flat, [0, dt, 0], [b, st * to, n]), [b, to, st, n]);
  return tf.reshape(tf.slice(window, [0, 0, 0, 0], [b, to, 1, n]), [b * to, h, w, c]);
}

/** The inverse placement of framesFrom: per-frame values [B, to, N] scattered to frames dt + st i of [B, T, N], zeros elsewhere. */
function placeFrames(v: tf.Tensor3D, dt: number, st: number, t: number): tf.Tensor3D {
  const [b, to, n] = v.shape;
  let spread: tf.Tensor3D = v;
  if (st > 1)
    spread = tf.reshape(
      tf.pad(tf.reshape(v, [b, to, 1, n]), [
        [0, 0],
        [0, 0],
        [0, st - 1],
        [0, 0],
      ]),
      [b, to * st, n],
    );
  const len = spread.shape[1];
  if (dt + len > t) spread = tf.slice(spread, [0, 0, 0], [b, t - dt, n]);
  return tf.pad(spread, [
    [0, 0],
    [dt, t - dt - spread.shape[1]],
    [0, 0],
  ]);
}

/** Gradient of conv2d(x, w, strides, 'valid') with respect to x [N, H, W, Cin], given dy [N, Ho, Wo, Cout]. */
function conv2dInputGrad(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  xShape: [number, number, number, number],
  sh: number,
  sw: number,
): tf.Tensor4D {
  const [kh, kw] = w.shape;
  if (sh === 1 && sw === 1) {
    // Full correlation with the kernel rotated by 180 degrees and its channels swapped.
    const padded = tf.pad(dy, [
      [0, 0],
      [kh - 1, kh - 1],
      [kw - 1, kw - 1],
      [0, 0],
    ]);
    const rotated = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(padded, rotated, 1, 'valid');
  }
  return tf.conv2dTranspose(dy, w, xShape, [sh, sw], 'valid');
}

/** Gradient of conv2d(x, w, strides, 'valid') with respect to w [kh, kw, Cin, Cout]. */
function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
): tf.Tensor4D {
  // dw[i, j, ci, co] = sum_{n, y, x} x[n, sh y + i, sw x + j, ci] dy[n, y, x, co]: a convolution of the
  // input (batch and channels swapped) with dy as the kernel, dilated by the stride.
  const xt = tf.transpose(x, [3, 1, 2, 0]);
  const kernel = tf.transpose(dy, [1, 2, 0, 3]);
  const out = tf.conv2d(xt, kernel, 1, 'valid', 'NHWC', [sh, sw]);
  const cropped =
    out.shape[1] === kh && out.shape[2] === kw ? out : tf.slice(out, [0, 0, 0, 0], [-1, kh, kw, -1]);
  return tf.transpose(cropped, [1, 2, 0, 3]);
}

function conv2dPathForward(x: tf.Tensor5D, w: tf.Tensor5D, strides: Strides): tf.Tensor5D {
  const [b, t] = x.shape;
  const [kt] = w.shape;
  const to = Math.floor((t - kt) / strides[0]) + 1;
  let y: tf.Tensor4D | undefined;
  for (let dt = 0; dt < kt; dt++) {
    const tap = tf.squeeze(tf.slice(w, [dt, 0, 0, 0, 0], [1, -1, -1, -1, -1]), [0]) as tf.Tensor4D;
    const part = tf.conv2d(framesFrom(x, dt, to, strides[0]), tap, [strides[1], strides[2]], 'valid');
    y = y === undefined ? part : (tf.add(y, part) as tf.Tensor4D);
  }
  const out = y as tf.Tensor4D;
  return tf.reshape(out, [b, to, out.shape[1], out.shape[2], out.shape[3]]);
}

/** Gradient of the conv2d path with respect to x [B, T, H, W, Cin], given dy [B, To, Ho, Wo, Cout]. */
function conv2dPathInputGrad(x: tf.Tensor5D, w: tf.Tensor5D, dy: tf.Tensor5D, strides: Strides): tf.Tensor5D {
  const [b, t, h, wd, cin] = x.shape;
  const [kt] = w.shape;
  const [, to, ho, wo, cout] = dy.shape;
  const dy4 = tf.reshape(dy, [b * to, ho, wo, cout]) as tf.Tensor4D;
  let dx: tf.Tensor3D | undefined;
  for (let dt = 0; dt < kt; dt++) {
    const tap = tf.squeeze(tf.slice(w, [dt, 0, 0, 0, 0], [1, -1, -1, -1, -1]), [0]) as tf.Tensor4D;
    const dxs = tf.reshape(conv2dInputGrad(dy4, tap, [b * to, h, wd, cin], strides[1], strides[2]), [
      b,
      to,
      h * wd * cin,
    ]) as tf.Tensor3D;
    const placed = placeFrames(dxs, dt, strides[0], t);
    dx = dx === undefined ? placed : (tf.add(dx, placed) as tf.Tensor3D);
  }
  return tf.reshape(dx as tf.Tensor3D, [b, t, h, wd, cin]);
}

/** Gradient of the conv2d path with respect to the filter [kt, kh, kw, Cin, Cout], given dy. */
function conv2dPathFilterGrad(
  x: tf.Tensor5D,
  w: tf.Tensor5D,
  dy: tf.Tensor5D,
  strides: Strides,
): tf.Tensor5D {
  const [b] = x.shape;
  const [kt, kh, kw] = w.shape;
  const [, to, ho, wo, cout] = dy.shape;
  const dy4 = tf.reshape(dy, [b * to, ho, wo, cout]) as tf.Tensor4D;
  const taps: tf.Tensor4D[] = [];
  for (let dt = 0; dt < kt; dt++) {
    taps.push(conv2dFilterGrad(framesFrom(x, dt, to, strides[0]), dy4, kh, kw, strides[1], strides[2]));
  }
  return tf.stack(taps, 0) as tf.Tensor5D;
}

/**
 * The conv2d path as one node of the gradient tape. Not tf.customGrad: that computes every input's
 * gradient eagerly and outside any tidy, so a frozen filter (a VAE decoder RGB ReFL back-propagates
 * through) paid for a filter gradient nobody reads, and every convolution's temporaries lived until the
 * whole backward pass ended (a one-frame Wan2.1-width decode ran out of the 4 GiB wasm heap). Here each
 * gradient is a function the engine calls, inside a tidy, only for inputs on the path to the variables.
 */
function conv2dPathConv3d(x: tf.Tensor5D, w: tf.Tensor5D, strides: Strides): tf.Tensor5D {
  const engine = tf.engine() as unknown as {
    runKernelFunc(params: {
      forwardFunc: (backend: unknown, save: tf.GradSaveFunc) => tf.Tensor;
      backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
      inputs: Record<string, tf.Tensor>;
    }): tf.Tensor;
  };
  return engine.runKernelFunc({
    forwardFunc: (_backend, save) => {
      save([x, w]);
      return conv2dPathForward(x, w, strides);
    },
    backwardsFunc: (dy, saved) => {
      const [sx, sw] = saved as [tf.Tensor5D, tf.Tensor5D];
      return {
        x: () => conv2dPathInputGrad(sx, sw, dy as tf.Tensor5D, strides),
        w: () => conv2dPathFilterGrad(sx, sw, dy as tf.Tensor5D, strides),
      };
    },
    inputs: { x, w },
  }) as tf.Tensor5D;
}

/**
 * tf.conv3d(x, w, strides, 'valid') for x [B, T, H, W, Cin] and a filter [kt, kh, kw, Cin, Cout]; the same
 * values and gradients as tf.conv3d, computed through XNNPACK's conv2d on wasm (see the file comment).
 */
export function conv3d(x: tf.Tensor5D, w: tf.Tensor5D, strides: Strides = [1, 1, 1]): tf.Tensor5D {
  // Checked here because the wasm path below bypasses tf.conv3d's own checks.
  if (x.rank !== 5 || w.rank !== 5 || x.shape[4] !== w.shape[3]) {
    throw new InvalidArgumentError(
      `conv3d: expected x [B, T, H, W, Cin] and a filter [kt, kh, kw, Cin, Cout] with the same Cin, got ${formatShape(x.shape)} and ${formatShape(w.shape)}`,
    );
  }
  if (x.shape[1] < w.shape[0] || x.shape[2] < w.shape[1] || x.shape[3] < w.shape[2]) {
    throw new InvalidArgumentError(
      `conv3d: input ${formatShape(x.shape)} is smaller than the kernel ${formatShape(w.shape.slice(0, 3))} ('valid' padding; pad first)`,
    );
  }
  if (strides.length !== 3 || strides.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new InvalidArgumentError(
      `conv3d: strides must be three positive integers, got [${strides.join(', ')}]`,
    );
  }
  if (tf.getBackend() !== 'wasm') return tf.conv3d(x, w, [...strides] as [number, number, number], 'valid');
  return conv2dPathConv3d(x, w, strides);
}
