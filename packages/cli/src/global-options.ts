/**
 * The options every command takes: --backend, --threads, --workers, --json, --quiet, --config (repeatable),
 * --set (repeatable). Commander parses them before or after the command's name.
 */
import { type Command, Option } from 'commander';
import { BACKEND_NAMES, type BackendName, WASM_THREADS_ENV } from '@prfl/tensor';
import { UsageError } from './errors.js';

export interface GlobalOptions {
  backend: BackendName;
  /** wasm threads: a count, or auto (the machine's cores, at most 4). */
  threads: number | 'auto';
  /** Worker threads for data-parallel training and generation: a count, or auto. */
  workers: number | 'auto';
  json: boolean;
  quiet: boolean;
  config: string[];
  set: string[];
}

/** The environment variable that sets --workers' default. */
export const WORKERS_ENV = 'PRFL_WORKERS';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Adds the global options to the root command. */
export function addGlobalOptions(program: Command): Command {
  return program
    .addOption(new Option('--backend <name>', 'compute backend').choices([...BACKEND_NAMES]).default('wasm'))
    .addOption(
      new Option(
        '--threads <count>',
        "wasm threads: a count (1-8) or auto, the machine's cores up to 4 (1 in commands that run --workers)",
      )
        .env(WASM_THREADS_ENV)
        .default('auto'),
    )
    .addOption(
      new Option(
        '--workers <count>',
        "worker threads for data-parallel work (demo, train-reward, train: generation, PAVRM and PRFL training): a count (1-16) or auto, the machine's cores up to 4 (1 on webgpu)",
      )
        .env(WORKERS_ENV)
        .default('auto'),
    )
    .option('--json', 'print the result on stdout as one JSON document (progress stays on stderr)')
    .option('--quiet', 'no progress output')
    .option(
      '--config <file>',
      'a YAML or JSON config file (repeatable; later files override earlier ones)',
      collect,
    )
    .option(
      '--set <key=value>',
      'set one config key, the value read as YAML (repeatable; overrides config files)',
      collect,
    );
}

/** The global options as a command's action sees them. */
export function globalOptions(command: Command): GlobalOptions {
  const o = command.optsWithGlobals() as Partial<GlobalOptions>;
  return {
    backend: (o.backend ?? 'wasm') as BackendName,
    threads: parseThreads((o as { threads?: string }).threads ?? 'auto'),
    workers: parseWorkers((o as { workers?: string }).workers ?? 'auto'),
    json: o.json === true,
    quiet: o.quiet === true,
    config: o.config ?? [],
    set: o.set ?? [],
  };
}

/** A count option (or its environment variable): `auto` or an integer from 1 to `max`; empty means `auto`. */
function parseCount(option: string, env: string, max: number, text: string): number | 'auto' {
  if (text === 'auto' || text === '') return 'auto';
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) {
    throw new UsageError(
      `${option} (or ${env}): expected auto or an integer from 1 to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** `--threads` (or PRFL_WASM_THREADS): `auto` or an integer from 1 to 8. */
export const parseThreads = (text: string): number | 'auto' =>
  parseCount('--threads', WASM_THREADS_ENV, 8, text);

/** `--workers` (or PRFL_WORKERS): `auto` or an integer from 1 to 16. */
export const parseWorkers = (text: string): number | 'auto' => parseCount('--workers', WORKERS_ENV, 16, text);

/** What --workers means on this machine: auto is the cores (at most 4), or 1 on webgpu (one device). */
export function resolveWorkers(workers: number | 'auto', backend: string, cores: number): number {
  if (workers !== 'auto') return workers;
  if (backend === 'webgpu') return 1;
  return Math.max(1, Math.min(4, cores));
}
