// Why the benchmark wraps the pixel reward (lib/conv-path-pixel-reward.mjs): the gradient of
// PixelVideoReward's score with respect to the frames -- what RGB ReFL back-propagates into the
// decoder -- on wasm through tf.conv3d, and through @prfl/tensor's conv3d, each against the cpu
// backend's tf.conv3d. Also that the wrapper computes the same scores.
//
//   node bench/cells/pixel-check.mjs '{}'
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend } from '@prfl/tensor';
import { PixelVideoReward } from '@prfl/reward';
import { runCell } from '../lib/cell.mjs';
import { ConvPathPixelReward } from '../lib/conv-path-pixel-reward.mjs';

function probe(reward, shape) {
  const frames = new Generator('bench/pixel-check').normal(shape);
  const out = tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((f) => tf.sum(reward.score(f, [0], undefined)))(frames);
    return { value: value.dataSync()[0], grad: grad.dataSync() };
  });
  frames.dispose();
  return out;
}

function maxAbs(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

await runCell(async (spec) => {
  const shape = spec.shape ?? [1, 5, 32, 32, 3];
  await initBackend({ backend: 'cpu' });
  const reference = probe(new PixelVideoReward({}, { seed: 5 }), shape);
  await initBackend({ backend: 'wasm' });
  const inner = new PixelVideoReward({}, { seed: 5 });
  const native = probe(inner, shape);
  const wrapped = probe(new ConvPathPixelReward(inner), shape);
  const scale = Math.max(...reference.grad.map(Math.abs));
  return {
    frames: shape,
    maxAbsFrameGradient: scale,
    pixelVideoReward: {
      scoreError: Math.abs(native.value - reference.value),
      gradError: maxAbs(native.grad, reference.grad),
    },
    convPath: {
      scoreError: Math.abs(wrapped.value - reference.value),
      gradError: maxAbs(wrapped.grad, reference.grad),
    },
  };
});
