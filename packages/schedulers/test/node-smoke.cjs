// Plain-Node check of the *built* package (CJS): `node test/node-smoke.cjs` after `npx tsup`.
const { initBackend, shutdownBackend } = require('@prfl/tensor');
const tf = require('@tensorflow/tfjs-core');
const { FlowUniPCScheduler, schedulerFromConfig } = require('@prfl/schedulers');

(async () => {
  const { smokeLoop } = await import('./node-smoke-loop.mjs');
  await initBackend({ backend: 'cpu' });
  const result = await smokeLoop(tf, { FlowUniPCScheduler, schedulerFromConfig });
  console.log(JSON.stringify({ format: 'cjs', ...result }));
  await shutdownBackend();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
