/**
 * `prfl sample`: inference-time process reward. N seeds of one prompt are denoised together; after
 * STEP sampling steps the PAVRM scores every seed's noisy latent at the timestep it has reached, the top
 * K (or those above a probability threshold) survive and only they are finished, decoded, written as
 * GIFs and judged by the MovingShapes oracle. The DiT evaluations the dropped seeds never ran are the
 * savings. `--compare` also finishes every seed without pruning and sets three strategies side by side
 * (no pruning, early pruning, best-of-N by the PAVRM on the clean latents), each with its oracle
 * motion-good rate and its compute.
 */
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { encodePng, frameStrip, judgeVideo, parsePrompt, type Video } from '@prfl/datasets';
import { type EmbeddedModels, type JudgedVideo, judged } from '@prfl/pretrained';
import {
  type ComputeReport,
  disposeConditioning,
  type EarlyPruningResult,
  type KeepRule,
  pruneByReward,
} from '@prfl/reward';
import { timestep as asTimestep, type LatentVideo } from '@prfl/tensor';
import type { ResolvedConfig } from '../config/resolve.js';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { encodeGif } from '../gif.js';
import { defaultRunDir, RunDir, writeBytesAtomic, writeTextAtomic } from '../run-dir.js';
import {
  prepareSampling,
  type SeedSampling,
  sampleWithoutPruning,
  sampleWithPruning,
} from '../sample/prune.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';

/** The embedded generator's own sampling recipe (generateJudged's), used unless a flag or config says otherwise. */
export const SAMPLE_DEFAULTS = Object.freeze({ steps: 20, guidance: 4 });

/** Frames per second and upscaling of the GIFs; the contact sheets' upscaling. */
const GIF = { fps: 8, scale: 4 } as const;
const SHEET_SCALE = 2;

/** The options of `prfl sample`, as commander parses them. */
export interface SampleCommandOptions {
  prompt: string;
  /** N: seeds sampled together. */
  seeds: number;
  /** STEP: prune after this many sampling steps (default: a quarter of the steps). */
  pruneAt?: number;
  /** K: seeds kept (default N / 4, at least 1). */
  keep?: number;
  /** Keep the seeds whose reward probability is >= this instead (at least the best one). */
  threshold?: number;
  steps?: number;
  guidance?: number;
  seed?: number;
  weights?: string;
  runDir?: string;
  compare?: boolean;
}

/** One seed. */
export interface SampledSeed {
  /** Its position i among the N seeds; its noise is drawn from `seed`. */
  index: number;
  seed: string;
  /** The PAVRM's probability of good motion for its noisy latent at the pruning point. */
  reward: number;
  kept: boolean;
  /** Kept seeds: the GIF (in the run folder) and the oracle's verdicts on the finished video. */
  gif?: string;
  motionGood?: 0 | 1;
  adherent?: 0 | 1;
  motionScore?: number;
  adherenceScore?: number;
  /** --compare: the same seed finished without pruning, judged, and scored by the PAVRM when clean. */
  unpruned?: {
    motionGood: 0 | 1;
    adherent: 0 | 1;
    motionScore: number;
    adherenceScore: number;
    /** The PAVRM's probability at timestep 0 (the clean latent). */
    finalReward: number;
    /** Chosen by best-of-N. */
    bestOfN: boolean;
  };
}

/** What one way of choosing videos delivered and what it cost. */
export interface StrategyOutcome {
  /** The seeds (indices) whose videos it delivers. */
  selected: number[];
  /** The oracle's rates over those videos. */
  motionGoodRate: number;
  adherentRate: number;
  /** DiT evaluations, and that as a fraction of sampling every seed without pruning. */
  evaluations: number;
  fractionOfNoPruning: number;
  /** PAVRM forwards. */
  rewardEvaluations: number;
  /** Wall time of its denoising and reward scoring (decoding and judging excluded). */
  samplingMs: number;
}

export interface SampleComparison {
  /** Every seed, finished. */
  noPruning: StrategyOutcome;
  /** The survivors of early pruning (this run's kept videos). */
  pruned: StrategyOutcome;
  /** The same keep rule applied to every seed's clean latent (PAVRM at timestep 0) after sampling all. */
  bestOfN: StrategyOutcome;
  /**
   * The largest |difference| between a survivor's final latent and the same seed's without pruning:
   * pruning does not change the survivors, so this is only the rounding of a different batch size.
   */
  survivorLatentMaxDiff: number;
}

/** What `prfl sample` did: result.json, and what --json prints. */
export interface SampleResult {
  prompt: string;
  /** The base seed: seed i draws its noise from "<seed>-<i>". */
  seed: number;
  /** N. */
  seedCount: number;
  steps: number;
  guidance: number;
  shift: number;
  /** Steps run before the pruning point, and the timestep the PAVRM read the latents at. */
  pruneAfter: number;
  pruneTimestep: number;
  keep: KeepRule;
  backend: string;
  weights: string;
  runDir: string;
  /** Frame strips of the kept videos (one row each), and with --compare of every unpruned video. */
  contactSheet: string;
  unprunedContactSheet?: string;
  videos: SampledSeed[];
  /** Indices of the kept seeds. */
  kept: number[];
  /** The early-pruned run's compute (sampleWithEarlyPruning's report). */
  compute: ComputeReport;
  compare?: SampleComparison;
  elapsedMs: number;
}

/** The steps, guidance and seed: a flag, else config files or --set, else the embedded generator's recipe. */
async function samplingConfig(
  ctx: CommandContext,
  o: SampleCommandOptions,
): Promise<{ config: ResolvedConfig; steps: number; guidance: number; seed: number; shift: number }> {
  const configured = await ctx.config();
  const pick = (flag: number | undefined, key: string, fallback: number) =>
    flag ?? (configured.source(key) === 'default' ? fallback : configured.number(key));
  const steps = pick(o.steps, 'prfl.sampling.num_steps', SAMPLE_DEFAULTS.steps);
  const guidance = pick(o.guidance, 'prfl.sampling.guidance_scale', SAMPLE_DEFAULTS.guidance);
  // Again with the values used, so config.resolved.yaml records them (and checks the flags' ranges).
  const config = await ctx.config([
    { key: 'prfl.sampling.num_steps', value: steps, flag: '--steps' },
    { key: 'prfl.sampling.guidance_scale', value: guidance, flag: '--guidance' },
    { key: 'eval.seed', value: o.seed, flag: '--seed' },
  ]);
  return {
    config,
    steps,
    guidance,
    seed: config.number('eval.seed'),
    shift: config.number('extra_model.scheduler.flow_shift'),
  };
}

/** The keep rule of the options, checked against N. */
export function keepRule(o: Pick<SampleCommandOptions, 'seeds' | 'keep' | 'threshold'>): KeepRule {
  const n = o.seeds;
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--seeds: expected a positive integer, got ${n}`);
  if (o.keep !== undefined && o.threshold !== undefined) {
    throw new UsageError(
      `--keep ${o.keep} and --threshold ${o.threshold}: expected one of them (the top K, or those above a probability), got both`,
    );
  }
  if (o.threshold !== undefined) {
    if (!(o.threshold > 0 && o.threshold < 1)) {
      throw new UsageError(`--threshold: expected a probability in (0, 1), got ${o.threshold}`);
    }
    return { threshold: o.threshold };
  }
  const k = o.keep ?? Math.max(1, Math.floor(n / 4));
  if (!Number.isInteger(k) || k < 1 || k > n) {
    throw new UsageError(`--keep: expected an integer in [1, ${n}] (at most --seeds ${n}), got ${k}`);
  }
  return { topK: k };
}

/** The pruning point: `pruneAt`, or a quarter of the steps; it must leave a step to run. */
export function pruneStep(pruneAt: number | undefined, steps: number): number {
  const p = pruneAt ?? Math.min(steps - 1, Math.max(1, Math.round(steps / 4)));
  if (!Number.isInteger(p) || p < 0 || p >= steps) {
    throw new UsageError(
      `--prune-at: expected a step in [0, ${steps - 1}] (before the last of the ${steps} steps), got ${p}`,
    );
  }
  return p;
}

/** Decodes latents and judges each video against the prompt. */
function decodeAndJudge(
  models: Pick<EmbeddedModels, 'vae'>,
  latents: LatentVideo,
  prompt: string,
  seeds: readonly string[],
): { videos: Video[]; verdicts: JudgedVideo[] } {
  const frames = tf.tidy(() => models.vae.decode(latents)) as tf.Tensor5D;
  const data = frames.dataSync() as Float32Array;
  const [, f, h, w] = frames.shape;
  frames.dispose();
  const size = f * h * w * 3;
  const videos = seeds.map((_, j) => ({
    frames: f,
    height: h,
    width: w,
    data: data.slice(j * size, (j + 1) * size),
  }));
  const verdicts = videos.map((v, j) => judged(prompt, seeds[j] as string, judgeVideo(v, prompt)));
  return { videos, verdicts };
}

function rate(labels: readonly number[]): number {
  return labels.length === 0 ? 0 : labels.reduce((a, b) => a + b, 0) / labels.length;
}

async function writeSheet(file: string, videos: readonly Video[]): Promise<void> {
  await writeBytesAtomic(
    file,
    encodePng(frameStrip(videos, { scale: SHEET_SCALE }), (d) => deflateSync(d)),
  );
}

/** What the stages of one run share. */
interface SampleJob {
  ctx: CommandContext;
  folder: RunDir;
  models: EmbeddedModels;
  reward: NonNullable<EmbeddedModels['reward']>;
  sampling: SeedSampling;
  prompt: string;
  seeds: string[];
  steps: number;
  keep: KeepRule;
}

/**
 * Decodes and judges the survivors, writes a GIF of each and their contact sheet, and fills in their
 * entries of `videos`.
 */
async function finishSurvivors(
  job: SampleJob,
  pruned: EarlyPruningResult,
  videos: SampledSeed[],
  sheet: string,
): Promise<void> {
  const { ctx, folder } = job;
  const kept = pruned.candidates;
  ctx.progress.phase('decode', 1);
  const survivors = decodeAndJudge(
    job.models,
    pruned.samples,
    job.prompt,
    kept.map((i) => job.seeds[i] as string),
  );
  ctx.progress.update(1);
  for (const [j, i] of kept.entries()) {
    const v = survivors.verdicts[j] as JudgedVideo;
    const entry = videos[i] as SampledSeed;
    entry.gif = `seed-${i}.gif`;
    await writeBytesAtomic(folder.file(entry.gif), encodeGif([survivors.videos[j] as Video], GIF));
    Object.assign(entry, {
      motionGood: v.motionGood,
      adherent: v.adherent,
      motionScore: v.motionScore,
      adherenceScore: v.adherenceScore,
    });
    folder.metrics({ run: 'pruned', event: 'video', ...entry });
  }
  await writeSheet(sheet, survivors.videos);
}

/**
 * --compare: every seed finished without pruning and judged, best-of-N by the PAVRM on the clean
 * latents (the same keep rule at timestep 0), and the three strategies side by side. Fills in the
 * `unpruned` entries of `videos`.
 */
async function compareStrategies(
  job: SampleJob,
  pruned: EarlyPruningResult & { samplingMs: number },
  videos: SampledSeed[],
  sheet: string,
): Promise<SampleComparison> {
  const { ctx, folder, sampling } = job;
  ctx.progress.phase('sample (all seeds)', job.steps);
  let t0 = performance.now();
  const all = await sampleWithoutPruning(sampling, {
    signal: ctx.signal,
    onStep: (done, live) => {
      ctx.progress.update(done, { seeds: live });
      folder.metrics({ run: 'unpruned', step: done, live });
    },
  });
  const allMs = performance.now() - t0;
  try {
    t0 = performance.now();
    const final = pruneByReward({
      reward: job.reward,
      latents: all,
      timesteps: asTimestep(0),
      conditioning: sampling.conditioning,
      keep: job.keep,
    });
    final.latents.dispose();
    disposeConditioning(final.conditioning);
    const scoreMs = performance.now() - t0;
    ctx.progress.phase('decode (all seeds)', 1);
    const everyone = decodeAndJudge(job.models, all, job.prompt, job.seeds);
    ctx.progress.update(1);
    await writeSheet(sheet, everyone.videos);
    const unpruned = everyone.verdicts.map((v, i) => ({
      motionGood: v.motionGood,
      adherent: v.adherent,
      motionScore: v.motionScore,
      adherenceScore: v.adherenceScore,
      finalReward: final.probabilities[i] as number,
      bestOfN: final.kept.includes(i),
    }));
    unpruned.forEach((u, i) => {
      (videos[i] as SampledSeed).unpruned = u;
      folder.metrics({ run: 'unpruned', event: 'video', index: i, ...u });
    });
    const kept = pruned.candidates;
    const survivorLatentMaxDiff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(pruned.samples, tf.gather(all, tf.tensor1d(kept, 'int32'))))).dataSync()[0],
    ) as number;
    const full = pruned.compute.evaluationsWithoutPruning;
    const outcome = (
      selected: number[],
      labels: (i: number) => { motionGood?: number; adherent?: number },
      evaluations: number,
      rewardEvaluations: number,
      samplingMs: number,
    ): StrategyOutcome => ({
      selected,
      motionGoodRate: rate(selected.map((i) => labels(i).motionGood ?? 0)),
      adherentRate: rate(selected.map((i) => labels(i).adherent ?? 0)),
      evaluations,
      fractionOfNoPruning: evaluations / full,
      rewardEvaluations,
      samplingMs: Math.round(samplingMs),
    });
    const unprunedOf = (i: number) => unpruned[i] as (typeof unpruned)[number];
    const comparison: SampleComparison = {
      noPruning: outcome(
        job.seeds.map((_, i) => i),
        unprunedOf,
        full,
        0,
        allMs,
      ),
      pruned: outcome(
        kept,
        (i) => videos[i] as SampledSeed,
        pruned.compute.evaluations,
        pruned.compute.rewardEvaluations,
        pruned.samplingMs,
      ),
      bestOfN: outcome(final.kept, unprunedOf, full, job.seeds.length, allMs + scoreMs),
      survivorLatentMaxDiff,
    };
    folder.metrics({ event: 'compare', ...comparison });
    return comparison;
  } finally {
    all.dispose();
  }
}

/** Runs `prfl sample`; writes the run folder (GIFs, contact sheets, result.json, metrics.jsonl). */
export async function sample(ctx: CommandContext, o: SampleCommandOptions): Promise<SampleResult> {
  const began = performance.now();
  if (typeof o.prompt !== 'string' || o.prompt.trim() === '') {
    throw new UsageError('sample: expected a --prompt (e.g. --prompt "a large red circle moving left")');
  }
  parsePrompt(o.prompt); // The oracle judges by the grammar: a prompt outside it fails before any loading.
  const keep = keepRule(o);
  const { config, steps, guidance, seed, shift } = await samplingConfig(ctx, o);
  const pruneAfter = pruneStep(o.pruneAt, steps);
  const weights = weightsFolder(o.weights !== undefined ? ctx.resolve(o.weights) : undefined);
  const seeds = Array.from({ length: o.seeds }, (_, i) => `${seed}-${i}`);

  const backend = await ctx.backend();
  ctx.progress.phase('load', 1);
  const models = await loadModels(weights);
  ctx.progress.update(1);
  let folder: RunDir | undefined;
  try {
    const reward = models.reward;
    if (reward === undefined) {
      throw new UsageError(`--weights ${weights}: expected a PAVRM (pavrm/), found none`);
    }
    const { tokenizer } = models.textEncoder;
    const unknown = tokenizer.tokenize(o.prompt).unknown;
    if (unknown.length > 0) {
      throw new UsageError(
        `--prompt "${o.prompt}": expected words of the text encoder's vocabulary (${tokenizer.words.join(', ')}), ` +
          `got ${unknown.map((w) => JSON.stringify(w)).join(', ')}`,
      );
    }
    folder = await RunDir.open(
      o.runDir !== undefined ? ctx.resolve(o.runDir) : defaultRunDir(ctx.io.cwd, 'sample', ctx.io.now()),
      config,
    );
    const sampling = prepareSampling(models, { prompt: o.prompt, seeds, steps, guidance, shift });
    const job: SampleJob = { ctx, folder, models, reward, sampling, prompt: o.prompt, seeds, steps, keep };
    try {
      ctx.progress.phase('sample (pruned)', steps);
      const t0 = performance.now();
      const run = folder;
      const pruned = await sampleWithPruning(sampling, {
        reward,
        pruneAfter,
        keep,
        signal: ctx.signal,
        onStep: (done, live) => {
          ctx.progress.update(done, { seeds: live });
          run.metrics({ run: 'pruned', step: done, live });
        },
      });
      const samplingMs = performance.now() - t0;
      try {
        const decision = pruned.decisions[0];
        if (decision === undefined)
          throw new Error('sample: sampleWithEarlyPruning made no pruning decision');
        const { afterStep, timestep, probabilities } = decision;
        folder.metrics({
          run: 'pruned',
          event: 'prune',
          afterStep,
          timestep,
          probabilities,
          kept: decision.kept,
        });
        const videos: SampledSeed[] = seeds.map((s, i) => ({
          index: i,
          seed: s,
          reward: probabilities[decision.candidates.indexOf(i)] as number,
          kept: decision.kept.includes(i),
        }));
        const contactSheet = folder.file('contact-sheet.png');
        await finishSurvivors(job, pruned, videos, contactSheet);
        const unprunedContactSheet =
          o.compare === true ? folder.file('contact-sheet-unpruned.png') : undefined;
        const compare =
          unprunedContactSheet !== undefined
            ? await compareStrategies(job, { ...pruned, samplingMs }, videos, unprunedContactSheet)
            : undefined;
        ctx.progress.end();
        const result: SampleResult = {
          prompt: o.prompt,
          seed,
          seedCount: seeds.length,
          steps,
          guidance,
          shift,
          pruneAfter,
          pruneTimestep: timestep,
          keep,
          backend,
          weights,
          runDir: folder.dir,
          contactSheet,
          ...(unprunedContactSheet !== undefined ? { unprunedContactSheet } : {}),
          videos,
          kept: pruned.candidates,
          compute: pruned.compute,
          ...(compare !== undefined ? { compare } : {}),
          elapsedMs: Math.round(performance.now() - began),
        };
        await writeTextAtomic(folder.file('result.json'), `${JSON.stringify(result, null, 2)}\n`);
        return result;
      } finally {
        pruned.samples.dispose();
      }
    } finally {
      sampling.dispose();
    }
  } finally {
    disposeEmbedded(models);
    folder?.close();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The result as text: one line per seed, the compute, and with --compare the three strategies. */
export function formatSample(r: SampleResult): string {
  const rule = 'topK' in r.keep ? `the top ${r.keep.topK}` : `p >= ${r.keep.threshold}`;
  const lines = [
    `"${r.prompt}": ${r.seedCount} seeds, ${r.steps} steps, guidance ${r.guidance}; pruned after step ${r.pruneAfter} ` +
      `(t=${r.pruneTimestep}) to ${rule}: kept ${r.kept.length}; ${r.backend}, ${seconds(r.elapsedMs)}`,
    `  seed      p(good)@${r.pruneAfter}  kept  oracle`,
  ];
  for (const v of r.videos) {
    const oracle = v.kept
      ? `motion ${v.motionGood ? 'good' : 'BAD '} (${(v.motionScore as number).toFixed(2)}), ${v.adherent ? 'follows the prompt' : 'does NOT follow the prompt'}`
      : '';
    lines.push(
      `  ${v.seed.padEnd(8)}  ${v.reward.toFixed(3).padStart(9)}  ${v.kept ? 'kept' : '    '}  ${oracle}`.trimEnd(),
    );
  }
  const c = r.compute;
  lines.push(
    `DiT evaluations: ${c.evaluations} of ${c.evaluationsWithoutPruning} without pruning ` +
      `(saved ${c.evaluationsSaved}, ${pct(c.fractionSaved)}), for ${c.rewardEvaluations} PAVRM forwards`,
  );
  if (r.compare !== undefined) {
    const m = r.compare;
    const rows: [string, StrategyOutcome][] = [
      ['no pruning', m.noPruning],
      [`early pruning @${r.pruneAfter}`, m.pruned],
      ['best-of-N (PAVRM @t=0)', m.bestOfN],
    ];
    lines.push(
      '',
      '  strategy                videos  motion good     adherent  DiT evals (of all)  PAVRM  sampling',
    );
    for (const [name, s] of rows) {
      const good = s.selected.length * s.motionGoodRate;
      lines.push(
        `  ${name.padEnd(22)}  ${String(s.selected.length).padStart(6)}  ${`${Math.round(good)} (${pct(s.motionGoodRate)})`.padStart(11)}  ` +
          `${pct(s.adherentRate).padStart(11)}  ${`${s.evaluations} (${pct(s.fractionOfNoPruning)})`.padStart(18)}  ` +
          `${String(s.rewardEvaluations).padStart(5)}  ${seconds(s.samplingMs).padStart(8)}`,
      );
    }
    lines.push(
      `  survivors vs the same seeds unpruned: max |latent difference| ${m.survivorLatentMaxDiff.toExponential(1)}`,
    );
  }
  lines.push(
    `run folder: ${r.runDir} (${r.kept.length} GIF${r.kept.length === 1 ? '' : 's'}, ${path.basename(r.contactSheet)}, result.json)`,
  );
  return `${lines.join('\n')}\n`;
}
