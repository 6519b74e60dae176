/**
 * `prfl bench`, in process on tiny random models (test/fixtures.ts): every item of `steps` measured with
 * positive finite times, the JSON written where asked and equal to what --json prints, the default run
 * folder, `list`, an unknown name, and Ctrl-C between items.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchItem, runItems } from '../src/bench/items.js';
import { type CliIo, createProgress, memorySink, run } from '../src/index.js';
import { BIN, saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('bench');
const weights = path.join(tmp.dir, 'weights');
afterAll(tmp.remove);
beforeAll(() => saveTinyModels(weights));

const QUICK = ['--repeats', '1', '--warmup', '0', '--batch-size', '1'];
const STEP_ROWS = [
  'generate',
  'pavrm-forward',
  'pavrm-train',
  'prfl',
  'sft',
  'rwr',
  'rgb-refl-first',
  'rgb-refl-all',
];

function io(cwd: string, onStderr?: (text: string) => void) {
  const out = memorySink();
  const err = memorySink();
  const signals = new EventEmitter();
  const x: CliIo = {
    stdout: out,
    stderr: {
      write: (t: string) => {
        err.write(t);
        onStderr?.(t);
        return true;
      },
    },
    cwd,
    signals: signals as never,
    exit: () => {},
    now: () => new Date(2026, 0, 2, 3, 4, 5),
  };
  return { x, out, err, signals };
}

const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

describe('bench items', () => {
  it('a group is warmed up together, then measured round by round in rotating order', async () => {
    const calls: string[] = [];
    const freed: string[] = [];
    const item = (id: string, group?: string): BenchItem => ({
      id,
      what: `item ${id}`,
      batch: 1,
      ...(group !== undefined ? { group } : {}),
      prepare: () => ({
        call: () => {
          calls.push(id);
        },
        extra: (t) => ({ calls: t.repeats }),
        dispose: () => freed.push(id),
      }),
    });
    const progress = createProgress(memorySink(), { mode: 'quiet' });
    const signal = new AbortController().signal;
    const rows = await runItems(
      { progress, signal },
      'test',
      [item('a'), item('b', 'g'), item('c', 'g'), item('d', 'g')],
      { warmup: 1, repeats: 3 },
    );
    // a alone: warm-up and 3 calls; the group: b, c, d warm up, then rounds bcd, cdb, dbc.
    expect(calls.join(' ')).toBe('a a a a b c d b c d c d b d b c');
    expect(freed).toEqual(['a', 'b', 'c', 'd']);
    expect(rows.map((r) => [r.id, r.repeats, r.calls, r.seconds.length])).toEqual([
      ['a', 3, 3, 3],
      ['b', 3, 3, 3],
      ['c', 3, 3, 3],
      ['d', 3, 3, 3],
    ]);
  });
});

describe('prfl bench', () => {
  it('steps: every item measured, the ratios, the JSON written and printed', async () => {
    const { x, out, err } = io(tmp.dir);
    const code = await run(
      ['bench', 'steps', '--weights', weights, ...QUICK, '--out', 'steps.json', '--json'],
      x,
    );
    expect(err.text()).not.toContain('unexpected');
    expect(code).toBe(0);
    const printed = JSON.parse(out.text());
    const written = JSON.parse(readFileSync(path.join(tmp.dir, 'steps.json'), 'utf8'));
    expect(written).toEqual(printed);
    expect(printed.name).toBe('steps');
    expect(printed.backend).toBe('wasm');
    expect(printed.command).toBe(
      `prfl bench steps --weights ${weights} --repeats 1 --warmup 0 --batch-size 1 --out steps.json --json`,
    );
    expect(printed.machine.cores).toBeGreaterThan(0);
    expect(typeof printed.machine.cpuModel).toBe('string');
    expect(typeof printed.versions.tfjs).toBe('string');
    expect(printed.runDir).toBeNull();
    expect(printed.rows.map((r: { id: string }) => r.id)).toEqual(STEP_ROWS);
    for (const r of printed.rows) {
      expect(positive(r.medianSeconds), `${r.id} median`).toBe(true);
      expect(positive(r.minSeconds), `${r.id} min`).toBe(true);
      expect(r.peakBytes, `${r.id} peak`).toBeGreaterThan(0);
      expect(r.repeats).toBe(1);
      expect(r.batch).toBe(1);
    }
    const k = printed.settings.training.k;
    for (const id of ['prfl', 'rgb-refl-first', 'rgb-refl-all']) {
      const r = printed.rows.find((row: { id: string }) => row.id === id);
      expect(r.k, id).toBe(k);
      expect(r.skippedSteps).toBe(0);
      expect(Object.keys(r.phaseMedianSeconds)).toContain('rollout');
    }
    expect(
      Object.keys(printed.rows.find((r: { id: string }) => r.id === 'rgb-refl-first').phaseMedianSeconds),
    ).toContain('decode');
    const speedup = printed.ratios.find((q: { numerator: string; denominator: string; of: string }) => {
      return q.numerator === 'rgb-refl-first' && q.denominator === 'prfl' && q.of === 'seconds';
    });
    const rgb = printed.rows.find((r: { id: string }) => r.id === 'rgb-refl-first');
    const prfl = printed.rows.find((r: { id: string }) => r.id === 'prfl');
    expect(speedup.value).toBeCloseTo(rgb.medianSeconds / prfl.medianSeconds, 2);
    for (const q of printed.ratios) expect(positive(q.value), q.what).toBe(true);
  });

  it('matmul: GFLOP/s per size as a table, the JSON in a run folder by default', async () => {
    const cwd = path.join(tmp.dir, 'matmul');
    const { x, out } = io(cwd);
    expect(await run(['bench', 'matmul', '--repeats', '1', '--warmup', '0', '--quiet'], x)).toBe(0);
    const runs = readdirSync(path.join(cwd, 'runs'));
    expect(runs).toEqual(['bench-20260102-030405']);
    const file = path.join(cwd, 'runs', runs[0] as string, 'bench-matmul.json');
    const r = JSON.parse(readFileSync(file, 'utf8'));
    expect(r.rows.length).toBeGreaterThan(0);
    for (const row of r.rows) expect(positive(row.gflops)).toBe(true);
    expect(r.summary.peakGflops).toBe(Math.max(...r.rows.map((row: { gflops: number }) => row.gflops)));
    expect(existsSync(path.join(cwd, 'runs', runs[0] as string, 'config.resolved.yaml'))).toBe(true);
    const text = out.text();
    expect(text).toContain('GFLOP/s');
    expect(text).toContain('matMul [512, 512] x [512, 512]');
    expect(text).toContain(`wrote ${file}`);
  });

  it('--threads sets the wasm pool (recorded in backendDetail); a bad count is refused, an empty one is auto', () => {
    const bench = (args: string[], threadsEnv?: string) =>
      spawnSync(
        process.execPath,
        [BIN, 'bench', 'matmul', '--repeats', '1', '--warmup', '0', '--quiet', '--json', ...args],
        {
          cwd: tmp.dir,
          encoding: 'utf8',
          env: { ...process.env, PRFL_WASM_THREADS: threadsEnv ?? '' },
          timeout: 60_000,
        },
      );
    const two = bench(['--threads', '2', '--out', 'threads-2.json']);
    expect(two.status, two.stderr).toBe(0);
    expect(JSON.parse(two.stdout).backendDetail).toBe('wasm (simd, 2 threads)');
    const fromEnv = bench(['--out', 'threads-env.json'], '1');
    expect(JSON.parse(fromEnv.stdout).backendDetail).toBe('wasm (simd, 1 thread)');
    const empty = bench(['--out', 'threads-empty.json'], '');
    expect(empty.status, empty.stderr).toBe(0);
    // --workers changes --threads auto only in commands that run worker threads (bench does not).
    const withWorkers = bench(['--workers', '2', '--out', 'threads-workers.json'], '');
    expect(withWorkers.status, withWorkers.stderr).toBe(0);
    expect(JSON.parse(withWorkers.stdout).backendDetail).toBe(JSON.parse(empty.stdout).backendDetail);
    const bad = bench(['--threads', '9']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(
      'prfl: --threads (or PRFL_WASM_THREADS): expected auto or an integer from 1 to 8, got "9"\n',
    );
  });

  it('list names every benchmark with one line each', async () => {
    const { x, out } = io(tmp.dir);
    expect(await run(['bench', 'list'], x)).toBe(0);
    const lines = out.text().trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['steps', 'matmul']);
    const json = io(tmp.dir);
    expect(await run(['bench', 'list', '--json'], json.x)).toBe(0);
    expect(JSON.parse(json.out.text()).benches.map((b: { name: string }) => b.name)).toEqual([
      'steps',
      'matmul',
    ]);
  });

  it('an unknown name exits 2 naming the known ones; bad counts are refused', async () => {
    const { x, out, err } = io(tmp.dir);
    expect(await run(['bench', 'tables'], x)).toBe(2);
    expect(out.text()).toBe('');
    expect(err.text()).toBe("prfl: bench: unknown benchmark 'tables'; expected one of steps, matmul, list\n");
    const zero = io(tmp.dir);
    expect(await run(['bench', 'steps', '--repeats', '0'], zero.x)).toBe(2);
    expect(zero.err.text()).toContain('expected an integer >= 1, got "0"');
    const frames = io(tmp.dir);
    expect(await run(['bench', 'steps', '--frames', '10'], frames.x)).toBe(2);
    expect(frames.err.text()).toContain('--frames: expected 4k + 1 frames');
    expect(frames.err.text()).toContain('got 10');
    const matmul = io(tmp.dir);
    expect(await run(['bench', 'matmul', '--frames', '33'], matmul.x)).toBe(2);
    expect(matmul.err.text()).toContain("--frames: only 'prfl bench steps' has videos");
  });

  it('steps --frames: the clips, the generation and the decoding are that long', async () => {
    const { x, out } = io(tmp.dir);
    const code = await run(
      ['bench', 'steps', '--weights', weights, ...QUICK, '--frames', '9', '--out', 'f9.json', '--json'],
      x,
    );
    expect(code).toBe(0);
    const r = JSON.parse(out.text());
    expect(r.settings.video.frames).toBe(9);
    expect(r.settings.video.latentShape[0]).toBe(3);
    expect(r.rows.map((row: { id: string }) => row.id)).toEqual(STEP_ROWS);
  });

  it('Ctrl-C stops between items: exit 130, nothing written', async () => {
    const cwd = path.join(tmp.dir, 'stopped');
    let emit = () => {};
    const { x, err, signals } = io(cwd, (t) => {
      // The first item's last progress line: ask to stop, as a Ctrl-C during it would.
      if (t.includes('steps 1/8') && t.includes('100%')) emit();
    });
    emit = () => signals.emit('SIGINT');
    const code = await run(['bench', 'steps', '--weights', weights, ...QUICK, '--out', 'x.json'], x);
    expect(code).toBe(130);
    expect(err.text()).toContain('bench steps measured 1 of 8 items; nothing written');
    expect(existsSync(path.join(cwd, 'x.json'))).toBe(false);
    expect(existsSync(path.join(cwd, 'runs'))).toBe(false);
  });
});
