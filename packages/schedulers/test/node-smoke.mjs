// Plain-Node check of the *built* package (ESM): `node test/node-smoke.mjs` after `npx tsup`.
// Runs a 10-step Wan2.1 UniPC loop (shift 5) on the cpu backend with an analytic velocity, takes a
// gradient through one step, and prints one JSON line: the final sample, the gradient and the tensor count.
import { initBackend, shutdownBackend } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { FlowUniPCScheduler, schedulerFromConfig } from '@prfl/schedulers';
import { smokeLoop } from './node-smoke-loop.mjs';

await initBackend({ backend: 'cpu' });
const result = await smokeLoop(tf, { FlowUniPCScheduler, schedulerFromConfig });
console.log(JSON.stringify({ format: 'esm', ...result }));
await shutdownBackend();
