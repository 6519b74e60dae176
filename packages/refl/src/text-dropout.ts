/**
 * Text dropout (docs/method.md section 5): the reference's dataset replaces a sample's text embedding by the
 * unconditional one with probability 0.1 (uncond_prob), before both the SFT and the reward term read it,
 * so the model keeps an unconditional branch for classifier-free guidance. The caller provides the null
 * conditioning (Wan: the umT5 embedding of the empty or negative prompt).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Conditioning, formatShape, type Generator, InvalidArgumentError } from '@prfl/tensor';

/** The conditioning to use and what it costs to free it. */
export interface DroppedConditioning {
  conditioning: Conditioning;
  /** Which samples got the null text. */
  dropped: boolean[];
  /** Tensors made here (none when nothing was dropped); the caller disposes them. */
  created: tf.Tensor[];
}

/** Checks that `nullConditioning.text` is [1 or B, L, D] with the batch's L and D. */
export function checkNullConditioning(nullConditioning: Conditioning, text: tf.Tensor3D): void {
  const n = nullConditioning?.text;
  const [b, l, d] = text.shape;
  if (
    !(n instanceof tf.Tensor) ||
    n.rank !== 3 ||
    (n.shape[0] !== 1 && n.shape[0] !== b) ||
    n.shape[1] !== l ||
    n.shape[2] !== d
  ) {
    throw new InvalidArgumentError(
      `nullConditioning.text: expected [1 or ${b}, ${l}, ${d}] (the batch's text length and width), got ${n instanceof tf.Tensor ? formatShape(n.shape) : String(n)}`,
    );
  }
}

/**
 * One Bernoulli(p) draw per sample from `generator` (always B draws, so the stream does not depend on
 * the outcome); dropped samples read the null text (and its mask, or all ones when it has none). The
 * image condition of image-to-video is kept (the reference's image uncond_prob is 0).
 */
export function applyTextDropout(
  conditioning: Conditioning,
  nullConditioning: Conditioning | undefined,
  probability: number,
  generator: Generator,
): DroppedConditioning {
  const b = conditioning.text.shape[0];
  const dropped = Array.from({ length: b }, () => generator.nextDouble() < probability);
  // Checked on every call, not only when a sample is dropped, so a bad null embedding fails at once.
  if (nullConditioning !== undefined) checkNullConditioning(nullConditioning, conditioning.text);
  if (!dropped.some(Boolean)) return { conditioning, dropped, created: [] };
  if (nullConditioning === undefined) {
    throw new InvalidArgumentError(
      `textDropout: ${probability} needs nullConditioning (the unconditional text embedding); pass textDropout: 0 to train without it`,
    );
  }
  const [, l] = conditioning.text.shape;
  const created: tf.Tensor[] = [];
  const select = tf.tensor1d(dropped.map(Number), 'bool');
  created.push(select);
  const text = tf.tidy(() =>
    tf.where(
      tf.reshape(select, [b, 1, 1]),
      tf.broadcastTo(nullConditioning.text, conditioning.text.shape),
      conditioning.text,
    ),
  ) as tf.Tensor3D;
  created.push(text);
  const out: Conditioning = { ...conditioning, text };
  if (conditioning.textMask !== undefined || nullConditioning.textMask !== undefined) {
    const textMask = tf.tidy(() => {
      const own = conditioning.textMask ?? tf.ones([b, l]);
      const theirs = nullConditioning.textMask ?? tf.ones([1, l]);
      return tf.where(tf.reshape(select, [b, 1]), tf.broadcastTo(theirs, [b, l]), own);
    }) as tf.Tensor2D;
    created.push(textMask);
    out.textMask = textMask;
  }
  return { conditioning: out, dropped, created };
}
