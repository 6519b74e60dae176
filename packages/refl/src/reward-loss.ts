/**
 * The reward term's loss on the reward logits r [B] (docs/method.md section 5). The reference computes
 * 0.1 * relu(2 - sigmoid(r)).mean(): since sigmoid(r) < 1 < 2 the relu never cuts, and the gradient is
 * that of -0.1 * sigmoid(r); the hinge form is kept so the reported loss values equal the reference's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@prfl/tensor';

/**
 * 'hinge': relu(target - sigmoid(r)) (the reference, target 2). 'sigmoid': -sigmoid(r). 'logsigmoid':
 * -log sigmoid(r) = softplus(-r), which keeps pushing where sigmoid saturates.
 */
export type RewardLossForm = 'hinge' | 'sigmoid' | 'logsigmoid';

export const REWARD_LOSS_FORMS: readonly RewardLossForm[] = ['hinge', 'sigmoid', 'logsigmoid'];

export function checkRewardLossForm(form: unknown): RewardLossForm {
  if (!REWARD_LOSS_FORMS.includes(form as RewardLossForm)) {
    throw new InvalidArgumentError(
      `rewardLoss: expected one of ${REWARD_LOSS_FORMS.map((f) => `'${f}'`).join(', ')}, got ${JSON.stringify(form)}`,
    );
  }
  return form as RewardLossForm;
}

/** weight * mean over the batch of the loss form on logits [B]; a scalar, differentiable in the logits. */
export function rewardLoss(logits: tf.Tensor, form: RewardLossForm, weight: number, target = 2): tf.Scalar {
  return tf.tidy(() => {
    let perSample: tf.Tensor;
    if (form === 'hinge') perSample = tf.relu(tf.sub(target, tf.sigmoid(logits)));
    else if (form === 'sigmoid') perSample = tf.neg(tf.sigmoid(logits));
    else perSample = tf.softplus(tf.neg(logits));
    return tf.mul(weight, tf.mean(perSample)) as tf.Scalar;
  });
}
