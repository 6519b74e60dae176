import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createProgress,
  defaultRunDir,
  describeFailure,
  installInterrupt,
  memorySink,
  METRICS_FILE,
  progressMode,
  RESOLVED_CONFIG_FILE,
  RunDir,
  resolveConfig,
  timestampName,
} from '../src/index.js';
import { CorruptFileError, InvalidArgumentError } from '@prfl/tensor';
import { tempDir } from './fixtures.js';

const tmp = tempDir('framework');
afterAll(tmp.remove);

describe('progress', () => {
  it('prints plain lines at most every interval, plus each phase’s last count', () => {
    let t = 0;
    const sink = memorySink(false);
    const p = createProgress(sink, { mode: progressMode(sink, false), now: () => t, intervalMs: 2000 });
    p.phase('sample', 10);
    for (let i = 1; i <= 10; i++) {
      t += 500;
      p.update(i, { loss: 0.5 });
    }
    p.phase('write', 3);
    t += 100;
    p.update(1);
    t += 100;
    p.update(2);
    p.end();
    p.log('done');
    const lines = sink.text().trim().split('\n');
    expect(lines.map((l) => l.split('  ').slice(0, 2).join(' '))).toEqual([
      'sample 1/10',
      'sample 5/10',
      'sample 9/10',
      'sample 10/10',
      'write 1/3',
      'write 2/3',
      'done',
    ]);
    expect(lines[0]).toContain('loss 0.5000');
    expect(lines[3]).toMatch(/100% {2}elapsed 0:05 {2}eta 0:00/);
  });

  it('is silent with --quiet and never draws bars on a pipe', () => {
    const sink = memorySink(true);
    expect(progressMode(sink, false)).toBe('lines'); // isTTY without cursor control: not a terminal stream
    expect(progressMode(sink, true)).toBe('quiet');
    const p = createProgress(sink, { mode: 'quiet' });
    p.phase('x', 2);
    p.update(2);
    p.log('hello');
    p.close();
    expect(sink.text()).toBe('');
  });
});

describe('run folders', () => {
  it('writes config.resolved.yaml and appends one flushed JSON line per record', async () => {
    const date = new Date(2025, 0, 2, 3, 4, 5);
    expect(timestampName(date)).toBe('20250102-030405');
    const dir = defaultRunDir(tmp.dir, 'train', date);
    expect(dir).toBe(path.join(tmp.dir, 'runs', 'train-20250102-030405'));
    const config = await resolveConfig({ set: ['train.seed=4'] });
    const run = await RunDir.open(dir, config);
    run.metrics({ step: 1, loss: 0.5 });
    // On disk before close.
    expect(readFileSync(path.join(dir, METRICS_FILE), 'utf8').trim().split('\n')).toHaveLength(1);
    run.metrics({ event: 'done' });
    run.close();
    const lines = readFileSync(path.join(dir, METRICS_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ step: 1, loss: 0.5 });
    expect(typeof lines[0].time).toBe('string');
    expect(lines[1]).toMatchObject({ event: 'done' });
    expect(readFileSync(path.join(dir, RESOLVED_CONFIG_FILE), 'utf8')).toContain('seed: 4');
    // A second run in the same second gets its own folder.
    expect(defaultRunDir(tmp.dir, 'train', date)).toBe(`${dir}-2`);
    // Reopening appends (resume).
    const again = await RunDir.open(dir, config);
    again.metrics({ step: 2 });
    again.close();
    expect(readFileSync(path.join(dir, METRICS_FILE), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(existsSync(path.join(dir, RESOLVED_CONFIG_FILE))).toBe(true);
  });
});

describe('Ctrl-C and errors', () => {
  it('the first SIGINT aborts the signal, the second exits with 130', () => {
    const signals = new EventEmitter();
    const stderr = memorySink();
    const exits: number[] = [];
    const i = installInterrupt({ signals: signals as never, stderr, exit: (c) => exits.push(c) });
    expect(i.signal.aborted).toBe(false);
    signals.emit('SIGINT');
    expect(i.signal.aborted).toBe(true);
    expect(exits).toEqual([]);
    expect(stderr.text()).toContain('stopping at the next step');
    signals.emit('SIGINT');
    expect(exits).toEqual([130]);
    i.dispose();
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('user errors are one line with exit 2, others a stack with exit 1', () => {
    expect(describeFailure(new InvalidArgumentError('x: expected 1, got 2'))).toEqual({
      code: 2,
      text: 'prfl: x: expected 1, got 2\n',
    });
    expect(describeFailure(new CorruptFileError('f: truncated\nat byte 3')).text).toBe(
      'prfl: f: truncated; at byte 3\n',
    );
    const bug = describeFailure(new TypeError('undefined is not a function'));
    expect(bug.code).toBe(1);
    expect(bug.text).toMatch(/^prfl: unexpected error\nTypeError: undefined is not a function\n\s+at /);
  });
});
