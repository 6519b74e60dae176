// The methods the benchmark compares, as options of one PRFL run, and how one measured micro-step and a
// method's summary are recorded (used by cells/compare.mjs and cells/step.mjs).
import * as tf from '@tensorflow/tfjs-core';
import { measureMemory } from '@prfl/tensor';
import { prflStep, RGB_REFL_PRESET } from '@prfl/refl';
import { median } from './cell.mjs';

export const METHODS = {
  prfl: {},
  'rgb-first': { ...RGB_REFL_PRESET, decodeFrames: 'first' },
  'rgb-all': { ...RGB_REFL_PRESET, decodeFrames: 'all' },
};

export const methodName = (method, sft) => `${method}${sft ? '+sft' : ''}`;

/** The run options of `method` at a fixed k. */
export function methodOptions(method, { sft, k }) {
  const preset = METHODS[method];
  if (preset === undefined) {
    throw new Error(`method: expected one of ${Object.keys(METHODS).join(', ')}, got '${method}'`);
  }
  return {
    ...preset,
    // The same k for every method: the steps then differ only in what the reward reads (bench/refl.mjs
    // accounts for the methods' own k ranges from the measured rollout cost per step).
    stepRange: [k, k],
    sftWeight: sft ? 1 : 0,
    // One update per micro-step, so every measured step holds the same work; the paper's 5-step window
    // amortises the update, which refl.mjs reports separately.
    accumulationSteps: 1,
    seed: 0,
  };
}

/** The components of `method` from a world (lib/world.mjs). */
export function methodComponents(world, method) {
  const pixel = method !== 'prfl';
  return {
    generator: world.generator,
    reward: pixel ? world.pixelReward : world.pavrm,
    decoder: pixel ? world.vae : undefined,
    nullConditioning: world.nullConditioning,
  };
}

/** One measured micro-step: wall time, the whole step's peak tensor memory, per-phase time and memory. */
export function measuredStep(run, batch) {
  const before = tf.memory().numTensors;
  const m = measureMemory(() => prflStep(run, batch));
  const s = m.result;
  return {
    ms: +s.ms.toFixed(1),
    peakBytes: m.peakBytes,
    peakBufferBytes: m.peakBufferBytes,
    retainedTensors: tf.memory().numTensors - before,
    k: s.k,
    loss: s.loss,
    reward: s.reward.mean,
    phases: Object.fromEntries(
      Object.entries(s.phases).map(([p, v]) => [
        p,
        { ms: +v.ms.toFixed(1), peakBytes: v.peakBytes, peakBufferBytes: v.peakBufferBytes },
      ]),
    ),
  };
}

/** Median time (and best) per step and per phase, highest peaks, over measured steps. */
export function summarize(steps) {
  const phaseNames = [...new Set(steps.flatMap((s) => Object.keys(s.phases)))];
  return {
    ms: median(steps.map((s) => s.ms)),
    bestMs: Math.min(...steps.map((s) => s.ms)),
    peakBytes: Math.max(...steps.map((s) => s.peakBytes)),
    peakBufferBytes: Math.max(...steps.map((s) => s.peakBufferBytes)),
    phases: Object.fromEntries(
      phaseNames.map((p) => [
        p,
        {
          ms: median(steps.map((s) => s.phases[p]?.ms ?? 0)),
          bestMs: Math.min(...steps.map((s) => s.phases[p]?.ms ?? 0)),
          peakBytes: Math.max(...steps.map((s) => s.phases[p]?.peakBytes ?? 0)),
          peakBufferBytes: Math.max(...steps.map((s) => s.phases[p]?.peakBufferBytes ?? 0)),
        },
      ]),
    ),
  };
}
