/**
 * Run folders: every command that runs something writes into one folder, `--run-dir <dir>` or by
 * default `runs/<command>-<YYYYMMDD-HHMMSS>`:
 *
 *     config.resolved.yaml   the merged configuration (defaults < config files < --set < options)
 *     metrics.jsonl          one JSON object per line, per step or event, appended and flushed at once
 *
 * Checkpoints, samples and reports are the commands' own. Single files are written atomically.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '@prfl/tensor';
import type { ResolvedConfig } from './config/resolve.js';

export const RESOLVED_CONFIG_FILE = 'config.resolved.yaml';
export const METRICS_FILE = 'metrics.jsonl';

/** YYYYMMDD-HHMMSS in local time. */
export function timestampName(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
  );
}

/** `runs/<command>-<timestamp>` under `cwd`, with -2, -3 ... when that folder exists already. */
export function defaultRunDir(cwd: string, command: string, date: Date): string {
  const base = path.resolve(cwd, 'runs', `${command}-${timestampName(date)}`);
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

/** Writes text to a file atomically (temp file, fsync, rename). */
export async function writeTextAtomic(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    await write(new TextEncoder().encode(text));
  });
}

/** Writes bytes to a file atomically. */
export async function writeBytesAtomic(file: string, bytes: Uint8Array): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    await write(bytes);
  });
}

/** An open run folder. */
export class RunDir {
  readonly dir: string;
  #fd: number | undefined;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates (or reopens, to resume) the folder and writes config.resolved.yaml. */
  static async open(dir: string, config: ResolvedConfig): Promise<RunDir> {
    mkdirSync(dir, { recursive: true });
    const run = new RunDir(dir);
    await writeTextAtomic(path.join(dir, RESOLVED_CONFIG_FILE), config.toYaml());
    return run;
  }

  /** A path inside the folder. */
  file(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /**
   * Appends one line to metrics.jsonl and flushes it to disk, so a crash loses nothing written. `time`
   * (ISO) is added unless given.
   */
  metrics(record: Record<string, unknown>): void {
    if (this.#fd === undefined) this.#fd = openSync(this.file(METRICS_FILE), 'a');
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
    writeSync(this.#fd, line);
    fsyncSync(this.#fd);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
