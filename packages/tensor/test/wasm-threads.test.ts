/**
 * Threaded wasm in Node (src/node/wasm-threads-node.ts): the thread count asked for is the one started,
 * results are bit-identical to one thread, bad counts are refused with what was expected, and the
 * environment variable sets the default.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  currentBackend,
  describeBackend,
  Generator,
  InvalidArgumentError,
  initBackend,
  linear,
  matMul,
  shutdownBackend,
  WASM_THREADS_ENV,
} from '../src/index.js';

/** A little of everything a DiT training step runs, forward and backward; every result's bytes. */
async function trainingLikeBytes(): Promise<number[]> {
  const results = tf.tidy(() => {
    const g = new Generator('threads');
    const x = g.normal([2, 96, 64]);
    const w1 = g.normal([64, 256], 0, 0.1);
    const w2 = g.normal([256, 64], 0, 0.1);
    const loss = (a: tf.Tensor, b: tf.Tensor) => {
      const h = tf.relu(linear(a, b as tf.Tensor2D));
      const q = linear(h, w2 as tf.Tensor2D);
      const att = tf.softmax(tf.div(matMul(q, q, false, true), 8));
      const y = tf.reshape(matMul(att, q), [2, 96, 8, 8]) as tf.Tensor4D;
      return tf.mean(tf.square(tf.conv2d(y, tf.ones([3, 3, 8, 4]), 1, 'same')));
    };
    return [loss(x, w1), ...tf.grads(loss)([x, w1])];
  });
  const out: number[] = [];
  for (const t of results) out.push(...(await t.data()));
  tf.dispose(results);
  return out;
}

describe('wasm threads in Node', () => {
  const saved = process.env[WASM_THREADS_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[WASM_THREADS_ENV];
    else process.env[WASM_THREADS_ENV] = saved;
  });
  afterAll(() => shutdownBackend());

  it('starts the thread count asked for, and one thread by default', async () => {
    delete process.env[WASM_THREADS_ENV];
    const one = await initBackend({ backend: 'wasm' });
    expect(one.wasm?.threads).toBe(1);
    const two = await initBackend({ backend: 'wasm', threads: 2 });
    expect(two.wasm).toEqual({ simd: true, threads: 2 });
    expect(describeBackend(two)).toBe('wasm (simd, 2 threads)');
  });

  it('computes bit for bit what one thread computes, forward and backward', async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
    const single = await trainingLikeBytes();
    await initBackend({ backend: 'wasm', threads: 2 });
    const threaded = await trainingLikeBytes();
    expect(threaded.length).toBe(single.length);
    expect(threaded).toEqual(single);
  });

  it('takes its default from PRFL_WASM_THREADS', async () => {
    process.env[WASM_THREADS_ENV] = '2';
    expect((await initBackend({ backend: 'wasm' })).wasm?.threads).toBe(2);
    process.env[WASM_THREADS_ENV] = 'auto';
    const auto = await initBackend({ backend: 'wasm' });
    expect(auto.wasm?.threads).toBeGreaterThanOrEqual(1);
    expect(auto.wasm?.threads).toBeLessThanOrEqual(4);
  });

  it('changes the count of a running wasm backend only when no tensor would be lost', async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
    const kept = tf.ones([2]);
    await expect(initBackend({ backend: 'wasm', threads: 2 })).rejects.toThrow(
      /already runs with 1 thread and holds \d+ tensors; call shutdownBackend\(\) before starting it with 2/,
    );
    kept.dispose();
    expect((await initBackend({ backend: 'wasm', threads: 2 })).wasm?.threads).toBe(2);
  });

  it('a refused count leaves the running backend as it was; auto does not fall back to cpu over it', async () => {
    await initBackend({ backend: 'wasm', threads: 2 });
    await expect(initBackend({ backend: 'wasm', threads: 9 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(tf.getBackend()).toBe('wasm');
    expect(currentBackend()?.wasm?.threads).toBe(2);
    const sum = tf.tidy(() => tf.add(tf.ones([2]), 1));
    expect(Array.from(await sum.data())).toEqual([2, 2]);
    sum.dispose();
    await expect(initBackend({ threads: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('finds the pool of a wasm instance that is not the current backend', async () => {
    await initBackend({ backend: 'wasm', threads: 2 });
    await initBackend({ backend: 'cpu' });
    expect(tf.memory().numTensors).toBe(0);
    expect((await initBackend({ backend: 'wasm', threads: 1 })).wasm?.threads).toBe(1);
    expect((await initBackend({ backend: 'wasm', threads: 2 })).wasm?.threads).toBe(2);
  });

  it('restores what it patched and leaves no scripts behind', async () => {
    const os = await import('node:os');
    const fs = await import('node:fs');
    const ours = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('prfl-wasm-threads-')).length;
    const before = ours();
    const cpus = os.default.cpus;
    const createObjectURL = URL.createObjectURL;
    await shutdownBackend();
    expect((await initBackend({ backend: 'wasm', threads: 3 })).wasm?.threads).toBe(3);
    expect(os.default.cpus).toBe(cpus);
    expect(os.default.cpus().length).toBe(os.cpus().length);
    expect(URL.createObjectURL).toBe(createObjectURL);
    expect(ours()).toBe(before);
  });

  it('refuses a count that is not a positive integer up to 8, naming the source', async () => {
    await expect(initBackend({ backend: 'wasm', threads: 0 })).rejects.toThrow(
      /threads: expected an integer from 1 to 8 or 'auto', got 0/,
    );
    await expect(initBackend({ backend: 'wasm', threads: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(initBackend({ backend: 'wasm', threads: 9 })).rejects.toThrow(
      /threads: expected an integer from 1 to 8 or 'auto', got 9/,
    );
    process.env[WASM_THREADS_ENV] = 'many';
    await expect(initBackend({ backend: 'wasm' })).rejects.toThrow(
      /PRFL_WASM_THREADS: expected an integer from 1 to 8 or 'auto', got "many"/,
    );
  });
});
