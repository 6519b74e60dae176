/**
 * `prfl eval-reward`: the PAVRM of a weights folder judged the paper's way (five sigma buckets, one
 * random sigma per bucket per video; accuracy and ROC-AUC per bucket) on held-out prompts and seeds of
 * its own generator labelled by the oracle, or on labelled latents in the reference's data layout
 * (--data, config dataset.val_meta_file_list).
 */
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { readReferenceData } from '../reference-data.js';
import {
  evaluateReward,
  formatRewardEvaluation,
  heldOutGenerations,
  type RewardEvaluation,
} from '../reward-eval.js';
import { EVAL_FILE } from '../run-layout.js';
import { defaultRunDir, RunDir, writeTextAtomic } from '../run-dir.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';

export interface EvalRewardCommandOptions {
  videos: number;
  seed?: number;
  steps?: number;
  guidance?: number;
  data?: string[];
  weights?: string;
  runDir?: string;
}

export interface EvalRewardResult extends RewardEvaluation {
  weights: string;
  runDir: string;
  backend: string;
  elapsedMs: number;
}

export async function evalRewardCommand(
  ctx: CommandContext,
  o: EvalRewardCommandOptions,
): Promise<EvalRewardResult> {
  const began = performance.now();
  if (!Number.isInteger(o.videos) || o.videos < 1) {
    throw new UsageError(`--videos: expected a positive integer, got ${o.videos}`);
  }
  const config = await ctx.config(
    [
      { key: 'eval.seed', value: o.seed, flag: '--seed' },
      { key: 'prfl.sampling.num_steps', value: o.steps, flag: '--steps' },
      { key: 'prfl.sampling.guidance_scale', value: o.guidance, flag: '--guidance' },
      { key: 'dataset.val_meta_file_list', value: o.data, flag: '--data' },
    ],
    {
      source: 'eval-reward defaults (the embedded sampler)',
      values: { 'prfl.sampling.num_steps': 20, 'prfl.sampling.guidance_scale': 4, 'eval.seed': 1 },
    },
  );
  const weights = weightsFolder(o.weights !== undefined ? ctx.resolve(o.weights) : undefined);
  const lists = (config.get<readonly string[] | null>('dataset.val_meta_file_list') ?? []).map((p) =>
    ctx.resolve(p),
  );
  const run = await RunDir.open(
    o.runDir !== undefined ? ctx.resolve(o.runDir) : defaultRunDir(ctx.io.cwd, 'eval-reward', ctx.io.now()),
    config,
  );
  try {
    const backend = await ctx.backend();
    ctx.progress.phase('load', 1);
    const models = await loadModels(weights);
    ctx.progress.update(1);
    try {
      const reward = models.reward;
      if (reward === undefined) {
        throw new UsageError(
          `--weights ${weights}: the folder has no PAVRM (pavrm/); train one with prfl train-reward`,
        );
      }
      const seed = config.number('eval.seed');
      let evaluation: RewardEvaluation;
      if (lists.length > 0) {
        const { frames, height, width } = models.manifest.world;
        const [f, h, w] = models.vae.latentShape(frames, height, width);
        const read = await readReferenceData(lists, {
          latentShape: [f, h, w, models.vae.latentChannels],
          textDim: models.textEncoder.textDim,
          textLength: models.textEncoder.config.textLen,
        });
        try {
          evaluation = await evaluateReward(
            reward,
            {
              latents: read.latents,
              text: read.text,
              videos: read.prompts.map((prompt, i) => ({ prompt, motionGood: read.motionGood[i] as 0 | 1 })),
            },
            { seed, source: lists.join(', ') },
          );
        } finally {
          read.latents.dispose();
          read.text.dispose();
        }
      } else {
        ctx.progress.phase('held-out videos', o.videos);
        const held = await heldOutGenerations(models, {
          videos: o.videos,
          seed,
          numSteps: config.number('prfl.sampling.num_steps'),
          guidanceScale: config.number('prfl.sampling.guidance_scale'),
          onProgress: (d) => ctx.progress.update(d),
        });
        try {
          ctx.progress.end();
          evaluation = await evaluateReward(reward, held, {
            seed,
            source: 'held-out prompts and seeds, labelled by the oracle',
          });
        } finally {
          held.latents.dispose();
          held.text.dispose();
        }
      }
      await writeTextAtomic(run.file(EVAL_FILE), `${JSON.stringify(evaluation, null, 2)}\n`);
      run.metrics({ stage: 'eval', ...evaluation });
      return {
        ...evaluation,
        weights,
        runDir: run.dir,
        backend,
        elapsedMs: Math.round(performance.now() - began),
      };
    } finally {
      disposeEmbedded(models);
    }
  } finally {
    run.close();
  }
}

export function formatEvalReward(r: EvalRewardResult): string {
  return (
    `PAVRM of ${r.weights}, ${r.backend}, ${(r.elapsedMs / 1000).toFixed(1)} s\n` +
    formatRewardEvaluation(r) +
    `run folder: ${r.runDir}\n`
  );
}
