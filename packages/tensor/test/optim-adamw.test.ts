import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  InvalidArgumentError,
  initBackend,
  measureMemory,
  PrflError,
  shutdownBackend,
} from '../src/index.js';
import type { AdamWOptions, AdamWParamGroup } from '../src/optim/index.js';
import { ADAMW_DEFAULTS, ADAMW_STEP_COUNT_KEY, AdamW, NonFiniteGradientError } from '../src/optim/index.js';

/** fixtures/adamw/adamw.json, written by scripts/make-adamw-fixture.py (torch 1.13, float32). */
interface TorchRun {
  defaults: { lr: number; betas: [number, number]; eps: number; weight_decay: number; amsgrad: boolean };
  groups: Array<{ params: string[]; lr?: number; weight_decay?: number }>;
  grads: Array<Record<string, number[]>>;
  checkpoints: Record<string, Record<string, number[]>>;
  state: Record<string, { step: number; exp_avg: number[]; exp_avg_sq: number[]; max_exp_avg_sq?: number[] }>;
}
interface Fixture {
  torch: string;
  shapes: Record<string, number[]>;
  init: Record<string, number[]>;
  target: Record<string, number[]>;
  curvature: Record<string, number[]>;
  steps: number;
  runs: Record<'two_groups' | 'amsgrad', TorchRun>;
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/adamw/adamw.json', import.meta.url), 'utf8'),
) as Fixture;
const NAMES = Object.keys(fixture.shapes);
const TOLERANCE = 1e-6;

/** Max over elements of |actual - expected| / |expected| (|actual| where expected is 0). */
function maxRelErr(actual: ArrayLike<number>, expected: readonly number[]): number {
  expect(actual.length).toBe(expected.length);
  let m = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const a = actual[i] as number;
    m = Math.max(m, e === 0 ? Math.abs(a) : Math.abs(a - e) / Math.abs(e));
  }
  return m;
}

/**
 * max |actual - expected| / max |expected| over one tensor. Used for the moment estimates, whose entries
 * can be sums of opposite-signed gradients (cancellation makes a per-entry ratio meaningless).
 */
function normRelErr(actual: ArrayLike<number>, expected: readonly number[]): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return scale === 0 ? diff : diff / scale;
}

function makeParams(prefix = ''): Record<string, tf.Variable> {
  return Object.fromEntries(
    NAMES.map((n) => [
      n,
      tf.variable(tf.tensor(fixture.init[n] as number[], fixture.shapes[n]), true, `${prefix}${n}`),
    ]),
  );
}

function torchOptimizer(run: TorchRun, params: Record<string, tf.Variable>, extra: AdamWOptions = {}): AdamW {
  const groups: AdamWParamGroup[] = run.groups.map((g) => ({
    params: g.params.map((n) => params[n] as tf.Variable),
    ...(g.lr !== undefined ? { lr: g.lr } : {}),
    ...(g.weight_decay !== undefined ? { weightDecay: g.weight_decay } : {}),
  }));
  const d = run.defaults;
  return new AdamW(groups, {
    lr: d.lr,
    betas: d.betas,
    eps: d.eps,
    weightDecay: d.weight_decay,
    amsgrad: d.amsgrad,
    ...extra,
  });
}

/** The recorded torch gradients of step `i` (0-based), keyed by the variables' names. */
function recordedGrads(run: TorchRun, i: number, prefix = ''): Record<string, tf.Tensor> {
  const step = run.grads[i] as Record<string, number[]>;
  return Object.fromEntries(
    Object.entries(step).map(([n, g]) => [`${prefix}${n}`, tf.tensor(g, fixture.shapes[n])]),
  );
}

/** The fixture's loss gradient k * (p - t), recomputed here from our own parameters. */
function quadraticGrads(params: Record<string, tf.Variable>, step: number): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const n of NAMES) {
    if (n === 'c' && step % 5 === 3) continue;
    const p = params[n] as tf.Variable;
    out[p.name] = tf.tidy(() =>
      tf.mul(
        tf.tensor(fixture.curvature[n] as number[], fixture.shapes[n]),
        tf.sub(p, tf.tensor(fixture.target[n] as number[], fixture.shapes[n])),
      ),
    );
  }
  return out;
}

function stepWith(opt: AdamW, grads: Record<string, tf.Tensor>) {
  const result = opt.step(grads);
  tf.dispose(Object.values(grads));
  return result;
}

const measured: string[] = [];

describe.each(backendsUnderTest())('AdamW on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterEach(() => {
    tf.disposeVariables();
  });
  afterAll(async () => {
    await shutdownBackend();
  });

  it.each(['two_groups', 'amsgrad'] as const)(
    'follows torch.optim.AdamW on recorded gradients for 100 steps (%s)',
    (runName) => {
      const run = fixture.runs[runName];
      const params = makeParams();
      const opt = torchOptimizer(run, params);
      let worstParam = 0;
      let worstState = 0;
      let worstStateElementwise = 0;
      for (let i = 0; i < fixture.steps; i++) {
        const r = stepWith(opt, recordedGrads(run, i));
        expect(r.applied).toBe(true);
        const ckpt = run.checkpoints[String(i + 1)];
        if (ckpt) {
          for (const n of NAMES) {
            worstParam = Math.max(
              worstParam,
              maxRelErr((params[n] as tf.Variable).dataSync(), ckpt[n] as number[]),
            );
          }
        }
      }
      const state = opt.stateDict();
      for (const n of NAMES) {
        const s = run.state[n];
        if (!s) throw new Error(`fixture lacks state for ${n}`);
        expect(state[`${n}.step`]?.dataSync()[0]).toBe(s.step);
        const pairs: Array<[string, number[] | undefined]> = [
          ['exp_avg', s.exp_avg],
          ['exp_avg_sq', s.exp_avg_sq],
          ['max_exp_avg_sq', s.max_exp_avg_sq],
        ];
        for (const [field, expected] of pairs) {
          if (!expected) continue;
          const got = (state[`${n}.${field}`] as tf.Tensor).dataSync();
          worstState = Math.max(worstState, normRelErr(got, expected));
          worstStateElementwise = Math.max(worstStateElementwise, maxRelErr(got, expected));
        }
      }
      expect(state[ADAMW_STEP_COUNT_KEY]?.dataSync()[0]).toBe(100);
      tf.dispose(Object.values(state));
      opt.dispose();
      measured.push(
        `${backend} ${runName} recorded grads: params max rel err ${worstParam.toExponential(2)}, state max err / max |state| ${worstState.toExponential(2)} (per entry ${worstStateElementwise.toExponential(2)})`,
      );
      expect(worstParam).toBeLessThanOrEqual(TOLERANCE);
      expect(worstState).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it.each(['two_groups', 'amsgrad'] as const)(
    'follows torch when computing the gradients itself (closed loop, %s)',
    (runName) => {
      const run = fixture.runs[runName];
      const params = makeParams();
      const opt = torchOptimizer(run, params);
      let worst = 0;
      for (let step = 1; step <= fixture.steps; step++) {
        stepWith(opt, quadraticGrads(params, step));
        const ckpt = run.checkpoints[String(step)];
        if (ckpt) {
          for (const n of NAMES) {
            worst = Math.max(worst, maxRelErr((params[n] as tf.Variable).dataSync(), ckpt[n] as number[]));
          }
        }
      }
      opt.dispose();
      measured.push(`${backend} ${runName} closed loop: params max rel err ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it('has torch defaults', () => {
    expect(ADAMW_DEFAULTS).toEqual({
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 1e-2,
      amsgrad: false,
      maximize: false,
    });
    const v = tf.variable(tf.ones([2]), true, 'w');
    const opt = new AdamW([v]);
    expect(opt.groups).toEqual([
      {
        name: undefined,
        params: ['w'],
        lr: 1e-3,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weightDecay: 1e-2,
        amsgrad: false,
        maximize: false,
      },
    ]);
    // First step of Adam moves every coordinate by lr (m̂/sqrt(v̂) = sign(g)), after decay by 1 - lr*wd.
    stepWith(opt, { w: tf.tensor1d([3, -0.5]) });
    const got = Array.from(v.dataSync());
    expect(got[0]).toBeCloseTo(1 * (1 - 1e-5) - 1e-3, 6);
    expect(got[1]).toBeCloseTo(1 * (1 - 1e-5) + 1e-3, 6);
    opt.dispose();
  });

  it('keeps per-group learning rates and weight decays (PAVRM: head 1e-5, backbone 1e-6)', () => {
    const head = tf.variable(tf.fill([3], 2), true, 'head.w');
    const block = tf.variable(tf.fill([3], 2), true, 'blocks.0.w');
    const norm = tf.variable(tf.fill([3], 2), true, 'blocks.0.norm');
    const opt = new AdamW(
      [
        { name: 'head', params: [head], lr: 1e-5 },
        { name: 'backbone', params: [block], lr: 1e-6 },
        { name: 'no_decay', params: [norm], lr: 1e-6, weightDecay: 0 },
      ],
      { weightDecay: 0.1 },
    );
    expect(opt.groups.map((g) => [g.name, g.lr, g.weightDecay, g.params])).toEqual([
      ['head', 1e-5, 0.1, ['head.w']],
      ['backbone', 1e-6, 0.1, ['blocks.0.w']],
      ['no_decay', 1e-6, 0, ['blocks.0.norm']],
    ]);
    const g = () => ({ 'head.w': tf.ones([3]), 'blocks.0.w': tf.ones([3]), 'blocks.0.norm': tf.ones([3]) });
    stepWith(opt, g());
    // One step: p = p * (1 - lr * wd) - lr (sign of the gradient), computed in float32.
    const f = Math.fround;
    expect(head.dataSync()[0]).toBeCloseTo(f(2 * (1 - 1e-6)) - 1e-5, 7);
    expect(block.dataSync()[0]).toBeCloseTo(f(2 * (1 - 1e-7)) - 1e-6, 7);
    expect(norm.dataSync()[0]).toBeCloseTo(2 - 1e-6, 7);

    opt.setLearningRate(0, 'head');
    opt.setLearningRate(3e-6, 2);
    expect(opt.getLearningRate('head')).toBe(0);
    expect(opt.getLearningRate(1)).toBe(1e-6);
    expect(opt.getLearningRate('no_decay')).toBe(3e-6);
    const headBefore = Array.from(head.dataSync());
    stepWith(opt, g());
    expect(Array.from(head.dataSync())).toEqual(headBefore); // lr 0: neither decay nor update
    opt.setLearningRate(5e-6);
    expect(opt.groups.map((x) => x.lr)).toEqual([5e-6, 5e-6, 5e-6]);
    opt.dispose();
  });

  it('with weightDecay 0 is Adam (matches tf.train.adam)', () => {
    const a = tf.variable(
      tf.tensor2d([
        [0.5, -1.2, 2.0],
        [1.5, -0.3, 0.8],
      ]),
      true,
      'adamw.p',
    );
    const b = tf.variable(
      tf.tensor2d([
        [0.5, -1.2, 2.0],
        [1.5, -0.3, 0.8],
      ]),
      true,
      'adam.p',
    );
    const ours = new AdamW([a], { lr: 1e-2, weightDecay: 0, eps: 1e-8 });
    const theirs = tf.train.adam(1e-2, 0.9, 0.999, 1e-8);
    const loss = (p: tf.Tensor) => tf.sum(tf.mul(tf.sin(tf.mul(p, 3)), tf.square(p)));
    let worst = 0;
    for (let i = 0; i < 30; i++) {
      const ga = tf.variableGrads(() => loss(a) as tf.Scalar, [a]);
      stepWith(ours, ga.grads);
      ga.value.dispose();
      theirs.minimize(() => loss(b) as tf.Scalar, false, [b]);
      worst = Math.max(worst, maxRelErr(a.dataSync(), Array.from(b.dataSync())));
    }
    expect(worst).toBeLessThan(2e-5); // different float32 operation orders, same algorithm
    ours.dispose();
    theirs.dispose();
  });

  it('decays decoupled from the gradient: with a zero gradient only p *= 1 - lr * wd acts', () => {
    // g = 0: m = v = 0, the update is 0 / (0 + eps) = 0; only p *= 1 - lr*wd remains, every step.
    const p = tf.variable(tf.fill([4], 3), true, 'decay.p');
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5 });
    for (let i = 0; i < 5; i++) stepWith(opt, { 'decay.p': tf.zeros([4]) });
    let expected = 3;
    for (let i = 0; i < 5; i++) expected = Math.fround(expected * Math.fround(1 - 0.05));
    expect(Array.from(p.dataSync())).toEqual([expected, expected, expected, expected]);
    opt.dispose();
  });

  it('skips parameters without a gradient (no decay, no step count), as torch does for grad None', () => {
    const params = makeParams('skip.');
    const opt = new AdamW(Object.values(params), { weightDecay: 0.3 });
    const cBefore = Array.from((params.c as tf.Variable).dataSync());
    const r = stepWith(opt, {
      'skip.a': tf.ones(fixture.shapes.a as number[]),
      'skip.b': tf.ones(fixture.shapes.b as number[]),
      'skip.c': undefined as unknown as tf.Tensor,
    });
    expect(r).toEqual({ applied: true, updated: ['skip.a', 'skip.b'], nonFinite: [] });
    expect(Array.from((params.c as tf.Variable).dataSync())).toEqual(cBefore);
    const state = opt.stateDict();
    expect(Object.keys(state).sort()).toEqual(
      [
        ADAMW_STEP_COUNT_KEY,
        'skip.a.exp_avg',
        'skip.a.exp_avg_sq',
        'skip.a.step',
        'skip.b.exp_avg',
        'skip.b.exp_avg_sq',
        'skip.b.step',
      ].sort(),
    );
    tf.dispose(Object.values(state));
    opt.dispose();
  });

  it('round-trips its state: save at step 40, load into a new optimizer, continue = uninterrupted run', () => {
    const run = fixture.runs.amsgrad;
    const straight = makeParams('u.');
    const optU = torchOptimizer(run, straight);
    for (let i = 0; i < 100; i++) stepWith(optU, recordedGrads(run, i, 'u.'));

    const first = makeParams('r.');
    const opt1 = torchOptimizer(run, first);
    for (let i = 0; i < 40; i++) stepWith(opt1, recordedGrads(run, i, 'r.'));
    const saved = opt1.stateDict();
    const savedParams = Object.fromEntries(NAMES.map((n) => [n, tf.clone(first[n] as tf.Variable)]));
    opt1.dispose();
    for (const v of Object.values(first)) v.dispose();
    const optUAfter = Object.fromEntries(
      NAMES.map((n) => [n, Array.from((straight[n] as tf.Variable).dataSync())]),
    );

    expect(Object.keys(saved).sort()).toEqual(
      [
        ADAMW_STEP_COUNT_KEY,
        ...NAMES.flatMap((n) =>
          ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step'].map((f) => `r.${n}.${f}`),
        ),
      ].sort(),
    );
    expect(saved['r.c.step']?.dataSync()[0]).toBe(32); // c had no gradient on 8 of the first 40 steps
    expect(saved[ADAMW_STEP_COUNT_KEY]?.dataSync()[0]).toBe(40);

    const resumed = Object.fromEntries(
      NAMES.map((n) => [n, tf.variable(savedParams[n] as tf.Tensor, true, `r.${n}`)]),
    );
    const opt2 = torchOptimizer(run, resumed);
    opt2.loadStateDict(saved);
    tf.dispose(Object.values(saved)); // loadStateDict copied them
    tf.dispose(Object.values(savedParams));
    expect(opt2.stepCount).toBe(40);
    for (let i = 40; i < 100; i++) stepWith(opt2, recordedGrads(run, i, 'r.'));
    expect(opt2.stepCount).toBe(100);
    for (const n of NAMES) {
      expect(Array.from((resumed[n] as tf.Variable).dataSync())).toEqual(optUAfter[n]);
    }
    opt2.dispose();
    optU.dispose();
  });

  it('rejects bad input with errors naming the parameter', () => {
    const w = tf.variable(tf.ones([4, 3]), true, 'w');
    const b = tf.variable(tf.ones([3]), true, 'b');
    const opt = new AdamW([{ name: 'head', params: [w, b] }]);
    const g = tf.ones([3, 4]);
    expect(() => opt.step({ w: g })).toThrow(InvalidArgumentError);
    expect(() => opt.step({ w: g })).toThrow(
      /parameter 'w' has shape \[3, 4\] but the parameter has shape \[4, 3\]/,
    );
    expect(() => opt.step({ typo: tf.ones([3]) })).toThrow(/gradients for 'typo', which are not parameters/);
    expect(() => opt.step({ b: tf.ones([3], 'int32') })).toThrow(/'b' is int32; expected float32/);
    expect(() => opt.step({ b: 'x' as unknown as tf.Tensor })).toThrow(/gradient for 'b' is not a tensor/);
    expect(() => opt.setLearningRate(Number.NaN)).toThrow(/lr of group 0 \('head'\) \[parameters 'w', 'b'\]/);
    expect(() => opt.setLearningRate(Number.POSITIVE_INFINITY, 'head')).toThrow(InvalidArgumentError);
    expect(() => opt.setLearningRate(-1, 0)).toThrow(InvalidArgumentError);
    expect(() => opt.setLearningRate(1e-3, 'nope')).toThrow(/no parameter group "nope"/);
    expect(opt.getLearningRate()).toBe(1e-3);
    expect(opt.stepCount).toBe(0);
    expect(Array.from(w.dataSync())).toEqual(new Array(12).fill(1));

    expect(() => new AdamW([w], { lr: Number.NaN })).toThrow(/lr: expected a finite number/);
    expect(() => new AdamW([w], { betas: [0.9, 1] })).toThrow(/betas\[1\]/);
    expect(() => new AdamW([w], { eps: -1 })).toThrow(/eps/);
    expect(() => new AdamW([w], { weightDecay: -0.1 })).toThrow(/weightDecay/);
    expect(() => new AdamW([{ params: [w] }, { params: [w] }])).toThrow(/'w' appears twice/);
    expect(() => new AdamW([])).toThrow(/non-empty/);
    expect(() => new AdamW([{ params: [] }])).toThrow(/has no parameters/);
    const i32 = tf.variable(tf.ones([2], 'int32'), true, 'i32');
    expect(() => new AdamW([i32])).toThrow(/'i32' is int32/);

    const lenient = new AdamW([w], { unknownGradients: 'ignore' });
    expect(lenient.step({ w: tf.zeros([4, 3]), other: g }).updated).toEqual(['w']);
    lenient.dispose();
    g.dispose();
    opt.dispose();
    expect(() => opt.step({})).toThrow(PrflError);
  });

  it('handles non-finite gradients: throw (default), skip, or propagate', () => {
    const w = tf.variable(tf.ones([3]), true, 'nf.w');
    const b = tf.variable(tf.ones([2]), true, 'nf.b');
    const bad = () => ({
      'nf.w': tf.tensor1d([1, Number.NaN, 0]),
      'nf.b': tf.tensor1d([Number.POSITIVE_INFINITY, 1]),
    });

    const strict = new AdamW([w, b]);
    const grads = bad();
    let caught: unknown;
    try {
      strict.step(grads);
    } catch (e) {
      caught = e;
    }
    tf.dispose(Object.values(grads));
    expect(caught).toBeInstanceOf(NonFiniteGradientError);
    expect((caught as NonFiniteGradientError).names).toEqual(['nf.w', 'nf.b']);
    expect(String(caught)).toMatch(/'nf.w', 'nf.b'; nothing was updated/);
    expect(strict.stepCount).toBe(0);
    expect(Array.from(w.dataSync())).toEqual([1, 1, 1]);
    strict.dispose();

    const skipping = new AdamW([w, b], { nonFinite: 'skip' });
    stepWith(skipping, { 'nf.w': tf.ones([3]), 'nf.b': tf.ones([2]) });
    const afterOne = Array.from(w.dataSync());
    expect(stepWith(skipping, bad())).toEqual({ applied: false, updated: [], nonFinite: ['nf.w', 'nf.b'] });
    expect(skipping.stepCount).toBe(1);
    expect(skipping.skippedSteps).toBe(1);
    expect(Array.from(w.dataSync())).toEqual(afterOne);
    const st = skipping.stateDict();
    expect(st['nf.w.step']?.dataSync()[0]).toBe(1);
    tf.dispose(Object.values(st));
    skipping.dispose();

    const torchLike = new AdamW([w], { nonFinite: 'propagate', unknownGradients: 'ignore' });
    expect(stepWith(torchLike, bad()).applied).toBe(true);
    expect(Number.isNaN(w.dataSync()[1])).toBe(true);
    torchLike.dispose();
  });

  it('validates loadStateDict with clear errors and changes nothing on failure', () => {
    const w = tf.variable(tf.ones([2, 2]), true, 'ls.w');
    const b = tf.variable(tf.ones([2]), true, 'ls.b');
    const opt = new AdamW([w, b]);
    stepWith(opt, { 'ls.w': tf.ones([2, 2]), 'ls.b': tf.ones([2]) });
    const good = opt.stateDict();
    const without = (key: string) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== key));
    const wrongShape = tf.zeros([4]);
    const amsKey = tf.zeros([2]);
    const fraction = tf.scalar(1.5);
    expect(() => opt.loadStateDict({ ...good, 'ls.x.exp_avg': wrongShape })).toThrow(
      /unknown keys 'ls.x.exp_avg'/,
    );
    expect(() => opt.loadStateDict(without('ls.w.exp_avg_sq'))).toThrow(
      /parameter 'ls.w' has .* but lacks 'ls.w.exp_avg_sq'/,
    );
    expect(() => opt.loadStateDict(without(ADAMW_STEP_COUNT_KEY))).toThrow(/missing 'optimizer.step_count'/);
    expect(() => opt.loadStateDict({ ...good, 'ls.w.exp_avg': wrongShape })).toThrow(
      /'ls.w.exp_avg' has shape \[4\] but parameter 'ls.w' has shape \[2, 2\]/,
    );
    expect(() => opt.loadStateDict({ ...good, 'ls.b.max_exp_avg_sq': amsKey })).toThrow(
      /does not use amsgrad/,
    );
    expect(() => opt.loadStateDict({ ...good, 'ls.b.step': fraction })).toThrow(
      /'ls.b.step' must be an integer >= 1/,
    );
    // Still the original state.
    const again = opt.stateDict();
    for (const [k, t] of Object.entries(good))
      expect(Array.from(again[k]?.dataSync() ?? [])).toEqual(Array.from(t.dataSync()));
    // Loading a state without entries for a parameter clears that parameter's state (it starts fresh).
    opt.loadStateDict(Object.fromEntries(Object.entries(good).filter(([k]) => !k.startsWith('ls.b.'))));
    const partial = opt.stateDict();
    expect(Object.keys(partial).filter((k) => k.startsWith('ls.b.'))).toEqual([]);
    tf.dispose([
      ...Object.values(good),
      ...Object.values(again),
      ...Object.values(partial),
      wrongShape,
      amsKey,
      fraction,
    ]);
    opt.dispose();
  });

  it("holds one parameter's temporaries at a time: the peak does not grow with the parameter count", () => {
    // 16 parameters of 64 KiB each: a step that kept every parameter's temporaries alive until the end
    // would peak at 16 x 64 KiB x (its 14 temporaries); one scope per parameter peaks near one's.
    const params = Array.from({ length: 16 }, (_, i) =>
      tf.variable(tf.randomNormal([128, 128], 0, 1, 'float32', i), true, `peak.p${i}`),
    );
    const grads = Object.fromEntries(
      params.map((p, i) => [p.name, tf.randomNormal([128, 128], 0, 1, 'float32', 100 + i)]),
    );
    const opt = new AdamW([{ params }], { lr: 1e-3 });
    opt.step(grads); // the first step creates the moments (2 x 16 x 64 KiB)
    const one = 128 * 128 * 4;
    const { peakBytes } = measureMemory(() => opt.step(grads));
    // One parameter's update makes about 14 full-size temporaries; all 16 parameters' at once made 224.
    expect(peakBytes).toBeLessThan(20 * one);
    opt.dispose();
    tf.dispose([...params, ...Object.values(grads)]);
  });

  it('leaks no tensors over 20 steps (variableGrads + step, amsgrad and weight decay)', () => {
    const w = tf.variable(tf.randomNormal([8, 4], 0, 1, 'float32', 1), true, 'leak.w');
    const b = tf.variable(tf.zeros([4]), true, 'leak.b');
    const x = tf.randomNormal([16, 8], 0, 1, 'float32', 2);
    const opt = new AdamW(
      [
        { params: [w], amsgrad: true },
        { params: [b], weightDecay: 0 },
      ],
      { lr: 1e-2 },
    );
    const loss = () => tf.mean(tf.square(tf.add(tf.matMul(x, w), b))) as tf.Scalar;
    const counts: number[] = [];
    let first = 0;
    for (let i = 0; i < 20; i++) {
      const { value, grads } = tf.variableGrads(loss, [w, b]);
      if (i === 0) first = value.dataSync()[0] as number;
      value.dispose();
      stepWith(opt, grads);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    const last = tf.tidy(() => loss().dataSync()[0] as number);
    expect(last).toBeLessThan(first);
    const before = tf.memory().numTensors;
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before - 5); // m, v and max v of w; m, v of b
    x.dispose();
  });
});

afterAll(() => {
  // The measured agreement with PyTorch, for the record.
  console.log(`AdamW vs torch ${fixture.torch} (float32):\n  ${measured.join('\n  ')}`);
});
