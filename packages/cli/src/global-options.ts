/**
 * The options every command takes: --backend, --threads, --json, --quiet, --config (repeatable),
 * --set (repeatable). Commander parses them before or after the command's name.
 */
import { type Command, Option } from 'commander';
import { BACKEND_NAMES, type BackendName, WASM_THREADS_ENV } from '@prfl/tensor';
import { UsageError } from './errors.js';

export interface GlobalOptions {
  backend: BackendName;
  /** wasm threads: a count, or auto (the machine's cores, at most 4). */
  threads: number | 'auto';
  json: boolean;
  quiet: boolean;
  config: string[];
  set: string[];
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Adds the global options to the root command. */
export function addGlobalOptions(program: Command): Command {
  return program
    .addOption(new Option('--backend <name>', 'compute backend').choices([...BACKEND_NAMES]).default('wasm'))
    .addOption(
      new Option('--threads <count>', "wasm threads: a count (1-8) or auto, the machine's cores up to 4")
        .env(WASM_THREADS_ENV)
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
    json: o.json === true,
    quiet: o.quiet === true,
    config: o.config ?? [],
    set: o.set ?? [],
  };
}

/** `--threads` (or PRFL_WASM_THREADS): `auto` or an integer from 1 to 8; empty means `auto`. */
export function parseThreads(text: string): number | 'auto' {
  if (text === 'auto' || text === '') return 'auto';
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 8) {
    throw new UsageError(
      `--threads (or ${WASM_THREADS_ENV}): expected auto or an integer from 1 to 8, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
