/**
 * Weight layout conversion between PyTorch checkpoints and tfjs ops (pure tf ops; the caller disposes
 * the input and the result):
 * - Linear   [out, in]             <-> tf.matMul weight   [in, out]
 * - Conv1d   [out, in, k]          <-> tf.conv1d filter   [k, in, out]
 * - Conv2d   [out, in, h, w]       <-> tf.conv2d filter   [h, w, in, out]
 * - Conv3d   [out, in, t, h, w]    <-> tf.conv3d filter   [t, h, w, in, out]
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '../errors.js';

function checkRank(what: string, t: tf.Tensor, rank: number, layout: string): void {
  if (!(t instanceof tf.Tensor)) {
    throw new InvalidArgumentError(`${what}: expected a tf.Tensor ${layout}, got ${typeof t}`);
  }
  if (t.rank !== rank) {
    throw new InvalidArgumentError(
      `${what}: expected a rank-${rank} weight ${layout}, got rank ${t.rank} ${formatShape(t.shape)}`,
    );
  }
}

/** PyTorch nn.Linear weight [out, in] -> tfjs [in, out] (for `matMul(x, w)`). */
export function linearWeightFromTorch(weight: tf.Tensor): tf.Tensor2D {
  checkRank('linearWeightFromTorch', weight, 2, '[out, in]');
  return tf.transpose(weight as tf.Tensor2D);
}

/** tfjs [in, out] -> PyTorch nn.Linear weight [out, in]. */
export function linearWeightToTorch(weight: tf.Tensor): tf.Tensor2D {
  checkRank('linearWeightToTorch', weight, 2, '[in, out]');
  return tf.transpose(weight as tf.Tensor2D);
}

/** PyTorch nn.Conv1d weight [out, in, k] -> tf.conv1d filter [k, in, out]. */
export function conv1dWeightFromTorch(weight: tf.Tensor): tf.Tensor3D {
  checkRank('conv1dWeightFromTorch', weight, 3, '[out, in, k]');
  return tf.transpose(weight as tf.Tensor3D, [2, 1, 0]);
}

/** tf.conv1d filter [k, in, out] -> PyTorch nn.Conv1d weight [out, in, k]. */
export function conv1dWeightToTorch(weight: tf.Tensor): tf.Tensor3D {
  checkRank('conv1dWeightToTorch', weight, 3, '[k, in, out]');
  return tf.transpose(weight as tf.Tensor3D, [2, 1, 0]);
}

/** PyTorch nn.Conv2d weight [out, in, h, w] -> tf.conv2d filter [h, w, in, out]. */
export function conv2dWeightFromTorch(weight: tf.Tensor): tf.Tensor4D {
  checkRank('conv2dWeightFromTorch', weight, 4, '[out, in, h, w]');
  return tf.transpose(weight as tf.Tensor4D, [2, 3, 1, 0]);
}

/** tf.conv2d filter [h, w, in, out] -> PyTorch nn.Conv2d weight [out, in, h, w]. */
export function conv2dWeightToTorch(weight: tf.Tensor): tf.Tensor4D {
  checkRank('conv2dWeightToTorch', weight, 4, '[h, w, in, out]');
  return tf.transpose(weight as tf.Tensor4D, [3, 2, 0, 1]);
}

/** PyTorch nn.Conv3d weight [out, in, t, h, w] -> tf.conv3d filter [t, h, w, in, out]. */
export function conv3dWeightFromTorch(weight: tf.Tensor): tf.Tensor5D {
  checkRank('conv3dWeightFromTorch', weight, 5, '[out, in, t, h, w]');
  return tf.transpose(weight as tf.Tensor5D, [2, 3, 4, 1, 0]);
}

/** tf.conv3d filter [t, h, w, in, out] -> PyTorch nn.Conv3d weight [out, in, t, h, w]. */
export function conv3dWeightToTorch(weight: tf.Tensor): tf.Tensor5D {
  checkRank('conv3dWeightToTorch', weight, 5, '[t, h, w, in, out]');
  return tf.transpose(weight as tf.Tensor5D, [4, 3, 0, 1, 2]);
}
