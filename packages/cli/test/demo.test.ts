import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('demo');
const weights = path.join(tmp.dir, 'weights');
beforeAll(async () => {
  await saveTinyModels(weights);
});
afterAll(() => tmp.remove());

async function prfl(args: string[]) {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 240_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** The numbers a run ends with (its curves and times aside). */
function outcome(runDir: string) {
  const r = JSON.parse(readFileSync(path.join(runDir, 'result.json'), 'utf8'));
  return {
    before: r.before,
    after: r.after,
    delta: r.delta,
    reward: r.reward,
    samples: r.samples,
    prfl: r.curves.prfl,
  };
}

describe('prfl demo --quick', () => {
  it('runs every stage, prints the numbers as JSON and writes a self-contained report', async () => {
    const runDir = path.join(tmp.dir, 'a');
    const r = await prfl(['demo', '--quick', '--weights', weights, '--run-dir', runDir, '--json', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.settings.prflSteps).toBe(3);
    expect(result.before.motionGood.n).toBe(7);
    expect(result.after.motionGood.n).toBe(7);
    expect(result.delta.motionGood).toBeCloseTo(
      100 * (result.after.motionGood.rate - result.before.motionGood.rate),
      9,
    );
    expect(result.reward.buckets).toHaveLength(5);
    expect(result.curves.prfl.map((p: { step: number }) => p.step)).toEqual([1, 2, 3]);
    expect(result.curves.pavrm.map((p: { step: number }) => p.step)).toEqual([1, 2, 3, 4]);
    const html = readFileSync(result.report, 'utf8');
    expect(html).toContain('id="before-after"');
    expect(html.match(/<img [^>]*src="data:image\/gif;base64,/g)).toHaveLength(4);
    expect(html).not.toMatch(/<script|https?:\/\/|src="(?!data:)/);
    for (const f of ['config.resolved.yaml', 'metrics.jsonl', 'result.json', 'report.html']) {
      expect(existsSync(path.join(runDir, f)), f).toBe(true);
    }
  }, 240_000);

  it('killed part-way and resumed, ends with the result of a run never stopped', async () => {
    const whole = path.join(tmp.dir, 'a');
    const cut = path.join(tmp.dir, 'b');
    // Kill as soon as PRFL has written its first step.
    await new Promise<void>((resolve, reject) => {
      const p = spawn(
        process.execPath,
        [BIN, 'demo', '--quick', '--weights', weights, '--run-dir', cut, '--quiet'],
        {
          stdio: 'ignore',
        },
      );
      const timer = setInterval(() => {
        const log = path.join(cut, 'metrics.jsonl');
        if (existsSync(log) && readFileSync(log, 'utf8').includes('"stage":"prfl"')) p.kill('SIGKILL');
      }, 50);
      p.on('exit', (_code, signal) => {
        clearInterval(timer);
        if (signal === 'SIGKILL') resolve();
        else reject(new Error(`the demo ended before it could be killed (${_code})`));
      });
    });
    expect(existsSync(path.join(cut, 'result.json'))).toBe(false);
    const r = await prfl(['demo', '--resume', cut, '--weights', weights]);
    expect(r.code).toBe(0);
    expect(outcome(cut)).toEqual(outcome(whole));
  }, 240_000);

  it('Ctrl-C during PRFL exits 130 with no result; --resume then ends with the uninterrupted result', async () => {
    const whole = path.join(tmp.dir, 'a');
    const cut = path.join(tmp.dir, 'int');
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn(
        process.execPath,
        [BIN, 'demo', '--quick', '--weights', weights, '--run-dir', cut, '--quiet'],
        {
          stdio: 'ignore',
        },
      );
      let sent = false;
      const timer = setInterval(() => {
        const log = path.join(cut, 'metrics.jsonl');
        if (!sent && existsSync(log) && readFileSync(log, 'utf8').includes('"stage":"prfl"')) {
          sent = true;
          p.kill('SIGINT');
        }
      }, 50);
      p.on('exit', (c) => {
        clearInterval(timer);
        resolve(c);
      });
    });
    expect(code).toBe(130);
    expect(existsSync(path.join(cut, 'result.json'))).toBe(false);
    const r = await prfl(['demo', '--resume', cut, '--weights', weights]);
    expect(r.code, r.stderr).toBe(0);
    expect(outcome(cut)).toEqual(outcome(whole));
  }, 240_000);

  it('--control adds the SFT-alone arm on the same videos and leaves the PRFL result and weights as they were', async () => {
    const whole = path.join(tmp.dir, 'a');
    const runDir = path.join(tmp.dir, 'c');
    const r = await prfl([
      'demo',
      '--quick',
      '--control',
      '--weights',
      weights,
      '--run-dir',
      runDir,
      '--json',
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.settings.control).toBe(true);
    expect(result.control.method).toBe('sft');
    expect(result.control.after.motionGood.n).toBe(7);
    expect(result.control.delta.motionGood).toBeCloseTo(
      100 * (result.control.after.motionGood.rate - result.before.motionGood.rate),
      9,
    );
    expect(result.seconds.control).toBeGreaterThan(0);
    // The PRFL arm is untouched by the control: same numbers, and the saved fine-tuned DiT is PRFL's.
    expect(outcome(runDir)).toEqual(outcome(whole));
    const dit = (d: string) =>
      readFileSync(path.join(d, 'weights', 'dit', 'diffusion_pytorch_model.safetensors'));
    expect(dit(runDir).equals(dit(whole))).toBe(true);
    expect(existsSync(path.join(runDir, 'control'))).toBe(true);
    expect(readFileSync(result.report, 'utf8')).toContain('id="control"');
  }, 240_000);

  it('--workers 2 (this thread and a worker thread) ends with the numbers of one process', async () => {
    const whole = path.join(tmp.dir, 'a');
    const runDir = path.join(tmp.dir, 'w');
    const r = await prfl(['demo', '--quick', '--workers', '2', '--weights', weights, '--run-dir', runDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('demo: 2 worker threads');
    const a = outcome(whole);
    const b = outcome(runDir);
    // Generation is the same bit for bit; training is the same up to float summation order.
    expect(b.before).toEqual(a.before);
    expect(b.samples.map((x: { before: unknown }) => x.before)).toEqual(
      a.samples.map((x: { before: unknown }) => x.before),
    );
    expect(b.after).toEqual(a.after);
    expect(b.delta).toEqual(a.delta);
    expect(b.reward.average).toBe(a.reward.average);
    b.prfl.forEach((p: { loss: number; k: number }, i: number) => {
      expect(p.k).toBe(a.prfl[i].k);
      expect(p.loss).toBeCloseTo(a.prfl[i].loss, 4);
    });
    const bad = await prfl(['demo', '--quick', '--workers', '0', '--weights', weights]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'prfl: --workers (or PRFL_WORKERS): expected auto or an integer from 1 to 16, got "0"\n',
    );
  }, 240_000);

  it('refuses --quick with --full, and a resume folder that is not a run', async () => {
    const a = await prfl(['demo', '--quick', '--full', '--weights', weights]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--quick and --full exclude each other');
    const b = await prfl(['demo', '--resume', tmp.dir, '--weights', weights]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('not a run folder');
  });
});
