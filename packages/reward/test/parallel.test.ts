/**
 * Data-parallel PAVRM training (@prfl/reward/parallel): two worker threads with replicas of the PAVRM give
 * the same training as one process, up to the order of float additions: weights, losses and accuracies of
 * a few BCE and Bradley-Terry steps. Needs @prfl/models (a DiT backbone a worker can rebuild) and the
 * built packages (turbo builds them before the tests).
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, Generator, initBackend, maxRelDiffByName, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optionalWanDiT } from './helpers.js';
import {
  Pavrm,
  pavrmBatchGradients,
  type PavrmStepMetrics,
  PavrmTrainer,
  tensorPairwiseSource,
  tensorPointwiseSource,
} from '../src/index.js';
import { startPavrmWorkers } from '../src/parallel/index.js';

interface WanLike {
  truncate(k: number): ConstructorParameters<typeof Pavrm>[0];
  dispose(): void;
}
type WanCtor = new (config: string, options: { seed: number }) => WanLike;
const WanDiT = await optionalWanDiT<WanCtor>();

function makeReward(): Pavrm {
  const dit = new (WanDiT as WanCtor)('tiny', { seed: 3 });
  try {
    return new Pavrm(dit.truncate(2), { hidden: [32, 16], seed: 'parallel' });
  } finally {
    dit.dispose();
  }
}

/** A PAVRM and its backbone (the PAVRM does not own it). */
function disposeReward(reward: Pavrm): void {
  reward.dispose();
  (reward.backbone as unknown as { dispose(): void }).dispose();
}

function weights(reward: Pavrm): Map<string, Float32Array> {
  return new Map([...reward.namedVariables()].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
}

/** in_proj_bias is [q | k | v]; drop its k third. */
function withoutKeyBias(w: Map<string, Float32Array>): Map<string, Float32Array> {
  const key = 'query_attention.multihead_attn.in_proj_bias';
  const b = w.get(key) as Float32Array;
  const d = b.length / 3;
  const out = new Map(w);
  out.set(key, Float32Array.from([...b.subarray(0, d), ...b.subarray(2 * d)]));
  return out;
}

describe.skipIf(WanDiT === undefined).each(backendsUnderTest())(
  'data-parallel PAVRM training on %s',
  (backend) => {
    beforeAll(async () => {
      await initBackend({ backend });
    });
    afterAll(() => shutdownBackend());

    it('two workers train as one process does (BCE, then Bradley-Terry)', async () => {
      const g = new Generator('parallel-data');
      const latents = g.normal<tf.Rank.R5>([6, 2, 4, 4, 16]);
      const lose = g.normal<tf.Rank.R5>([6, 2, 4, 4, 16]);
      const text = g.normal<tf.Rank.R3>([6, 4, 32]);
      const labels = tf.tensor1d([1, 0, 1, 1, 0, 0]);
      const pointwise = tensorPointwiseSource({ latents, labels, conditioning: { text } });
      const pairwise = tensorPairwiseSource({ win: latents, lose, conditioning: { text } });

      const local = makeReward();
      const parallel = makeReward();
      expect(maxRelDiffByName(weights(local), weights(parallel))).toBe(0);
      const workers = await startPavrmWorkers(parallel, { workers: 2 });
      try {
        expect(workers.size).toBe(2);
        const run = async (reward: Pavrm, withWorkers: boolean) => {
          const steps: PavrmStepMetrics[] = [];
          const tensors: number[] = [];
          const start = tf.memory().numTensors;
          const options = {
            seed: 5,
            lrHead: 1e-2,
            lrBackbone: 1e-3,
            onStep: (m: PavrmStepMetrics) => {
              steps.push(m);
              tensors.push(tf.memory().numTensors - start);
            },
          };
          const bce = new PavrmTrainer(reward, withWorkers ? { ...options, workers } : options);
          // Batches of 4 and 2: shards of 2 + 2, and of 1 + 1.
          await bce.fit(pointwise, { epochs: 2, batchSize: 4, disposeBatches: true });
          bce.dispose();
          const bt = new PavrmTrainer(reward, withWorkers ? { ...options, workers } : options);
          await bt.fit(pairwise, { epochs: 1, batchSize: 3, disposeBatches: true });
          bt.dispose();
          return { steps, tensors };
        };
        const { steps: a, tensors: ta } = await run(local, false);
        const { steps: b, tensors: tb } = await run(parallel, true);
        // No leak on either side: flat across steps once AdamW has its moments (per trainer), and the
        // data-parallel steps keep no more tensors than the single-process ones.
        expect(tb.slice(1, 4)).toEqual([tb[1], tb[1], tb[1]]);
        expect(tb[5]).toBe(tb[4]);
        expect(tb).toEqual(ta);
        expect(b.length).toBe(a.length);
        expect(a.length).toBe(6);
        a.forEach((m, i) => {
          const n = b[i] as PavrmStepMetrics;
          expect(n.kind).toBe(m.kind);
          expect(n.batchSize).toBe(m.batchSize);
          expect(n.sigmas).toEqual(m.sigmas);
          expect(n.loss).toBeCloseTo(m.loss, 5);
          expect(n.accuracy).toBe(m.accuracy);
          expect(n.gradNorm).toBeCloseTo(m.gradNorm, 4);
        });
        // The weights moved, and moved alike.
        expect(maxRelDiffByName(weights(local), weights(makeRewardSnapshot()))).toBeGreaterThan(1e-4);
        // The query attention's key bias has a zero gradient (softmax ignores a shift shared by all keys), so
        // AdamW turns its rounding noise into full-size steps of random sign in either run: left out. AdamW
        // also enlarges the rounding differences of other small gradients, hence 1e-3 of each tensor's
        // scale after six steps (the gradients themselves agree to 1e-4: the next test).
        expect(
          maxRelDiffByName(withoutKeyBias(weights(local)), withoutKeyBias(weights(parallel))),
        ).toBeLessThan(1e-3);
      } finally {
        await workers.close();
        disposeReward(local);
        disposeReward(parallel);
        tf.dispose([latents, lose, text, labels]);
      }
    }, 120_000);

    it('sums the shards to the gradient of the whole batch', async () => {
      const reward = makeReward();
      const workers = await startPavrmWorkers(reward, { workers: 2 });
      const g = new Generator('parallel-grads');
      const x0 = g.normal<tf.Rank.R5>([5, 2, 4, 4, 16]);
      const eps = g.normal<tf.Rank.R5>([5, 2, 4, 4, 16]);
      const text = g.normal<tf.Rank.R3>([5, 4, 32]);
      const labels = tf.tensor1d([1, 0, 1, 0, 0]);
      const variables = [...reward.namedVariables().values()].filter((v) => v.trainable);
      const prepared = {
        kind: 'pointwise' as const,
        x0,
        labels,
        eps,
        sigmas: [0.1, 0.4, 0.6, 0.9, 0.99] as never[],
        timesteps: [100, 400, 600, 900, 990] as never[],
        conditioning: { text },
      };
      try {
        const here = pavrmBatchGradients(reward, variables, prepared);
        const there = await workers.gradients(prepared, variables);
        expect(there.loss.dataSync()[0]).toBeCloseTo(here.loss.dataSync()[0] as number, 5);
        expect(Array.from(there.scores[0]?.dataSync() ?? [])).toEqual(
          Array.from(here.scores[0]?.dataSync() ?? []).map((v) => expect.closeTo(v, 5)),
        );
        for (const v of variables) {
          const a = here.grads[v.name]?.dataSync() as Float32Array;
          const b = there.grads[v.name]?.dataSync() as Float32Array;
          let scale = 1e-6;
          for (const x of a) scale = Math.max(scale, Math.abs(x));
          let worst = 0;
          for (let i = 0; i < a.length; i++)
            worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
          expect(worst / scale, v.name).toBeLessThan(1e-4);
        }
        tf.dispose([
          here.loss,
          there.loss,
          ...here.scores,
          ...there.scores,
          ...Object.values(here.grads),
          ...Object.values(there.grads),
        ]);
      } finally {
        await workers.close();
        disposeReward(reward);
        tf.dispose([x0, eps, text, labels]);
      }
    });

    it('refuses what the workers cannot replicate, by name', async () => {
      const reward = makeReward();
      try {
        await expect(startPavrmWorkers(reward, { workers: 0 })).rejects.toThrow(
          /workers: expected an integer in \[1, 16\] \(the main thread and the worker threads\), got 0/,
        );
        const headOnly = Pavrm.forFeatures(16, { hidden: [8] });
        await expect(startPavrmWorkers(headOnly, { workers: 1 })).rejects.toThrow(
          /backbone has no replicaRecipe/,
        );
        headOnly.dispose();
        expect(() => new PavrmTrainer(reward, { workers: {} as never })).toThrow(/startPavrmWorkers/);
      } finally {
        disposeReward(reward);
      }
    });
  },
);

let snapshot: Pavrm | undefined;
/** A fresh (untrained) PAVRM of the same seed, to show that training moved the weights. */
function makeRewardSnapshot(): Pavrm {
  if (snapshot) disposeReward(snapshot);
  snapshot = makeReward();
  return snapshot;
}
