/**
 * Temporary files a killed atomic write leaves behind: the next write into the folder removes ours whose
 * writer no longer runs, and nothing else.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { parseAtomicTempName, removeStaleTempFiles, saveSafetensors, writeFileAtomic } from '../src/index.js';

// Above Linux's largest pid_max (2^22) and macOS's 99999: no process has it.
const DEAD_PID = 4_194_305;

describe('stale temporary files of atomic writes', () => {
  const dirs: string[] = [];
  const fresh = async () => {
    const d = await mkdtemp(join(tmpdir(), 'prfl-atomic-'));
    dirs.push(d);
    return d;
  };
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    shutdownBackend();
  });

  it('parses only the names writeFileAtomic makes', () => {
    expect(parseAtomicTempName('.model.safetensors.1234.m4x2k9ab.q8z3k1.tmp')).toEqual({
      target: 'model.safetensors',
      pid: 1234,
    });
    for (const other of [
      'model.tmp',
      '.model.tmp',
      '.model.12.tmp',
      'a.1.b.c.tmp',
      '.x.1.AB.c.tmp',
      '.x.y.z.w.tmp',
    ]) {
      expect(parseAtomicTempName(other), other).toBeUndefined();
    }
  });

  it('the next save into a folder removes stale temporary files of ours and keeps everything else', async () => {
    const dir = await fresh();
    const stale = [
      `.model-00000010.safetensors.${DEAD_PID}.m4x2k9ab.q8z3k1.tmp`,
      `.checkpoint.json.${DEAD_PID}.m4x2k9ac.tmp1.tmp`,
    ];
    const kept = [
      `.model.safetensors.${process.pid}.m4x2k9ab.abc.tmp`, // ours, maybe in flight
      `.model.safetensors.${process.ppid}.m4x2k9ab.abc.tmp`, // a running writer
      'notes.tmp',
      '.hidden.tmp',
      `.x.${DEAD_PID}.tmp`,
      `model.safetensors.${DEAD_PID}.m4x2k9ab.abc.tmp`, // no leading dot: not our name
      'data.bin',
    ];
    for (const f of [...stale, ...kept]) await writeFile(join(dir, f), 'x');
    // A folder named like a temp file is never removed.
    await mkdir(join(dir, `.dir.${DEAD_PID}.m4x2k9ab.abc.tmp`));
    const a = tf.ones([2]);
    await saveSafetensors(join(dir, 'model.safetensors'), { a });
    a.dispose();
    expect((await readdir(dir)).sort()).toEqual(
      [...kept, 'model.safetensors', `.dir.${DEAD_PID}.m4x2k9ab.abc.tmp`].sort(),
    );
  });

  it('removeStaleTempFiles can be limited to some targets and reports what it removed', async () => {
    const dir = await fresh();
    const mine = `.pavrm.json.${DEAD_PID}.m4x2k9ab.abc.tmp`;
    const theirs = `.other.bin.${DEAD_PID}.m4x2k9ab.abc.tmp`;
    await writeFile(join(dir, mine), 'x');
    await writeFile(join(dir, theirs), 'x');
    expect(await removeStaleTempFiles(dir, { targets: (t) => t.endsWith('.json') })).toEqual([mine]);
    expect(await readdir(dir)).toEqual([theirs]);
    expect(await removeStaleTempFiles(join(dir, 'missing'))).toEqual([]);
    // writeFileAtomic cleans a folder once per process: this folder was not written to before.
    await writeFileAtomic(join(dir, 'new.txt'), (write) => write(new Uint8Array([1])));
    expect((await readdir(dir)).sort()).toEqual(['new.txt']);
  });
});
