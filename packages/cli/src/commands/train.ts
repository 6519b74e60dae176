/**
 * `prfl train --method prfl|sft|rwr|rgb-refl`: fine-tunes the generator of a weights folder, then judges
 * it against the base on held-out prompts and seeds with the oracle.
 *
 *   prfl      the PAVRM's reward on noisy latents, back-propagated through one denoising step at a random
 *             k, plus the SFT term on good clips (the paper's method);
 *   sft       flow matching on good clips alone;
 *   rwr       reward-weighted regression: flow matching on clips with and without motion defects, each
 *             weighted by the softmax of its PAVRM reward over the batch;
 *   rgb-refl  the baseline: the latent decoded to frames (first frame by default), a pixel reward on
 *             them, late steps only (--pixel-reward FILE, made by `prfl train-reward --space pixel`).
 *
 * Training checkpoints in the run folder and resumes exactly (--resume RUN); the fine-tuned models are
 * written as a weights folder (run-layout.ts) that every command loads with --weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { formatPrompt } from '@prfl/datasets';
import {
  type EmbeddedModels,
  finetuneWithPrfl,
  generateJudged,
  type Rate,
  worldPrompts,
} from '@prfl/pretrained';
import { saveEmbedded } from '@prfl/pretrained/recipe';
import {
  type PrflStepMetrics,
  type PrflTrainerOptions,
  RGB_REFL_PRESET,
  RWR_PRESET,
  SFT_PRESET,
  type StepRange,
} from '@prfl/refl';
import { loadPixelReward } from '@prfl/reward';
import type { LatentRewardModel, LatentVideo } from '@prfl/tensor';
import type { ResolvedConfig } from '../config/resolve.js';
import type { CommandContext } from '../context.js';
import { ConfigError, InterruptedError, UsageError } from '../errors.js';
import { type OracleRates, oracleRates } from '../oracle-rates.js';
import { readReferenceData } from '../reference-data.js';
import { CHECKPOINTS_DIR, EVAL_FILE, RUN_WEIGHTS_DIR } from '../run-layout.js';
import { writeTextAtomic } from '../run-dir.js';
import { openTrainingRun } from '../training-run.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';

export const TRAIN_METHODS = Object.freeze(['prfl', 'sft', 'rwr', 'rgb-refl'] as const);
export type TrainMethod = (typeof TRAIN_METHODS)[number];

/**
 * The embedded models' scale in place of the paper's 14B one (what `prfl demo` uses): lr 5e-5, batch 4,
 * one micro-step per update, 70 steps, the embedded sampler's 20 steps.
 */
export const TRAIN_DEFAULTS = Object.freeze({
  'optimizer.learning_rate': 5e-5,
  'optimizer.max_train_steps': 70,
  'dataset.batch_size': 4,
  'train.gradient_accumulation_steps': 1,
  'train.seed': 1,
  'train.save_interval': 20,
  'prfl.sampling.num_steps': 20,
  'prfl.sampling.guidance_scale': 4,
});

export interface TrainCommandOptions {
  method: string;
  steps?: number;
  seed?: number;
  clips: number;
  kRange?: string;
  evalVideos: number;
  pixelReward?: string;
  data?: string[];
  weights?: string;
  runDir?: string;
  resume?: string;
  /** Options given on the command line (a resumed run refuses them: it keeps its own). */
  given?: readonly string[];
}

interface SavedOptions {
  method: TrainMethod;
  clips: number;
  kRange: string | null;
  evalVideos: number;
  pixelReward: string | null;
  /** Reference-layout lists to train on instead of rendered clips (absolute paths). */
  data: string[];
  weights: string;
}

export type { OracleRates };

export interface TrainResult {
  method: TrainMethod;
  runDir: string;
  weights: string;
  backend: string;
  resumed: boolean;
  steps: number;
  /** Last logged step's loss and reward (reward null for sft). */
  final: { loss: number; reward: number | null } | null;
  /** Base and fine-tuned generator on the same held-out prompts and seeds (null with --eval-videos 0). */
  before: OracleRates | null;
  after: OracleRates | null;
  /** after - before in percentage points. */
  delta: { motionGood: number; adherence: number } | null;
  elapsedMs: number;
}

const K_RANGES = ['full', 'early', 'middle', 'late'];

function checkMethod(method: string): TrainMethod {
  if (!(TRAIN_METHODS as readonly string[]).includes(method)) {
    throw new UsageError(
      `--method: expected one of ${TRAIN_METHODS.join(', ')}, got ${JSON.stringify(method)}`,
    );
  }
  return method as TrainMethod;
}

/** The trainer options of the configuration (keys a trainer of this command cannot honour are refused). */
export function trainerOptions(
  config: ResolvedConfig,
  method: TrainMethod,
  kRange: string | null,
): PrflTrainerOptions {
  if (config.get<boolean>('model.lora.use_lora')) {
    throw new ConfigError(
      'model.lora.use_lora: `prfl train` fine-tunes the whole DiT of the weights folder (expected false, got true); LoRA training is in @prfl/refl (PrflTrainer option lora)',
    );
  }
  if (config.get<boolean>('model.ema.use_ema')) {
    throw new ConfigError(
      'model.ema.use_ema: `prfl train` writes the trained weights themselves (expected false, got true); an EMA is in @prfl/refl (PrflTrainer option emaDecay)',
    );
  }
  const preset =
    method === 'sft'
      ? SFT_PRESET
      : method === 'rwr'
        ? RWR_PRESET
        : method === 'rgb-refl'
          ? RGB_REFL_PRESET
          : {};
  const o: PrflTrainerOptions = {
    lr: config.number('optimizer.learning_rate'),
    betas: [config.number('optimizer.adam_beta1'), config.number('optimizer.adam_beta2')],
    weightDecay: config.number('optimizer.weight_decay'),
    accumulationSteps: config.number('train.gradient_accumulation_steps'),
    maxGradNorm: config.get<number | null>('prfl.max_grad_norm'),
    sftWeight: config.number('prfl.sft_weight'),
    rewardWeight: config.number('prfl.reward_weight'),
    hingeTarget: config.number('prfl.hinge_target'),
    textDropout: config.number('dataset.uncond_prob'),
    numSteps: config.number('prfl.sampling.num_steps'),
    shift: config.number('extra_model.scheduler.flow_shift'),
    gradientCheckpointing: config.get<boolean>('model.gradient_checkpointing') ? true : null,
    seed: config.number('train.seed'),
    measureMemory: false,
    ...preset,
  };
  if (kRange !== null) o.stepRange = kRange as StepRange;
  // The presets' reward weight (0 for sft and rwr) wins; rgb-refl keeps the configured one.
  if (method === 'sft' || method === 'rwr') o.rewardWeight = 0;
  return o;
}

/** The held-out prompts (cycled) and the seed every evaluation of the run uses. */
function judgeHeldOut(
  ctx: CommandContext,
  models: EmbeddedModels,
  config: ResolvedConfig,
  count: number,
  label: string,
): Promise<OracleRates> {
  const heldOut = worldPrompts(models.manifest.world, 'held-out').map(formatPrompt);
  const prompts = Array.from({ length: count }, (_, i) => heldOut[i % heldOut.length] as string);
  ctx.progress.phase(label, count);
  return generateJudged(models, {
    prompts,
    seed: `${config.number('train.seed')}/train-eval`,
    numSteps: config.number('prfl.sampling.num_steps'),
    guidanceScale: config.number('prfl.sampling.guidance_scale'),
    onProgress: (d) => ctx.progress.update(d),
  }).then((g) => {
    tf.dispose([g.latents, g.text]);
    ctx.progress.end();
    return oracleRates(g.videos);
  });
}

/**
 * Training clips from reference-layout lists: the good ones (labelled good motion) for the SFT term of
 * prfl, rgb-refl and sft; all of them for rwr, which weights each by its reward.
 */
async function listClips(
  models: EmbeddedModels,
  lists: readonly string[],
  method: TrainMethod,
): Promise<{ latents: LatentVideo; text: tf.Tensor3D }> {
  const { frames, height, width } = models.manifest.world;
  const [f, h, w] = models.vae.latentShape(frames, height, width);
  const read = await readReferenceData([...lists], {
    latentShape: [f, h, w, models.vae.latentChannels],
    textDim: models.textEncoder.textDim,
    textLength: models.textEncoder.config.textLen,
  });
  if (method === 'rwr') return { latents: read.latents, text: read.text };
  const keep = read.motionGood.flatMap((g, i) => (g === 1 ? [i] : []));
  if (keep.length === 0) {
    tf.dispose([read.latents, read.text]);
    throw new UsageError(
      `--data ${lists.join(' ')}: no clip is labelled good motion (physics_quality and human_quality); --method ${method} trains on good clips`,
    );
  }
  const idx = tf.tensor1d(keep, 'int32');
  const out = {
    latents: tf.gather(read.latents, idx) as LatentVideo,
    text: tf.gather(read.text, idx) as tf.Tensor3D,
  };
  tf.dispose([idx, read.latents, read.text]);
  return out;
}

export async function trainCommand(ctx: CommandContext, o: TrainCommandOptions): Promise<TrainResult> {
  const began = performance.now();
  const { run, config, options, resumed } = await openTrainingRun<SavedOptions>(ctx, 'train', o, async () => {
    const method = checkMethod(o.method);
    if (o.kRange !== undefined && !K_RANGES.includes(o.kRange)) {
      throw new UsageError(
        `--k-range: expected one of ${K_RANGES.join(', ')}, got ${JSON.stringify(o.kRange)}`,
      );
    }
    if (method === 'rgb-refl' && o.pixelReward === undefined) {
      throw new UsageError(
        '--method rgb-refl needs --pixel-reward FILE: a pixel reward on decoded frames (a .safetensors) (make one with prfl train-reward --space pixel)',
      );
    }
    if (method !== 'rgb-refl' && o.pixelReward !== undefined) {
      throw new UsageError(`--pixel-reward is for --method rgb-refl, not ${method}`);
    }
    for (const [flag, v, min] of [
      ['--clips', o.clips, 1],
      ['--eval-videos', o.evalVideos, 0],
    ] as const) {
      if (!Number.isInteger(v) || v < min)
        throw new UsageError(`${flag}: expected an integer >= ${min}, got ${v}`);
    }
    const config = await ctx.config(
      [
        { key: 'optimizer.max_train_steps', value: o.steps, flag: '--steps' },
        { key: 'train.seed', value: o.seed, flag: '--seed' },
        { key: 'dataset.meta_file_list', value: o.data, flag: '--data' },
      ],
      { source: 'train defaults (the embedded models)', values: TRAIN_DEFAULTS },
    );
    trainerOptions(config, method, o.kRange ?? null); // Refuse what cannot run before the folder is made.
    const pixelReward = o.pixelReward === undefined ? null : ctx.resolve(o.pixelReward);
    if (pixelReward !== null && !existsSync(pixelReward)) {
      throw new UsageError(`--pixel-reward ${o.pixelReward}: no such file`);
    }
    return {
      config,
      options: {
        method,
        clips: o.clips,
        kRange: o.kRange ?? null,
        evalVideos: o.evalVideos,
        pixelReward,
        data: (config.get<readonly string[] | null>('dataset.meta_file_list') ?? []).map((p) =>
          ctx.resolve(p),
        ),
        weights: weightsFolder(o.weights !== undefined ? ctx.resolve(o.weights) : undefined),
      },
    };
  });
  // Worker threads train every method but RGB ReFL (its pixel readout runs in one process).
  const workers = options.method === 'rgb-refl' ? 1 : ctx.workers();
  try {
    const backend = await ctx.backend({ withWorkers: workers > 1 });
    if (workers > 1)
      ctx.note(`train: ${workers}-way data parallel (this thread and ${workers - 1} worker threads)`);
    ctx.progress.phase('load', 1);
    const models = await loadModels(options.weights);
    ctx.progress.update(1);
    let pixel: (LatentRewardModel & { dispose(): void }) | undefined;
    try {
      const method = options.method;
      if (method === 'prfl' || method === 'rwr') {
        if (models.reward === undefined) {
          throw new UsageError(
            `--weights ${options.weights}: --method ${method} needs the folder's PAVRM (pavrm/), and it has none`,
          );
        }
      }
      if (options.pixelReward !== null) pixel = await loadPixelReward(options.pixelReward);
      const steps = config.number('optimizer.max_train_steps');
      const evalVideos = options.evalVideos;
      const beforeFile = run.file('eval-before.json');
      let before: OracleRates | null = null;
      if (evalVideos > 0) {
        // The base is judged once per run; a resumed run reads it back.
        if (existsSync(beforeFile)) {
          before = JSON.parse(readFileSync(beforeFile, 'utf8')) as OracleRates;
        } else {
          before = await judgeHeldOut(ctx, models, config, evalVideos, 'judge the base');
          await writeTextAtomic(beforeFile, `${JSON.stringify(before, null, 2)}\n`);
        }
      }
      let final: TrainResult['final'] = null;
      ctx.progress.phase(`train (${method})`, steps);
      const reward = method === 'rgb-refl' ? pixel : method === 'sft' ? undefined : models.reward;
      const data = options.data.length > 0 ? await listClips(models, options.data, method) : undefined;
      const result = await finetuneWithPrfl({
        models,
        ...(data === undefined ? {} : { data }),
        ...(reward === undefined ? {} : { reward }),
        world: models.manifest.world,
        steps,
        batchSize: config.number('dataset.batch_size'),
        clips: options.clips,
        clipMotionDefectRate: method === 'rwr' ? 0.5 : 0,
        ...(method === 'rgb-refl' ? { decoder: models.vae } : {}),
        seed: config.number('train.seed'),
        workers,
        prfl: trainerOptions(config, method, options.kRange),
        checkpointDir: run.file(CHECKPOINTS_DIR),
        checkpointEvery: config.number('train.save_interval'),
        onStep: (m: PrflStepMetrics) => {
          const r = method === 'sft' || method === 'rwr' ? null : m.reward.mean;
          final = { loss: m.loss, reward: r };
          run.metrics({ stage: 'train', step: m.step, loss: m.loss, reward: r, k: m.k, sigma: m.sigmaNext });
          ctx.progress.update(m.step, {
            loss: m.loss.toFixed(4),
            ...(r === null ? {} : { reward: r.toFixed(3) }),
          });
        },
        signal: ctx.signal,
      });
      if (result.step < steps) {
        throw new InterruptedError(
          `train stopped at step ${result.step} of ${steps}; continue with prfl train --resume ${run.dir}`,
        );
      }
      ctx.progress.end();
      const after =
        evalVideos > 0 ? await judgeHeldOut(ctx, models, config, evalVideos, 'judge the fine-tuned') : null;
      const delta =
        before !== null && after !== null
          ? {
              motionGood: 100 * (after.motionGood.rate - before.motionGood.rate),
              adherence: 100 * (after.adherence.rate - before.adherence.rate),
            }
          : null;
      const weights = run.file(RUN_WEIGHTS_DIR);
      if (models.reward === undefined) {
        throw new UsageError(
          `--weights ${options.weights}: the folder has no PAVRM; a weights folder needs one`,
        );
      }
      await saveEmbedded(
        { vae: models.vae, textEncoder: models.textEncoder, dit: models.dit, reward: models.reward },
        weights,
        {
          world: models.manifest.world,
          recipe: {
            ...models.manifest.recipe,
            finetune: {
              command: `prfl train --method ${method}`,
              from: options.weights,
              config: config.flat(),
            },
          },
          rewardBlocks: models.manifest.rewardBlocks,
          ...(after === null ? {} : { quality: { finetune: { method, before, after, delta } } }),
        },
        // The PAVRM was trained on the base DiT: keep its own embeddings, not the fine-tuned DiT's.
        { rewardBackbone: 'all' },
      );
      const out: TrainResult = {
        method,
        runDir: run.dir,
        weights,
        backend,
        resumed,
        steps: result.step,
        final,
        before,
        after,
        delta,
        elapsedMs: Math.round(performance.now() - began),
      };
      await writeTextAtomic(
        run.file(EVAL_FILE),
        `${JSON.stringify({ method, before, after, delta }, null, 2)}\n`,
      );
      return out;
    } finally {
      pixel?.dispose();
      disposeEmbedded(models);
    }
  } finally {
    run.close();
  }
}

const pct = (r: Rate) =>
  `${(100 * r.rate).toFixed(1)}% [${(100 * r.low).toFixed(1)}, ${(100 * r.high).toFixed(1)}]`;

export function formatTrain(r: TrainResult): string {
  const lines = [
    `fine-tuned with ${r.method} for ${r.steps} steps, ${r.backend}, ${(r.elapsedMs / 1000).toFixed(1)} s${r.resumed ? ' (resumed)' : ''}`,
  ];
  if (r.final !== null) {
    lines.push(
      `last step: loss ${r.final.loss.toFixed(4)}${r.final.reward === null ? '' : `, reward ${r.final.reward.toFixed(3)}`}`,
    );
  }
  if (r.before !== null && r.after !== null && r.delta !== null) {
    lines.push(
      'held-out prompts and seeds, judged by the oracle (95% intervals):',
      `  motion good   base ${pct(r.before.motionGood)}  ->  ${pct(r.after.motionGood)}  (${r.delta.motionGood >= 0 ? '+' : ''}${r.delta.motionGood.toFixed(1)} points)`,
      `  adherence     base ${pct(r.before.adherence)}  ->  ${pct(r.after.adherence)}  (${r.delta.adherence >= 0 ? '+' : ''}${r.delta.adherence.toFixed(1)} points)`,
    );
  }
  lines.push(`weights: ${r.weights}  (use them in any command with --weights)`, `run folder: ${r.runDir}`);
  return `${lines.join('\n')}\n`;
}
