// One method alone in a process (bench/refl.mjs uses it where a method may run out of the wasm heap,
// which ends the process: RGB ReFL on all frames at Wan2.1's VAE width): a method on a setting at a fixed
// k, warm-up steps at k = 1 in a run of their own, then `repeats` measured micro-steps. Reports every
// step's wall time, per-phase time and peak tensor memory (prflStep's own metrics), the whole step's
// peak (measured around it), and the wasm heap after setup and at the end (or what it held when it
// failed).
//
//   node bench/cells/step.mjs '{"setting":"tiny","frames":17,"method":"prfl","sft":true,"k":30,"warmup":1,"repeats":3}'
import * as tf from '@tensorflow/tfjs-core';
import { createPrflRun, disposePrflRun, prflStep } from '@prfl/refl';
import { log, runCell } from '../lib/cell.mjs';
import { measuredStep, methodComponents, methodName, methodOptions, summarize } from '../lib/methods.mjs';
import { wasmHeapBytes } from '../lib/wasm-heap.mjs';
import { buildWorld } from '../lib/world.mjs';

await runCell(async (spec) => {
  const name = methodName(spec.method, spec.sft);
  const world = buildWorld(spec.setting, spec.frames, { decoder: spec.method !== 'prfl' });
  const setup = { numBytes: tf.memory().numBytes, wasmHeapBytes: wasmHeapBytes() };
  const components = methodComponents(world, spec.method);
  const options = methodOptions(spec.method, { sft: spec.sft, k: spec.k });
  // Warm-up (first-use kernel set-up, XNNPACK weight packing, RoPE tables) with the same kernels and
  // shapes but k = 1, so it does not pay k - 1 more rollout steps; its own run is thrown away.
  for (let i = 0; i < spec.warmup; i++) {
    const warm = createPrflRun(components, { ...options, stepRange: [1, 1] });
    const t0 = performance.now();
    prflStep(warm, world.batch);
    disposePrflRun(warm);
    log(
      `  ${spec.setting}/${spec.frames} ${name} warm-up (k = 1): ${(performance.now() - t0).toFixed(0)} ms`,
    );
  }
  const run = createPrflRun(components, options);
  const steps = [];
  try {
    for (let i = 0; i < spec.repeats; i++) {
      const s = measuredStep(run, world.batch);
      steps.push(s);
      log(
        `  ${spec.setting}/${spec.frames} ${name} step ${i + 1}/${spec.repeats}: ${s.ms.toFixed(0)} ms, peak ${(s.peakBufferBytes / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  } catch (e) {
    e.partial = { completedSteps: steps.length, steps, setup, world: world.describe() };
    throw e;
  }
  disposePrflRun(run);
  const describe = world.describe();
  world.dispose();
  return { world: describe, setup, summary: summarize(steps), steps };
});
