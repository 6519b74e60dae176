// Plain-Node check of the *built* package (ESM): `node test/smoke/dit.mjs <cpu|wasm>` after `npm run build`.
// Loads the PyTorch fixture checkpoint, predicts the velocity and takes a gradient.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, loadSafetensors, shutdownBackend } from '@prfl/tensor';
import { loadWanDiT } from '@prfl/models';

const backend = process.argv[2] ?? 'cpu';
const dir = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'fixtures',
  'dit',
  'tiny-t2v',
);
await initBackend({ backend });
const model = await loadWanDiT(dir);
const io = await loadSafetensors(path.join(dir, 'io.safetensors'));
const ts = Array.from(io.timesteps.dataSync());
tf.dispose(model.predictVelocity(io.x, ts, { text: io.text })); // caches the RoPE tables
const before = tf.memory().numTensors;
const v = model.predictVelocity(io.x, ts, { text: io.text });
const error = tf.tidy(() => tf.max(tf.abs(tf.sub(v, io.velocity))).dataSync()[0]);
const { value, grads } = tf.variableGrads(() =>
  tf.sum(tf.mul(model.predictVelocity(io.x, ts, { text: io.text }), io.loss_weights)),
);
const q = grads[model.namedVariables().get('blocks.0.self_attn.q.weight').name];
const gradError = tf.tidy(
  () => tf.max(tf.abs(tf.sub(tf.transpose(q), io['grad.blocks.0.self_attn.q.weight']))).dataSync()[0],
);
tf.dispose([v, value, ...Object.values(grads)]);
const leaked = tf.memory().numTensors - before;
console.log(
  JSON.stringify({ format: 'esm', backend, error, gradError, gradients: Object.keys(grads).length, leaked }),
);
await shutdownBackend();
