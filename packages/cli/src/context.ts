/**
 * What a command's action works with: the global options, the I/O, progress, the Ctrl-C signal, the
 * configuration, and one way to print its result (human text, or one JSON document with --json).
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { startBackend } from './backend.js';
import { type ResolveConfigOptions, type ResolvedConfig, resolveConfig } from './config/resolve.js';
import { type GlobalOptions, globalOptions, resolveWorkers } from './global-options.js';
import { installInterrupt } from './interrupt.js';
import type { CliIo } from './io.js';
import { createProgress, type Progress, progressMode } from './progress.js';

export interface CommandContext {
  io: CliIo;
  global: GlobalOptions;
  progress: Progress;
  /** Aborted by the first Ctrl-C. */
  signal: AbortSignal;
  /**
   * The merged configuration: defaults < `defaults` (the command's) < --config files < --set <
   * `overrides` (the command's own options).
   */
  config(
    overrides?: ResolveConfigOptions['overrides'],
    defaults?: ResolveConfigOptions['defaults'],
  ): Promise<ResolvedConfig>;
  /**
   * Starts the --backend backend (commands that compute call this). `withWorkers`: the command runs worker
   * threads (--workers), so `--threads auto` gives this thread one wasm thread.
   */
  backend(options?: { withWorkers?: boolean }): Promise<string>;
  /** Worker threads for data-parallel work (--workers resolved for this machine and backend). */
  workers(): number;
  /** A path from the command line, resolved against the working folder. */
  resolve(p: string): string;
  /** Prints the command's result: `json` on stdout with --json, else `text`. */
  result(text: string, json: unknown): void;
  /** A note for the user on stderr (not with --quiet). */
  note(line: string): void;
}

/** --threads for the main thread: `auto` means 1 when worker threads share the cores with it. */
function mainThreads(global: GlobalOptions): number | 'auto' {
  if (global.threads !== 'auto') return global.threads;
  return resolveWorkers(global.workers, global.backend, availableParallelism()) > 1 ? 1 : 'auto';
}

/** Runs `body` with a context for `command`, cleaning up (progress, SIGINT handler) afterwards. */
export async function withContext<T>(
  io: CliIo,
  command: Command,
  body: (ctx: CommandContext) => Promise<T>,
): Promise<T> {
  const global = globalOptions(command);
  const progress = createProgress(io.stderr, { mode: progressMode(io.stderr, global.quiet) });
  const interrupt = installInterrupt(io);
  const ctx: CommandContext = {
    io,
    global,
    progress,
    signal: interrupt.signal,
    config: (overrides, defaults) =>
      resolveConfig({
        files: global.config.map((f) => path.resolve(io.cwd, f)),
        set: global.set,
        ...(overrides !== undefined ? { overrides } : {}),
        ...(defaults !== undefined ? { defaults } : {}),
      }),
    // With worker threads the main thread computes a shard beside them: one wasm thread each, unless
    // --threads says otherwise.
    backend: async (options) =>
      (await startBackend(global.backend, options?.withWorkers ? mainThreads(global) : global.threads)).name,
    workers: () => resolveWorkers(global.workers, global.backend, availableParallelism()),
    resolve: (p) => path.resolve(io.cwd, p),
    result: (text, json) => {
      // Bars first end, so the result does not interleave with their redraws.
      progress.close();
      if (global.json) io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      else io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note: (line) => {
      if (!global.quiet) progress.log(line);
    },
  };
  try {
    return await body(ctx);
  } finally {
    progress.close();
    interrupt.dispose();
  }
}
