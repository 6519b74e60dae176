import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { disposeEmbedded, type EmbeddedModels, loadEmbedded } from '@prfl/pretrained';
import { type LatentVideo, timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runBinary, runInProcess, saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('train');
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

/** `steps` micro-steps of batch 2 over `clips` clips, rollouts of 2 sampling steps, lr 1e-3 (the DiT moves). */
const tiny = (steps = 2, clips = 4) => [
  '--steps',
  String(steps),
  '--clips',
  String(clips),
  '--set',
  'dataset.batch_size=2',
  '--set',
  'prfl.sampling.num_steps=2',
  '--set',
  'optimizer.learning_rate=1e-3',
  '--weights',
  weights,
];

const read = (file: string) => readFileSync(file, 'utf8');
const json = (file: string) => JSON.parse(read(file));
const bytes = (file: string) => readFileSync(file).toString('base64');

/** Probabilities of the PAVRM of `models` on fixed latents and prompts at a few timesteps. */
function probabilities(models: EmbeddedModels): Float32Array {
  const { frames, height, width } = models.manifest.world;
  const [f, h, w] = models.vae.latentShape(frames, height, width);
  const x = tf.randomNormal([3, f, h, w, models.vae.latentChannels], 0, 1, 'float32', 11) as LatentVideo;
  const { text, mask } = models.textEncoder.encode([
    'a large red circle moving left',
    'a large blue square moving up',
    'a large green triangle moving right',
  ]);
  const reward = models.reward;
  if (reward === undefined) throw new Error('no PAVRM');
  const p = reward.probability(x, [timestep(0), timestep(400), timestep(900)], { text });
  const out = p.dataSync() as Float32Array;
  tf.dispose([x, text, mask, p]);
  return out;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

const values = (v: tf.Variable | undefined) => {
  if (v === undefined) throw new Error('no such variable');
  return v.dataSync();
};

/**
 * The fine-tuned folder against the input one: the DiT moved, the PAVRM did not (its embeddings are the
 * base DiT's, stored with it, not the fine-tuned DiT's of the same folder).
 */
async function checkWeights(dir: string): Promise<void> {
  const base = await loadEmbedded({ from: weights });
  const tuned = await loadEmbedded({ from: path.join(dir, 'weights') });
  try {
    let moved = 0;
    for (const [name, v] of tuned.dit.namedVariables()) {
      moved = Math.max(moved, maxDiff(values(v), values(base.dit.namedVariables().get(name))));
    }
    expect(moved, 'the fine-tuned DiT differs from the base').toBeGreaterThan(1e-4);
    expect(maxDiff(probabilities(tuned), probabilities(base))).toBeLessThan(1e-6);
    const name = 'patch_embedding.weight';
    const embedding = values(tuned.reward?.backbone.namedVariables().get(name));
    expect(maxDiff(embedding, values(base.dit.namedVariables().get(name)))).toBe(0);
    expect(maxDiff(embedding, values(tuned.dit.namedVariables().get(name)))).toBeGreaterThan(0);
  } finally {
    disposeEmbedded(base);
    disposeEmbedded(tuned);
  }
  expect(json(path.join(dir, 'weights', 'pavrm', 'pavrm.json')).backbone.variables).toBe('all');
}

/** What every finished run leaves. */
function checkRun(dir: string, method: string, steps: number): void {
  for (const f of ['weights/manifest.json', 'weights/dit/config.json', 'command.json', 'metrics.jsonl']) {
    expect(existsSync(path.join(dir, f)), f).toBe(true);
  }
  expect(json(path.join(dir, 'checkpoints', 'checkpoint.json')).step).toBe(steps);
  expect(json(path.join(dir, 'weights', 'manifest.json')).recipe.finetune).toMatchObject({
    command: `prfl train --method ${method}`,
    from: weights,
  });
  const train = read(path.join(dir, 'metrics.jsonl'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.stage === 'train');
  expect(train.map((m) => m.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  for (const m of train) expect(Number.isFinite(m.loss)).toBe(true);
}

const rate = expect.objectContaining({ n: 3, rate: expect.any(Number) });

describe('prfl train', () => {
  it('prfl: fine-tunes, judges base and fine-tuned on held-out prompts, and writes weights/ and eval.json', async () => {
    const dir = path.join(tmp.dir, 'prfl');
    const r = await prfl(['train', ...tiny(), '--eval-videos', '3', '--run-dir', dir, '--json']);
    expect(r.stderr).not.toContain('unexpected');
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      method: 'prfl',
      runDir: dir,
      weights: path.join(dir, 'weights'),
      resumed: false,
      steps: 2,
      before: { motionGood: rate, adherence: rate },
      after: { motionGood: rate, adherence: rate },
    });
    expect(result.final.reward).toBeGreaterThan(0);
    expect(result.final.reward).toBeLessThan(1);
    expect(result.delta.motionGood).toBeCloseTo(
      100 * (result.after.motionGood.rate - result.before.motionGood.rate),
      9,
    );
    expect(json(path.join(dir, 'eval.json'))).toEqual({
      method: 'prfl',
      before: result.before,
      after: result.after,
      delta: result.delta,
    });
    expect(json(path.join(dir, 'eval-before.json'))).toEqual(result.before);
    expect(json(path.join(dir, 'weights', 'manifest.json')).quality.finetune).toMatchObject({
      method: 'prfl',
      before: result.before,
    });
    expect(r.stderr).toMatch(/judge the base {2}3\/3/);
    expect(r.stderr).toMatch(/judge the fine-tuned {2}3\/3/);
    checkRun(dir, 'prfl', 2);
    await checkWeights(dir);
  });

  it('--workers 2: this thread and a worker thread train as one process does (the same losses and verdicts)', async () => {
    const one = path.join(tmp.dir, 'prfl');
    const dir = path.join(tmp.dir, 'prfl-workers');
    const r = await prfl([
      'train',
      ...tiny(),
      '--eval-videos',
      '3',
      '--workers',
      '2',
      '--run-dir',
      dir,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('train: 2-way data parallel');
    const losses = (d: string) =>
      read(path.join(d, 'metrics.jsonl'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((m) => m.stage === 'train');
    const a = losses(one);
    const b = losses(dir);
    expect(b.map((m) => m.k)).toEqual(a.map((m) => m.k));
    for (const [i, m] of b.entries()) expect(m.loss).toBeCloseTo(a[i].loss, 4);
    expect(json(path.join(dir, 'eval.json'))).toEqual(json(path.join(one, 'eval.json')));
    checkRun(dir, 'prfl', 2);
  });

  it('sft and rwr: the same run folder without a reward term; --eval-videos 0 judges nothing', async () => {
    // sft: 3 clips in batches of 2 make one batch an epoch (the odd clip is dropped), and all 6 steps run.
    for (const [method, steps, clips] of [
      ['sft', 6, 3],
      ['rwr', 2, 4],
    ] as const) {
      const dir = path.join(tmp.dir, method);
      const r = await inProcess([
        'train',
        '--method',
        method,
        ...tiny(steps, clips),
        '--eval-videos',
        '0',
        '--run-dir',
        dir,
        '--json',
      ]);
      expect(r.code, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout);
      expect(result).toMatchObject({ method, steps, before: null, after: null, delta: null });
      expect(result.final.reward).toBeNull();
      expect(json(path.join(dir, 'eval.json'))).toEqual({ method, before: null, after: null, delta: null });
      expect(existsSync(path.join(dir, 'eval-before.json'))).toBe(false);
      checkRun(dir, method, steps);
      await checkWeights(dir);
    }
  });

  it('rgb-refl: with a pixel reward made by train-reward --space pixel', async () => {
    const pixelRun = path.join(tmp.dir, 'pixel');
    const made = await prfl([
      'train-reward',
      '--space',
      'pixel',
      '--videos',
      '4',
      '--steps',
      '2',
      '--eval-videos',
      '0',
      '--set',
      'prfl.sampling.num_steps=2',
      '--set',
      'dataset.batch_size=2',
      '--weights',
      weights,
      '--run-dir',
      pixelRun,
      '--quiet',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const pixel = path.join(pixelRun, 'pixel-reward.safetensors');
    expect(made.stdout).toContain(`prfl train --method rgb-refl --pixel-reward ${pixel}`);

    const dir = path.join(tmp.dir, 'rgb-refl');
    const r = await inProcess([
      'train',
      '--method',
      'rgb-refl',
      '--pixel-reward',
      pixel,
      ...tiny(),
      '--eval-videos',
      '0',
      '--run-dir',
      dir,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ method: 'rgb-refl', steps: 2, before: null });
    expect(result.final.reward).toBeGreaterThan(0);
    expect(json(path.join(dir, 'command.json')).options).toMatchObject({
      method: 'rgb-refl',
      pixelReward: pixel,
    });
    checkRun(dir, 'rgb-refl', 2);
    await checkWeights(dir);

    // A train-reward run is not a train run, and the other way round.
    const wrong = await inProcess(['train', '--resume', pixelRun]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(
      /^prfl: --resume .*pixel: that folder holds a run of prfl train-reward, not prfl train\n$/,
    );
    const other = await inProcess(['train-reward', '--resume', dir]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /^prfl: --resume .*rgb-refl: that folder holds a run of prfl train, not prfl train-reward\n$/,
    );
  });

  it('refuses what cannot run with exit 2 and one line, before a run folder is made', async () => {
    const missing = path.join(tmp.dir, 'missing.safetensors');
    const cases: [string[], RegExp][] = [
      [['--method', 'rgb-refl'], /^prfl: --method rgb-refl needs --pixel-reward FILE/],
      [['--pixel-reward', missing], /^prfl: --pixel-reward is for --method rgb-refl, not prfl\n$/],
      [
        ['--method', 'rgb-refl', '--pixel-reward', missing],
        /^prfl: --pixel-reward .*missing\.safetensors: no such file/,
      ],
      [
        ['--set', 'model.lora.use_lora=true'],
        /^prfl: model\.lora\.use_lora: `prfl train` fine-tunes the whole DiT/,
      ],
      [['--set', 'model.ema.use_ema=true'], /^prfl: model\.ema\.use_ema: /],
      [['--method', 'bogus'], /--method.*bogus.*(prfl|choices)/],
      [['--k-range', 'sideways'], /--k-range.*sideways/],
      [
        ['--resume', path.join(tmp.dir, 'prfl'), '--set', 'train.seed=2'],
        /^prfl: --resume .*keeps the configuration it started with/,
      ],
    ];
    for (const [extra, want] of cases) {
      const dir = path.join(tmp.dir, 'refused');
      const resume = extra.includes('--resume');
      // A resumed run takes no other options (its own are in command.json).
      const r = await inProcess([
        'train',
        ...(resume ? [] : ['--weights', weights, '--run-dir', dir]),
        ...extra,
      ]);
      expect(r.code, `${extra.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stdout).toBe('');
      expect(existsSync(dir), `${extra.join(' ')} left a run folder`).toBe(false);
    }
  });

  it('Ctrl-C after a micro-step, then --resume: the same DiT, bit for bit, as a run never stopped', async () => {
    const args = [...tiny(4), '--eval-videos', '0', '--set', 'train.save_interval=1'];
    const whole = path.join(tmp.dir, 'whole');
    expect((await inProcess(['train', ...args, '--run-dir', whole])).code).toBe(0);

    const stopped = path.join(tmp.dir, 'stopped');
    const r = await inProcess(['train', ...args, '--run-dir', stopped], (t, ctrlC) => {
      if (t.startsWith('train (prfl)  1/')) ctrlC();
    });
    expect(r.stderr).toContain('stopping at the next step');
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain(`train stopped at step 1 of 4; continue with prfl train --resume ${stopped}`);
    expect(json(path.join(stopped, 'checkpoints', 'checkpoint.json')).step).toBe(1);
    expect(existsSync(path.join(stopped, 'weights'))).toBe(false);

    const resumed = await inProcess(['train', '--resume', stopped, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ resumed: true, steps: 4, runDir: stopped });
    checkRun(stopped, 'prfl', 4);
    const dit = path.join('weights', 'dit', 'diffusion_pytorch_model.safetensors');
    expect(bytes(path.join(stopped, dit))).toBe(bytes(path.join(whole, dit)));
    for (const f of readdirSync(path.join(whole, 'weights', 'pavrm'))) {
      expect(bytes(path.join(stopped, 'weights', 'pavrm', f)), f).toBe(
        bytes(path.join(whole, 'weights', 'pavrm', f)),
      );
    }
    expect(bytes(path.join(stopped, dit))).not.toBe(
      bytes(path.join(weights, 'dit', 'diffusion_pytorch_model.safetensors')),
    );
  });
});
