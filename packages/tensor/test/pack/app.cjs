// CommonJS twin of app.mjs. Usage: node app.cjs <fixtures dir> <backend>
const { readFileSync } = require('node:fs');
const path = require('node:path');
const tf = require('@tensorflow/tfjs-core');
const { initBackend, loadSafetensors, serializeSafetensors, shutdownBackend } = require('@prfl/tensor');

(async () => {
  const [fixtures, backend] = process.argv.slice(2);
  const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected.json'), 'utf8')).files;
  const info = await initBackend({ backend });
  const grad = await tf
    .grad((x) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, 2, 3]))
    .data();
  const check = async (file) => {
    const tensors = await loadSafetensors(path.join(fixtures, file));
    let checked = 0;
    for (const [name, spec] of Object.entries(expected[file].tensors)) {
      if (!spec.values_bits || !tensors[name]) continue;
      const bits = new Uint32Array(new Float32Array(await tensors[name].data()).buffer);
      if (bits.length !== spec.values_bits.length || bits.some((b, i) => b !== spec.values_bits[i]))
        return { ok: false };
      checked++;
    }
    return { ok: checked > 0, tensors };
  };
  const f32 = await check('f32.safetensors');
  const bf16 = await check('bf16.safetensors');
  const original = readFileSync(path.join(fixtures, 'f32.safetensors'));
  const identical = Buffer.compare(Buffer.from(await serializeSafetensors(f32.tensors)), original) === 0;
  console.log(
    JSON.stringify({ backend: info.name, grad: Array.from(grad), f32: f32.ok, bf16: bf16.ok, identical }),
  );
  await shutdownBackend();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
