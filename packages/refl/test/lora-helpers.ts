/** Test models for the LoRA, selection and checkpointing tests. */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@prfl/tensor';
import { WanDiT } from '@prfl/models';

/** A tiny WanDiT with every weight random (Wan's init zeroes the head, which would hide everything). */
export function randomWanDiT(seed: number, preset: 'tiny' | Record<string, unknown> = 'tiny'): WanDiT {
  const model = new WanDiT(preset, { seed });
  const g = new Generator(`random-wan/${seed}`);
  for (const [name, v] of model.namedVariables()) {
    const fresh = g.derive(name).normal(v.shape, 0, 0.2);
    tf.tidy(() => v.assign(/norm\w*\.weight$/.test(name) ? tf.add(fresh, 1) : fresh));
    fresh.dispose();
  }
  return model;
}
