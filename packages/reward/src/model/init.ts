/**
 * Seeded initialisation of the reward head, each parameter from its own named stream (so adding a
 * parameter does not change the others), with the schemes the reference's PyTorch modules use.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Generator } from '@prfl/tensor';

/** torch.nn.init.xavier_uniform_ for a weight of PyTorch shape [fanOut, fanIn]: U(±sqrt(6 / (fanIn + fanOut))). */
export function xavierUniform(gen: Generator, shape: number[], fanIn: number, fanOut: number): tf.Tensor {
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  return tf.tensor(gen.uniformArray(size(shape), -bound, bound), shape, 'float32');
}

/** nn.Linear's default weight init (kaiming_uniform_ with a = sqrt(5)): U(±1 / sqrt(fanIn)). */
export function linearDefaultUniform(gen: Generator, shape: number[], fanIn: number): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.tensor(gen.uniformArray(size(shape), -bound, bound), shape, 'float32');
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
