/**
 * Evaluation of a latent reward model as the paper does it (docs/method.md §4): split sigma into five buckets
 * [0, 0.2], (0.2, 0.4], (0.4, 0.6], (0.6, 0.8], (0.8, 1.0]; noise every test video once per bucket at a
 * random sigma inside it; accuracy at threshold 0.5 per bucket and averaged over buckets.
 *
 * The draws are a function of (seed, video id, bucket) only, so results do not depend on batch size or
 * order. (The reference evaluates at fixed timesteps 201, 400, 600, 800, 1000 with one noise tensor per
 * batch; the paper describes random sigmas per bucket, which we follow.)
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  Generator,
  InvalidArgumentError,
  type LatentRewardModel,
  type PointwiseBatch,
  type PreferenceSource,
  sigma as toSigma,
  type Timestep,
  timestep as toTimestep,
} from '@prfl/tensor';
import { addNoise } from '../forward-process.js';
import { disposeBatch } from '../train/batch.js';
import { assertBinaryLabels, assertLatentVideo } from '../validate.js';
import { type BinaryMetrics, binaryMetrics, withinGroupAuc } from './metrics.js';

/** A range of noise levels; `includeLow` makes it closed on the left. */
export interface SigmaBucket {
  low: number;
  high: number;
  includeLow: boolean;
}

/** The paper's five buckets. */
export const PAPER_SIGMA_BUCKETS: readonly SigmaBucket[] = Object.freeze([
  { low: 0, high: 0.2, includeLow: true },
  { low: 0.2, high: 0.4, includeLow: false },
  { low: 0.4, high: 0.6, includeLow: false },
  { low: 0.6, high: 0.8, includeLow: false },
  { low: 0.8, high: 1.0, includeLow: false },
]);

export interface BucketResult extends BinaryMetrics {
  bucket: SigmaBucket;
  /** Mean of the sigmas drawn in the bucket. */
  meanSigma: number;
  /**
   * With `groupOf`: ROC-AUC over (good, bad) pairs of the same group only (metrics.ts withinGroupAuc):
   * 0.5 for a reward that knows the prompt's prior and nothing of the video. Else absent.
   */
  withinGroupAuc?: number;
}

export interface SigmaBucketEvaluation {
  seed: number;
  threshold: number;
  buckets: BucketResult[];
  /** Each metric averaged over the buckets (the paper's headline number is `average.accuracy`). */
  average: Omit<BinaryMetrics, 'n'> & { n: number; withinGroupAuc?: number };
  /** With `groupOf`: the (good, bad) pairs of one group that `withinGroupAuc` is over. */
  withinGroupPairs?: number;
}

export interface EvaluateOptions {
  /** Seed of the per-bucket sigmas and noise. Default 0. */
  seed?: number;
  buckets?: readonly SigmaBucket[];
  /** Probability threshold of a positive prediction. Default 0.5. */
  threshold?: number;
  /** Batch size when reading a PreferenceSource. Default 8. */
  batchSize?: number;
  /** Print the table with this function (e.g. console.log). */
  log?: (text: string) => void;
  /**
   * The group of each video by id (e.g. its prompt): adds `withinGroupAuc`, the ROC-AUC over pairs of one
   * group, which a reward cannot raise by knowing which prompts tend to come out well.
   */
  groupOf?: (id: string) => string;
}

/** The held-out videos `evaluateBySigmaBucket` reads: one batch, batches (sync or async), or a source. */
export type EvalData =
  | PointwiseBatch
  | Iterable<PointwiseBatch>
  | AsyncIterable<PointwiseBatch>
  | PreferenceSource<PointwiseBatch>;

function bucketLabel(b: SigmaBucket): string {
  return `${b.includeLow ? '[' : '('}${b.low.toFixed(1)}, ${b.high.toFixed(1)}]`;
}

/** A sigma inside the bucket from u in [0, 1): [low, high) when closed on the left, else (low, high]. */
function sigmaInBucket(b: SigmaBucket, u: number): number {
  return b.includeLow ? b.low + u * (b.high - b.low) : b.high - u * (b.high - b.low);
}

function checkBuckets(buckets: readonly SigmaBucket[]): void {
  if (!Array.isArray(buckets) || buckets.length === 0) {
    throw new InvalidArgumentError('buckets: expected a non-empty array of { low, high, includeLow }');
  }
  buckets.forEach((b, i) => {
    if (!(b.low >= 0 && b.high <= 1 && b.low < b.high)) {
      throw new InvalidArgumentError(
        `buckets[${i}]: expected 0 <= low < high <= 1, got ${JSON.stringify(b)}`,
      );
    }
  });
}

async function* batchesOf(
  data: EvalData,
  batchSize: number,
): AsyncGenerator<{ batch: PointwiseBatch; owned: boolean }> {
  if (data !== null && typeof data === 'object' && 'latents' in data && 'labels' in data) {
    yield { batch: data as PointwiseBatch, owned: false };
    return;
  }
  if (
    data !== null &&
    typeof data === 'object' &&
    'batches' in data &&
    typeof (data as PreferenceSource).batches === 'function'
  ) {
    for await (const b of (data as PreferenceSource<PointwiseBatch>).batches({
      batchSize,
      seed: 0,
      epoch: 0,
      shuffle: false,
    })) {
      yield { batch: b, owned: true };
    }
    return;
  }
  for await (const b of data as AsyncIterable<PointwiseBatch>) yield { batch: b, owned: false };
}

/**
 * Scores every labelled video once per sigma bucket and reports accuracy, precision, recall, F1, ROC-AUC
 * and BCE per bucket and averaged over buckets. Accepts one batch, an (async) iterable of batches, or a
 * PreferenceSource (read in order; its batches are disposed here, given batches are not).
 */
export async function evaluateBySigmaBucket(
  reward: LatentRewardModel,
  data: EvalData,
  options: EvaluateOptions = {},
): Promise<SigmaBucketEvaluation> {
  const seed = options.seed ?? 0;
  const buckets = options.buckets ?? PAPER_SIGMA_BUCKETS;
  const threshold = options.threshold ?? 0.5;
  checkBuckets(buckets);
  const probs: number[][] = buckets.map(() => []);
  const labels: number[][] = buckets.map(() => []);
  const drawn: number[][] = buckets.map(() => []);
  const ids: string[] = [];
  for await (const { batch, owned } of batchesOf(data, options.batchSize ?? 8)) {
    try {
      assertLatentVideo('batch.latents', batch.latents);
      const b = batch.latents.shape[0];
      assertBinaryLabels('batch.labels', batch.labels, b);
      if (batch.ids.length !== b) {
        throw new InvalidArgumentError(
          `batch.ids: expected ${b} ids (one per video), got ${batch.ids.length}`,
        );
      }
      const y = Array.from(batch.labels.dataSync());
      ids.push(...batch.ids);
      const perVideo = batch.latents.size / b;
      for (const [k, bucket] of buckets.entries()) {
        const sigmas: ReturnType<typeof toSigma>[] = [];
        const timesteps: Timestep[] = [];
        const eps = new Float32Array(batch.latents.size);
        batch.ids.forEach((id, i) => {
          const g = new Generator(`pavrm-eval/${seed}/${id}/${k}`);
          const s = toSigma(sigmaInBucket(bucket, g.nextDouble()));
          sigmas.push(s);
          timesteps.push(toTimestep(Math.trunc(Math.fround(s * 1000))));
          eps.set(g.normalArray(perVideo), i * perVideo);
        });
        const p = tf.tidy(() => {
          const noise = tf.tensor(eps, batch.latents.shape, 'float32');
          const xSigma = addNoise(batch.latents, noise, sigmas) as tf.Tensor5D;
          return tf.sigmoid(reward.score(xSigma, timesteps, batch.conditioning));
        });
        const values = p.dataSync();
        p.dispose();
        for (let i = 0; i < b; i++) {
          (probs[k] as number[]).push(values[i] as number);
          (labels[k] as number[]).push(y[i] as number);
          (drawn[k] as number[]).push(sigmas[i] as number);
        }
      }
    } finally {
      if (owned) disposeBatch(batch);
    }
  }
  const groupOf = options.groupOf;
  const groups =
    groupOf === undefined
      ? undefined
      : ids.map((id) => {
          const g = groupOf(id);
          if (typeof g !== 'string') {
            throw new InvalidArgumentError(
              `groupOf(${JSON.stringify(id)}): expected the video's group as a string, got ${String(g)}`,
            );
          }
          return g;
        });
  const within = buckets.map((_, k) =>
    groups === undefined ? undefined : withinGroupAuc(probs[k] as number[], labels[k] as number[], groups),
  );
  const results: BucketResult[] = buckets.map((bucket, k) => {
    const s = drawn[k] as number[];
    const w = within[k];
    return {
      bucket: { ...bucket },
      meanSigma: s.length ? s.reduce((a, v) => a + v, 0) / s.length : Number.NaN,
      ...binaryMetrics(probs[k] as number[], labels[k] as number[], threshold),
      ...(w === undefined ? {} : { withinGroupAuc: w.auc }),
    };
  });
  // The pairs are the same in every bucket (the same videos and labels).
  const withinGroupPairs = within[0]?.pairs;
  const mean = (key: keyof BinaryMetrics | 'withinGroupAuc') =>
    results.reduce((a, r) => a + (r[key] ?? Number.NaN), 0) / results.length;
  const evaluation: SigmaBucketEvaluation = {
    seed,
    threshold,
    buckets: results,
    average: {
      n: results[0]?.n ?? 0,
      accuracy: mean('accuracy'),
      precision: mean('precision'),
      recall: mean('recall'),
      f1: mean('f1'),
      rocAuc: mean('rocAuc'),
      loss: mean('loss'),
      ...(groups === undefined ? {} : { withinGroupAuc: mean('withinGroupAuc') }),
    },
    ...(withinGroupPairs === undefined ? {} : { withinGroupPairs }),
  };
  options.log?.(formatBucketTable(evaluation));
  return evaluation;
}

/** The evaluation as an aligned text table, one row per bucket and the average last. */
export function formatBucketTable(e: SigmaBucketEvaluation): string {
  const f = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(3));
  const grouped = e.withinGroupPairs !== undefined;
  const head = ['sigma', 'n', 'accuracy', 'precision', 'recall', 'f1', 'roc-auc', 'bce'];
  if (grouped) head.push('in-group auc');
  const rows = e.buckets.map((r) => [
    bucketLabel(r.bucket),
    String(r.n),
    f(r.accuracy),
    f(r.precision),
    f(r.recall),
    f(r.f1),
    f(r.rocAuc),
    f(r.loss),
    ...(grouped ? [f(r.withinGroupAuc ?? Number.NaN)] : []),
  ]);
  const a = e.average;
  rows.push([
    'average',
    String(a.n),
    f(a.accuracy),
    f(a.precision),
    f(a.recall),
    f(a.f1),
    f(a.rocAuc),
    f(a.loss),
    ...(grouped ? [f(a.withinGroupAuc ?? Number.NaN)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}
