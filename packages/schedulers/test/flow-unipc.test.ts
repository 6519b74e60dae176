/**
 * What is particular to Wan2.1's flow UniPC: warm-up and lower-order final steps, the corrector on every
 * step after the first (and disable_corrector), the sigma-0 final step for bh1, analytic gradients of the
 * first step, state checks, and its config.
 */
import {
  backendsUnderTest,
  InvalidArgumentError,
  initBackend,
  shutdownBackend,
  stepIndex,
} from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowUniPCState } from '../src/index.js';
import { FlowMatchEulerScheduler, FlowUniPCScheduler } from '../src/index.js';
import { flowVelocity, maxAbs } from './helpers.js';

const SHAPE = [1, 2, 2, 2, 2];
const N_EL = 16;
const MU = Array.from({ length: N_EL }, (_, k) => Math.cos(k) * 0.4);
const SD = Array.from({ length: N_EL }, (_, k) => 0.3 + 0.03 * (k % 5));

function start(seed: number): tf.Tensor {
  return tf.tidy(() => tf.reshape(tf.cos(tf.add(tf.range(0, N_EL, 1, 'float32'), seed)), SHAPE));
}

/** Runs a whole loop; returns the final sample (caller disposes), the orders used and whether each step corrected. */
async function run(s: FlowUniPCScheduler, numSteps: number, shift: number) {
  const schedule = s.schedule(numSteps, { shift });
  let state = s.initialState(schedule);
  let x = start(1);
  const orders: number[] = [];
  const corrected: boolean[] = [];
  for (let i = 0; i < numSteps; i++) {
    const v = flowVelocity(x, schedule.sigmas[i] as number, MU, SD);
    const r = s.step({ schedule, state, index: stepIndex(i), sample: x, modelOutput: v });
    orders.push(r.state.lastOrder);
    // The corrected sample is what the predictor started from; without the corrector it is the input.
    corrected.push(maxAbs(await (r.state.lastSample as tf.Tensor).data(), await x.data()) > 0);
    v.dispose();
    x.dispose();
    s.disposeState(state);
    x = r.sample;
    state = r.state;
  }
  s.disposeState(state);
  return { x, orders, corrected };
}

describe.each(backendsUnderTest())('FlowUniPC on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('warms up and lowers the order at the end: order 2 -> 1,2,...,2,1; order 3 -> 1,2,3,...,3,2,1', async () => {
    const two = await run(new FlowUniPCScheduler(), 8, 5);
    expect(two.orders).toEqual([1, 2, 2, 2, 2, 2, 2, 1]);
    const three = await run(new FlowUniPCScheduler({ solver_order: 3 }), 8, 5);
    expect(three.orders).toEqual([1, 2, 3, 3, 3, 3, 2, 1]);
    two.x.dispose();
    three.x.dispose();
  });

  it('corrects on every step after the first, except after the steps in disable_corrector', async () => {
    const all = await run(new FlowUniPCScheduler(), 8, 5);
    expect(all.corrected).toEqual([false, true, true, true, true, true, true, true]);
    const some = await run(new FlowUniPCScheduler({ disable_corrector: [0, 4] }), 8, 5);
    expect(some.corrected).toEqual([false, false, true, true, true, false, true, true]);
    expect(maxAbs(await all.x.data(), await some.x.data())).toBeGreaterThan(1e-6);
    all.x.dispose();
    some.x.dispose();
  });

  it('bh1 lands on x0_hat at sigma 0 where the reference gives NaN', async () => {
    const s = new FlowUniPCScheduler({ solver_type: 'bh1' });
    const schedule = s.schedule(3, { shift: 5 });
    let state = s.initialState(schedule);
    let x = start(2);
    for (let i = 0; i < 3; i++) {
      const v = flowVelocity(x, schedule.sigmas[i] as number, MU, SD);
      const r = s.step({ schedule, state, index: stepIndex(i), sample: x, modelOutput: v });
      if (i === 2) {
        // The last step returns the x0 prediction of its input (the corrected sample enters with weight
        // sigma_N / sigma_{N-1} = 0), which the state keeps as its newest model output.
        const x0 = await (r.state.modelOutputs.at(-1) as tf.Tensor).data();
        expect(maxAbs(await r.sample.data(), x0)).toBe(0);
      }
      v.dispose();
      x.dispose();
      s.disposeState(state);
      x = r.sample;
      state = r.state;
    }
    expect(Array.from(await x.data()).every(Number.isFinite)).toBe(true);
    x.dispose();
    s.disposeState(state);
  });

  it('order 1 is Euler for a flow: analytic gradients of the first step are d/dv = sigma1 - sigma0, d/dx = 1', async () => {
    const s = new FlowUniPCScheduler({ solver_order: 1 });
    const schedule = s.schedule(10, { shift: 5 });
    const euler = new FlowMatchEulerScheduler({ shift: 5 });
    const x = start(3);
    const v = flowVelocity(x, schedule.sigmas[0] as number, MU, SD);
    const state = s.initialState(schedule);
    const [gv, gx] = tf.grads((vv: tf.Tensor, xx: tf.Tensor) =>
      tf.sum(s.step({ schedule, state, index: stepIndex(0), sample: xx, modelOutput: vv }).sample),
    )([v, x]);
    const ds = (schedule.sigmas[1] as number) - (schedule.sigmas[0] as number);
    expect(maxAbs(await gv!.data(), new Array(N_EL).fill(ds))).toBeLessThan(1e-5);
    expect(maxAbs(await gx!.data(), new Array(N_EL).fill(1))).toBeLessThan(1e-5);
    // Same step as Euler on the same sigmas.
    const unipcNext = s.step({ schedule, state, index: stepIndex(0), sample: x, modelOutput: v });
    const eulerSchedule = euler.schedule(10);
    const eulerNext = tf.tidy(() => tf.add(x, tf.mul(v, ds)));
    expect(maxAbs(await unipcNext.sample.data(), await eulerNext.data())).toBeLessThan(1e-5);
    expect(eulerSchedule.sigmas[0]).toBe(1);
    for (const t of [x, v, gv!, gx!, unipcNext.sample, eulerNext]) t.dispose();
    s.disposeState(unipcNext.state);
  });

  it('the gradient of step k reaches modelOutput through both the corrector and the predictor', async () => {
    const s = new FlowUniPCScheduler();
    const schedule = s.schedule(10, { shift: 5 });
    let state = s.initialState(schedule);
    let x = start(4);
    for (let i = 0; i < 4; i++) {
      const v = flowVelocity(x, schedule.sigmas[i] as number, MU, SD);
      const r = s.step({ schedule, state, index: stepIndex(i), sample: x, modelOutput: v });
      v.dispose();
      x.dispose();
      s.disposeState(state);
      x = r.sample;
      state = r.state;
    }
    const v = flowVelocity(x, schedule.sigmas[4] as number, MU, SD);
    const g = tf.grad((vv: tf.Tensor) =>
      tf.sum(s.step({ schedule, state, index: stepIndex(4), sample: x, modelOutput: vv }).sample),
    )(v);
    const value = (await g.data())[0]!;
    // Without the corrector the coefficient would be the predictor's alone; with it, it differs.
    const noCorrector = new FlowUniPCScheduler({ disable_corrector: [3] });
    const g2 = tf.grad((vv: tf.Tensor) =>
      tf.sum(
        noCorrector.step({
          schedule: noCorrector.schedule(10, { shift: 5 }),
          state: { ...state, scheduleKey: noCorrector.schedule(10, { shift: 5 }).key } as FlowUniPCState,
          index: stepIndex(4),
          sample: x,
          modelOutput: vv,
        }).sample,
      ),
    )(v);
    expect(Math.abs(value - (await g2.data())[0]!)).toBeGreaterThan(1e-4);
    for (const t of [x, v, g, g2]) t.dispose();
    s.disposeState(state);
  });

  it('refuses a state whose tensors have another shape or were disposed', () => {
    const s = new FlowUniPCScheduler();
    const schedule = s.schedule(10, { shift: 5 });
    const x = start(5);
    const v = flowVelocity(x, schedule.sigmas[0] as number, MU, SD);
    const r = s.step({
      schedule,
      state: s.initialState(schedule),
      index: stepIndex(0),
      sample: x,
      modelOutput: v,
    });
    const small = tf.zeros([1, 2, 2, 2, 1]);
    expect(() =>
      s.step({ schedule, state: r.state, index: stepIndex(1), sample: small, modelOutput: small }),
    ).toThrow(
      /state.modelOutputs\[1\]: expected the sample's shape \[1, 2, 2, 2, 1\], got \[1, 2, 2, 2, 2\]/,
    );
    s.disposeState(r.state);
    expect(() =>
      s.step({ schedule, state: r.state, index: stepIndex(1), sample: r.sample, modelOutput: v }),
    ).toThrow(/the tensor was disposed/);
    for (const t of [x, v, r.sample, small]) t.dispose();
  });
});

describe('FlowUniPC schedule and config (no tensors)', () => {
  it('sigma_max is float32(0.999) at shift 1 and the config shift applies at construction too', () => {
    expect(new FlowUniPCScheduler().sigmaMax).toBe(Math.fround(0.999));
    const shifted = new FlowUniPCScheduler({ shift: 3 });
    expect(shifted.sigmaMax).toBeCloseTo((3 * 0.999) / (1 + 2 * 0.999), 6);
    // Without a schedule shift, the config shift applies again (as in the reference).
    const schedule = shifted.schedule(4);
    expect(schedule.shift).toBe(3);
    expect(schedule.sigmas[0]).toBeCloseTo((3 * shifted.sigmaMax) / (1 + 2 * shifted.sigmaMax), 6);
  });

  it('refuses bad shifts and step counts', () => {
    const s = new FlowUniPCScheduler();
    expect(() => s.schedule(40, { shift: 0 })).toThrow(/shift: expected a finite number > 0, got 0/);
    expect(() => s.schedule(40, { shift: -5 })).toThrow(InvalidArgumentError);
    expect(() => s.schedule(40, { shift: Number.NaN })).toThrow(/shift/);
    expect(() => s.schedule(0)).toThrow(/numSteps: expected a positive integer, got 0/);
  });

  it('refuses configs it would not honour, naming the key, the accepted values and what arrived', () => {
    expect(() => new FlowUniPCScheduler({ solver_order: 4 })).toThrow(
      /solver_order: expected an integer in \[1, 3\], got 4/,
    );
    expect(() => new FlowUniPCScheduler({ lower_order_final: false })).toThrow(
      /lower_order_final: expected true/,
    );
    expect(() => new FlowUniPCScheduler({ solver_order: 1, lower_order_final: false })).not.toThrow();
    expect(() => new FlowUniPCScheduler({ solver_type: 'midpoint' as never })).toThrow(
      /solver_type: expected one of "bh1", "bh2", got "midpoint"/,
    );
    expect(() => new FlowUniPCScheduler({ prediction_type: 'epsilon' as never })).toThrow(
      /prediction_type: expected "flow_prediction"/,
    );
    expect(() => new FlowUniPCScheduler({ use_dynamic_shifting: true as never })).toThrow(
      /use_dynamic_shifting/,
    );
    expect(() => new FlowUniPCScheduler({ final_sigmas_type: 'sigma_min' as never })).toThrow(
      /final_sigmas_type/,
    );
    expect(() => new FlowUniPCScheduler({ disable_corrector: [-1] })).toThrow(
      /disable_corrector: expected a list/,
    );
    expect(() => new FlowUniPCScheduler({ shift: 0 })).toThrow(
      /shift: expected a finite number in \(0, inf\], got 0/,
    );
    expect(() => FlowUniPCScheduler.fromConfig({ _class_name: 'UniPCMultistepScheduler' })).toThrow(
      /_class_name: expected "FlowUniPCMultistepScheduler", got "UniPCMultistepScheduler"/,
    );
    expect(() => FlowUniPCScheduler.fromConfig({ sample_shift: 5 })).toThrow(
      /unknown key "sample_shift"; accepted keys: num_train_timesteps, solver_order, prediction_type, shift/,
    );
  });

  it('reads the config Wan2.1 builds (FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=1, use_dynamic_shifting=False))', () => {
    const s = FlowUniPCScheduler.fromConfig({
      _class_name: 'FlowUniPCMultistepScheduler',
      _diffusers_version: '0.31.0',
      num_train_timesteps: 1000,
      shift: 1,
      use_dynamic_shifting: false,
    });
    expect(s.toConfig()).toMatchObject({
      _class_name: 'FlowUniPCMultistepScheduler',
      solver_order: 2,
      solver_type: 'bh2',
      predict_x0: true,
      lower_order_final: true,
      disable_corrector: [],
      final_sigmas_type: 'zero',
    });
  });
});
