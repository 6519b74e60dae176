/**
 * `prfl train-reward`: a PAVRM (process-aware video reward model) on the weights' generator: the
 * generator's own videos of the training prompts, labelled by the oracle (or labelled latents in the
 * reference's data layout with --data), a copy of the DiT's first K blocks with query-attention pooling
 * and an MLP head, trained at every noise level; then judged per sigma bucket on held-out prompts and
 * seeds. Leaves a weights folder with the new PAVRM in the run folder (run-layout.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { formatPrompt, parsePrompt } from '@prfl/datasets';
import { wanDiTConfigFromJson } from '@prfl/models';
import { DIT_DIR, disposePavrm, type EmbeddedModels } from '@prfl/pretrained';
import { startGenerationWorkers } from '@prfl/pretrained/parallel';
import * as tf from '@tensorflow/tfjs-core';
import {
  evaluatePixelReward,
  type LabelledLatents,
  rewardGenerations,
  saveEmbedded,
  trainPixelReward,
  trainReward,
} from '@prfl/pretrained/recipe';
import { type BinaryMetrics, savePixelReward } from '@prfl/reward';
import type { ResolvedConfig } from '../config/resolve.js';
import { POOL_AGGREGATION } from '../config/schema.js';
import type { CommandContext } from '../context.js';
import { InterruptedError, UsageError } from '../errors.js';
import { readReferenceData } from '../reference-data.js';
import {
  evaluateReward,
  formatRewardEvaluation,
  heldOutGenerations,
  type RewardEvaluation,
} from '../reward-eval.js';
import { CHECKPOINTS_DIR, EVAL_FILE, PIXEL_REWARD_FILE, RUN_WEIGHTS_DIR } from '../run-layout.js';
import { type RunDir, writeTextAtomic } from '../run-dir.js';
import { openTrainingRun } from '../training-run.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';

/**
 * What the shipped PAVRM was made with (packages/pretrained's recipe), in place of the paper's 14B-scale
 * defaults: K = 2 of the tiny DiT's 4 blocks, a [64, 32] head at 1e-3, the blocks at 1e-4, batch 16,
 * 1500 steps, the embedded sampler (20 steps, guidance 4).
 */
export const TRAIN_REWARD_DEFAULTS = Object.freeze({
  'lrm.feature_layer': 2,
  'lrm.mlp_dim': 64,
  'optimizer.learning_rate': 1e-4,
  'optimizer.learning_rate_mlp': 1e-3,
  'optimizer.max_train_steps': 1500,
  'dataset.batch_size': 16,
  'train.seed': 1,
  'train.save_interval': 250,
  'prfl.sampling.num_steps': 20,
  'prfl.sampling.guidance_scale': 4,
});

export interface TrainRewardCommandOptions {
  /** 'latent' (default): a PAVRM; 'pixel': the RGB ReFL baseline's reward on decoded frames. */
  space?: string;
  /** Pixel space: decode 'all' frames (default) or the 'first' one, as RGB ReFL's decodeFrames will. */
  frames?: string;
  videos?: number;
  steps?: number;
  seed?: number;
  data?: string[];
  evalVideos?: number;
  weights?: string;
  runDir?: string;
  resume?: string;
  /** Options given on the command line (a resumed run refuses them: it keeps its own). */
  given?: readonly string[];
}

/** What a run keeps in command.json (paths absolute). */
interface SavedOptions {
  space: 'latent' | 'pixel';
  frames: 'all' | 'first';
  videos: number;
  evalVideos: number;
  weights: string;
  data: string[];
}

export interface TrainRewardResult {
  space: 'latent' | 'pixel';
  runDir: string;
  /** The weights folder with the new PAVRM (latent space), or the pixel reward's .safetensors file. */
  weights: string;
  backend: string;
  resumed: boolean;
  /** Labelled videos trained on, and the fraction good. */
  trainVideos: number;
  trainGoodRate: number;
  steps: number;
  blocks: number;
  pool: string;
  loss: string;
  /** Loss and accuracy of the last logged step. */
  final: { loss: number; accuracy: number } | null;
  evaluation: RewardEvaluation | null;
  /** Pixel space: the reward on clean decoded frames of held-out videos (no noise levels: it reads pixels). */
  pixelEvaluation: (BinaryMetrics & { videos: number; goodRate: number }) | null;
  elapsedMs: number;
}

/** The run's configuration: the embedded recipe's defaults < files < --set < the options. */
export function trainRewardConfig(
  ctx: CommandContext,
  o: TrainRewardCommandOptions,
): Promise<ResolvedConfig> {
  return ctx.config(
    [
      { key: 'optimizer.max_train_steps', value: o.steps, flag: '--steps' },
      { key: 'train.seed', value: o.seed, flag: '--seed' },
      { key: 'dataset.meta_file_list', value: o.data, flag: '--data' },
    ],
    { source: 'train-reward defaults (the embedded recipe)', values: TRAIN_REWARD_DEFAULTS },
  );
}

/** K of lrm.feature_layer against the DiT's blocks (the PAVRM copies the first K). */
function checkFeatureLayer(blocks: number, ditBlocks: number): void {
  if (blocks > ditBlocks) {
    throw new UsageError(`lrm.feature_layer: expected at most the DiT's ${ditBlocks} blocks, got ${blocks}`);
  }
}

/** The DiT's blocks in a weights folder, from its config.json (undefined when it has none). */
function ditBlocksOf(weights: string): number | undefined {
  const file = path.join(weights, DIT_DIR, 'config.json');
  if (!existsSync(file)) return undefined;
  return wanDiTConfigFromJson(JSON.parse(readFileSync(file, 'utf8'))).numLayers;
}

/**
 * Progress of a reward's training: a bar per phase (named by `names`), each step's loss and batch
 * accuracy in metrics.jsonl and on the bar; `final()` is the last step's.
 */
function trainingWatch(ctx: CommandContext, run: RunDir, names: Readonly<Record<string, string>>) {
  let phase = '';
  let final: TrainRewardResult['final'] = null;
  return {
    onProgress(p: { phase: string; done: number; total: number; loss?: number; accuracy?: number }): void {
      if (p.phase !== phase) {
        phase = p.phase;
        ctx.progress.phase(names[p.phase] ?? p.phase, p.total);
      }
      if (p.phase === 'train' && p.loss !== undefined) {
        final = { loss: p.loss, accuracy: p.accuracy ?? Number.NaN };
        run.metrics({ stage: 'train', step: p.done, loss: p.loss, accuracy: p.accuracy });
        ctx.progress.update(p.done, { loss: p.loss.toFixed(4), acc: final.accuracy.toFixed(3) });
      } else ctx.progress.update(p.done);
    },
    final: () => final,
  };
}

/** Labelled latents from reference-layout lists, checked against the models. */
async function listData(models: EmbeddedModels, lists: readonly string[]): Promise<LabelledLatents> {
  const { frames, height, width } = models.manifest.world;
  const [f, h, w] = models.vae.latentShape(frames, height, width);
  const read = await readReferenceData([...lists], {
    latentShape: [f, h, w, models.vae.latentChannels],
    textDim: models.textEncoder.textDim,
    textLength: models.textEncoder.config.textLen,
  });
  for (const p of read.prompts) parsePrompt(p);
  return {
    latents: read.latents,
    text: read.text,
    videos: read.prompts.map((prompt, i) => ({
      prompt: formatPrompt(parsePrompt(prompt)),
      motionGood: read.motionGood[i] as 0 | 1,
    })),
  };
}

export async function trainRewardCommand(
  ctx: CommandContext,
  o: TrainRewardCommandOptions,
): Promise<TrainRewardResult> {
  const began = performance.now();
  const { run, config, options, resumed } = await openTrainingRun<SavedOptions>(
    ctx,
    'train-reward',
    o,
    async () => {
      const config = await trainRewardConfig(ctx, o);
      const videos = o.videos ?? 768;
      const evalVideos = o.evalVideos ?? 112;
      const space = o.space ?? 'latent';
      const frames = o.frames ?? 'all';
      if (space !== 'latent' && space !== 'pixel') {
        throw new UsageError(`--space: expected latent or pixel, got ${JSON.stringify(space)}`);
      }
      if (frames !== 'all' && frames !== 'first') {
        throw new UsageError(`--frames: expected all or first, got ${JSON.stringify(frames)}`);
      }
      if (o.frames !== undefined && space !== 'pixel') {
        throw new UsageError('--frames is for --space pixel (a PAVRM reads latents, not frames)');
      }
      const weights = weightsFolder(o.weights !== undefined ? ctx.resolve(o.weights) : undefined);
      // Refuse a K the DiT cannot give before the run folder is made.
      const ditBlocks = ditBlocksOf(weights);
      if (ditBlocks !== undefined) checkFeatureLayer(config.number('lrm.feature_layer'), ditBlocks);
      return {
        config,
        options: {
          space,
          frames,
          videos,
          evalVideos,
          weights,
          data: (config.get<readonly string[] | null>('dataset.meta_file_list') ?? []).map((p) =>
            ctx.resolve(p),
          ),
        },
      };
    },
  );
  try {
    // Worker threads generate the videos and train the PAVRM (the pixel-space reward trains here).
    const workers = options.space === 'pixel' ? 1 : ctx.workers();
    const backend = await ctx.backend({ withWorkers: workers > 1 });
    ctx.progress.phase('load', 1);
    const models = await loadModels(options.weights, { reward: false });
    ctx.progress.update(1);
    try {
      const blocks = config.number('lrm.feature_layer');
      checkFeatureLayer(blocks, models.dit.config.numLayers);
      const steps = config.number('optimizer.max_train_steps');
      const pool = config.get<string>('lrm.pool');
      const loss = config.get<string>('lrm.loss');
      const mlp = config.number('lrm.mlp_dim');
      const seed = config.number('train.seed');
      const numSteps = config.number('prfl.sampling.num_steps');
      const guidanceScale = config.number('prfl.sampling.guidance_scale');
      const data = options.data.length > 0 ? await listData(models, options.data) : undefined;
      if (options.space === 'pixel') {
        return await trainPixelSpace(ctx, { models, config, options, run, data, backend, resumed, began });
      }
      const watch = trainingWatch(ctx, run, { generate: 'generate + label', train: 'train PAVRM' });
      if (workers > 1) {
        ctx.note(`train-reward: ${workers} worker threads (generation, data-parallel PAVRM training)`);
      }
      const generator =
        workers > 1 && data === undefined ? await startGenerationWorkers(models, { workers }) : undefined;
      const trained = await trainReward({
        workers,
        ...(generator === undefined ? {} : { generator }),
        models,
        world: models.manifest.world,
        seed,
        generations: options.videos,
        steps,
        batchSize: config.number('dataset.batch_size'),
        blocks,
        aggregation: POOL_AGGREGATION[pool as keyof typeof POOL_AGGREGATION],
        loss: loss === 'bt' ? 'bradley-terry' : 'bce',
        hidden: [mlp, Math.max(1, Math.floor(mlp / 2))],
        lrHead: config.number('optimizer.learning_rate_mlp'),
        lrBackbone: config.number('optimizer.learning_rate'),
        numSteps,
        guidanceScale,
        runDir: run.dir,
        checkpointDir: run.file(CHECKPOINTS_DIR),
        checkpointEvery: config.number('train.save_interval'),
        ...(data === undefined ? {} : { data }),
        onProgress: watch.onProgress,
        signal: ctx.signal,
      }).finally(() => generator?.close());
      try {
        if (trained.step < steps) {
          throw new InterruptedError(
            `train-reward stopped at step ${trained.step} of ${steps}; continue with prfl train-reward --resume ${run.dir}`,
          );
        }
        ctx.progress.end();
        let evaluation: RewardEvaluation | null = null;
        if (options.evalVideos > 0) {
          ctx.progress.phase('held-out videos', options.evalVideos);
          const held = await heldOutGenerations(models, {
            videos: options.evalVideos,
            seed,
            numSteps,
            guidanceScale,
            onProgress: (d) => ctx.progress.update(d),
          });
          try {
            evaluation = await evaluateReward(trained.reward, held, {
              seed,
              source: 'held-out prompts and seeds, labelled by the oracle',
            });
          } finally {
            held.latents.dispose();
            held.text.dispose();
          }
          ctx.progress.end();
          await writeTextAtomic(run.file(EVAL_FILE), `${JSON.stringify(evaluation, null, 2)}\n`);
          run.metrics({ stage: 'eval', ...evaluation });
        }
        const weights = run.file(RUN_WEIGHTS_DIR);
        await saveEmbedded({ ...models, reward: trained.reward }, weights, {
          world: models.manifest.world,
          recipe: {
            ...models.manifest.recipe,
            reward: {
              command: 'prfl train-reward',
              from: options.weights,
              config: config.flat(),
              videos: trained.videos.length,
              data:
                options.data.length > 0 ? options.data : 'the generator’s own videos, labelled by the oracle',
            },
          },
          rewardBlocks: blocks,
          ...(evaluation === null ? {} : { quality: { reward: evaluation } }),
        });
        const good = trained.videos.filter((v) => v.motionGood === 1).length;
        return {
          space: 'latent',
          runDir: run.dir,
          weights,
          backend,
          resumed,
          trainVideos: trained.videos.length,
          trainGoodRate: good / trained.videos.length,
          steps: trained.step,
          blocks,
          pool,
          loss,
          final: watch.final(),
          evaluation,
          pixelEvaluation: null,
          elapsedMs: Math.round(performance.now() - began),
        };
      } finally {
        disposePavrm(trained.reward);
      }
    } finally {
      disposeEmbedded(models);
    }
  } finally {
    run.close();
  }
}

/** The pixel reward of the RGB ReFL baseline, on decoded frames of the same labelled videos. */
async function trainPixelSpace(
  ctx: CommandContext,
  a: {
    models: EmbeddedModels;
    config: ResolvedConfig;
    options: SavedOptions;
    run: RunDir;
    data: LabelledLatents | undefined;
    backend: string;
    resumed: boolean;
    began: number;
  },
): Promise<TrainRewardResult> {
  const { models, config, options, run } = a;
  const seed = config.number('train.seed');
  const numSteps = config.number('prfl.sampling.num_steps');
  const guidanceScale = config.number('prfl.sampling.guidance_scale');
  const steps = config.number('optimizer.max_train_steps');
  let data = a.data;
  if (data === undefined) {
    ctx.progress.phase('generate + label', options.videos);
    data = await rewardGenerations(
      {
        models,
        world: models.manifest.world,
        seed,
        generations: options.videos,
        numSteps,
        guidanceScale,
        runDir: run.dir,
      },
      (d) => ctx.progress.update(d),
    );
  }
  const watch = trainingWatch(ctx, run, { decode: 'decode frames', train: 'train pixel reward' });
  let trained: Awaited<ReturnType<typeof trainPixelReward>>;
  try {
    trained = await trainPixelReward({
      vae: models.vae,
      data,
      frames: options.frames,
      steps,
      batchSize: config.number('dataset.batch_size'),
      lr: config.number('optimizer.learning_rate_mlp'),
      seed,
      checkpointDir: run.file(CHECKPOINTS_DIR),
      checkpointEvery: config.number('train.save_interval'),
      onProgress: watch.onProgress,
      signal: ctx.signal,
    });
  } finally {
    tf.dispose([data.latents, data.text]);
  }
  const videos = data.videos;
  try {
    if (trained.step < steps) {
      throw new InterruptedError(
        `train-reward stopped at step ${trained.step} of ${steps}; continue with prfl train-reward --resume ${run.dir}`,
      );
    }
    ctx.progress.end();
    let pixelEvaluation: TrainRewardResult['pixelEvaluation'] = null;
    if (options.evalVideos > 0) {
      ctx.progress.phase('held-out videos', options.evalVideos);
      const held = await heldOutGenerations(models, {
        videos: options.evalVideos,
        seed,
        numSteps,
        guidanceScale,
        onProgress: (d) => ctx.progress.update(d),
      });
      try {
        const m = await evaluatePixelReward(trained.reward, models.vae, held, options.frames);
        const good = held.videos.filter((v) => v.motionGood === 1).length;
        pixelEvaluation = { ...m, videos: held.videos.length, goodRate: good / held.videos.length };
      } finally {
        tf.dispose([held.latents, held.text]);
      }
      ctx.progress.end();
      await writeTextAtomic(run.file(EVAL_FILE), `${JSON.stringify(pixelEvaluation, null, 2)}\n`);
      run.metrics({ stage: 'eval', ...pixelEvaluation });
    }
    const file = run.file(PIXEL_REWARD_FILE);
    await savePixelReward(trained.reward, file);
    const good = videos.filter((v) => v.motionGood === 1).length;
    return {
      space: 'pixel',
      runDir: run.dir,
      weights: file,
      backend: a.backend,
      resumed: a.resumed,
      trainVideos: videos.length,
      trainGoodRate: good / videos.length,
      steps: trained.step,
      blocks: 0,
      pool: 'mean',
      loss: 'ce',
      final: watch.final(),
      evaluation: null,
      pixelEvaluation,
      elapsedMs: Math.round(performance.now() - a.began),
    };
  } finally {
    trained.reward.dispose();
  }
}

export function formatTrainReward(r: TrainRewardResult): string {
  const what =
    r.space === 'pixel'
      ? 'a pixel reward (3-D convolutions on decoded frames)'
      : `a PAVRM (K ${r.blocks} blocks, ${r.pool} pooling, ${r.loss} loss)`;
  const lines = [
    `trained ${what} for ${r.steps} steps on ` +
      `${r.trainVideos} labelled videos (${(100 * r.trainGoodRate).toFixed(1)}% good), ${r.backend}, ` +
      `${(r.elapsedMs / 1000).toFixed(1)} s${r.resumed ? ' (resumed)' : ''}`,
  ];
  if (r.final !== null) {
    lines.push(
      `last step: loss ${r.final.loss.toFixed(4)}, batch accuracy ${(100 * r.final.accuracy).toFixed(1)}%`,
    );
  }
  if (r.evaluation !== null) lines.push(formatRewardEvaluation(r.evaluation).trimEnd());
  const e = r.pixelEvaluation;
  if (e !== null) {
    lines.push(
      `${e.videos} held-out videos (${(100 * e.goodRate).toFixed(1)}% good), clean frames: accuracy ${(100 * e.accuracy).toFixed(1)}%, ` +
        `roc-auc ${Number.isFinite(e.rocAuc) ? e.rocAuc.toFixed(3) : 'n/a (one label)'}`,
    );
  }
  lines.push(
    r.space === 'pixel'
      ? `pixel reward: ${r.weights}  (prfl train --method rgb-refl --pixel-reward ${r.weights})`
      : `weights: ${r.weights}  (use them in any command with --weights)`,
  );
  lines.push(`run folder: ${r.runDir}`);
  return `${lines.join('\n')}\n`;
}
