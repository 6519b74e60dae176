import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  type Conditioning,
  initBackend,
  type LatentRewardModel,
  type LatentVideo,
  type PointwiseBatch,
  shutdownBackend,
  type Timestep,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateBySigmaBucket, formatBucketTable, PAPER_SIGMA_BUCKETS } from '../src/index.js';

/** A reward that only reads the timestep: positive below `cut`, and records what it saw. */
function timestepReward(cut: number, seen: number[]): LatentRewardModel {
  return {
    namedVariables: () => new Map(),
    score(_x: LatentVideo, timesteps: readonly Timestep[], _c: Conditioning) {
      seen.push(...timesteps);
      return tf.tensor1d(timesteps.map((t) => (t < cut ? 10 : -10)));
    },
  };
}

function batch(n: number, labels: number[], prefix = 'v'): PointwiseBatch {
  return {
    ids: Array.from({ length: n }, (_, i) => `${prefix}${i}`),
    latents: tf.zeros([n, 2, 2, 2, 3]) as tf.Tensor5D,
    labels: tf.tensor1d(labels),
    conditioning: { text: tf.zeros([n, 1, 4]) as tf.Tensor3D },
  };
}

describe.each(backendsUnderTest())('evaluation by sigma bucket on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('draws one sigma inside each bucket per video and computes the metrics per bucket', async () => {
    const seen: number[] = [];
    const labels = [1, 0, 1, 0, 1, 0, 1, 0];
    const e = await evaluateBySigmaBucket(timestepReward(400, seen), batch(8, labels));
    expect(e.buckets).toHaveLength(5);
    expect(seen).toHaveLength(40);
    seen.forEach((t, i) => {
      const b = PAPER_SIGMA_BUCKETS[Math.floor(i / 8)]!;
      expect(t / 1000).toBeGreaterThanOrEqual(b.low - 1e-3);
      expect(t / 1000).toBeLessThanOrEqual(b.high);
    });
    // Buckets 1-2: everything predicted positive -> accuracy 1/2, precision 1/2, recall 1, F1 2/3.
    for (const r of e.buckets.slice(0, 2)) {
      expect(r.n).toBe(8);
      expect(r.accuracy).toBe(0.5);
      expect(r.precision).toBe(0.5);
      expect(r.recall).toBe(1);
      expect(r.f1).toBeCloseTo(2 / 3, 12);
      expect(r.rocAuc).toBe(0.5);
    }
    // Buckets 4-5: everything predicted negative -> accuracy 1/2, precision = recall = F1 = 0.
    for (const r of e.buckets.slice(3)) {
      expect(r.accuracy).toBe(0.5);
      expect(r.precision).toBe(0);
      expect(r.recall).toBe(0);
    }
    expect(e.average.accuracy).toBeCloseTo(e.buckets.reduce((a, r) => a + r.accuracy, 0) / 5, 12);
    expect(e.average.recall).toBeCloseTo(e.buckets.reduce((a, r) => a + r.recall, 0) / 5, 12);
    const table = formatBucketTable(e);
    expect(table.split('\n')).toHaveLength(7);
    expect(table).toMatch(/^sigma/);
    expect(table).toMatch(/\[0\.0, 0\.2\]/);
    expect(table).toMatch(/\(0\.8, 1\.0\]/);
    expect(table).toMatch(/average/);
  });

  it('a perfect reward scores 1 in every bucket; draws depend on (seed, id, bucket) only', async () => {
    // Reads the label from the clean latent's sign through the noise: use a huge signal.
    const perfect: LatentRewardModel = {
      namedVariables: () => new Map(),
      score: (x: LatentVideo) => tf.tidy(() => tf.mean(tf.reshape(x, [x.shape[0], -1]), 1) as tf.Tensor1D),
    };
    const n = 6;
    const labels = [1, 0, 0, 1, 1, 0];
    const latents = tf.tidy(() =>
      tf.mul(
        tf.reshape(tf.tensor1d(labels.map((l) => (l ? 1e4 : -1e4))), [n, 1, 1, 1, 1]),
        tf.ones([n, 2, 2, 2, 3]),
      ),
    ) as tf.Tensor5D;
    const full: PointwiseBatch = {
      ids: labels.map((_, i) => `p${i}`),
      latents,
      labels: tf.tensor1d(labels),
      conditioning: { text: tf.zeros([n, 1, 4]) as tf.Tensor3D },
    };
    const e = await evaluateBySigmaBucket(perfect, full, { seed: 3 });
    expect(e.buckets.every((b) => b.accuracy === 1 && b.rocAuc === 1)).toBe(true);

    const seenA: number[] = [];
    const seenB: number[] = [];
    await evaluateBySigmaBucket(timestepReward(500, seenA), batch(4, [1, 0, 1, 0]), { seed: 5 });
    const halves = [batch(2, [1, 0]), { ...batch(2, [1, 0]), ids: ['v2', 'v3'] }];
    await evaluateBySigmaBucket(timestepReward(500, seenB), halves, { seed: 5 });
    // Same videos, same seed: the same sigma for each (video, bucket), whatever the batching.
    const fromHalves = PAPER_SIGMA_BUCKETS.map((_, k) => [
      ...seenB.slice(k * 2, k * 2 + 2),
      ...seenB.slice(10 + k * 2, 10 + k * 2 + 2),
    ]);
    const fromOne = PAPER_SIGMA_BUCKETS.map((_, k) => seenA.slice(k * 4, k * 4 + 4));
    expect(fromHalves).toEqual(fromOne);
  });

  it('within-group ROC-AUC: 0.5 for a reward that knows only the prompt, 1 for one that reads the video', async () => {
    // Prompt A comes out well 3 times in 4, prompt B once in 4.
    const labels = [1, 1, 1, 0, 1, 0, 0, 0];
    const prompt = ['A', 'A', 'A', 'A', 'B', 'B', 'B', 'B'];
    const n = labels.length;
    const data: PointwiseBatch = {
      ids: labels.map((_, i) => `g${i}`),
      latents: tf.tidy(() =>
        tf.mul(
          tf.reshape(tf.tensor1d(labels.map((l) => (l ? 1e4 : -1e4))), [n, 1, 1, 1, 1]),
          tf.ones([n, 2, 2, 2, 3]),
        ),
      ) as tf.Tensor5D,
      labels: tf.tensor1d(labels),
      conditioning: { text: tf.tensor3d(prompt.map((p) => [[p === 'A' ? 1 : -1]])) },
    };
    const groupOf = (id: string) => prompt[Number(id.slice(1))] as string;
    const prior: LatentRewardModel = {
      namedVariables: () => new Map(),
      score: (_x: LatentVideo, _t: readonly Timestep[], c: Conditioning) =>
        tf.tidy(() => tf.reshape(c.text as tf.Tensor3D, [-1]) as tf.Tensor1D),
    };
    const content: LatentRewardModel = {
      namedVariables: () => new Map(),
      score: (x: LatentVideo) => tf.tidy(() => tf.mean(tf.reshape(x, [x.shape[0], -1]), 1) as tf.Tensor1D),
    };
    const p = await evaluateBySigmaBucket(prior, data, { groupOf });
    // Plain ROC-AUC: 9 wins (A good over B bad) + 6 ties of 16 pairs; within a prompt, only ties.
    expect(p.average.rocAuc).toBeCloseTo(0.75, 12);
    expect(p.average.withinGroupAuc).toBe(0.5);
    expect(p.withinGroupPairs).toBe(6);
    expect(p.buckets.every((b) => b.withinGroupAuc === 0.5)).toBe(true);
    expect(formatBucketTable(p)).toMatch(/in-group auc/);
    const c = await evaluateBySigmaBucket(content, data, { groupOf });
    expect(c.average.withinGroupAuc).toBe(1);
    // Without groupOf, nothing of it appears.
    const plain = await evaluateBySigmaBucket(prior, data);
    expect(plain.withinGroupPairs).toBeUndefined();
    expect(plain.average.withinGroupAuc).toBeUndefined();
    expect(formatBucketTable(plain)).not.toMatch(/in-group/);
    // An id without a group is refused, not merged into a group "undefined".
    await expect(
      evaluateBySigmaBucket(prior, data, { groupOf: (id) => (id === 'g3' ? (undefined as never) : 'A') }),
    ).rejects.toThrow(/groupOf\("g3"\): expected the video's group as a string, got undefined/);
    tf.dispose([data.latents, data.labels, data.conditioning.text as tf.Tensor]);
  });

  it('rejects a batch whose labels do not match its videos', async () => {
    const bad = { ...batch(3, [1, 0, 1]), labels: tf.tensor1d([1, 0]) };
    await expect(evaluateBySigmaBucket(timestepReward(500, []), bad)).rejects.toThrow(
      /batch\.labels: expected one label per batch element, shape \[3\], got \[2\]/,
    );
  });
});
