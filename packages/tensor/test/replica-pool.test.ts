/**
 * ReplicaPool (src/parallel): worker threads build replicas from a recipe and take the main thread's
 * weights; tasks see the weights published before them; per-shard gradients summed in shard order equal
 * the whole batch's; bad input is refused by name. Runs the built worker (turbo builds before tests).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Generator,
  InvalidArgumentError,
  initBackend,
  type FlatGradients,
  packTensor,
  SharedWeights,
  shardRows,
  sliceRows,
  sumFlatGradients,
} from '../src/index.js';
import { ParallelGroup, ReplicaPool } from '../src/parallel/index.js';

const FIXTURE = pathToFileURL(new URL('./fixtures/linear-replica.mjs', import.meta.url).pathname).href;
const task = (name: string) => ({ module: FIXTURE, export: name });

describe('shardRows', () => {
  it('splits rows into contiguous, nearly equal, non-empty shards', () => {
    expect(shardRows(16, 2)).toEqual([
      [0, 8],
      [8, 16],
    ]);
    expect(shardRows(5, 2)).toEqual([
      [0, 3],
      [3, 5],
    ]);
    expect(shardRows(1, 4)).toEqual([[0, 1]]);
    expect(() => shardRows(0, 2)).toThrow(/positive row count, got 0/);
    expect(() => shardRows(4, 0)).toThrow(InvalidArgumentError);
  });
});

describe('SharedWeights', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  it('round-trips values and refuses another layout by name', () => {
    const a = tf.variable(tf.tensor2d([[1, 2, 3]]), true, 'sw_a');
    const b = tf.variable(tf.tensor1d([4]), true, 'sw_b');
    const shared = SharedWeights.of(
      new Map<string, tf.Tensor>([
        ['a', a],
        ['b', b],
      ]),
    );
    const a2 = tf.variable(tf.zeros([1, 3]), true, 'sw_a2');
    const b2 = tf.variable(tf.zeros([1]), true, 'sw_b2');
    SharedWeights.attach(shared.handle).assignTo(
      new Map([
        ['a', a2],
        ['b', b2],
      ]),
    );
    expect(Array.from(a2.dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(b2.dataSync())).toEqual([4]);
    const wrong = tf.variable(tf.zeros([3]), true, 'sw_wrong');
    expect(() =>
      shared.assignTo(
        new Map([
          ['a', wrong],
          ['b', b2],
        ]),
      ),
    ).toThrow(/a expected shape \[1, 3\], got \[3\]/);
    expect(() => shared.assignTo(new Map([['a', a2]]))).toThrow(/missing b/);
    tf.dispose([a, b, a2, b2, wrong]);
  });
});

describe('ReplicaPool', () => {
  let pool: ReplicaPool;
  let w: tf.Variable;
  let b: tf.Variable;

  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    const g = new Generator('pool');
    w = tf.variable(g.normal([3, 2]), true, 'pool_w');
    b = tf.variable(g.normal([2]), true, 'pool_b');
    pool = await ReplicaPool.start({
      workers: 2,
      recipe: { module: FIXTURE, export: 'makeLinear', spec: { inputs: 3, outputs: 2 } },
      weights: new Map<string, tf.Tensor>([
        ['w', w],
        ['b', b],
      ]),
    });
  });
  afterAll(async () => {
    await pool?.close();
    tf.dispose([w, b]);
  });

  it('runs on two worker threads holding the published weights, on the main thread backend', async () => {
    const seen = await pool.map<{ threadId: number; backend: string; w: number[] }>(
      task('whoAmI'),
      [0, 1, 2, 3],
    );
    expect(new Set(seen.map((s) => s.threadId)).size).toBeGreaterThanOrEqual(1);
    for (const s of seen) {
      expect(s.threadId).toBeGreaterThan(0);
      expect(s.backend).toBe('cpu');
      expect(s.w).toEqual(Array.from(w.dataSync()));
    }
    w.assign(tf.mul(w, 2));
    pool.publish();
    expect(pool.version).toBe(2);
    const after = await pool.map<{ w: number[] }>(task('whoAmI'), [0, 1]);
    for (const s of after) expect(s.w).toEqual(Array.from(w.dataSync()));
  });

  it('sums shard gradients to the whole batch gradient', async () => {
    const g = new Generator('pool-data');
    const x = g.normal([5, 3]);
    const t = g.normal([5, 2]);
    const shards = shardRows(5, 2).map(([s, e]) => {
      const xs = sliceRows(x, s, e);
      const ts = sliceRows(t, s, e);
      const args = { x: packTensor(xs), t: packTensor(ts) };
      tf.dispose([xs, ts]);
      return args;
    });
    const results = await pool.map<{ loss: number; grads: FlatGradients }>(task('gradients'), shards);
    // The moved arrays arrive whole; summed in shard order into tensors by this thread's variable names.
    for (const r of results) expect(r.grads.values.length).toBe(w.size + b.size);
    const summed = sumFlatGradients(
      results.map((r) => r.grads),
      [w, b],
    );
    const local = tf.variableGrads(() => tf.sum(tf.square(tf.sub(tf.add(tf.matMul(x, w), b), t))), [w, b]);
    expect(results.reduce((a, r) => a + r.loss, 0)).toBeCloseTo(local.value.dataSync()[0] as number, 4);
    for (const v of [w, b]) {
      const a = summed[v.name]?.dataSync() as Float32Array;
      const e = local.grads[v.name]?.dataSync() as Float32Array;
      for (let i = 0; i < e.length; i++) expect(a[i]).toBeCloseTo(e[i] as number, 4);
    }
    tf.dispose([x, t, local.value, ...Object.values(local.grads), ...Object.values(summed)]);
  });

  it('reports a failing task with its message and keeps working', async () => {
    await expect(pool.map(task('fails'), [0])).rejects.toThrow(/failed on purpose/);
    await expect(pool.map(task('noSuchExport'), [0])).rejects.toThrow(/no function export 'noSuchExport'/);
    expect(await pool.map(task('whoAmI'), [0])).toHaveLength(1);
  });

  it('refuses to publish while tasks run', async () => {
    const running = pool.map(task('whoAmI'), [0, 1]);
    expect(() => pool.publish()).toThrow(/still running/);
    await running;
  });
});

describe('ReplicaPool.start', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  const weights = () =>
    new Map<string, tf.Tensor>([
      ['w', tf.zeros([3, 2])],
      ['b', tf.zeros([2])],
    ]);

  it('refuses bad options by name', async () => {
    const recipe = { module: FIXTURE, export: 'makeLinear', spec: { inputs: 3, outputs: 2 } };
    await expect(ReplicaPool.start({ workers: 0, recipe, weights: weights() })).rejects.toThrow(
      /workers must be an integer in \[1, 16\], got 0/,
    );
    await expect(
      ReplicaPool.start({ workers: 1, recipe, weights: weights(), backend: 'webgpu' as 'wasm' }),
    ).rejects.toThrow(/'cpu' or 'wasm', got "webgpu"/);
    await expect(ReplicaPool.start({ workers: 1, recipe, weights: new Map() })).rejects.toThrow(
      /non-empty Map/,
    );
  });

  it('surfaces a recipe that builds no replica, or replica weights of another shape', async () => {
    await expect(
      ReplicaPool.start({
        workers: 1,
        recipe: { module: FIXTURE, export: 'notAReplica' },
        weights: weights(),
      }),
    ).rejects.toThrow(/must return an object with namedVariables/);
    await expect(
      ReplicaPool.start({
        workers: 1,
        recipe: { module: FIXTURE, export: 'makeLinear', spec: { inputs: 4, outputs: 2 } },
        weights: weights(),
      }),
    ).rejects.toThrow(/w expected shape \[3, 2\], got \[4, 2\]/);
  });
});

describe('ParallelGroup', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('runs the first shard here and the others on workers, in order; one way is all here', async () => {
    const w = tf.variable(tf.ones([3, 2]), true, 'group_w');
    const b = tf.variable(tf.zeros([2]), true, 'group_b');
    const weights = new Map<string, tf.Tensor>([
      ['w', w],
      ['b', b],
    ]);
    const recipe = { module: FIXTURE, export: 'makeLinear', spec: { inputs: 3, outputs: 2 } };
    const two = await ParallelGroup.start({ ways: 2, recipe, weights });
    const one = await ParallelGroup.start({ ways: 1, recipe, weights });
    try {
      const here = (a: unknown) => ({ threadId: 0, backend: 'main', a });
      const seen = await two.map<{ threadId: number }>(task('whoAmI'), ['first', 'second'], here);
      expect(seen[0]).toEqual({ threadId: 0, backend: 'main', a: 'first' });
      expect(seen[1]?.threadId).toBeGreaterThan(0);
      w.assign(tf.mul(w, 3));
      two.publish();
      const after = await two.map<{ w: number[] }>(task('whoAmI'), ['x', 'y'], here);
      expect(after[1]?.w).toEqual(Array.from(w.dataSync()));
      expect(await one.map(task('whoAmI'), ['only'], here)).toEqual([
        { threadId: 0, backend: 'main', a: 'only' },
      ]);
      await expect(one.map(task('whoAmI'), ['a', 'b'], here)).rejects.toThrow(
        /expected 1 to 1 shards, got 2/,
      );
      await expect(ParallelGroup.start({ ways: 0, recipe, weights })).rejects.toThrow(
        /workers: expected an integer in \[1, 16\]/,
      );
    } finally {
      await two.close();
      await one.close();
      tf.dispose([w, b]);
    }
  });
});
