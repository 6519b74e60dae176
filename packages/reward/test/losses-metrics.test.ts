import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, initBackend, InvalidArgumentError, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bceWithLogits, binaryMetrics, bradleyTerryLoss, rocAuc, withinGroupAuc } from '../src/index.js';

const softplus = (x: number) => Math.log1p(Math.exp(x));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe.each(backendsUnderTest())('losses on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('BCE on logits equals the hand-computed value and gradient', async () => {
    const r = [0, 2, -1, 30];
    const y = [1, 0, 0, 1];
    // -y log s(r) - (1 - y) log(1 - s(r)) per element.
    const want = [Math.log(2), softplus(2), softplus(-1), softplus(-30)];
    const mean = want.reduce((a, b) => a + b) / 4;
    const logits = tf.tensor1d(r);
    const labels = tf.tensor1d(y);
    expect((await bceWithLogits(logits, labels).data())[0]).toBeCloseTo(mean, 6);
    const g = await tf
      .grad((x: tf.Tensor) => bceWithLogits(x, labels))(logits)
      .data();
    r.forEach((ri, i) => {
      expect(g[i]).toBeCloseTo((sigmoid(ri) - y[i]!) / 4, 6);
    });
  });

  it('Bradley-Terry equals mean -log sigmoid(r_win - r_lose)', async () => {
    const win = tf.tensor1d([1, 0, 3]);
    const lose = tf.tensor1d([0, 2, 3]);
    const want = (softplus(-1) + softplus(2) + Math.log(2)) / 3;
    expect((await bradleyTerryLoss(win, lose).data())[0]).toBeCloseTo(want, 6);
    const [gw, gl] = tf.grads((a: tf.Tensor, b: tf.Tensor) => bradleyTerryLoss(a, b))([win, lose]);
    const dw = await gw!.data();
    const dl = await gl!.data();
    [1 - 0, 0 - 2, 0].forEach((d, i) => {
      expect(dw[i]).toBeCloseTo(-(1 - sigmoid(d)) / 3, 6);
      expect(dl[i]).toBeCloseTo((1 - sigmoid(d)) / 3, 6);
    });
  });

  it('rejects mismatched shapes, naming them', () => {
    expect(() => bceWithLogits(tf.zeros([3]), tf.zeros([2]))).toThrow(
      /labels: expected a \[3\] tensor, got \[2\]/,
    );
    expect(() => bradleyTerryLoss(tf.zeros([2, 1]), tf.zeros([2]))).toThrow(InvalidArgumentError);
  });
});

describe('binary metrics', () => {
  it('accuracy, precision, recall, F1 and BCE on a hand-computed case', () => {
    // predictions at 0.5: 1, 1, 0, 0, 1  vs labels 1, 0, 0, 1, 1 -> TP 2, FP 1, TN 1, FN 1
    const p = [0.9, 0.6, 0.2, 0.4, 0.5];
    const y = [1, 0, 0, 1, 1];
    const m = binaryMetrics(p, y);
    expect(m.n).toBe(5);
    expect(m.accuracy).toBeCloseTo(3 / 5, 12);
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    const bce = -(Math.log(0.9) + Math.log(0.4) + Math.log(0.8) + Math.log(0.4) + Math.log(0.5)) / 5;
    expect(m.loss).toBeCloseTo(bce, 12);
    // AUC: positives 0.9, 0.4, 0.5 vs negatives 0.6, 0.2 -> pairs won: (0.9: 2) (0.4: 1) (0.5: 1) = 4 of 6
    expect(m.rocAuc).toBeCloseTo(4 / 6, 12);
  });

  it('ROC-AUC: the textbook case, ties count half, one class gives NaN', () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(rocAuc([0.5, 0.5], [0, 1])).toBeCloseTo(0.5, 12);
    expect(rocAuc([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1])).toBeCloseTo((1 + 0.5 + 1 + 1) / 4, 12);
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNaN();
  });

  it('within-group ROC-AUC counts (positive, negative) pairs of one group only', () => {
    // Group a: 0.9 > 0.2 (win), 0.9 > 0.5 (win); group b: 0.3 < 0.6 (loss); 0.7 is alone in group c.
    const scores = [0.9, 0.2, 0.5, 0.3, 0.6, 0.7];
    const labels = [1, 0, 0, 1, 0, 1];
    const groups = ['a', 'a', 'a', 'b', 'b', 'c'];
    expect(withinGroupAuc(scores, labels, groups)).toEqual({ auc: 2 / 3, pairs: 3 });
    expect(withinGroupAuc([0.5, 0.5], [1, 0], ['x', 'x'])).toEqual({ auc: 0.5, pairs: 1 });
    expect(withinGroupAuc([0.1, 0.2], [1, 0], ['x', 'y']).auc).toBeNaN();
    expect(() => withinGroupAuc([0.1, 0.2], [1, 0], ['x'])).toThrow(/1 groups but 2 labels/);
    expect(() => withinGroupAuc([0.1, 0.2], [1, 0.7], ['x', 'x'])).toThrow(
      /labels\[1\]: expected 0 or 1, got 0\.7/,
    );
    expect(() => withinGroupAuc([Number.NaN, 0.2], [1, 0], ['x', 'x'])).toThrow(
      /scores\[0\]: expected a finite number, got NaN/,
    );
  });

  it('precision and recall are 0 (not NaN) without predicted or actual positives', () => {
    const m = binaryMetrics([0.1, 0.2], [0, 0]);
    expect(m.precision).toBe(0);
    expect(m.recall).toBe(0);
    expect(m.f1).toBe(0);
    expect(m.accuracy).toBe(1);
    expect(() => binaryMetrics([0.1], [0, 1])).toThrow(/1 scores but 2 labels/);
    expect(() => binaryMetrics([0.1], [2])).toThrow(/labels\[0\]/);
  });
});
