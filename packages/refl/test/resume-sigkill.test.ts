/**
 * A training process killed with SIGKILL resumes from its last checkpoint in a new process and ends with
 * the same bytes as a run never interrupted: weights, AdamW state and the open accumulation window, and
 * no temporary or orphaned files left in the checkpoint folder.
 *
 * The training runs in child Node processes on the *built* packages (test/support/resume-child.mjs), the
 * way a user runs it; `npm test` builds every package before its tests (turbo's test task depends on
 * build). Two kills: the first as step 8's checkpoint is being written (mid-write or just before it,
 * whichever the scheduler gives; either way the previous checkpoint must load), the second strictly
 * between two checkpoints.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAtomicTempName } from '@prfl/tensor';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const child = path.join(root, 'test/support/resume-child.mjs');
const built = ['refl', 'tensor', 'schedulers', 'models', 'reward'].map((p) =>
  path.join(root, '..', p, 'dist/index.js'),
);
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-refl-sigkill-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const STEPS = 12;
const EVERY = 4;

function run(dir: string, ...extra: string[]): Promise<string> {
  return promisify(execFile)(process.execPath, [child, dir, String(STEPS), ...extra], {
    cwd: root,
    timeout: 60_000,
  }).then((r) => r.stdout);
}

/** Starts a training process and SIGKILLs it right after the first `step <n>` line that `when(n)` accepts. */
function killAt(dir: string, when: (step: number) => boolean, ...extra: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p: ChildProcess = spawn(process.execPath, [child, dir, String(STEPS), ...extra], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let killedAt = -1;
    let buffered = '';
    p.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^step (\d+)$/.exec(line);
        if (killedAt < 0 && m && when(Number(m[1]))) {
          killedAt = Number(m[1]);
          p.kill('SIGKILL');
        }
      }
    });
    p.on('error', reject);
    p.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`expected the run to be killed, it exited (${_code})`));
      else resolve(killedAt);
    });
  });
}

const checkpointStep = (dir: string) =>
  (JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')) as { step: number }).step;

describe('a training process killed with SIGKILL', () => {
  it('runs on the built packages (`npm run build` first; turbo builds before tests)', () => {
    expect(
      built.filter((f) => !existsSync(f)),
      'missing dist files: run `npx turbo run build --filter=@prfl/refl...`',
    ).toEqual([]);
  });

  it.runIf(built.every((f) => existsSync(f)))(
    'resumes from its last checkpoint and ends bit-identical to an uninterrupted run, with no stale files',
    async () => {
      const whole = path.join(tmp, 'uninterrupted');
      const killed = path.join(tmp, 'killed');
      const first = run(whole);

      // Kill 1: as step 8's checkpoint is written. The folder then holds checkpoint 4 or 8.
      expect(await killAt(killed, (s) => s === 2 * EVERY)).toBe(2 * EVERY);
      const afterFirstKill = checkpointStep(killed);
      expect([EVERY, 2 * EVERY]).toContain(afterFirstKill);

      // Kill 2: resumed, then killed between checkpoints (one step past the last one).
      const at = await killAt(killed, (s) => s % EVERY !== 0, '--resume');
      expect(at).toBe(afterFirstKill + 1);
      expect(checkpointStep(killed)).toBe(afterFirstKill);

      // The last process runs to the end.
      const out = await run(killed, '--resume');
      expect(out).toContain(`resumed ${afterFirstKill}\n`);
      expect(out).toContain(`done ${STEPS}\n`);
      expect(await first).toContain(`done ${STEPS}\n`);

      expect(checkpointStep(killed)).toBe(STEPS);
      const files = readdirSync(whole).filter((f) => f.endsWith('.safetensors'));
      expect(files.sort()).toEqual(
        ['model', 'optimizer', 'window'].map((k) => `${k}-000000${STEPS}.safetensors`),
      );
      for (const f of files) {
        const a = readFileSync(path.join(whole, f));
        const b = readFileSync(path.join(killed, f));
        expect(b.equals(a), `${f} differs from the uninterrupted run's`).toBe(true);
      }
      // Nothing else: no temporary file of a killed writer, no weights of an older checkpoint.
      const left = readdirSync(killed);
      expect(left.filter((f) => parseAtomicTempName(f) !== undefined)).toEqual([]);
      expect(left.sort()).toEqual(readdirSync(whole).sort());
    },
    60_000,
  );
});
