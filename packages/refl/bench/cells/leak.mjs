// Tensor count and bytes across many PRFL micro-steps with the real architecture: the tiny WanDiT as the
// generator, PAVRM on a frozen copy of its first two blocks, the paper's defaults (k over the whole
// chain, 5-step windows, so 200 steps make 40 updates). The first window creates what lives for the
// whole run (AdamW's moments, RoPE tables); after it, every window boundary must see the same count and
// bytes. Latents are [1, 2, 4, 4, 16] (32 tokens) so that 200 steps take seconds, not minutes.
//
//   node bench/cells/leak.mjs '{"backend":"wasm","steps":200}'
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@prfl/tensor';
import { WanDiT } from '@prfl/models';
import { Pavrm } from '@prfl/reward';
import { createPrflRun, disposePrflRun, prflStep } from '@prfl/refl';
import { log, runCell } from '../lib/cell.mjs';
import { wasmHeapBytes } from '../lib/wasm-heap.mjs';

await runCell(async (spec) => {
  const generator = new WanDiT('tiny', { seed: 1 });
  const backbone = generator.truncate(2);
  const reward = new Pavrm(backbone, { hidden: [16, 8], seed: 3 });
  const g = new Generator('bench/leak');
  const batch = { latents: g.normal([1, 2, 4, 4, 16]), conditioning: { text: g.normal([1, 16, 32]) } };
  const nullConditioning = { text: tf.zeros([1, 16, 32]) };
  const run = createPrflRun({ generator, reward, nullConditioning }, { seed: 7, measureMemory: false });
  const boundaries = [];
  const t0 = performance.now();
  for (let i = 1; i <= spec.steps; i++) {
    const m = prflStep(run, batch);
    if (m.updatesThisStep > 0) {
      const { numTensors, numBytes } = tf.memory();
      boundaries.push({ step: i, updates: m.updates, numTensors, numBytes, wasmHeapBytes: wasmHeapBytes() });
    }
    if (i % 50 === 0) log(`  leak check: ${i}/${spec.steps} steps, ${tf.memory().numTensors} tensors`);
  }
  const ms = performance.now() - t0;
  disposePrflRun(run);
  const afterRun = tf.memory().numTensors;
  reward.dispose();
  backbone.dispose();
  generator.dispose();
  tf.dispose([batch.latents, batch.conditioning.text, nullConditioning.text]);
  const later = boundaries.slice(1);
  return {
    steps: spec.steps,
    updates: boundaries.at(-1)?.updates ?? 0,
    msPerStep: +(ms / spec.steps).toFixed(1),
    // From the second window on: the same tensors and bytes at every boundary.
    flat:
      later.length > 0 &&
      later.every((b) => b.numTensors === later[0].numTensors && b.numBytes === later[0].numBytes),
    first: boundaries[0] ?? null,
    last: boundaries.at(-1) ?? null,
    distinctCounts: [...new Set(later.map((b) => b.numTensors))],
    distinctBytes: [...new Set(later.map((b) => b.numBytes))],
    distinctWasmHeapBytes: [...new Set(later.map((b) => b.wasmHeapBytes))],
    tensorsLeftAfterDispose: tf.memory().numTensors,
    tensorsBeforeDispose: afterRun,
  };
});
