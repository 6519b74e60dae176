/**
 * A few PRFL steps in the page (docs/method.md §5), wired as `prfl demo` and `finetuneWithPrfl` wire them:
 * the DiT trains, the shipped PAVRM is the frozen reward (its backbone is a copy of the DiT's first
 * blocks, so it does not move with the DiT), the SFT term learns from good-motion clips of the world's
 * training prompts rendered and encoded in the page (sft-data.ts), the text encoder stays frozen. Each
 * micro-step: the SFT term,
 * an untaped rollout to a random step k of the page's sampling schedule, step k under the tape, the
 * reward of x_{k+1} at t_{k+1}, the hinge, clipping and one AdamW update. The browser gets a turn after
 * every micro-step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeVideoBatch, type PrflStepMetrics, PrflTrainer, tensorVideoSource } from '@prfl/refl';
import type { StartedBackend } from './backend.js';
import type { ChainModels } from './chain.js';
import { sftClips } from './sft-data.js';
import { yieldToBrowser } from './yield.js';

export interface FinetuneRequest {
  /** PRFL micro-steps (one AdamW update each) and videos per micro-step. */
  steps: number;
  batchSize: number;
  lr: number;
  /** Good-motion clips of the training prompts for the SFT term (and the rollouts' prompts). */
  clips: number;
  /** Steps of the rollout schedule: the page's sampling steps, so k is a step of the chain it shows. */
  rolloutSteps: number;
  seed: number;
}

export interface FinetuneResult {
  metrics: PrflStepMetrics[];
  /** Wall time of rendering and encoding the clips, and of the micro-steps. */
  msData: number;
  msTraining: number;
}

export async function finetune(
  models: ChainModels,
  backend: StartedBackend,
  request: FinetuneRequest,
  onStep: (m: PrflStepMetrics) => void,
  onData?: () => void,
): Promise<FinetuneResult> {
  const t0 = performance.now();
  const data = await sftClips(models, backend, request.clips, request.seed);
  const empty = models.textEncoder.encode(['']);
  empty.mask.dispose();
  const msData = performance.now() - t0;
  onData?.();
  await yieldToBrowser();
  const variables = [...models.dit.namedVariables().values()];
  const wasTrainable = variables.map((v) => v.trainable);
  for (const v of variables) v.trainable = true;
  const metrics: PrflStepMetrics[] = [];
  let trainer: PrflTrainer | undefined;
  const t1 = performance.now();
  try {
    trainer = new PrflTrainer(
      { generator: models.dit, reward: models.reward, nullConditioning: { text: empty.text } },
      {
        lr: request.lr,
        accumulationSteps: 1,
        numSteps: request.rolloutSteps,
        seed: request.seed,
        measureMemory: false,
      },
    );
    const source = tensorVideoSource({ latents: data.latents, conditioning: { text: data.text } });
    for (let epoch = 0; metrics.length < request.steps; epoch++) {
      const batches = source.batches({
        batchSize: request.batchSize,
        seed: request.seed,
        epoch,
        shuffle: true,
        dropLast: true,
      });
      for await (const batch of batches) {
        try {
          if (metrics.length >= request.steps) break;
          const m = trainer.trainStep(batch);
          metrics.push(m);
          onStep(m);
        } finally {
          disposeVideoBatch(batch);
        }
        await yieldToBrowser();
      }
    }
    return { metrics, msData, msTraining: performance.now() - t1 };
  } finally {
    trainer?.dispose();
    variables.forEach((v, i) => {
      v.trainable = wasTrainable[i] as boolean;
    });
    tf.dispose([data.latents, data.text, empty.text]);
  }
}
