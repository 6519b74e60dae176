// Plain Node, CommonJS, against the built package: the same computation as threads.mjs (see there),
// without shutdownBackend; the process must exit on its own.
const { createHash } = require('node:crypto');
const tf = require('@tensorflow/tfjs-core');
const { Generator, describeBackend, initBackend, linear, matMul } = require('@prfl/tensor');

(async () => {
  const threads = Number(process.argv[2] ?? 1);
  const info = await initBackend({ backend: 'wasm', threads });
  const g = new Generator('threads');
  const x = g.normal([2, 96, 64]);
  const w1 = g.normal([64, 256], 0, 0.1);
  const w2 = g.normal([256, 64], 0, 0.1);
  const loss = (a, b) => {
    const h = tf.relu(linear(a, b));
    const q = linear(h, w2);
    const att = tf.softmax(tf.div(matMul(q, q, false, true), 8));
    const y = matMul(att, q);
    const c = tf.conv2d(tf.reshape(y, [2, 96, 8, 8]), tf.ones([3, 3, 8, 4]), 1, 'same');
    return tf.mean(tf.square(c));
  };
  const [gx, gw] = tf.grads(loss)([x, w1]);
  const hash = createHash('sha256');
  for (const t of [loss(x, w1), gx, gw]) hash.update(Buffer.from((await t.data()).buffer));
  console.log(
    JSON.stringify({ backend: describeBackend(info), threads: info.wasm?.threads, hash: hash.digest('hex') }),
  );
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
