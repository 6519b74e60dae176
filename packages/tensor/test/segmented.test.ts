import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  InvalidArgumentError,
  initBackend,
  maxAbsDiff,
  shutdownBackend,
} from '../src/index.js';
import { assertNoLeak, formatBytes, measureMemory } from '../src/memory.js';
import {
  backwardThroughSegments,
  type Segment,
  SegmentCheckpoints,
  segmentedForward,
  segmentedGradients,
} from '../src/segmented.js';

/**
 * A pre-norm residual MLP chain, like a stack of transformer blocks without attention:
 * x + tanh(gelu(LN(x) W1 + b1 + cond) W2) * shared * frozen. `cond` is a closed-over tensor (no
 * gradient), `shared` a variable every block reads (its gradient is a sum), `frozen` a non-trainable
 * variable, `head` a variable only the loss reads.
 */
interface Chain {
  segments: Segment[];
  loss: (out: tf.Tensor) => tf.Scalar;
  trainable: tf.Variable[];
  frozen: tf.Variable;
  cond: tf.Tensor;
  target: tf.Tensor;
  dispose(): void;
}

let chainCount = 0;

function makeChain(options: { width: number; hidden: number; depth: number; outputs?: number }): Chain {
  const { width, hidden, depth } = options;
  const outputs = options.outputs ?? 8;
  const tag = `chain${chainCount++}`;
  let seed = 1;
  const v = (shape: number[], scale: number, name: string, trainable = true) =>
    tf.variable(
      tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed++), scale)),
      trainable,
      `${tag}/${name}`,
    );
  const shared = tf.variable(tf.scalar(0.9), true, `${tag}/shared`);
  const frozen = v([width], 0.5, 'frozen', false);
  const cond = tf.tidy(() => tf.mul(tf.randomNormal([1, hidden], 0, 1, 'float32', 99), 0.1));
  const blocks = Array.from({ length: depth }, (_, i) => ({
    gamma: tf.variable(
      tf.tidy(() => tf.add(tf.ones([width]), tf.randomNormal([width], 0, 0.1, 'float32', seed++))),
      true,
      `${tag}/b${i}/gamma`,
    ),
    beta: v([width], 0.1, `b${i}/beta`),
    w1: v([width, hidden], 1 / Math.sqrt(width), `b${i}/w1`),
    b1: v([hidden], 0.1, `b${i}/b1`),
    w2: v([hidden, width], 1 / Math.sqrt(hidden), `b${i}/w2`),
  }));
  const head = v([width, outputs], 1 / Math.sqrt(width), 'head');
  const target = tf.tidy(() => tf.randomNormal([1, outputs], 0, 1, 'float32', 7));
  const segments: Segment[] = blocks.map((b) => (x: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    const n = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), b.gamma), b.beta);
    const h = tf.add(tf.add(tf.matMul(n, b.w1), b.b1), cond);
    const a = tf.mul(h, tf.sigmoid(tf.mul(h, 1.702)));
    const t = tf.mul(tf.mul(tf.tanh(tf.matMul(a, b.w2)), shared), frozen);
    return tf.add(x, t);
  });
  const loss = (out: tf.Tensor) => tf.mean(tf.square(tf.sub(tf.matMul(out, head), target))) as tf.Scalar;
  const trainable = [shared, head, ...blocks.flatMap((b) => [b.gamma, b.beta, b.w1, b.b1, b.w2])];
  return {
    segments,
    loss,
    trainable,
    frozen,
    cond,
    target,
    dispose() {
      for (const t of [...trainable, frozen]) t.dispose();
      cond.dispose();
      target.dispose();
    },
  };
}

function plainGradients(chain: Chain, x: tf.Tensor) {
  const run = (input: tf.Tensor) => chain.loss(chain.segments.reduce((h, s) => s(h), input));
  const { value, grads } = tf.variableGrads(() => run(x), chain.trainable);
  const [dx] = tf.grads((input: tf.Tensor) => run(input))([x]);
  return { value, grads: grads as Record<string, tf.Tensor>, dx: dx as tf.Tensor };
}

function maxAbs(a: Float32Array | Int32Array | Uint8Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function expectClose(a: tf.Tensor, b: tf.Tensor, what: string): number {
  expect(a.shape, what).toEqual(b.shape);
  const av = a.dataSync() as Float32Array;
  const bv = b.dataSync() as Float32Array;
  const d = maxAbsDiff(av, bv);
  expect(d, `${what}: max |diff| ${d}`).toBeLessThanOrEqual(1e-6 * Math.max(1, maxAbs(bv)));
  return d;
}

describe.each(backendsUnderTest())('segmented backprop on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('matches the plain tape (variables, shared and loss-only variables, input gradient)', () => {
    const chain = makeChain({ width: 16, hidden: 32, depth: 7 });
    const x = tf.randomNormal([4, 16], 0, 1, 'float32', 3);
    const plain = plainGradients(chain, x);
    const seg = segmentedGradients({
      segments: chain.segments,
      input: x,
      loss: chain.loss,
      variables: [...chain.trainable, chain.frozen],
      inputGradient: true,
    });
    expect(seg.value.rank).toBe(0);
    expect(seg.value.dataSync()[0]).toBe(plain.value.dataSync()[0]);
    expect(Object.keys(seg.grads).sort()).toEqual(Object.keys(plain.grads).sort());
    expect(Object.keys(seg.grads)).not.toContain(chain.frozen.name);
    expect(Object.keys(seg.grads)).toHaveLength(chain.trainable.length);
    let worst = 0;
    for (const [name, g] of Object.entries(plain.grads)) {
      worst = Math.max(worst, expectClose(seg.grads[name] as tf.Tensor, g, name));
    }
    expectClose(seg.inputGrad as tf.Tensor, plain.dx, 'input gradient');
    // Not a loose match: the same kernels run on the same values.
    expect(worst).toBeLessThan(1e-6);
    console.log(`[${backend}] max |segmented - plain| over all gradients: ${worst}`);
    tf.dispose([plain.value, plain.dx, seg.value, seg.inputGrad as tf.Tensor]);
    tf.dispose(Object.values(plain.grads));
    tf.dispose(Object.values(seg.grads));
    x.dispose();
    chain.dispose();
  });

  it('defaults to every trainable variable and leaves non-trainable ones and closed-over tensors alone', () => {
    const chain = makeChain({ width: 8, hidden: 8, depth: 3 });
    const x = tf.randomNormal([2, 8], 0, 1, 'float32', 5);
    const before = tf.memory().numTensors;
    const seg = segmentedGradients({ segments: chain.segments, input: x, loss: chain.loss });
    expect(Object.keys(seg.grads).sort()).toEqual(chain.trainable.map((v) => v.name).sort());
    expect(seg.inputGrad).toBeUndefined();
    expect(chain.cond.isDisposed).toBe(false);
    expect(x.isDisposed).toBe(false);
    // Only the value and one gradient per trainable variable survive.
    expect(tf.memory().numTensors - before).toBe(1 + chain.trainable.length);
    seg.value.dispose();
    tf.dispose(Object.values(seg.grads));
    x.dispose();
    chain.dispose();
  });

  it('backpropagates an external upstream gradient (a reward model feeding a generator chain)', () => {
    const chain = makeChain({ width: 12, hidden: 24, depth: 4 });
    const rewardChain = makeChain({ width: 12, hidden: 12, depth: 2 });
    const generatorVars = chain.trainable;
    const x = tf.randomNormal([3, 12], 0, 1, 'float32', 11);
    const reward = (out: tf.Tensor) => rewardChain.loss(rewardChain.segments.reduce((h, s) => s(h), out));

    // Plain: one tape over generator and frozen reward.
    const plain = tf.variableGrads(() => reward(chain.segments.reduce((h, s) => s(h), x)), generatorVars);

    // Segmented: generator forward with checkpoints, reward gradient w.r.t. its input, then backward.
    const ck = segmentedForward(chain.segments, x);
    expect(ck).toBeInstanceOf(SegmentCheckpoints);
    expect(ck.numSegments).toBe(4);
    expect(ck.savedBytes).toBe(3 * 3 * 12 * 4);
    const r = segmentedGradients({
      segments: rewardChain.segments,
      input: ck.output,
      loss: rewardChain.loss,
      variables: [],
      inputGradient: true,
    });
    expect(Object.keys(r.grads)).toEqual([]);
    const back = backwardThroughSegments(ck, r.inputGrad as tf.Tensor, { variables: generatorVars });
    expect(ck.consumed).toBe(true);
    expect(ck.output.isDisposed).toBe(false);
    expect(r.value.dataSync()[0]).toBe(plain.value.dataSync()[0]);
    for (const [name, g] of Object.entries(plain.grads))
      expectClose(back.grads[name] as tf.Tensor, g as tf.Tensor, name);
    expect(() => backwardThroughSegments(ck, r.inputGrad as tf.Tensor)).toThrow(/already consumed/);
    tf.dispose([plain.value, r.value, r.inputGrad as tf.Tensor, ck.output, x]);
    tf.dispose(Object.values(plain.grads) as tf.Tensor[]);
    tf.dispose(Object.values(back.grads));
    chain.dispose();
    rewardChain.dispose();
  });

  it('handles list-valued chains (two streams, one passed through) like the plain tape', () => {
    const w = tf.variable(tf.randomNormal([6, 6], 0, 0.4, 'float32', 21), true, `${backend}/two/w`);
    const u = tf.variable(tf.randomNormal([6, 6], 0, 0.4, 'float32', 22), true, `${backend}/two/u`);
    const segments: Segment<tf.Tensor[]>[] = [
      ([a, b]) => [tf.tanh(tf.matMul(a as tf.Tensor, w)), b as tf.Tensor], // b passes through untouched
      ([a, b]) => [
        tf.add(a as tf.Tensor, tf.matMul(b as tf.Tensor, u)),
        tf.sigmoid(tf.matMul(a as tf.Tensor, u)),
      ],
      ([a, b]) => [tf.mul(a as tf.Tensor, b as tf.Tensor), tf.tanh(b as tf.Tensor)],
    ];
    const loss = ([a, b]: tf.Tensor[]) =>
      tf.add(tf.sum(tf.square(a as tf.Tensor)), tf.mean(b as tf.Tensor)) as tf.Scalar;
    const a0 = tf.randomNormal([2, 6], 0, 1, 'float32', 23);
    const b0 = tf.randomNormal([2, 6], 0, 1, 'float32', 24);
    const run = (a: tf.Tensor, b: tf.Tensor) => loss(segments.reduce((s, f) => f(s), [a, b]));
    const plain = tf.variableGrads(() => run(a0, b0), [w, u]);
    const [da, db] = tf.grads((a: tf.Tensor, b: tf.Tensor) => run(a, b))([a0, b0]);
    const seg = segmentedGradients({
      segments,
      input: [a0, b0],
      loss,
      variables: [w, u],
      inputGradient: true,
    });
    expectClose(seg.grads[w.name] as tf.Tensor, plain.grads[w.name] as tf.Tensor, 'w');
    expectClose(seg.grads[u.name] as tf.Tensor, plain.grads[u.name] as tf.Tensor, 'u');
    const [sa, sb] = seg.inputGrad as tf.Tensor[];
    expectClose(sa as tf.Tensor, da as tf.Tensor, 'input a');
    expectClose(sb as tf.Tensor, db as tf.Tensor, 'input b');
    expect(a0.isDisposed || b0.isDisposed).toBe(false);
    tf.dispose([
      plain.value,
      seg.value,
      da as tf.Tensor,
      db as tf.Tensor,
      sa as tf.Tensor,
      sb as tf.Tensor,
      a0,
      b0,
      w,
      u,
    ]);
    tf.dispose(Object.values(plain.grads) as tf.Tensor[]);
    tf.dispose(Object.values(seg.grads));
  });

  it('survives identity segments and segments that return closed-over tensors', () => {
    const w = tf.variable(tf.tensor2d([[2]]), true, `${backend}/id/w`);
    const c = tf.tensor2d([[3]]);
    const x = tf.tensor2d([[1.5]]);
    // y = (x w) -> identity -> + c ; loss = y^2  => dL/dw = 2 y x, dL/dx = 2 y w
    const segments: Segment[] = [(t) => tf.matMul(t, w), (t) => t, (t) => tf.add(t, c), (t) => t];
    const seg = segmentedGradients({
      segments,
      input: x,
      loss: (o) => tf.sum(tf.square(o)) as tf.Scalar,
      variables: [w],
      inputGradient: true,
    });
    const y = 1.5 * 2 + 3;
    expect(seg.grads[w.name]?.dataSync()[0]).toBeCloseTo(2 * y * 1.5, 5);
    expect(seg.inputGrad?.dataSync()[0]).toBeCloseTo(2 * y * 2, 5);
    // The pure pass-through chain: the gradient is the loss's own.
    const pass = segmentedGradients({
      segments: [(t) => t, () => c],
      input: x,
      loss: (o) => tf.sum(tf.mul(o, 2)) as tf.Scalar,
      variables: [w],
      inputGradient: true,
    });
    // A chain that ends in a scalar, with the loss returning it unchanged.
    const before = tf.memory().numTensors;
    const scalarChain = segmentedGradients<tf.Tensor>({
      segments: [(t) => tf.sum(tf.matMul(t as tf.Tensor2D, w))],
      input: x,
      loss: (o) => o as tf.Scalar,
      variables: [w],
    });
    expect(scalarChain.value.dataSync()[0]).toBe(3);
    expect(scalarChain.grads[w.name]?.dataSync()[0]).toBe(1.5);
    tf.dispose([scalarChain.value, scalarChain.grads]);
    expect(tf.memory().numTensors).toBe(before);
    expect(c.isDisposed).toBe(false);
    expect(x.isDisposed).toBe(false);
    expect(pass.grads).toEqual({});
    expect(pass.inputGrad?.dataSync()[0]).toBe(0); // the chain's output does not depend on x
    tf.dispose([seg.value, seg.inputGrad as tf.Tensor, pass.value, pass.inputGrad as tf.Tensor, w, c, x]);
    tf.dispose(Object.values(seg.grads));
  });

  it('leaks no tensors across repeated calls, including failing ones', async () => {
    const chain = makeChain({ width: 8, hidden: 16, depth: 4 });
    const x = tf.randomNormal([2, 8], 0, 1, 'float32', 13);
    await assertNoLeak(
      () => {
        const r = segmentedGradients({
          segments: chain.segments,
          input: x,
          loss: chain.loss,
          inputGradient: true,
        });
        return [r.value, r.inputGrad, r.grads];
      },
      { iterations: 3, label: 'segmentedGradients' },
    );
    await assertNoLeak(
      () => {
        const ck = segmentedForward(chain.segments, x);
        const dy = tf.onesLike(ck.output);
        const r = backwardThroughSegments(ck, dy, { inputGradient: true });
        return [r.grads, r.inputGrad, dy, ck.output];
      },
      { label: 'segmentedForward + backwardThroughSegments' },
    );
    await assertNoLeak(
      () => {
        const ck = segmentedForward(chain.segments, x);
        ck.dispose(); // frees the inner boundaries; the output stays the caller's
        expect(ck.output.isDisposed).toBe(false);
        return ck.output;
      },
      { label: 'forward then dispose' },
    );
    const bad = [...chain.segments.slice(0, 2), () => 3 as unknown as tf.Tensor, ...chain.segments.slice(2)];
    await assertNoLeak(
      () => {
        expect(() => segmentedGradients({ segments: bad, input: x, loss: chain.loss })).toThrow(
          InvalidArgumentError,
        );
        expect(() =>
          segmentedGradients({ segments: chain.segments, input: x, loss: (o) => tf.sum(o, 0) as tf.Scalar }),
        ).toThrow(/loss: expected a scalar/);
        expect(() =>
          segmentedGradients({ segments: chain.segments, input: x, loss: () => 1 as unknown as tf.Scalar }),
        ).toThrow(/loss: expected it to return a scalar tf.Tensor, got a value of type number/);
        const throwing: Segment[] = [
          ...chain.segments,
          (t) => {
            const y = tf.mul(t, 2);
            if (tf.engine().state.gradientDepth > 0) throw new Error('boom in backward');
            return y;
          },
        ];
        expect(() => segmentedGradients({ segments: throwing, input: x, loss: chain.loss })).toThrow(
          'boom in backward',
        );
      },
      { label: 'error paths' },
    );
    x.dispose();
    chain.dispose();
  });

  it('rejects bad chains with the segment index', () => {
    const x = tf.ones([2, 3]);
    const loss = (o: tf.Tensor) => tf.sum(o) as tf.Scalar;
    expect(() => segmentedGradients({ segments: [], input: x, loss })).toThrow(
      /segments: expected a non-empty array of functions, got an empty array/,
    );
    expect(() => segmentedForward([], x)).toThrow(InvalidArgumentError);
    expect(() =>
      segmentedGradients({ segments: [(t) => tf.mul(t, 2)], input: x, loss, variables: [x as tf.Variable] }),
    ).toThrow(/variables\[0\]: expected a tf.Variable, got a float32 tensor of shape \[2, 3\]/);
    expect(() =>
      segmentedGradients({
        segments: [(t) => tf.mul(t, 2), () => 'no' as unknown as tf.Tensor],
        input: x,
        loss,
      }),
    ).toThrow(/segment 1: expected it to return a tf.Tensor, got a value of type string/);
    expect(() =>
      segmentedGradients({ segments: [(t) => tf.mul(t, 2), (t) => tf.cast(t, 'int32')], input: x, loss }),
    ).toThrow(/segment 1: returned a int32 tensor; segment outputs carry gradients and must be float32/);
    expect(() =>
      segmentedGradients({ segments: [(t) => tf.mul(t, 2), 5 as unknown as Segment], input: x, loss }),
    ).toThrow(/segment 1: expected a function/);
    expect(() =>
      segmentedGradients({
        segments: [(t) => tf.mul(t, 2)],
        input: x,
        loss: (o) => tf.sum(o, 1) as tf.Scalar,
      }),
    ).toThrow(/loss: expected a scalar \(rank 0\) from the output of segment 0, got shape \[2\]/);
    // A segment that changes its output shape between the forward pass and the recompute.
    let calls = 0;
    const flaky: Segment = (t) => (calls++ === 0 ? tf.mul(t, 2) : tf.tile(t, [1, 2]));
    expect(() =>
      segmentedGradients({
        segments: [(t) => tf.mul(t, 3), flaky, (t) => tf.mul(t, 1)],
        input: x,
        loss,
        inputGradient: true,
      }),
    ).toThrow(
      /segment 1: returned \[2, 6\] when re-run in the backward pass but \[2, 3\] in the forward pass/,
    );
    // List chains keep their length.
    expect(() => segmentedForward<tf.Tensor[]>([([a]) => [a as tf.Tensor]], [x, x])).toThrow(
      /segment 0: expected it to return an array of 2 tf.Tensors/,
    );
    // Upstream gradients must match the output.
    const ck = segmentedForward([(t: tf.Tensor) => tf.mul(t, 2), (t: tf.Tensor) => tf.reshape(t, [3, 2])], x);
    const wrong = tf.ones([2, 3]);
    expect(() => backwardThroughSegments(ck, wrong)).toThrow(
      /dy: expected a float32 tensor of the output's shape \[3, 2\], got float32 \[2, 3\]/,
    );
    expect(ck.consumed).toBe(false);
    const intInput = tf.tensor1d([1, 2], 'int32');
    expect(() =>
      segmentedGradients({
        segments: [(t) => tf.cast(t, 'float32')],
        input: intInput,
        loss,
        inputGradient: true,
      }),
    ).toThrow(/inputGradient: the input is int32/);
    // ...but an int input is fine when its gradient is not wanted.
    const ok = segmentedGradients({
      segments: [(t) => tf.cast(t, 'float32')],
      input: intInput,
      loss,
      variables: [],
    });
    expect(ok.value.dataSync()[0]).toBe(3);
    tf.dispose([x, wrong, intInput, ok.value, ck.output]);
    ck.dispose();
  });

  it('needs far less peak memory than the plain tape on a deep chain', () => {
    const chain = makeChain({ width: 256, hidden: 256, depth: 8 });
    const x = tf.randomNormal([64, 256], 0, 1, 'float32', 17);
    const plain = measureMemory(() => {
      const { value, grads } = tf.variableGrads(
        () => chain.loss(chain.segments.reduce((h, s) => s(h), x)),
        chain.trainable,
      );
      return { value, grads: grads as Record<string, tf.Tensor> };
    });
    const seg = measureMemory(() =>
      segmentedGradients({
        segments: chain.segments,
        input: x,
        loss: chain.loss,
        variables: chain.trainable,
      }),
    );
    // Both end holding the same result: the loss and one gradient per variable.
    expect(seg.retainedBytes).toBe(plain.retainedBytes);
    expect(seg.retainedTensors).toBe(plain.retainedTensors);
    const gradBytes = seg.retainedBytes;
    console.log(
      `[${backend}] 8 blocks, width 256, batch 64: peak above start plain ${formatBytes(plain.peakBytes)} (buffers ${formatBytes(plain.peakBufferBytes)}), segmented ${formatBytes(seg.peakBytes)} (buffers ${formatBytes(seg.peakBufferBytes)}); gradients alone ${formatBytes(gradBytes)}`,
    );
    expect(seg.peakBytes).toBeLessThan(0.7 * plain.peakBytes);
    expect(seg.peakBufferBytes).toBeLessThan(0.7 * plain.peakBufferBytes);
    // Beyond the gradients themselves (the same in both), the activation memory shrinks far more.
    expect(seg.peakBufferBytes - gradBytes).toBeLessThan(0.35 * (plain.peakBufferBytes - gradBytes));
    for (const [name, g] of Object.entries(plain.result.grads)) {
      expectClose(seg.result.grads[name] as tf.Tensor, g, name);
    }
    tf.dispose([plain.result, seg.result.value, seg.result.grads, x]);
    chain.dispose();
  });
});
