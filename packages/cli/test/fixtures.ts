/** Tiny random models saved in the embedded layout, a temp folder per test file, and ways to run `prfl`. */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { disposeEmbedded, EMBEDDED_WORLD } from '@prfl/pretrained';
import { saveEmbedded, worldTokenizer } from '@prfl/pretrained/recipe';
import { Pavrm } from '@prfl/reward';
import { initBackend } from '@prfl/tensor';
import { type CliIo, memorySink, run } from '../src/index.js';

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(PACKAGE_DIR, 'dist', 'bin.js');

/** A fresh temp folder and its remover. */
export function tempDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `prfl-cli-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Saves tiny random embedded models (VAE 'test', 2-block DiT, 1-block PAVRM) into `dir`. */
export async function saveTinyModels(dir: string): Promise<void> {
  await initBackend({ backend: 'wasm' });
  const vae = new WanVAE('test', { seed: 1 });
  const textEncoder = new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 });
  const dit = new WanDiT({ numLayers: 2, inDim: 4, outDim: 4 }, { base: 'tiny', seed: 3 });
  const reward = new Pavrm(dit.truncate(1), { hidden: [8], seed: 4 });
  await saveEmbedded({ vae, textEncoder, dit, reward }, dir, {
    world: EMBEDDED_WORLD,
    recipe: { command: 'cli test' },
    rewardBlocks: 1,
  });
  disposeEmbedded({ manifest: undefined as never, vae, textEncoder, dit, reward });
}

/** What a run of `prfl` printed and returned. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** The built binary, as a child process in `cwd`. */
export function runBinary(cwd: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * `run` in this process with `cwd` as its folder; `onStderr` sees every write to stderr and may press
 * Ctrl-C (a second one would exit: that throws here).
 */
export async function runInProcess(
  cwd: string,
  args: string[],
  onStderr?: (text: string, ctrlC: () => void) => void,
): Promise<Ran> {
  const signals = new EventEmitter();
  const stdout = memorySink();
  const stderr = memorySink();
  const io: CliIo = {
    stdout,
    stderr: {
      write: (t: string) => {
        stderr.write(t);
        onStderr?.(t, () => signals.emit('SIGINT'));
        return true;
      },
    },
    cwd,
    signals: signals as never,
    exit: () => {
      throw new Error('a single Ctrl-C must not exit at once');
    },
    now: () => new Date(2026, 0, 2, 3, 4, 5),
  };
  const code = await run(args, io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
