/**
 * What a generator offers so LoRA can attach to it without this package knowing the model: one hook that
 * every Linear layer's output passes through. @prfl/models' WanDiT (and its truncations) implement it
 * with `setLinearAdapter`; the module names are the Wan keys without `.weight`.
 *
 * Why a hook on the layer's output rather than new weights: PEFT's LoRA computes
 * base(x) + scaling * B(A(x)) next to an untouched base layer, which keeps the base weights bit-identical,
 * costs rank * (in + out) per token instead of a full [in, out] delta per layer on the tape, and lets
 * `merge()` fold the adapter into the weights only when exporting.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { VelocityModel } from '@prfl/tensor';

/**
 * `(module, input, output) => output'`: called by each Linear layer with its module name (e.g.
 * `blocks.3.self_attn.q`), its input [..., in] and its output [..., out]; returns the output to use.
 */
export type LinearAdapter = (module: string, input: tf.Tensor, output: tf.Tensor) => tf.Tensor;

/** A model whose Linear layers call an adapter set with `setLinearAdapter` (null removes it). */
export interface LinearAdapterHost {
  setLinearAdapter(adapter: LinearAdapter | null): void;
}

/** A velocity model LoRA can attach to. */
export type AdaptableVelocityModel = VelocityModel & LinearAdapterHost;

export function isLinearAdapterHost(model: unknown): model is LinearAdapterHost {
  return typeof (model as Partial<LinearAdapterHost> | null)?.setLinearAdapter === 'function';
}
