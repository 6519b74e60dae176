/**
 * `prfl pretrain` against the recipe's signature, with the recipe mocked: the options it receives, the
 * progress and metrics it forwards, and Ctrl-C (stop at the next step, resume hint, exit 130).
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PretrainCall } from '../src/index.js';
import { type CliIo, memorySink, run } from '../src/index.js';
import { tempDir } from './fixtures.js';

const calls: PretrainCall[] = [];
let behaviour: 'finish' | 'interrupt' | 'interrupt-throw' = 'finish';
const signals = new EventEmitter();

vi.mock('@prfl/pretrained/recipe', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  pretrain: async (options: PretrainCall) => {
    calls.push(options);
    options.log?.('stage vae: training');
    for (let step = 1; step <= 4; step++) {
      if (options.signal?.aborted) {
        options.log?.(`stopped at step ${step - 1}, checkpoint written`);
        // The recipe may also end a stopped run by throwing.
        if (behaviour === 'interrupt-throw') throw new Error('pretrain: stopped before the end');
        return { manifest: { partial: true }, out: options.out };
      }
      options.onProgress?.({
        stage: 'vae',
        done: step,
        total: 4,
        elapsedMs: step * 10,
        metrics: { loss: 1 / step },
      });
      if (behaviour !== 'finish' && step === 2) signals.emit('SIGINT');
    }
    options.onProgress?.({ stage: 'reward', done: 1, total: 1, elapsedMs: 5 });
    return { manifest: { format: 'prfl-embedded/1', rewardBlocks: 1 }, out: options.out };
  },
}));

const tmp = tempDir('pretrain');
afterAll(tmp.remove);
beforeEach(() => {
  calls.length = 0;
});

function io(): CliIo & {
  out: ReturnType<typeof memorySink>;
  err: ReturnType<typeof memorySink>;
  exits: number[];
} {
  const out = memorySink();
  const err = memorySink();
  const exits: number[] = [];
  return {
    stdout: out,
    stderr: err,
    out,
    err,
    exits,
    cwd: tmp.dir,
    signals: signals as never,
    exit: (c) => exits.push(c),
    now: () => new Date(2025, 5, 6, 7, 8, 9),
  };
}

describe('prfl pretrain (recipe mocked)', () => {
  it('passes runDir, out, seed, quick and a signal; forwards progress to stderr and metrics.jsonl', async () => {
    const x = io();
    const code = await run(
      ['pretrain', '--out', 'w', '--seed', '3', '--quick', '--json', '--backend', 'cpu'],
      x,
    );
    expect(x.err.text()).not.toContain('unexpected');
    expect(code).toBe(0);
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    const runDir = path.join(tmp.dir, 'runs', 'pretrain-20250606-070809');
    expect(call).toMatchObject({ runDir, out: path.join(tmp.dir, 'w'), seed: 3, quick: true });
    expect(call.signal).toBeInstanceOf(AbortSignal);
    const result = JSON.parse(x.out.text());
    expect(result).toMatchObject({
      runDir,
      out: path.join(tmp.dir, 'w'),
      seed: 3,
      quick: true,
      interrupted: false,
    });
    expect(result.manifest).toEqual({ format: 'prfl-embedded/1', rewardBlocks: 1 });
    expect(x.err.text()).toContain('stage vae: training');
    expect(x.err.text()).toMatch(/vae {2}4\/4 {2}100%/);
    const lines = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ event: 'start', seed: 3, quick: true });
    expect(lines.filter((l) => l.stage === 'vae').map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(lines.find((l) => l.stage === 'vae' && l.step === 2)).toMatchObject({ loss: 0.5, total: 4 });
    expect(lines[lines.length - 1]).toMatchObject({ event: 'done' });
    expect(readFileSync(path.join(runDir, 'config.resolved.yaml'), 'utf8')).toMatch(/train:\n {2}seed: 3/);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('--seed falls back to train.seed of the config; --quiet prints nothing on stderr', async () => {
    const x = io();
    const code = await run(
      ['pretrain', '--run-dir', 'r2', '--set', 'train.seed=8', '--quiet', '--backend', 'cpu'],
      x,
    );
    expect(code).toBe(0);
    expect(calls[0]).toMatchObject({ runDir: path.join(tmp.dir, 'r2'), seed: 8, quick: false });
    expect(x.err.text()).toBe('');
    expect(x.out.text()).toMatch(/^pretrained in \d+ s: weights in .*, run folder .*r2\n$/);
  });

  it('Ctrl-C stops at the next step and exits 130 with the command that resumes', async () => {
    behaviour = 'interrupt';
    try {
      const x = io();
      const code = await run(
        ['pretrain', '--run-dir', 'r3', '--out', 'w3', '--quick', '--backend', 'cpu'],
        x,
      );
      expect(code).toBe(130);
      expect(x.exits).toEqual([]);
      expect(x.err.text()).toContain('stopping at the next step');
      expect(x.err.text()).toContain('stopped at step 2, checkpoint written');
      expect(x.err.text()).toContain(
        `continue with \`prfl pretrain --run-dir ${path.join(tmp.dir, 'r3')} --quick\``,
      );
      const lines = readFileSync(path.join(tmp.dir, 'r3', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n');
      expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ event: 'interrupted' });
    } finally {
      behaviour = 'finish';
    }
  });

  it('Ctrl-C also exits 130 when the recipe ends the stopped run by throwing', async () => {
    behaviour = 'interrupt-throw';
    try {
      const x = io();
      const code = await run(['pretrain', '--run-dir', 'r4', '--out', 'w4', '--backend', 'cpu'], x);
      expect(code).toBe(130);
      expect(x.err.text()).toContain(
        `prfl: interrupted (pretrain: stopped before the end); continue with \`prfl pretrain --run-dir ${path.join(tmp.dir, 'r4')}\``,
      );
    } finally {
      behaviour = 'finish';
    }
  });
});
