/**
 * The gradient of a loss of the generator's velocity, with or without per-block gradient checkpointing.
 *
 * Without: one tape over predictVelocity and the loss (`tf.variableGrads`), which keeps every block's
 * intermediates alive until the backward pass is done. With: the generator's forward pass as a chain of
 * segments (one per block, `segments(x, t, conditioning, { blocksPerSegment })`, which @prfl/models'
 * WanDiT offers) through @prfl/tensor's segmented backprop: the forward keeps only the block boundaries,
 * the loss gets its own tape from the velocity on (the scheduler step, the frozen reward), and the
 * backward re-runs one segment at a time under a tape seeded with the gradient arriving at its output.
 * The same kernels run on the same values, so the gradients are the plain tape's up to the order in
 * which contributions to a variable read by several blocks are summed.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  backwardThroughSegments,
  type Conditioning,
  InvalidArgumentError,
  type LatentVideo,
  type Segment,
  segmentedForward,
  type TimestepsLike,
  type VelocityModel,
} from '@prfl/tensor';

/** A generator's forward pass as a chain of segments (what WanDiT.segments returns). */
export interface VelocitySegmentChain {
  /** The chain's input list (x and whatever else the first segment replaces). */
  readonly input: tf.Tensor[];
  readonly segments: Segment<tf.Tensor[]>[];
  /** The velocity: one of the tensors of the chain's last activation. */
  output(activation: readonly tf.Tensor[]): tf.Tensor;
  /** Frees what the chain closes over. */
  dispose(): void;
}

/** A velocity model that can split its forward pass into per-block segments. */
export interface SegmentedVelocityModel extends VelocityModel {
  segments(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options?: { blocksPerSegment?: number },
  ): VelocitySegmentChain;
}

export function isSegmentedVelocityModel(model: unknown): model is SegmentedVelocityModel {
  return typeof (model as Partial<SegmentedVelocityModel> | null)?.segments === 'function';
}

/** How the taped generator forward passes run: one tape, or per-block segments. */
export type CheckpointingMode = { readonly blocksPerSegment: number } | null;

export interface VelocityGradsArgs {
  model: VelocityModel;
  x: LatentVideo;
  timesteps: TimestepsLike;
  conditioning: Conditioning;
  /** The loss of the velocity. It must not read the model's variables (their gradient would be missed). */
  loss: (v: LatentVideo) => tf.Scalar;
  variables: readonly tf.Variable[];
  /** null: one plain tape (exactly what `tf.variableGrads` computes). */
  checkpointing: CheckpointingMode;
}

/**
 * loss(model(x)) and its gradient with respect to `variables`, by variable name (a variable the loss does
 * not reach is absent), as `tf.variableGrads` returns them. The caller disposes both.
 */
export function velocityGrads(args: VelocityGradsArgs): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const { model, x, timesteps, conditioning, loss, variables, checkpointing } = args;
  if (checkpointing === null) {
    return tf.variableGrads(() => loss(model.predictVelocity(x, timesteps, conditioning)), [...variables]);
  }
  if (!isSegmentedVelocityModel(model)) {
    throw new InvalidArgumentError(
      'gradientCheckpointing: the generator has no segments(x, timesteps, conditioning, { blocksPerSegment }) (WanDiT has)',
    );
  }
  const chain = model.segments(x, timesteps, conditioning, {
    blocksPerSegment: checkpointing.blocksPerSegment,
  });
  try {
    const ck = segmentedForward(chain.segments, chain.input);
    const outputs = ck.output as tf.Tensor[];
    let dy: tf.Tensor[] | null = null;
    try {
      const v = chain.output(outputs);
      const slot = outputs.indexOf(v);
      if (slot < 0) {
        throw new InvalidArgumentError(
          "gradientCheckpointing: the chain's output(activation) must return one of the activation's tensors",
        );
      }
      // The loss's own tape, from the velocity on: its gradient at v seeds the segments' backward pass.
      const { value, grads } = tf.valueAndGrads((vv: tf.Tensor) => loss(vv as LatentVideo))([v]);
      dy = outputs.map((_, j) => (j === slot ? (grads[0] as tf.Tensor) : null)) as tf.Tensor[];
      try {
        const back = backwardThroughSegments<tf.Tensor[]>(ck, dy as (tf.Tensor | null)[], { variables });
        return { value: value as tf.Scalar, grads: back.grads };
      } catch (e) {
        value.dispose();
        throw e;
      }
    } finally {
      ck.dispose();
      if (dy) tf.dispose(dy.filter((g): g is tf.Tensor => g !== null));
      // The chain's output list is the caller's (segmentedForward hands it over).
      tf.dispose(outputs.filter((t) => !chain.input.includes(t)));
    }
  } finally {
    chain.dispose();
  }
}
