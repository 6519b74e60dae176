/**
 * Where a training command runs, and with what: a new run folder (`--run-dir DIR`, default
 * runs/<command>-<time>), or `--resume RUN`, which continues RUN with the configuration and options it
 * started with (its config.resolved.yaml and command.json), so that a run stopped by Ctrl-C or a crash
 * ends as if it had never stopped.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from './config/resolve.js';
import { resolveConfig } from './config/resolve.js';
import type { CommandContext } from './context.js';
import { UsageError } from './errors.js';
import { defaultRunDir, RESOLVED_CONFIG_FILE, RunDir, writeTextAtomic } from './run-dir.js';

/** The command and its options, as the run started, beside config.resolved.yaml. */
export const COMMAND_FILE = 'command.json';

export interface TrainingRun<T> {
  run: RunDir;
  config: ResolvedConfig;
  options: T;
  resumed: boolean;
}

/**
 * Opens the run folder. `fresh` resolves the configuration and the options of a new run (it is not
 * called on --resume); `options` must be plain JSON.
 */
export async function openTrainingRun<T extends object>(
  ctx: CommandContext,
  command: string,
  where: { runDir?: string | undefined; resume?: string | undefined; given?: readonly string[] | undefined },
  fresh: () => Promise<{ config: ResolvedConfig; options: T }>,
): Promise<TrainingRun<T>> {
  if (where.resume !== undefined && where.runDir !== undefined) {
    throw new UsageError(`${command}: give --resume RUN or --run-dir DIR, not both`);
  }
  if (where.resume === undefined) {
    const { config, options } = await fresh();
    const dir =
      where.runDir !== undefined
        ? ctx.resolve(where.runDir)
        : defaultRunDir(ctx.io.cwd, command, ctx.io.now());
    if (existsSync(path.join(dir, COMMAND_FILE))) {
      throw new UsageError(
        `--run-dir ${where.runDir}: it already holds a ${command} run; continue it with --resume ${where.runDir}, or choose another folder`,
      );
    }
    const run = await RunDir.open(dir, config);
    await writeTextAtomic(run.file(COMMAND_FILE), `${JSON.stringify({ command, options }, null, 2)}\n`);
    return { run, config, options, resumed: false };
  }

  const dir = ctx.resolve(where.resume);
  const commandFile = path.join(dir, COMMAND_FILE);
  const configFile = path.join(dir, RESOLVED_CONFIG_FILE);
  if (!existsSync(commandFile) || !existsSync(configFile)) {
    throw new UsageError(
      `--resume ${where.resume}: not a run folder of prfl ${command} (expected ${COMMAND_FILE} and ${RESOLVED_CONFIG_FILE} in it)`,
    );
  }
  const others = (where.given ?? []).filter((f) => f !== '--run-dir');
  if (others.length > 0) {
    throw new UsageError(
      `--resume ${where.resume}: a resumed run keeps the options it started with; drop ${others.join(', ')} (or start a new run)`,
    );
  }
  if (ctx.global.config.length > 0 || ctx.global.set.length > 0) {
    throw new UsageError(
      `--resume ${where.resume}: a resumed run keeps the configuration it started with; drop --config and --set (or start a new run)`,
    );
  }
  let saved: { command?: unknown; options?: unknown };
  try {
    saved = JSON.parse(readFileSync(commandFile, 'utf8'));
  } catch (e) {
    throw new UsageError(`--resume ${where.resume}: ${COMMAND_FILE} is not JSON (${(e as Error).message})`);
  }
  if (saved.command !== command || typeof saved.options !== 'object' || saved.options === null) {
    throw new UsageError(
      `--resume ${where.resume}: that folder holds a run of prfl ${String(saved.command)}, not prfl ${command}`,
    );
  }
  const config = await resolveConfig({ files: [configFile] });
  const run = await RunDir.open(dir, config);
  return { run, config, options: saved.options as T, resumed: true };
}
