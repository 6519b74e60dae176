// Plain Node, ESM, against the built package: start a backend and compute a gradient.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, matMul, shutdownBackend } from '@prfl/tensor';

const backend = process.argv[2] ?? 'cpu';
const info = await initBackend({ backend });
const g = tf.grads((a, b) => tf.sum(matMul(a, b, false, true)))([tf.ones([2, 3, 4]), tf.ones([2, 5, 4])]);
const slice = tf.grad((x) => tf.sum(tf.stridedSlice(x, [0], [6], [2])))(tf.ones([6]));
console.log(
  JSON.stringify({
    backend: info.name,
    da: Array.from(await g[0].data()).slice(0, 4),
    slice: Array.from(await slice.data()),
  }),
);
await shutdownBackend();
