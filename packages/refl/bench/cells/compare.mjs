// The timing cell of bench/refl.mjs: several methods on one setting in ONE process, their measured
// steps interleaved round by round (the order rotating every round), so that load from other processes
// on a busy machine falls on every method alike. Each method first takes its warm-up steps (k = 1, in
// a run of its own that is thrown away: first-use kernel set-up and weight packing without k - 1 extra
// rollout steps). The wasm heap is read after each method's warm-up; PRFL goes first and the VAE is only
// built after it, so PRFL's reading is its own peak and each later one the process peak so far.
//
//   node bench/cells/compare.mjs '{"setting":"tiny","frames":17,"methods":["prfl","rgb-first"],"sft":[false,true],"k":30,"warmup":1,"repeats":3}'
import * as tf from '@tensorflow/tfjs-core';
import { createPrflRun, disposePrflRun, prflStep } from '@prfl/refl';
import { log, runCell } from '../lib/cell.mjs';
import { measuredStep, methodComponents, methodName, methodOptions, summarize } from '../lib/methods.mjs';
import { wasmHeapBytes } from '../lib/wasm-heap.mjs';
import { attachDecoder, buildWorld } from '../lib/world.mjs';

await runCell(async (spec) => {
  const world = buildWorld(spec.setting, spec.frames, { decoder: false });
  const setup = { numBytes: tf.memory().numBytes, wasmHeapBytes: wasmHeapBytes() };
  const cells = [];
  for (const method of spec.methods) {
    for (const sft of spec.sft) cells.push({ method, sft, name: methodName(method, sft) });
  }
  const results = {};
  for (const c of cells) {
    if (c.method !== 'prfl' && world.vae === null) attachDecoder(world);
    const components = methodComponents(world, c.method);
    const options = methodOptions(c.method, { sft: c.sft, k: spec.k });
    for (let i = 0; i < spec.warmup; i++) {
      const warm = createPrflRun(components, { ...options, stepRange: [1, 1] });
      const t0 = performance.now();
      prflStep(warm, world.batch);
      disposePrflRun(warm);
      log(
        `  ${spec.setting}/${spec.frames} ${c.name} warm-up (k = 1): ${(performance.now() - t0).toFixed(0)} ms`,
      );
    }
    c.run = createPrflRun(components, options);
    results[c.name] = { method: c.method, sft: c.sft, wasmHeapBytesAfterWarmup: wasmHeapBytes(), steps: [] };
  }
  for (let round = 0; round < spec.repeats; round++) {
    for (let j = 0; j < cells.length; j++) {
      const c = cells[(j + round) % cells.length];
      const s = measuredStep(c.run, world.batch);
      results[c.name].steps.push(s);
      log(
        `  ${spec.setting}/${spec.frames} round ${round + 1}/${spec.repeats} ${c.name}: ${s.ms.toFixed(0)} ms, peak ${(s.peakBufferBytes / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  }
  for (const c of cells) {
    disposePrflRun(c.run);
    results[c.name].summary = summarize(results[c.name].steps);
  }
  const describe = world.describe();
  world.dispose();
  return { world: describe, setup, methods: results };
});
