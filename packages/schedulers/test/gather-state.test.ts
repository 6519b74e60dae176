/**
 * gatherSolverState (early pruning): survivors carried on with their rows of a flow UniPC state end
 * exactly where they end in the full batch; a state that is not batch-first is refused by name, with
 * nothing left behind.
 */
import {
  backendsUnderTest,
  InvalidArgumentError,
  initBackend,
  shutdownBackend,
  stepIndex,
} from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { FlowUniPCScheduler, type FlowUniPCState, gatherSolverState } from '../src/index.js';

const velocity = (x: tf.Tensor) => tf.tidy(() => tf.mul(tf.sin(x), 0.7));

describe.each(backendsUnderTest())('gatherSolverState on %s', (backend) => {
  afterAll(() => shutdownBackend());

  it('survivors continue on their own rows and end where the full batch ends', async () => {
    await initBackend({ backend });
    const s = new FlowUniPCScheduler();
    const schedule = s.schedule(6, { shift: 5 });
    const step = (state: FlowUniPCState, x: tf.Tensor, i: number) => {
      const v = velocity(x);
      const r = s.step({ schedule, state, index: stepIndex(i), sample: x, modelOutput: v });
      v.dispose();
      return r;
    };
    const start = tf.tidy(() => tf.reshape(tf.cos(tf.range(0, 3 * 8, 1, 'float32')), [3, 2, 2, 2, 1]));
    let full = { sample: start, state: s.initialState(schedule) };
    let pruned: typeof full | undefined;
    for (let i = 0; i < 6; i++) {
      const next = step(full.state, full.sample, i);
      if (i > 0) full.sample.dispose();
      s.disposeState(full.state);
      full = next;
      if (i === 2) {
        const rows = [2, 0];
        const state = gatherSolverState(full.state, rows, 3);
        expect(Object.isFrozen(state)).toBe(Object.isFrozen(full.state));
        pruned = { sample: tf.gather(full.sample, rows), state };
      } else if (pruned !== undefined) {
        const n = step(pruned.state, pruned.sample, i);
        pruned.sample.dispose();
        s.disposeState(pruned.state);
        pruned = n;
      }
    }
    const expected = tf.gather(full.sample, [2, 0]);
    expect(Array.from(await (pruned as typeof full).sample.data())).toEqual(
      Array.from(await expected.data()),
    );
    tf.dispose([expected, start, full.sample, (pruned as typeof full).sample]);
    s.disposeState(full.state);
    s.disposeState((pruned as typeof full).state);
    expect(tf.memory().numTensors).toBe(0);
  });

  it('refuses a state that is not batch-first, naming the field, and leaves nothing behind', async () => {
    await initBackend({ backend });
    const good = tf.zeros([3, 2]);
    const bad = tf.zeros([2, 2]);
    const before = tf.memory().numTensors;
    let error: unknown;
    try {
      gatherSolverState({ outputs: [good, bad] }, [0], 3);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(String(error)).toMatch(
      /solver state outputs\[1\]: expected a batch-first tensor of 3 rows, got shape \[2, 2\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([good, bad]);
  });
});
