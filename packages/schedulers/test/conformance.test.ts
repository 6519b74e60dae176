/**
 * The conformance suite every scheduler passes (diffusers' habit): the Schedule contract, purity of step,
 * clear errors on bad input, no tensor leaks over a 40-step loop, gradients through one step, addNoise,
 * and config round trips. Runs on every backend under test.
 */
import type { Schedule, StepIndex } from '@prfl/tensor';
import { backendsUnderTest, InvalidArgumentError, initBackend, shutdownBackend } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyScheduler } from '../src/index.js';
import { DDIMScheduler, FlowUniPCScheduler, schedulerFromConfig } from '../src/index.js';
import type { Entry } from './helpers.js';
import { disposeExtra, ENTRIES, maxAbs, stepWith } from './helpers.js';

const SHAPE = [2, 1, 2, 2, 3];
const MU = Array.from({ length: 24 }, (_, k) => Math.sin(k) * 0.5);
const SD = Array.from({ length: 24 }, (_, k) => 0.05 + 0.02 * (k % 3));

function noiseTensor(seed: number): tf.Tensor {
  return tf.tidy(() =>
    tf.reshape(tf.mul(tf.sin(tf.add(tf.range(0, 24, 1, 'float32'), seed * 1.7)), 1.3), SHAPE),
  );
}

/** Runs steps 0..k-1 with the exact model; returns the sample and state entering step k. */
function rollout(entry: Entry, s: AnyScheduler, schedule: Schedule, k: number, seed = 1) {
  let x = noiseTensor(seed);
  let state: unknown = s.initialState(schedule);
  for (let i = 0; i < k; i++) {
    const out = entry.model(s, schedule, i, x, MU, SD);
    const extra = entry.extra?.(SHAPE, 100 * seed + i);
    const r = stepWith(s, { schedule, state, index: i, sample: x, modelOutput: out }, extra);
    out.dispose();
    disposeExtra(extra);
    x.dispose();
    (s.disposeState as (st: unknown) => void)(state);
    x = r.sample;
    state = r.state;
  }
  return { x, state };
}

function disposeState(s: AnyScheduler, state: unknown) {
  (s.disposeState as (st: unknown) => void)(state);
}

describe.each(backendsUnderTest())('conformance on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  describe.each(ENTRIES.map((e) => [e.label, e] as const))('%s', (_label, entry) => {
    it('schedule(N): N timesteps, N + 1 non-increasing sigmas in [0, 1] ending lowest', () => {
      const s = entry.make();
      for (const n of [1, 2, 7, 40]) {
        const schedule = entry.schedule(s, n);
        expect(schedule.numSteps).toBe(n);
        expect(schedule.timesteps).toHaveLength(n);
        expect(schedule.sigmas).toHaveLength(n + 1);
        for (let i = 0; i < n; i++) {
          expect(schedule.sigmas[i + 1] as number).toBeLessThanOrEqual(schedule.sigmas[i] as number);
          expect(schedule.timesteps[i] as number).toBeGreaterThanOrEqual(0);
          expect(schedule.timesteps[i] as number).toBeLessThanOrEqual(s.numTrainTimesteps);
          if (i > 0) {
            expect(schedule.timesteps[i] as number).toBeLessThanOrEqual(schedule.timesteps[i - 1] as number);
          }
        }
        for (const sig of schedule.sigmas) {
          expect(sig).toBeGreaterThanOrEqual(0);
          expect(sig).toBeLessThanOrEqual(1);
        }
        expect(Object.isFrozen(schedule)).toBe(true);
      }
    });

    it('schedule refuses a bad number of steps, naming numSteps', () => {
      const s = entry.make();
      for (const bad of [0, -3, 2.5, Number.NaN, '10' as unknown as number]) {
        expect(() => entry.schedule(s, bad)).toThrow(InvalidArgumentError);
        expect(() => entry.schedule(s, bad)).toThrow(/numSteps: expected .*integer.*, got/);
      }
    });

    it('step is pure: a new tensor of the same shape, inputs untouched, same inputs give the same output', async () => {
      const s = entry.make();
      const schedule = entry.schedule(s, 10);
      const { x, state } = rollout(entry, s, schedule, 3);
      const out = entry.model(s, schedule, 3, x, MU, SD);
      const extra = entry.extra?.(SHAPE, 5);
      const xBefore = await x.data();
      const a = stepWith(s, { schedule, state, index: 3, sample: x, modelOutput: out }, extra);
      const b = stepWith(s, { schedule, state, index: 3, sample: x, modelOutput: out }, extra);
      expect(a.sample.shape).toEqual(SHAPE);
      expect(a.sample.dtype).toBe('float32');
      expect(a.sample).not.toBe(x);
      expect(x.isDisposed).toBe(false);
      expect(out.isDisposed).toBe(false);
      expect(Array.from(await x.data())).toEqual(Array.from(xBefore));
      expect(Array.from(await a.sample.data())).toEqual(Array.from(await b.sample.data()));
      expect(Object.isFrozen(a.state)).toBe(true);
      expect((a.state as { nextIndex: number }).nextIndex).toBe(4);
      for (const t of [a.sample, b.sample, x, out]) t.dispose();
      disposeState(s, a.state);
      disposeState(s, b.state);
      disposeState(s, state);
      disposeExtra(extra);
    });

    it('a full 40-step loop leaks no tensors and lands near the data', async () => {
      const s = entry.make();
      const schedule = entry.schedule(s, 40);
      const before = tf.memory().numTensors;
      let x = noiseTensor(2);
      let state: unknown = s.initialState(schedule);
      const counts: number[] = [];
      for (let i = 0; i < 40; i++) {
        const out = entry.model(s, schedule, i, x, MU, SD);
        const extra = entry.extra?.(SHAPE, i);
        const r = stepWith(s, { schedule, state, index: i, sample: x, modelOutput: out }, extra);
        out.dispose();
        disposeExtra(extra);
        x.dispose();
        disposeState(s, state);
        x = r.sample;
        state = r.state;
        counts.push(tf.memory().numTensors);
      }
      const final = await x.data();
      x.dispose();
      disposeState(s, state);
      expect(tf.memory().numTensors).toBe(before);
      // After the history has filled up, every step holds the same number of tensors.
      expect(new Set(counts.slice(4)).size).toBe(1);
      // Data is N(mu, s^2) with s <= 0.09: every element ends within 5 s of mu (4.5 s + slack).
      expect(maxAbs(final, MU)).toBeLessThan(0.5);
    });

    it('gradients flow through one step to modelOutput and sample (tf.grads vs finite differences)', async () => {
      const s = entry.make();
      const schedule = entry.schedule(s, 12);
      const k = 5;
      const { x, state } = rollout(entry, s, schedule, k, 3);
      const out = entry.model(s, schedule, k, x, MU, SD);
      const extra = entry.extra?.(SHAPE, 9);
      const w = noiseTensor(7);
      const loss = (mo: tf.Tensor, sample: tf.Tensor) =>
        tf.tidy(() => {
          const r = stepWith(s, { schedule, state, index: k, sample, modelOutput: mo }, extra);
          const value = tf.sum(tf.mul(r.sample, w));
          return value;
        });
      const [gOut, gX] = tf.grads((mo: tf.Tensor, sample: tf.Tensor) => {
        const r = stepWith(s, { schedule, state, index: k, sample, modelOutput: mo }, extra);
        return tf.sum(tf.mul(r.sample, w));
      })([out, x]) as [tf.Tensor, tf.Tensor];
      // The step is affine in (modelOutput, sample): central differences along random directions are exact
      // up to float32 rounding.
      for (const [which, g] of [
        ['modelOutput', gOut],
        ['sample', gX],
      ] as const) {
        const d = noiseTensor(which === 'sample' ? 11 : 13);
        const h = 0.25;
        const shifted = (sign: number) =>
          tf.tidy(() => {
            const moved = tf.add(which === 'sample' ? x : out, tf.mul(d, sign * h));
            return which === 'sample' ? loss(out, moved) : loss(moved, x);
          });
        const plus = shifted(1);
        const minus = shifted(-1);
        const fd = ((await plus.data())[0]! - (await minus.data())[0]!) / (2 * h);
        const analytic = (await tf.sum(tf.mul(g, d)).data())[0]!;
        expect(Math.abs(analytic - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
        expect(Math.abs(analytic)).toBeGreaterThan(0);
        plus.dispose();
        minus.dispose();
        d.dispose();
      }
      for (const t of [gOut, gX, out, x, w]) t.dispose();
      disposeExtra(extra);
      disposeState(s, state);
    });

    it('refuses bad step input with messages naming what was expected and what arrived', () => {
      const s = entry.make();
      const schedule = entry.schedule(s, 10);
      const other = entry.schedule(s, 12);
      const { x, state } = rollout(entry, s, schedule, 2);
      const out = entry.model(s, schedule, 2, x, MU, SD);
      const extra = entry.extra?.(SHAPE, 1) ?? {};
      const call = (over: Record<string, unknown>) => () =>
        stepWith(s, { schedule, state, index: 2, sample: x, modelOutput: out, ...over }, extra);
      expect(call({ index: 10 })).toThrow(/index: expected a step index in \[0, 9\].*got 10/);
      expect(call({ index: -1 })).toThrow(/index: expected a step index/);
      expect(call({ index: 1.5 })).toThrow(/index: expected a step index/);
      expect(call({ index: 3 })).toThrow(/expects step 2; got 3/);
      const wrong = tf.zeros([2, 1, 2, 2, 4]);
      expect(call({ modelOutput: wrong })).toThrow(
        /modelOutput: expected the sample's shape \[2, 1, 2, 2, 3\], got \[2, 1, 2, 2, 4\]/,
      );
      expect(call({ sample: 'x' })).toThrow(/sample: expected a tf.Tensor/);
      expect(call({ schedule: other })).toThrow(
        /state: it belongs to another schedule: expected a state of ".*12 steps.*", got one of ".*10 steps.*"/,
      );
      expect(call({ state: s.initialState(other) })).toThrow(/another schedule/);
      expect(call({ state: { nextIndex: 2 } })).toThrow(/state: expected a .* state from initialState/);
      const foreign = new DDIMScheduler({ clip_sample: false });
      const foreignSchedule = foreign.schedule(10);
      if (!(s instanceof DDIMScheduler)) {
        expect(call({ schedule: foreignSchedule })).toThrow(
          /schedule: expected a schedule made by this scheduler/,
        );
        expect(call({ state: foreign.initialState(foreignSchedule) })).toThrow(
          /expected a .* state, got a state of DDIMScheduler/,
        );
      } else {
        const unipc = new FlowUniPCScheduler();
        const u = unipc.schedule(10);
        expect(call({ schedule: u })).toThrow(/schedule: expected a schedule made by this scheduler/);
        expect(call({ state: unipc.initialState(u) })).toThrow(/got a state of FlowUniPCMultistepScheduler/);
      }
      for (const bad of [undefined, { numSteps: 10 }]) {
        expect(() => s.initialState(bad as unknown as Schedule)).toThrow(InvalidArgumentError);
      }
      // Every one of these is our error type.
      try {
        call({ index: 99 })();
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError);
      }
      for (const t of [x, out, wrong]) t.dispose();
      disposeExtra(extra);
      disposeState(s, state);
    });

    it('a fresh state may start at any step (image-to-image), a used one only at its next step', () => {
      const s = entry.make();
      const schedule = entry.schedule(s, 10);
      const x = noiseTensor(4);
      const out = entry.model(s, schedule, 6, x, MU, SD);
      const extra = entry.extra?.(SHAPE, 2);
      const r = stepWith(
        s,
        { schedule, state: s.initialState(schedule), index: 6, sample: x, modelOutput: out },
        extra,
      );
      expect((r.state as { nextIndex: number }).nextIndex).toBe(7);
      expect(() =>
        stepWith(s, { schedule, state: r.state, index: 6, sample: x, modelOutput: out }, extra),
      ).toThrow(/expects step 7; got 6/);
      for (const t of [x, out, r.sample]) t.dispose();
      disposeState(s, r.state);
      disposeExtra(extra);
    });

    it('predictOriginal of the exact model output is the posterior mean E[x0 | x]', async () => {
      const s = entry.make();
      const schedule = entry.schedule(s, 10);
      const k = 4;
      const { x, state } = rollout(entry, s, schedule, k);
      const out = entry.model(s, schedule, k, x, MU, SD);
      const x0 = s.predictOriginal({ schedule, index: k as StepIndex, sample: x, modelOutput: out });
      const xv = await x.data();
      // x = a x0 + b eps with (a, b) = (1 - sigma, sigma) for flows, (sqrt(abar), sqrt(1 - abar)) otherwise.
      const [a, b] = entry.flow
        ? [1 - (schedule.sigmas[k] as number), schedule.sigmas[k] as number]
        : (() => {
            const ab = (s as DDIMScheduler).alphasCumprod[schedule.timesteps[k] as number] as number;
            return [Math.sqrt(ab), Math.sqrt(1 - ab)];
          })();
      const expected = MU.map((m, j) => {
        const sd2 = (SD[j] as number) ** 2;
        return m + ((a * sd2) / (a * a * sd2 + b * b)) * ((xv[j] as number) - a * m);
      });
      expect(maxAbs(await x0.data(), expected)).toBeLessThan(2e-5);
      expect(() =>
        s.predictOriginal({ schedule, index: 10 as StepIndex, sample: x, modelOutput: out }),
      ).toThrow(/predictOriginal: index: expected a step index in \[0, 9\]/);
      for (const t of [x, out, x0]) t.dispose();
      disposeState(s, state);
    });

    it('addNoise noises x0 to a sigma, one for all or one per batch element', async () => {
      const s = entry.make();
      const x0 = noiseTensor(5);
      const eps = noiseTensor(6);
      const flow = entry.flow;
      const coef = (sig: number) => (flow ? [1 - sig, sig] : [Math.sqrt(1 - sig * sig), sig]);
      const one = s.addNoise(x0, eps, 0.3 as never);
      const [a, b] = coef(0.3);
      const x0v = await x0.data();
      const ev = await eps.data();
      expect(
        maxAbs(
          await one.data(),
          Array.from(x0v, (v, k) => a! * v + b! * ev[k]!),
        ),
      ).toBeLessThan(1e-6);
      const per = s.addNoise(x0, eps, [0.2, 0.9] as never);
      const expected = Array.from(x0v, (v, k) => {
        const [c0, c1] = coef(k < 12 ? 0.2 : 0.9);
        return c0! * v + c1! * ev[k]!;
      });
      expect(maxAbs(await per.data(), expected)).toBeLessThan(1e-6);
      expect(() => s.addNoise(x0, tf.zeros([2, 3]), 0.5 as never)).toThrow(/noise: expected the shape of x0/);
      expect(() => s.addNoise(x0, eps, 1.5 as never)).toThrow(
        /sigmas: expected a sigma in \[0, 1\], got 1.5/,
      );
      expect(() => s.addNoise(x0, eps, [0.1, 0.2, 0.3] as never)).toThrow(
        /expected one sigma .* or an array of 2/,
      );
      for (const t of [x0, eps, one, per]) t.dispose();
    });

    it('config round trip: toConfig -> schedulerFromConfig -> the same config and schedule', () => {
      const s = entry.make();
      const json = JSON.parse(JSON.stringify(s.toConfig())) as Record<string, unknown>;
      expect(typeof json['_class_name']).toBe('string');
      const again = schedulerFromConfig(json);
      expect(again.toConfig()).toEqual(s.toConfig());
      expect(again.name).toBe(s.name);
      const a = entry.schedule(s, 13);
      const b = entry.schedule(again, 13);
      expect([...b.timesteps]).toEqual([...a.timesteps]);
      expect([...b.sigmas]).toEqual([...a.sigmas]);
      // A schedule of an equal config is accepted by either scheduler instance.
      const st = again.initialState(a);
      expect((st as { nextIndex: null }).nextIndex).toBeNull();
      expect(() => schedulerFromConfig({ ...json, not_a_key: 1 })).toThrow(
        /unknown key "not_a_key"; accepted keys: /,
      );
    });
  });

  it('the step of a single-step schedule works for every scheduler', async () => {
    for (const entry of ENTRIES) {
      const s = entry.make();
      const schedule = entry.schedule(s, 1);
      const { x, state } = rollout(entry, s, schedule, 1);
      expect(x.shape).toEqual(SHAPE);
      expect(Number.isFinite((await x.data())[0]!)).toBe(true);
      x.dispose();
      disposeState(s, state);
    }
  });
});
