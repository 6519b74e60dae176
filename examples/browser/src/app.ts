/**
 * The page's three actions on the loaded models: generate (denoise every seed, score it along the chain,
 * prune, decode the survivors), fine-tune with PRFL and regenerate the same seeds, and reset the
 * generator to the shipped weights. Each writes what it computed to the page and to `window.__prfl`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { StartedBackend } from './backend.js';
import { type ChainModels, type ChainResult, runChain } from './chain.js';
import { byId, seedColour } from './dom.js';
import { finetune } from './finetune.js';
import { type DecodedVideo, decodeVideos } from './frames.js';
import { type Player, playVideo } from './player.js';
import type { Progress } from './progress.js';
import { type FinetuneStepReport, type GenerationReport, pageReport } from './report.js';
import { type PruneRule, promptOf, type Settings } from './settings.js';
import {
  type ChainView,
  chainPlot,
  comparePlot,
  comparisonRow,
  computeText,
  seedCard,
  trainingPlot,
} from './views.js';

/** The last generation: what fine-tuning compares against. */
interface Generated {
  settings: Settings;
  prompt: string;
  view: ChainView;
  /** Decoded videos of the survivors, by seed index. */
  videos: Map<number, DecodedVideo>;
}

function keepRule(rule: PruneRule) {
  return rule.kind === 'top-k'
    ? { topK: rule.k }
    : rule.kind === 'threshold'
      ? { threshold: rule.p }
      : undefined;
}

const lastOf = (row: readonly (number | null)[]) => [...row].reverse().find((p) => p !== null) ?? null;

export class App {
  readonly #models: ChainModels;
  readonly #backend: StartedBackend;
  readonly #progress: Progress;
  readonly #size: string;
  readonly #base: Map<string, tf.Tensor>;
  #players: Player[] = [];
  #last: Generated | undefined;

  constructor(models: ChainModels, backend: StartedBackend, progress: Progress) {
    this.#models = models;
    this.#backend = backend;
    this.#progress = progress;
    this.#size = models.manifest.world.sizes[0] ?? 'medium';
    this.#base = new Map([...models.dit.namedVariables()].map(([k, v]) => [k, tf.clone(v)]));
  }

  get hasGeneration(): boolean {
    return this.#last !== undefined;
  }

  /** Denoises, scores and prunes the seeds, decodes the survivors and shows them. */
  async generate(settings: Settings): Promise<void> {
    this.#stopPlayers();
    const report = pageReport();
    delete report.generation;
    delete report.finetune;
    delete report.regeneration;
    byId('finetune').hidden = true;
    const section = byId('generation');
    section.hidden = false;
    const prompt = promptOf(settings, this.#size);
    const seeds = Array.from({ length: settings.seeds }, (_, i) => `${settings.baseSeed}-${i}`);
    const keep = keepRule(settings.rule);
    byId('generation-title').textContent = `1. "${prompt}": ${seeds.length} seeds, ${settings.steps} steps`;
    const { result, videos, msDecode } = await this.#chain(
      'Generating (denoise + PAVRM every step)',
      prompt,
      seeds,
      settings,
      keep === undefined ? undefined : { afterStep: settings.pruneAfter, keep },
      (view) =>
        byId('chain-plot').replaceChildren(
          chainPlot(view, settings.steps, settings.rule, 'Process reward along the chain'),
        ),
    );
    const view: ChainView = { seeds, ...result };
    byId('compute').textContent = computeText(result, msDecode);
    const canvases: string[] = [];
    byId('videos').replaceChildren(
      ...seeds.map((_, i) => {
        const video = videos.get(i);
        if (video === undefined) return seedCard(view, i);
        const player = playVideo(video, `gen-${i}`);
        this.#players.push(player);
        canvases.push(`gen-${i}`);
        return seedCard(view, i, player.canvas);
      }),
    );
    report.generation = this.#generationReport(prompt, seeds, result, msDecode, canvases);
    report.tensors.generation = tf.memory().numTensors;
    this.#last = { settings, prompt, view, videos };
    this.#progress.finish(
      `Generated ${result.survivors.length} of ${seeds.length} seeds in ${((result.compute.ms + msDecode) / 1000).toFixed(1)} s.`,
    );
  }

  /** PRFL micro-steps on the generator, then the last generation's survivors again, side by side. */
  async finetuneAndRegenerate(settings: Settings): Promise<void> {
    const last = this.#last;
    if (last === undefined) throw new Error('generate first: fine-tuning compares against a generation');
    const report = pageReport();
    const section = byId('finetune');
    section.hidden = false;
    byId('compare').replaceChildren();
    const steps: FinetuneStepReport[] = [];
    this.#progress.start('Rendering and encoding SFT clips', 1);
    const result = await finetune(
      this.#models,
      this.#backend,
      {
        steps: settings.prflSteps,
        batchSize: settings.prflBatch,
        lr: settings.lr,
        clips: settings.clips,
        rolloutSteps: last.settings.steps,
        seed: last.settings.baseSeed,
      },
      (m) => {
        steps.push({
          step: m.step,
          loss: m.loss,
          sftLoss: m.sftLoss,
          rewardLoss: m.rewardLoss,
          reward: m.reward.mean,
          k: m.k,
          ms: m.ms,
          phases: Object.fromEntries(Object.entries(m.phases).map(([k, v]) => [k, v.ms])),
        });
        this.#progress.update(
          m.step,
          `loss ${m.loss.toFixed(4)}, p(good) ${m.reward.mean.toFixed(3)}, k ${m.k}`,
        );
        byId('train-plot').replaceChildren(trainingPlot(steps, settings.prflSteps));
      },
      () => this.#progress.start('PRFL micro-steps', settings.prflSteps),
    );
    report.finetune = {
      steps,
      msData: result.msData,
      msTraining: result.msTraining,
      msPerStep: result.msTraining / Math.max(1, steps.length),
    };
    byId('train-summary').textContent =
      `${steps.length} PRFL micro-steps (batch ${settings.prflBatch}, lr ${settings.lr}, rollouts on the ${last.settings.steps}-step schedule) in ${(result.msTraining / 1000).toFixed(1)} s, ${(result.msTraining / Math.max(1, steps.length) / 1000).toFixed(2)} s each; ${settings.clips} SFT clips rendered and encoded in ${(result.msData / 1000).toFixed(1)} s.`;
    byId('reset').removeAttribute('disabled');
    report.tensors.finetune = tf.memory().numTensors;

    const survivors = last.view.survivors;
    const seeds = survivors.map((i) => last.view.seeds[i] as string);
    const before: ChainView = {
      seeds,
      rewards: survivors.map((i) => last.view.rewards[i] ?? []),
      survivors: seeds.map((_, j) => j),
    };
    const {
      result: after,
      videos,
      msDecode,
    } = await this.#chain(
      'Regenerating the same seeds with the fine-tuned generator',
      last.prompt,
      seeds,
      last.settings,
      undefined,
      (view) =>
        byId('compare-plot').replaceChildren(
          comparePlot(before, view, last.settings.steps, (seed) => seedColour(last.view.seeds.indexOf(seed))),
        ),
    );
    const canvases: string[] = [];
    byId('compare').replaceChildren(
      ...survivors.map((seedIndex, j) => {
        const a = videos.get(j);
        const b = last.videos.get(seedIndex);
        if (a === undefined || b === undefined) throw new Error(`seed ${seedIndex} has no decoded video`);
        const pb = playVideo(b, `before-${seedIndex}`);
        const pa = playVideo(a, `after-${seedIndex}`);
        this.#players.push(pb, pa);
        canvases.push(`after-${seedIndex}`);
        return comparisonRow(
          `seed ${seedIndex} (${seeds[j]})`,
          seedColour(seedIndex),
          pb.canvas,
          pa.canvas,
          lastOf(before.rewards[j] ?? []),
          lastOf(after.rewards[j] ?? []),
        );
      }),
    );
    report.regeneration = this.#generationReport(last.prompt, seeds, after, msDecode, canvases);
    report.tensors.regeneration = tf.memory().numTensors;
    this.#progress.finish(
      `Fine-tuned for ${steps.length} PRFL steps and regenerated ${seeds.length} seed${seeds.length === 1 ? '' : 's'}.`,
    );
  }

  /** Puts the shipped weights back into the generator. */
  reset(): void {
    for (const [k, v] of this.#models.dit.namedVariables()) v.assign(this.#base.get(k) as tf.Tensor);
    this.#progress.finish('The generator has the shipped weights again.');
  }

  async #chain(
    phase: string,
    prompt: string,
    seeds: string[],
    settings: Settings,
    prune: { afterStep: number; keep: NonNullable<ReturnType<typeof keepRule>> } | undefined,
    draw: (view: ChainView) => void,
  ): Promise<{ result: ChainResult; videos: Map<number, DecodedVideo>; msDecode: number }> {
    const rows = seeds.map(() => new Array<number | null>(settings.steps).fill(null));
    let live: readonly number[] = seeds.map((_, i) => i);
    this.#progress.start(phase, settings.steps);
    const result = await runChain(
      this.#models,
      { prompt, seeds, steps: settings.steps, guidance: settings.guidance, ...(prune ? { prune } : {}) },
      (p) => {
        live = p.live;
        p.live.forEach((seed, j) => {
          (rows[seed] as (number | null)[])[p.stepsDone - 1] = p.probabilities[j] as number;
        });
        this.#progress.update(p.stepsDone, `${p.live.length} seed${p.live.length === 1 ? '' : 's'} live`);
        draw({ seeds, rewards: rows, survivors: live });
      },
    );
    draw({ seeds, ...result });
    this.#progress.start('Decoding the finished videos with the VAE', result.survivors.length);
    const t0 = performance.now();
    let decoded: DecodedVideo[];
    try {
      decoded = await decodeVideos(this.#models.vae, this.#backend, result.latents, (done) =>
        this.#progress.update(done),
      );
    } finally {
      result.latents.dispose();
    }
    const videos = new Map(result.survivors.map((seed, j) => [seed, decoded[j] as DecodedVideo]));
    return { result, videos, msDecode: performance.now() - t0 };
  }

  #generationReport(
    prompt: string,
    seeds: string[],
    r: ChainResult,
    msDecode: number,
    canvases: string[],
  ): GenerationReport {
    return {
      prompt,
      seeds,
      rewards: r.rewards,
      timesteps: r.timesteps,
      survivors: r.survivors,
      ...(r.pruned === undefined ? {} : { pruned: r.pruned }),
      compute: r.compute,
      msDecode,
      canvases,
    };
  }

  #stopPlayers(): void {
    for (const p of this.#players) p.stop();
    this.#players = [];
  }
}
