import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { disposeEmbedded, type EmbeddedModels, loadEmbedded } from '@prfl/pretrained';
import { loadPixelReward, PavrmTrainer } from '@prfl/reward';
import { type LatentVideo, timestep } from '@prfl/tensor';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BIN, type Ran, runBinary, runInProcess, saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('train-reward');
const weights = path.join(tmp.dir, 'weights');
afterAll(tmp.remove);

beforeAll(async () => {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} does not exist: build the package first (npm run build -w @prfl/cli)`);
  }
  await saveTinyModels(weights);
}, 120_000);

/** The built binary in the temp folder. */
const prfl = (args: string[]) => runBinary(tmp.dir, args);
/** `run` in this process; `onStderr` sees every write to stderr and may press Ctrl-C. */
const inProcess = (args: string[], onStderr?: (text: string, ctrlC: () => void) => void) =>
  runInProcess(tmp.dir, args, onStderr);

/** The smallest budgets: 4 videos of 2 sampling steps, `steps` training steps of batch 2, K = 1 block. */
const tiny = (steps = 2) => [
  '--videos',
  '4',
  '--steps',
  String(steps),
  '--set',
  'prfl.sampling.num_steps=2',
  '--set',
  'dataset.batch_size=2',
  '--set',
  'lrm.feature_layer=1',
  '--weights',
  weights,
];
const TINY = tiny();

const read = (file: string) => readFileSync(file, 'utf8');
const json = (file: string) => JSON.parse(read(file));

/** Probabilities of the PAVRM of `models` on one fixed latent and prompt at a few timesteps. */
function probabilities(models: EmbeddedModels): number[] {
  const { frames, height, width } = models.manifest.world;
  const [f, h, w] = models.vae.latentShape(frames, height, width);
  const x = tf.randomNormal([3, f, h, w, models.vae.latentChannels], 0, 1, 'float32', 7) as LatentVideo;
  const { text, mask } = models.textEncoder.encode(Array(3).fill('a large red circle moving left'));
  const reward = models.reward;
  if (reward === undefined) throw new Error('no PAVRM');
  const p = reward.probability(x, [timestep(100), timestep(500), timestep(900)], { text });
  const out = Array.from(p.dataSync());
  tf.dispose([x, text, mask, p]);
  return out;
}

const bytes = (file: string) => readFileSync(file).toString('base64');

describe('prfl train-reward', () => {
  /** A run of 4 steps never stopped, which the stopped ones must end as. */
  const whole = path.join(tmp.dir, 'whole');

  it('latent: trains a PAVRM, judges it per sigma bucket and leaves a weights folder that eval-reward and loadEmbedded read', async () => {
    const dir = path.join(tmp.dir, 'latent');
    const r = await prfl([
      'train-reward',
      ...TINY,
      '--set',
      'lrm.pool=mean',
      '--eval-videos',
      '3',
      '--run-dir',
      dir,
      '--json',
    ]);
    expect(r.stderr).not.toContain('unexpected');
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      space: 'latent',
      runDir: dir,
      weights: path.join(dir, 'weights'),
      resumed: false,
      trainVideos: 4,
      steps: 2,
      blocks: 1,
      pool: 'mean',
      loss: 'ce',
      pixelEvaluation: null,
    });
    expect(result.trainGoodRate).toBeGreaterThanOrEqual(0);
    expect(result.trainGoodRate).toBeLessThanOrEqual(1);
    expect(Number.isFinite(result.final.loss)).toBe(true);
    const e = result.evaluation;
    expect(e).toMatchObject({ videos: 3, seed: 1 });
    expect(e.majorityBaseline).toBeGreaterThanOrEqual(0.5);
    expect(e.majorityBaseline).toBeLessThanOrEqual(1);
    expect(e.buckets).toHaveLength(5);
    // 3 videos of 3 prompts: no (good, bad) pair of one prompt, so the within-prompt AUC is NaN (null).
    expect(e.withinPromptPairs).toBe(0);
    expect(e.average.withinPromptAuc).toBeNull();
    e.buckets.forEach((b: { low: number; high: number; n: number; accuracy: number }, i: number) => {
      expect(b.low).toBeCloseTo(i * 0.2, 6);
      expect(b.high).toBeCloseTo((i + 1) * 0.2, 6);
      expect(b.n).toBe(3);
      expect(b.accuracy).toBeGreaterThanOrEqual(0);
      expect(b.accuracy).toBeLessThanOrEqual(1);
    });
    expect(r.stderr).toMatch(/train PAVRM {2}2\/2 {2}100%/);

    // The run folder: the weights folder, the cached generations, the checkpoint, the evaluation.
    for (const f of [
      'weights/manifest.json',
      'weights/pavrm/pavrm.json',
      'weights/pavrm/mlp.safetensors',
      'weights/dit/config.json',
      'generations.safetensors',
      'generations.json',
      'checkpoints/checkpoint.json',
      'command.json',
      'metrics.jsonl',
    ]) {
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    }
    expect(readdirSync(path.join(dir, 'weights', 'pavrm')).length).toBeGreaterThanOrEqual(3);
    expect(json(path.join(dir, 'generations.json'))).toHaveLength(4);
    expect(json(path.join(dir, 'eval.json'))).toEqual(e);
    expect(json(path.join(dir, 'checkpoints', 'checkpoint.json')).step).toBe(2);
    const manifest = json(path.join(dir, 'weights', 'manifest.json'));
    expect(manifest.rewardBlocks).toBe(1);
    expect(manifest.recipe.reward).toMatchObject({ command: 'prfl train-reward', from: weights, videos: 4 });
    expect(manifest.quality.reward).toEqual(e);
    // lrm.mlp_dim 64 (the defaults layer): a [64, 32] head, mean pooling from --set.
    expect(json(path.join(dir, 'weights', 'pavrm', 'pavrm.json')).config).toMatchObject({
      aggregation: 'mean',
      hidden: [64, 32],
      blocks: 1,
    });
    const metrics = read(path.join(dir, 'metrics.jsonl'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.stage === 'train').map((m) => m.step)).toEqual([1, 2]);
    expect(metrics.filter((m) => m.stage === 'eval')).toHaveLength(1);

    // The configuration: defaults < the command's defaults layer < --set < its own options.
    const config = YAML.parse(read(path.join(dir, 'config.resolved.yaml')));
    expect(config.optimizer).toMatchObject({
      learning_rate: 1e-4,
      learning_rate_mlp: 1e-3,
      max_train_steps: 2,
    });
    expect(config.lrm).toMatchObject({ feature_layer: 1, pool: 'mean', mlp_dim: 64, loss: 'ce' });
    expect(config.train).toMatchObject({ seed: 1, save_interval: 250 });
    expect(config.dataset.batch_size).toBe(2);
    expect(config.prfl.sampling).toEqual({ num_steps: 2, guidance_scale: 4 });
    expect(json(path.join(dir, 'command.json'))).toEqual({
      command: 'train-reward',
      options: { space: 'latent', frames: 'all', videos: 4, evalVideos: 3, weights, data: [] },
    });

    // eval-reward on the new weights folder, with the same videos, seed and sampler, gives eval.json again.
    const evalDir = path.join(tmp.dir, 'eval');
    const ev = await prfl([
      'eval-reward',
      '--weights',
      path.join(dir, 'weights'),
      '--videos',
      '3',
      '--steps',
      '2',
      '--seed',
      '1',
      '--run-dir',
      evalDir,
      '--json',
    ]);
    expect(ev.code, ev.stderr).toBe(0);
    const evaluation = JSON.parse(ev.stdout);
    expect(evaluation.buckets).toHaveLength(5);
    expect(evaluation).toMatchObject({ weights: path.join(dir, 'weights'), runDir: evalDir, videos: 3 });
    expect(evaluation.majorityBaseline).toBeGreaterThanOrEqual(0.5);
    const { weights: _w, runDir: _r, backend: _b, elapsedMs: _t, ...same } = evaluation;
    expect(same).toEqual(e);
    expect(json(path.join(evalDir, 'eval.json'))).toEqual(same);

    // loadEmbedded reads the folder; its PAVRM is the new one (not the input's) and gives probabilities.
    const trained = await loadEmbedded({ from: path.join(dir, 'weights') });
    const base = await loadEmbedded({ from: weights });
    try {
      const p = probabilities(trained);
      for (const v of p) expect(v > 0 && v < 1).toBe(true);
      const q = probabilities(base);
      expect(Math.max(...p.map((v, i) => Math.abs(v - (q[i] as number))))).toBeGreaterThan(1e-4);
    } finally {
      disposeEmbedded(trained);
      disposeEmbedded(base);
    }
  });

  it('refuses what cannot run with exit 2 and one line, before a run folder is made', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--set', 'lrm.feature_layer=99'],
        /^prfl: lrm\.feature_layer: expected at most the DiT's 2 blocks, got 99\n$/,
      ],
      [
        ['--set', 'lrm.pool=bogus'],
        /^prfl: lrm\.pool \(from --set\): expected one of q_attn, max, mean.*bogus/,
      ],
      [['--frames', 'first'], /^prfl: --frames is for --space pixel/],
      [['--space', 'voxel'], /--space.*voxel.*(latent|choices)/],
      [['--weights', path.join(tmp.dir, 'nowhere')], /^prfl: --weights .*nowhere: no manifest\.json there/],
    ];
    for (const [extra, want] of cases) {
      const dir = path.join(tmp.dir, 'refused');
      const r = await inProcess([
        'train-reward',
        '--videos',
        '2',
        '--weights',
        weights,
        ...extra,
        '--run-dir',
        dir,
      ]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stdout).toBe('');
      expect(existsSync(dir), `${extra.join(' ')} left a run folder`).toBe(false);
    }
  });

  it('pixel: trains the RGB ReFL reward on decoded frames and writes pixel-reward.safetensors', async () => {
    const dir = path.join(tmp.dir, 'pixel');
    // In a process of its own, and one epoch only (4 videos, batches of 2, 2 steps): on wasm, the pixel
    // reward's first step of a second epoch can get NaN gradients, depending on what the process ran
    // before (not on cpu, not with the same data in a fresh process).
    const r = await prfl([
      'train-reward',
      '--space',
      'pixel',
      ...TINY,
      '--eval-videos',
      '3',
      '--run-dir',
      dir,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    const file = path.join(dir, 'pixel-reward.safetensors');
    expect(result).toMatchObject({
      space: 'pixel',
      weights: file,
      trainVideos: 4,
      steps: 2,
      evaluation: null,
    });
    expect(result.pixelEvaluation).toMatchObject({ videos: 3, n: 3 });
    expect(result.pixelEvaluation.accuracy).toBeGreaterThanOrEqual(0);
    expect(result.pixelEvaluation.accuracy).toBeLessThanOrEqual(1);
    expect(json(path.join(dir, 'eval.json'))).toEqual(result.pixelEvaluation);
    expect(existsSync(path.join(dir, 'weights'))).toBe(false);
    expect(json(path.join(dir, 'command.json')).options).toMatchObject({ space: 'pixel', frames: 'all' });

    const reward = await loadPixelReward(file);
    try {
      const video = tf.randomUniform([2, 3, 64, 64, 3], -1, 1, 'float32', 3) as unknown as LatentVideo;
      const text = tf.zeros([2, 16, 32]) as tf.Tensor3D;
      const p = reward.probability(video, [timestep(0), timestep(0)], { text });
      for (const v of p.dataSync()) expect(v > 0 && v < 1).toBe(true);
      tf.dispose([video, text, p]);
    } finally {
      reward.dispose();
    }
  });

  it('--resume after a crash ends with the same PAVRM, bit for bit, as a run never stopped', async () => {
    // 4 steps, a checkpoint after each: 2 before the crash, 2 after the resume.
    const args = [...tiny(4), '--eval-videos', '0', '--set', 'train.save_interval=1'];
    expect((await inProcess(['train-reward', ...args, '--run-dir', whole])).code).toBe(0);

    // The process dies right after the checkpoint of step 2 (of 4) is written.
    const crashed = path.join(tmp.dir, 'crashed');
    const save = PavrmTrainer.prototype.saveCheckpoint;
    const spy = vi.spyOn(PavrmTrainer.prototype, 'saveCheckpoint').mockImplementation(async function (
      this: PavrmTrainer,
      dir: string,
    ) {
      const state = await save.call(this, dir);
      if (state.step === 2) throw new Error('simulated crash after the checkpoint of step 2');
      return state;
    });
    let first: Ran;
    try {
      first = await inProcess(['train-reward', ...args, '--run-dir', crashed]);
    } finally {
      spy.mockRestore();
    }
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('simulated crash');
    expect(json(path.join(crashed, 'checkpoints', 'checkpoint.json')).step).toBe(2);
    expect(existsSync(path.join(crashed, 'weights'))).toBe(false);
    const generated = statSync(path.join(crashed, 'generations.safetensors')).mtimeMs;

    const resumed = await inProcess(['train-reward', '--resume', crashed, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ resumed: true, steps: 4, runDir: crashed });
    // The generations were read back, not made again.
    expect(statSync(path.join(crashed, 'generations.safetensors')).mtimeMs).toBe(generated);
    const steps = read(path.join(crashed, 'metrics.jsonl'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.stage === 'train')
      .map((m) => m.step);
    expect(steps).toEqual([1, 2, 3, 4]);
    for (const f of readdirSync(path.join(whole, 'weights', 'pavrm'))) {
      expect(bytes(path.join(crashed, 'weights', 'pavrm', f)), f).toBe(
        bytes(path.join(whole, 'weights', 'pavrm', f)),
      );
    }
    expect(read(path.join(crashed, 'config.resolved.yaml'))).toBe(
      read(path.join(whole, 'config.resolved.yaml')),
    );
  });

  // PavrmTrainer.fit stops at the next step when the signal is aborted, with a checkpoint.
  it('Ctrl-C after a training step: exit 130, a checkpoint there, and --resume ends as a run never stopped', async () => {
    const stopped = path.join(tmp.dir, 'stopped');
    const args = [...tiny(4), '--eval-videos', '0', '--set', 'train.save_interval=1'];
    const r = await inProcess(['train-reward', ...args, '--run-dir', stopped], (t, ctrlC) => {
      if (t.startsWith('train PAVRM  1/')) ctrlC();
    });
    expect(r.stderr).toContain('stopping at the next step');
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`continue with prfl train-reward --resume ${stopped}`);
    expect(json(path.join(stopped, 'checkpoints', 'checkpoint.json')).step).toBe(1);
    expect(existsSync(path.join(stopped, 'weights'))).toBe(false);
    const resumed = await inProcess(['train-reward', '--resume', stopped]);
    expect(resumed.code, resumed.stderr).toBe(0);
    for (const f of readdirSync(path.join(whole, 'weights', 'pavrm'))) {
      expect(bytes(path.join(stopped, 'weights', 'pavrm', f)), f).toBe(
        bytes(path.join(whole, 'weights', 'pavrm', f)),
      );
    }
  });

  // The epochs count whole batches (the partial one is dropped): 3 videos in batches of 2 run all 6 steps.
  it('a batch that does not divide the videos: every step still runs', async () => {
    const dir = path.join(tmp.dir, 'odd');
    const args = tiny(6).map((a, i, all) => (all[i - 1] === '--videos' ? '3' : a));
    const r = await inProcess(['train-reward', ...args, '--eval-videos', '0', '--run-dir', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ trainVideos: 3, steps: 6 });
  });

  it('--resume refuses --set and --config, another command’s run, and --run-dir refuses a folder that holds a run', async () => {
    const dir = path.join(tmp.dir, 'latent'); // the finished run of the first test
    const before = read(path.join(dir, 'config.resolved.yaml'));
    const cases: [string[], RegExp][] = [
      [
        ['train-reward', '--resume', dir, '--set', 'train.seed=3'],
        /^prfl: --resume .*latent: a resumed run keeps the configuration it started with; drop --config and --set/,
      ],
      [
        ['train-reward', '--resume', dir, '--config', path.join(dir, 'config.resolved.yaml')],
        /^prfl: --resume .*latent: a resumed run keeps the configuration it started with/,
      ],
      [
        ['train', '--resume', dir],
        /^prfl: --resume .*latent: that folder holds a run of prfl train-reward, not prfl train\n$/,
      ],
      [
        ['train-reward', ...TINY, '--run-dir', dir],
        /^prfl: --run-dir .*latent: it already holds a train-reward run; continue it with --resume/,
      ],
      [
        ['train-reward', '--resume', path.join(tmp.dir, 'weights')],
        /^prfl: --resume .*weights: not a run folder of prfl train-reward \(expected command\.json/,
      ],
      [['train-reward', '--resume', dir, '--run-dir', dir], /give --resume RUN or --run-dir DIR, not both/],
      [
        ['train-reward', '--resume', dir, '--steps', '9', '--videos', '5'],
        /^prfl: --resume .*latent: a resumed run keeps the options it started with; drop --videos, --steps/,
      ],
    ];
    for (const [args, want] of cases) {
      const r = await inProcess(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stdout).toBe('');
    }
    expect(read(path.join(dir, 'config.resolved.yaml'))).toBe(before);
  });
});
