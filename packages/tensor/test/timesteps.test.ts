import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  initBackend,
  shutdownBackend,
  sigma,
  sigmaToTimestep,
  type Timestep,
  validateTimesteps,
} from '../src/index.js';

describe('validateTimesteps', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(() => shutdownBackend());

  it('takes an array, a typed array, a 1-D tensor or one number for the whole batch', () => {
    expect(validateTimesteps('t', [999, 321.5], 2)).toEqual([999, 321.5]);
    expect(validateTimesteps('t', new Float32Array([999, 500]), 2)).toEqual([999, 500]);
    expect(validateTimesteps('t', new Int32Array([10, 0, 1000]), 3)).toEqual([10, 0, 1000]);
    const t = tf.tensor1d([750, 250]);
    expect(validateTimesteps('t', t, 2)).toEqual([750, 250]);
    t.dispose();
    const s = tf.scalar(400, 'int32');
    expect(validateTimesteps('t', s, 3)).toEqual([400, 400, 400]);
    s.dispose();
    expect(validateTimesteps('t', 500 as Timestep, 3)).toEqual([500, 500, 500]);
    // A new array: the caller's is never handed back to be mutated.
    const given = [1, 2];
    expect(validateTimesteps('t', given, 2)).not.toBe(given);
  });

  it('refuses a batch that looks like sigmas, with the values and the way out', () => {
    expect(() => validateTimesteps('timesteps', [0.5, 0.5], 2)).toThrow(InvalidArgumentError);
    expect(() => validateTimesteps('timesteps', [0.5, 0.5], 2)).toThrow(
      /timesteps: timesteps look like sigmas: got \[0\.5, 0\.5\]; timesteps are sigma \* 1000 in \[0, 1000\].*allowSmallTimesteps: true/,
    );
    expect(() => validateTimesteps('t', new Float32Array([0.25, 0]), 2)).toThrow(/look like sigmas/);
    // Long batches are shortened in the message.
    expect(() => validateTimesteps('t', new Array(20).fill(0.9), 20)).toThrow(/0\.9, \.\.\. \(20 values\)\]/);
    // The opt-out, all zeros (clean latents: sigma 0 is timestep 0), and any value >= 1 are fine.
    expect(validateTimesteps('t', [0.5, 0.5], 2, { allowSmallTimesteps: true })).toEqual([0.5, 0.5]);
    expect(validateTimesteps('t', [0, 0], 2)).toEqual([0, 0]);
    expect(validateTimesteps('t', [0.5, 1], 2)).toEqual([0.5, 1]);
    // The conversion the message points to gives accepted values.
    const ts = [sigma(0.5), sigma(0.5)].map((s) => sigmaToTimestep(s));
    expect(validateTimesteps('t', ts, 2)).toEqual([500, 500]);
  });

  it('names the expected batch size and what arrived for a wrong length or form', () => {
    expect(() => validateTimesteps('timesteps', [500, 500, 500], 2)).toThrow(
      /timesteps: expected 2 timesteps \(one per batch element\), got 3 \(an array of length 3\)/,
    );
    expect(() => validateTimesteps('timesteps', new Float32Array(1), 2)).toThrow(
      /expected 2 timesteps .*got 1 \(a Float32Array\)/,
    );
    const t = tf.tensor2d([[1, 2]]);
    expect(() => validateTimesteps('timesteps', t, 2)).toThrow(
      /expected a 1-D tensor of 2 timesteps.*float32 tensor \[1, 2\]/,
    );
    t.dispose();
    const b = tf.tensor1d([1, 0], 'bool');
    expect(() => validateTimesteps('timesteps', b, 2)).toThrow(/float32 or int32 tensor.*bool tensor \[2\]/);
    b.dispose();
    expect(() => validateTimesteps('timesteps', { 0: 1, length: 1 }, 1)).toThrow(
      /as an array, a typed array or a 1-D tensor, or one number for all; got an object/,
    );
    expect(() => validateTimesteps('timesteps', undefined, 1)).toThrow(/got undefined/);
    expect(() => validateTimesteps('timesteps', '500', 1)).toThrow(/got a string \(500\)/);
  });

  it('checks every value is finite and within [0, numTrainTimesteps]', () => {
    expect(() => validateTimesteps('timesteps', [500, 1001], 2)).toThrow(
      /timesteps\[1\]: expected a timestep in \[0, 1000\], got 1001/,
    );
    expect(() => validateTimesteps('timesteps', [Number.NaN], 1)).toThrow(/timesteps\[0\]: .*got NaN/);
    expect(() => validateTimesteps('timesteps', [-1], 1)).toThrow(/got -1/);
    expect(() => validateTimesteps('timesteps', ['500'], 1)).toThrow(/timesteps\[0\]: .*got a string/);
    expect(validateTimesteps('t', [1500], 1, { numTrainTimesteps: 2000 })).toEqual([1500]);
  });
});
