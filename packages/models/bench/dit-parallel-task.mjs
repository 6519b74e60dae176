// The tasks bench/dit-parallel.mjs runs on each worker's replica (a WanDiT from its replicaRecipe): the
// forward, or the forward and backward of mean(v^2), on the shard of the batch it is handed; gradients
// come back by Wan key.
import * as tf from '@tensorflow/tfjs-core';
import { packGradients, packTensor, transferResult, unpackTensor } from '@prfl/tensor';

function inputs(args) {
  return { x: unpackTensor(args.x), text: unpackTensor(args.text), ts: args.timesteps };
}

export function forward(model, args) {
  const { x, text, ts } = inputs(args);
  const v = model.predictVelocity(x, ts, { text });
  const out = packTensor(v);
  tf.dispose([x, text, v]);
  return { v: out };
}

export function forwardBackward(model, args) {
  const { x, text, ts } = inputs(args);
  const variables = [...model.namedVariables().values()];
  const { value, grads } = tf.variableGrads(
    () => tf.mul(tf.mean(tf.square(model.predictVelocity(x, ts, { text }))), args.scale),
    variables,
  );
  const flat = packGradients(grads, variables);
  const loss = value.dataSync()[0];
  tf.dispose([x, text, value, ...Object.values(grads)]);
  return transferResult({ loss, grads: flat }, [flat.values.buffer]);
}
