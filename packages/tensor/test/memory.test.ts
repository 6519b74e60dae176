import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, InvalidArgumentError, initBackend, shutdownBackend } from '../src/index.js';
import {
  assertNoLeak,
  formatBytes,
  formatMemoryTable,
  MemoryMeter,
  type MemoryReport,
  measureMemory,
  TensorLeakError,
} from '../src/memory.js';

function hookInstalled(): boolean {
  const e = tf.engine();
  return Object.hasOwn(e, 'trackTensor') || Object.hasOwn(e, 'removeDataId');
}

describe.each(backendsUnderTest())('memory accounting on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('measures the peak above the start, what is left behind, and removes its hook', () => {
    const keep = tf.ones([5000]); // already alive: not part of the peak above start
    const m = measureMemory(() => {
      expect(hookInstalled()).toBe(true);
      const a = tf.fill([1000], 2); // 4000 B
      const b = tf.mul(a, a); // +4000 B: peak 8000
      a.dispose();
      return b;
    });
    expect(hookInstalled()).toBe(false);
    expect(m.peakBytes).toBe(8000);
    expect(m.peakBufferBytes).toBe(8000);
    expect(m.peakTotalBytes).toBe(tf.memory().numBytes - 4000 + 8000);
    expect(m.retainedBytes).toBe(4000);
    expect(m.retainedTensors).toBe(1);
    expect(m.ms).toBeGreaterThanOrEqual(0);
    tf.dispose([m.result, keep]);
  });

  it('counts a shared buffer once in bufferBytes (reshape, the clones a tape saves)', () => {
    const m = measureMemory(() => {
      const a = tf.fill([1000], 1);
      const r = tf.reshape(a, [10, 100]); // a second tensor on the same data
      tf.dispose([a, r]);
    });
    expect(m.peakBytes).toBe(8000); // tf.memory().numBytes counts the view again
    expect(m.peakBufferBytes).toBe(4000);
    expect(m.retainedBytes).toBe(0);
  });

  it('agrees with tf.profile on the peak while costing no per-kernel work', async () => {
    const x = tf.randomNormal([64, 64], 0, 1, 'float32', 1);
    const work = () =>
      tf.tidy(() => {
        let h = x;
        for (let i = 0; i < 5; i++) h = tf.tanh(tf.matMul(h, x));
        return tf.sum(h);
      });
    let profilePeak = 0;
    const m = await measureMemory(async () => {
      const info = await tf.profile(work);
      profilePeak = info.peakBytes;
      (info.result as tf.Tensor).dispose();
    });
    // tf.profile reports the absolute numBytes after each kernel; both see the same highest point.
    expect(m.peakTotalBytes).toBe(profilePeak);
    x.dispose();
  });

  it('supports nested and async phases in a MemoryMeter and reports them as JSON and a table', async () => {
    const meter = new MemoryMeter();
    const out = await meter.measure('step', async () => {
      const a = meter.measure('rollout', () => tf.tidy(() => tf.add(tf.fill([2500], 1), 1))); // 10 kB kept
      await meter.measure('reward', async () => {
        const r = tf.fill([5000], 3); // 20 kB, freed
        await r.data();
        r.dispose();
      });
      return a;
    });
    meter.measure('rollout', () => tf.dispose(tf.fill([10], 0)));
    const report = meter.report();
    expect(JSON.parse(JSON.stringify(meter))).toEqual(report);
    expect(report.backend).toBe(backend);
    expect(report.phases.map((p) => p.phase)).toEqual(['rollout', 'reward', 'step']);
    const byName = Object.fromEntries(report.phases.map((p) => [p.phase, p]));
    expect(byName.rollout?.calls).toBe(2);
    expect(byName.rollout?.peakBytes).toBeGreaterThanOrEqual(20000); // fill + add alive together
    expect(byName.rollout?.retainedBytes).toBe(0); // the last call freed everything
    expect(byName.reward?.peakBytes).toBe(20000);
    expect(byName.reward?.retainedTensors).toBe(0);
    // The outer phase saw the inner allocations: the kept 10 kB plus the reward's 20 kB.
    expect(byName.step?.peakBytes).toBe(30000);
    expect(byName.step?.retainedBytes).toBe(10000);
    expect(byName.step?.retainedTensors).toBe(1);
    expect(report.peakTotalBytes).toBeGreaterThanOrEqual(30000);
    const table = meter.table();
    expect(table).toContain(`memory by phase (${backend})`);
    expect(table).toMatch(
      /phase\s+calls\s+peak \+\s+buffers \+\s+peak total\s+retained\s+tensors\s+ms\/call/,
    );
    expect(table).toMatch(/reward\s+1\s+19\.5 KiB/);
    expect(table.split('\n')).toHaveLength(2 + 3);
    expect(formatMemoryTable(report)).toBe(table);
    expect(hookInstalled()).toBe(false);
    out.dispose();
    meter.reset();
    expect(meter.report().phases).toEqual([]);
  });

  it('records phases that throw or reject, and start/stop phases', async () => {
    const meter = new MemoryMeter();
    expect(() =>
      meter.measure('bad', () => {
        tf.fill([100], 1);
        throw new Error('sync failure');
      }),
    ).toThrow('sync failure');
    await expect(
      meter.measure('bad async', async () => {
        await Promise.resolve();
        throw new Error('async failure');
      }),
    ).rejects.toThrow('async failure');
    expect(hookInstalled()).toBe(false);
    const stop = meter.start('optimizer');
    const t = tf.fill([250], 1);
    const sample = stop();
    expect(sample.peakBytes).toBe(1000);
    expect(() => stop()).toThrow(/already ended/);
    const report = meter.report();
    expect(report.phases.map((p) => [p.phase, p.calls])).toEqual([
      ['bad', 1],
      ['bad async', 1],
      ['optimizer', 1],
    ]);
    expect(report.phases[0]?.retainedTensors).toBe(1); // the leaked fill
    expect(() => meter.measure('', () => 0)).toThrow(InvalidArgumentError);
    tf.dispose(t);
  });

  it('installs nothing when disabled but still times phases', async () => {
    const meter = new MemoryMeter({ enabled: false });
    const v = meter.measure('rollout', () => {
      expect(hookInstalled()).toBe(false);
      return 7;
    });
    expect(v).toBe(7);
    expect(await meter.measure('async', async () => 8)).toBe(8);
    const report: MemoryReport = meter.report();
    expect(report.enabled).toBe(false);
    expect(report.phases[0]).toMatchObject({ phase: 'rollout', calls: 1, peakBytes: 0 });
    expect(meter.table()).toMatch(/rollout\s+1\s+-\s+-/);
  });

  it('assertNoLeak passes clean functions and names a leaking one', async () => {
    const w = tf.ones([4, 4]);
    const result = await assertNoLeak(() => tf.matMul(w, w), { iterations: 4 }); // returned tensors are disposed
    expect(result.tensors).toEqual([0, 0, 0, 0]);
    await assertNoLeak(async () => {
      const y = tf.tidy(() => tf.sum(tf.matMul(w, w)));
      await y.data();
      y.dispose();
    });
    const leaked: tf.Tensor[] = [];
    const err = await assertNoLeak(
      () => {
        leaked.push(tf.mul(w, 2));
      },
      { label: 'leaky step', iterations: 3 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TensorLeakError);
    expect(String((err as Error).message)).toMatch(
      /leaky step: tensors leak across iterations: after each of 3 iterations the count rose by 1, 2, 3 tensors \(64 B, 128 B, 192 B\)/,
    );
    await expect(assertNoLeak(() => 0, { iterations: 0 })).rejects.toThrow(InvalidArgumentError);
    tf.dispose([...leaked, w]);
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(29.3 * 1024 * 1024)).toBe('29.3 MiB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MiB');
    expect(formatBytes(-2048)).toBe('-2.0 KiB');
  });
});
