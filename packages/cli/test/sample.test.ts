/**
 * `prfl sample` on tiny random models: the built binary for the outputs (GIFs, contact sheets,
 * result.json and --json, the compute arithmetic of N, K and STEP, --compare) and the usage errors, and
 * `run` in-process for Ctrl-C (exit 130, no result, no tensor left behind).
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@prfl/tensor';
import { disposeEmbedded, loadEmbedded } from '@prfl/pretrained';
import { type CliIo, memorySink, run } from '../src/index.js';
import { prepareSampling } from '../src/sample/prune.js';
import { BIN, saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('sample');
const weights = path.join(tmp.dir, 'weights');
const PROMPT = 'a large red circle moving left';
afterAll(tmp.remove);

beforeAll(async () => {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} does not exist: build the package first (npm run build -w @prfl/cli)`);
  }
  await saveTinyModels(weights);
}, 120_000);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function prfl(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: tmp.dir, maxBuffer: 1 << 26 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const GIF_MAGIC = 'GIF89a';
const PNG_MAGIC = '\x89PNG';

describe('prfl sample', () => {
  it('keeps the top K after STEP steps, writes a GIF per kept seed, and counts the DiT evaluations saved', async () => {
    const dir = path.join(tmp.dir, 'run-topk');
    // N = 5, K = 2, STEP = 1 of 3 steps, guidance (two evaluations per seed and step).
    const r = await prfl([
      'sample',
      '--prompt',
      PROMPT,
      '--seeds',
      '5',
      '--keep',
      '2',
      '--prune-at',
      '1',
      '--steps',
      '3',
      '--guidance',
      '4',
      '--seed',
      '7',
      '--weights',
      weights,
      '--run-dir',
      dir,
      '--json',
    ]);
    expect(r.stderr).not.toContain('unexpected');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'))).toEqual(result);
    expect(result).toMatchObject({
      prompt: PROMPT,
      seed: 7,
      seedCount: 5,
      steps: 3,
      guidance: 4,
      pruneAfter: 1,
      keep: { topK: 2 },
      runDir: dir,
    });
    expect(result.compare).toBeUndefined();
    expect(result.kept).toHaveLength(2);
    expect(result.videos.map((v: { seed: string }) => v.seed)).toEqual(['7-0', '7-1', '7-2', '7-3', '7-4']);
    // The survivors are the two highest rewards at the pruning point.
    const rewards: number[] = result.videos.map((v: { reward: number }) => v.reward);
    for (const p of rewards) expect(p > 0 && p < 1).toBe(true);
    const keptRewards = result.kept.map((i: number) => rewards[i] as number);
    const dropped = rewards.filter((_, i) => !result.kept.includes(i));
    expect(Math.min(...keptRewards)).toBeGreaterThanOrEqual(Math.max(...dropped));
    // (N x STEP + K x (steps - STEP)) x 2 = (5 + 2 x 2) x 2; without pruning N x steps x 2.
    expect(result.compute).toEqual({
      candidateSteps: 9,
      candidateStepsWithoutPruning: 15,
      evaluations: 18,
      evaluationsWithoutPruning: 30,
      evaluationsSaved: 12,
      fractionSaved: 12 / 30,
      rewardEvaluations: 5,
    });
    for (const v of result.videos) {
      if (v.kept) {
        expect(v.gif).toBe(`seed-${v.index}.gif`);
        expect([0, 1]).toContain(v.motionGood);
        expect([0, 1]).toContain(v.adherent);
        expect(readFileSync(path.join(dir, v.gif)).subarray(0, 6).toString('latin1')).toBe(GIF_MAGIC);
      } else {
        expect(v.gif).toBeUndefined();
        expect(v.motionGood).toBeUndefined();
        expect(existsSync(path.join(dir, `seed-${v.index}.gif`))).toBe(false);
      }
    }
    expect(readFileSync(result.contactSheet).subarray(0, 4).toString('latin1')).toBe(PNG_MAGIC);
    expect(existsSync(path.join(dir, 'config.resolved.yaml'))).toBe(true);
    const metrics = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.run === 'pruned' && m.step !== undefined).map((m) => m.live)).toEqual([
      5, 2, 2,
    ]);
  });

  it('--compare: no pruning, early pruning and best-of-N, with the defaults K = N / 4 and STEP = steps / 4', async () => {
    const dir = path.join(tmp.dir, 'run-compare');
    // N = 4 -> K = 1; 3 steps -> STEP = 1; guidance 1 -> one evaluation per seed and step.
    const r = await prfl([
      'sample',
      '--prompt',
      PROMPT,
      '--seeds',
      '4',
      '--steps',
      '3',
      '--guidance',
      '1',
      '--weights',
      weights,
      '--run-dir',
      dir,
      '--compare',
    ]);
    expect(r.stderr).not.toContain('unexpected');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/sample \(pruned\) {2}3\/3 {2}100%/);
    expect(r.stdout).toContain('pruned after step 1');
    expect(r.stdout).toMatch(/DiT evaluations: 6 of 12 without pruning \(saved 6, 50\.0%\)/);
    for (const row of ['no pruning', 'early pruning @1', 'best-of-N (PAVRM @t=0)'])
      expect(r.stdout).toContain(row);
    const result = JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'));
    expect(result).toMatchObject({ keep: { topK: 1 }, pruneAfter: 1, seedCount: 4 });
    const { noPruning, pruned, bestOfN, survivorLatentMaxDiff } = result.compare;
    expect(noPruning).toMatchObject({ selected: [0, 1, 2, 3], evaluations: 12, rewardEvaluations: 0 });
    expect(pruned).toMatchObject({ selected: result.kept, evaluations: 6, rewardEvaluations: 4 });
    expect(pruned.fractionOfNoPruning).toBe(0.5);
    expect(bestOfN).toMatchObject({ evaluations: 12, rewardEvaluations: 4, fractionOfNoPruning: 1 });
    expect(bestOfN.selected).toHaveLength(1);
    for (const s of [noPruning, pruned, bestOfN]) {
      expect(s.motionGoodRate).toBeGreaterThanOrEqual(0);
      expect(s.motionGoodRate).toBeLessThanOrEqual(1);
      expect(s.samplingMs).toBeGreaterThan(0);
    }
    // Pruning does not change the survivors: they end where they end without it.
    expect(survivorLatentMaxDiff).toBeLessThan(1e-4);
    const finals = result.videos.map((v: { unpruned: { finalReward: number } }) => v.unpruned.finalReward);
    expect(finals[bestOfN.selected[0]]).toBe(Math.max(...finals));
    for (const v of result.videos) {
      expect(v.unpruned.bestOfN).toBe(bestOfN.selected.includes(v.index));
      // A kept seed's video is the same with and without pruning, and so are the oracle's labels.
      if (v.kept) expect(v.unpruned.motionGood).toBe(v.motionGood);
    }
    expect(readFileSync(result.unprunedContactSheet).subarray(0, 4).toString('latin1')).toBe(PNG_MAGIC);
  });

  it('bad options exit 2 with one line naming what was expected and what came', async () => {
    const base = ['sample', '--prompt', PROMPT, '--weights', weights, '--steps', '3'];
    const cases: [string[], RegExp][] = [
      [['--seeds', '4', '--keep', '5'], /--keep: expected an integer in \[1, 4\] .*got 5/],
      [['--prune-at', '3'], /--prune-at: expected a step in \[0, 2\] .*got 3/],
      [['--threshold', '1.5'], /--threshold: expected a probability in \(0, 1\), got 1\.5/],
      [['--threshold', '0'], /--threshold: expected a probability in \(0, 1\), got 0/],
      [['--threshold', '0.5', '--keep', '2'], /expected one of them .*got both/],
      [['--seeds', '0'], /--seeds <n>.*expected an integer >= 1, got "0"/],
    ];
    const runs = await Promise.all(cases.map(([extra]) => prfl([...base, ...extra, '--run-dir', 'never'])));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch((cases[i] as [string[], RegExp])[1]);
      expect(r.stdout).toBe('');
    });
    // A word the text encoder does not know (orange is in the oracle's grammar, not in the tiny world).
    const word = await prfl([
      'sample',
      '--prompt',
      'a large orange circle moving left',
      '--weights',
      weights,
      '--run-dir',
      'never',
    ]);
    expect(word.code).toBe(2);
    expect(word.stderr).toMatch(
      /\nprfl: --prompt .*expected words of the text encoder's vocabulary \(.*red.*\), got "orange"\n$/,
    );
    expect(existsSync(path.join(tmp.dir, 'never'))).toBe(false);
  });

  it('Ctrl-C stops at the next sampling step: exit 130, no result.json, nothing left behind', async () => {
    const signals = new EventEmitter();
    const stderr = memorySink();
    const io = (onLine?: (t: string) => void): CliIo => ({
      stdout: memorySink(),
      stderr: {
        write: (t: string) => {
          stderr.write(t);
          onLine?.(t);
          return true;
        },
      },
      cwd: tmp.dir,
      signals: signals as never,
      exit: () => {
        throw new Error('a single Ctrl-C must not exit at once');
      },
      now: () => new Date(2026, 0, 2, 3, 4, 5),
    });
    const args = ['sample', '--prompt', PROMPT, '--seeds', '3', '--steps', '3', '--weights', weights];
    // Loading the models leaves some tensors behind whatever the command does; a stopped run may leave
    // no more than a finished one.
    const count = () => tf.memory().numTensors;
    let before = count();
    expect(await run([...args, '--run-dir', 'finished'], io())).toBe(0);
    const leftByAFinishedRun = count() - before;
    before = count();
    // The first step is done: the user presses Ctrl-C.
    const stopAfterStep1 = (t: string) => {
      if (t.startsWith('sample (pruned)  1/')) signals.emit('SIGINT');
    };
    const code = await run([...args, '--run-dir', 'stopped'], io(stopAfterStep1));
    expect(stderr.text()).toContain('stopping at the next step');
    expect(code).toBe(130);
    expect(count() - before).toBeLessThanOrEqual(leftByAFinishedRun);
    expect(existsSync(path.join(tmp.dir, 'stopped', 'config.resolved.yaml'))).toBe(true);
    expect(existsSync(path.join(tmp.dir, 'stopped', 'result.json'))).toBe(false);
    expect(existsSync(path.join(tmp.dir, 'finished', 'result.json'))).toBe(true);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });
});

describe('prepareSampling', () => {
  it('leaves no tensor behind once disposed (the per-seed noise included)', async () => {
    await initBackend({ backend: 'cpu' });
    const models = await loadEmbedded({ from: weights, reward: false });
    try {
      const before = tf.memory().numTensors;
      const sampling = prepareSampling(models, {
        prompt: PROMPT,
        seeds: ['a', 'b', 'c'],
        steps: 3,
        guidance: 4,
        shift: 5,
      });
      expect(sampling.noise.shape[0]).toBe(3);
      sampling.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      disposeEmbedded(models);
    }
  });
});
