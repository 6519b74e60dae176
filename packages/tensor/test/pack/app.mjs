// Runs inside an empty project that installed only the packed @prfl/tensor and its peer dependencies.
// Usage: node app.mjs <fixtures dir> <backend>
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, loadSafetensors, serializeSafetensors, shutdownBackend } from '@prfl/tensor';

const [fixtures, backend] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected.json'), 'utf8')).files;
const info = await initBackend({ backend });
const grad = await tf
  .grad((x) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, 2, 3]))
  .data();

async function bitsMatch(file) {
  const tensors = await loadSafetensors(path.join(fixtures, file));
  let checked = 0;
  for (const [name, spec] of Object.entries(expected[file].tensors)) {
    if (!spec.values_bits || !tensors[name]) continue;
    const bits = new Uint32Array(new Float32Array(await tensors[name].data()).buffer);
    if (bits.length !== spec.values_bits.length || bits.some((b, i) => b !== spec.values_bits[i]))
      return { file, ok: false, name };
    checked++;
  }
  return { file, ok: checked > 0, checked, tensors };
}
const f32 = await bitsMatch('f32.safetensors');
const bf16 = await bitsMatch('bf16.safetensors');
// Written by us from what we read, the f32 file is byte-identical to the one PyTorch's side wrote.
const original = readFileSync(path.join(fixtures, 'f32.safetensors'));
const ours = await serializeSafetensors(f32.tensors);
const identical = Buffer.compare(Buffer.from(ours), original) === 0;
console.log(
  JSON.stringify({ backend: info.name, grad: Array.from(grad), f32: f32.ok, bf16: bf16.ok, identical }),
);
await shutdownBackend();
