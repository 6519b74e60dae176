/**
 * PAVRM's two training losses (docs/method.md §4), written on logits for numerical stability.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '@prfl/tensor';

function check1d(what: string, t: tf.Tensor, n?: number): void {
  if (t.rank !== 1 || (n !== undefined && t.shape[0] !== n)) {
    throw new InvalidArgumentError(`${what}: expected a [${n ?? 'B'}] tensor, got ${formatShape(t.shape)}`);
  }
}

/**
 * Pointwise binary cross-entropy of reward logits r [B] against labels y [B] in [0, 1] (0/1,
 * or soft targets: the probability that the video is good), averaged over the batch:
 * mean(-y log sigmoid(r) - (1 - y) log(1 - sigmoid(r))) = mean(softplus(r) - y r). The reference applies
 * nn.BCELoss to sigmoid(r); this is the same value without the loss of precision at large |r|.
 */
export function bceWithLogits(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  check1d('bceWithLogits: logits', logits);
  check1d('bceWithLogits: labels', labels, logits.shape[0]);
  return tf.tidy(() => tf.mean(tf.sub(tf.softplus(logits), tf.mul(labels, logits))) as tf.Scalar);
}

/**
 * Bradley-Terry loss of (better, worse) pairs: mean(-log sigmoid(r_win - r_lose)) = mean(softplus(r_lose -
 * r_win)). The reference feeds sigmoid(r_a - r_b) to BCE with a random order and a matching 0/1 label,
 * which is the same loss in expectation and exactly this value for either order.
 */
export function bradleyTerryLoss(rWin: tf.Tensor, rLose: tf.Tensor): tf.Scalar {
  check1d('bradleyTerryLoss: rWin', rWin);
  check1d('bradleyTerryLoss: rLose', rLose, rWin.shape[0]);
  return tf.tidy(() => tf.mean(tf.softplus(tf.sub(rLose, rWin))) as tf.Scalar);
}
