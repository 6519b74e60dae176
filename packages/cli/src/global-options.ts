/**
 * The options every command takes: --backend, --json, --quiet, --config (repeatable), --set
 * (repeatable). Commander parses them before or after the command's name.
 */
import { type Command, Option } from 'commander';
import { BACKEND_NAMES, type BackendName } from '@prfl/tensor';

export interface GlobalOptions {
  backend: BackendName;
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
    json: o.json === true,
    quiet: o.quiet === true,
    config: o.config ?? [],
    set: o.set ?? [],
  };
}
