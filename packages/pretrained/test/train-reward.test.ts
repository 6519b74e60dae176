import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { initBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateJudged } from '../src/index.js';
import { preferencePairs, trainReward, worldTokenizer } from '../src/recipe/index.js';
import { EMBEDDED_WORLD } from '../src/world.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-pretrained-reward-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

function tinyModels() {
  const vae = new WanVAE('test', { seed: 1 });
  const textEncoder = new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 });
  const dit = new WanDiT({ numLayers: 2, inDim: 4, outDim: 4 }, { base: 'tiny', seed: 3 });
  return { vae, textEncoder, dit };
}

describe('generateJudged', () => {
  it('gives one judged video per prompt, the same for a video whatever the batch size', async () => {
    const models = tinyModels();
    const prompts = [
      'a large red circle moving left',
      'a large blue square moving up',
      'a large red circle moving left',
    ];
    const a = await generateJudged(models, { prompts, seed: 's', numSteps: 2, batchSize: 3 });
    const b = await generateJudged(models, { prompts, seed: 's', numSteps: 2, batchSize: 2 });
    expect(a.videos.map((v) => v.seed)).toEqual(['s-0', 's-1', 's-2']);
    expect(a.latents.shape).toEqual([3, 5, 8, 8, 4]);
    expect(a.text.shape).toEqual([3, 16, 32]);
    expect(b.videos).toEqual(a.videos);
    const diff = Math.max(...(await tf.abs(tf.sub(a.latents, b.latents)).data()));
    expect(diff).toBeLessThan(1e-5);
    for (const v of a.videos) {
      expect([0, 1]).toContain(v.motionGood);
      expect(v.adherent).toBe(v.colourOk && v.shapeOk && v.motionOk ? 1 : 0);
    }
    a.latents.dispose();
    a.text.dispose();
    b.latents.dispose();
    b.text.dispose();
    await expect(generateJudged(models, { prompts: [], seed: 1 })).rejects.toThrow(/non-empty array/);
  }, 60_000);
});

describe('trainReward (stage 3: generations labelled by the oracle, PAVRM)', () => {
  it('generates, labels, trains, and resumes from its run folder with the same head', async () => {
    const models = tinyModels();
    const base = {
      models,
      generations: 8,
      numSteps: 2,
      batchSize: 4,
      checkpointEvery: 1,
      blocks: 1,
      hidden: [8],
    };
    const whole = await trainReward({ ...base, steps: 4, runDir: path.join(tmp, 'a') });
    expect(whole.step).toBe(4);
    expect(whole.videos).toHaveLength(8);
    await trainReward({ ...base, steps: 2, runDir: path.join(tmp, 'b') }).then((r) => r.reward.dispose());
    const phases: string[] = [];
    const resumed = await trainReward({
      ...base,
      steps: 4,
      runDir: path.join(tmp, 'b'),
      onProgress: (p) => phases.push(`${p.phase} ${p.done}`),
    });
    expect(phases).toEqual(['generate 8', 'train 3', 'train 4']);
    for (const [name, v] of whole.reward.namedVariables()) {
      expect(Array.from(resumed.reward.namedVariables().get(name)?.dataSync() ?? []), name).toEqual(
        Array.from(v.dataSync()),
      );
    }
    expect(readdirSync(path.join(tmp, 'b')).sort()).toEqual([
      'generations.json',
      'generations.safetensors',
      'pavrm',
    ]);
    whole.reward.dispose();
    resumed.reward.dispose();
    // Generations made by another generator (another cache key) are made again, not reused.
    const { openSafetensors } = await import('@prfl/tensor');
    const key = async () => {
      const r = await openSafetensors(path.join(tmp, 'b', 'generations.safetensors'));
      const k = r.metadata?.cacheKey;
      await r.close();
      return k;
    };
    expect(await key()).toBe('');
    const fresh: string[] = [];
    const other = await trainReward({
      ...base,
      steps: 4,
      runDir: path.join(tmp, 'b'),
      cacheKey: 'generator step 9',
      onProgress: (p) => fresh.push(`${p.phase} ${p.done}`),
    });
    expect(await key()).toBe('generator step 9');
    // The finished checkpoint belonged to the other generations: set aside, and training starts afresh.
    expect(fresh).toEqual(['generate 8', 'train 1', 'train 2', 'train 3', 'train 4']);
    expect(readdirSync(path.join(tmp, 'b'))).toContain('pavrm.stale-1');
    other.reward.dispose();
    await expect(trainReward({ models, steps: 0 })).rejects.toThrow(
      /steps must be a positive integer, got 0/,
    );
  }, 120_000);
});

describe('trainReward with the Bradley-Terry loss', () => {
  it('pairs a good and a bad video of the same prompt, as many as the rarer label has', () => {
    const v = (prompt: string, motionGood: 0 | 1) => ({ prompt, motionGood });
    expect(
      preferencePairs([v('a', 1), v('a', 0), v('b', 1), v('a', 1), v('a', 0), v('b', 1), v('c', 0)]),
    ).toEqual({
      win: [0, 3],
      lose: [1, 4],
    });
    expect(preferencePairs([v('a', 1), v('b', 0)])).toEqual({ win: [], lose: [] });
  });

  it('trains on the pairs of its generations, or says there are none', async () => {
    const models = tinyModels();
    const base = {
      models,
      generations: 8,
      numSteps: 2,
      batchSize: 2,
      blocks: 1,
      hidden: [8],
      loss: 'bradley-terry' as const,
    };
    const run = path.join(tmp, 'bt');
    const attempt = trainReward({ ...base, steps: 2, runDir: run });
    await attempt.catch(() => undefined);
    const videos = JSON.parse(readFileSync(path.join(run, 'generations.json'), 'utf8'));
    if (preferencePairs(videos).win.length > 0) {
      const r = await attempt;
      expect(r.step).toBe(2);
      r.reward.dispose();
    } else {
      await expect(attempt).rejects.toThrow(/needs a good and a bad video of one prompt/);
    }
    await expect(trainReward({ ...base, loss: 'hinge' as never })).rejects.toThrow(
      /loss must be 'bce' or 'bradley-terry', got "hinge"/,
    );
  }, 60_000);
});

describe("trainReward with target 'score' (the oracle's motion score as a soft label)", () => {
  /** Four labelled latents with the given motion scores (labels follow the oracle's 0.5 threshold). */
  function labelled(models: ReturnType<typeof tinyModels>, scores: (number | undefined)[]) {
    const n = scores.length;
    const prompts = Array.from({ length: n }, () => 'a large red circle moving left');
    const { text, mask } = models.textEncoder.encode(prompts);
    mask.dispose();
    return {
      latents: tf.randomNormal([n, 5, 8, 8, 4], 0, 1, 'float32', 7) as tf.Tensor5D,
      text,
      videos: scores.map((s, i) => ({
        prompt: prompts[i] as string,
        motionGood: ((s ?? 0) >= 0.5 ? 1 : 0) as 0 | 1,
        ...(s === undefined ? {} : { motionScore: s }),
      })),
    };
  }

  it('trains BCE against the scores: a different head than the 0/1 labels give, from the same start', async () => {
    const models = tinyModels();
    const base = { models, steps: 2, batchSize: 4, blocks: 1, hidden: [8] };
    const scores = [0.9, 0.45, 0.55, 0.1];
    const byLabel = await trainReward({ ...base, data: labelled(models, scores) });
    const byScore = await trainReward({ ...base, data: labelled(models, scores), target: 'score' });
    const head = (r: typeof byLabel) =>
      [...r.reward.headVariables().values()].map((v) => Array.from(v.dataSync()));
    expect(head(byScore)).not.toEqual(head(byLabel));
    // Scores that are the labels themselves train exactly the head the labels train: the score is what
    // reaches the loss, in place of the label.
    const asLabels = await trainReward({ ...base, data: labelled(models, [1, 0, 1, 0]), target: 'score' });
    expect(head(asLabels)).toEqual(head(byLabel));
    byLabel.reward.dispose();
    byScore.reward.dispose();
    asLabels.reward.dispose();
  }, 60_000);

  it('sigmaSampler sets the noise levels it trains at; a checkpoint of another sampler is set aside', async () => {
    const models = tinyModels();
    const dir = path.join(tmp, 'sampler');
    const base = { models, steps: 2, batchSize: 4, blocks: 1, hidden: [8], checkpointDir: dir };
    const scores = [0.9, 0.45, 0.55, 0.1];
    const grid = await trainReward({ ...base, data: labelled(models, scores) });
    const clean = await trainReward({
      ...base,
      data: labelled(models, scores),
      sigmaSampler: { kind: 'fixed', sigma: 0 },
    });
    // Another sampler is another run: the first run's finished checkpoint was not resumed but moved aside.
    expect(clean.step).toBe(2);
    expect(readdirSync(tmp)).toContain('sampler.stale-1');
    const head = (r: typeof grid) =>
      [...r.reward.headVariables().values()].map((v) => Array.from(v.dataSync()));
    expect(head(clean)).not.toEqual(head(grid));
    grid.reward.dispose();
    clean.reward.dispose();
  }, 60_000);

  it('refuses a video without a score, and the Bradley-Terry loss', async () => {
    const models = tinyModels();
    const base = { models, steps: 1, batchSize: 2, blocks: 1, hidden: [8] };
    await expect(
      trainReward({ ...base, data: labelled(models, [0.7, undefined]), target: 'score' }),
    ).rejects.toThrow(
      /target 'score' needs a motion score in \[0, 1\] on every video; video 1 .* has undefined/,
    );
    await expect(
      trainReward({ ...base, data: labelled(models, [0.7, 0.2]), target: 'score', loss: 'bradley-terry' }),
    ).rejects.toThrow(/target 'score' is a soft label for loss 'bce'/);
    await expect(trainReward({ ...base, target: 'margin' as never })).rejects.toThrow(
      /target must be 'label' or 'score', got "margin"/,
    );
  }, 60_000);
});
