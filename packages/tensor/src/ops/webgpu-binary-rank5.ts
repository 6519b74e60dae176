/**
 * A workaround for tfjs-backend-webgpu 4.22, installed by initBackend when it starts webgpu.
 *
 * A binary op between a tensor of rank 5 or 6 and a 1-D tensor of 2 to 127 elements (a per-channel bias
 * or scale on a video latent [B, F, H, W, C]: the VAE's convolution biases, its latent statistics) takes
 * tfjs's shared-memory shader, which reads the channel as `coords[4]`. Coordinates of rank 5 and 6 are
 * WGSL structs (vec5, vec6), which cannot be indexed, so the shader does not compile: the op's output
 * is garbage and the device reports errors from then on. The kernels below give the 1-D operand the
 * shape [1, ..., 1, n] instead (a view of the same buffer), which takes tfjs's general broadcasting
 * shader; the values are the same, and gradients are untouched (they are defined on the ops, not on
 * the kernels). Installing is idempotent.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The webgpu kernels built on tfjs's BinaryOpProgram. */
const BINARY_KERNELS = [
  'Add',
  'Atan2',
  'EluGrad',
  'Equal',
  'FloorDiv',
  'Greater',
  'GreaterEqual',
  'Less',
  'LessEqual',
  'LogicalAnd',
  'LogicalOr',
  'Maximum',
  'Minimum',
  'Mod',
  'Multiply',
  'NotEqual',
  'Pow',
  'Prelu',
  'RealDiv',
  'SquaredDifference',
  'Sub',
];

/** tfjs's condition for the shared-memory shader, restricted to the ranks where it breaks. */
function needsView(small: tf.TensorInfo, big: tf.TensorInfo): boolean {
  const n = small.shape[0] as number;
  return small.shape.length === 1 && n > 1 && n < 128 && big.shape.length >= 5;
}

function withViews(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const names = Object.keys(args.inputs);
    if (names.length !== 2) return original(args);
    const [p, q] = names as [string, string];
    const a = args.inputs[p] as tf.TensorInfo;
    const b = args.inputs[q] as tf.TensorInfo;
    const view = (small: tf.TensorInfo, big: tf.TensorInfo): tf.TensorInfo => ({
      dataId: small.dataId,
      dtype: small.dtype,
      shape: [...new Array<number>(big.shape.length - 1).fill(1), small.shape[0] as number],
    });
    if (needsView(a, b)) return original({ ...args, inputs: { ...args.inputs, [p]: view(a, b) } });
    if (needsView(b, a)) return original({ ...args, inputs: { ...args.inputs, [q]: view(b, a) } });
    return original(args);
  };
}

let installed = false;

/**
 * Wraps the webgpu backend's binary kernels (see the file comment). Does nothing unless the webgpu
 * backend is registered; safe to call repeatedly.
 */
export function installWebgpuRank5BinaryFix(): void {
  if (installed) return;
  const found = BINARY_KERNELS.map((name) => tf.getKernel(name, 'webgpu')).filter(
    (k): k is tf.KernelConfig => k !== undefined,
  );
  if (found.length === 0) return;
  for (const kernel of found) {
    tf.unregisterKernel(kernel.kernelName, 'webgpu');
    tf.registerKernel({ ...kernel, kernelFunc: withViews(kernel.kernelFunc) });
  }
  installed = true;
}
