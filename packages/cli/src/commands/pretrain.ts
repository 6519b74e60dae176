/**
 * `prfl pretrain`: makes the embedded models (VAE, text encoder + DiT, PAVRM) with the recipe of
 * @prfl/pretrained and writes the weights folder `prfl generate` loads. Every stage checkpoints in the
 * run folder: run the same command with the same --run-dir to continue after Ctrl-C or a crash.
 */
import type { CommandContext } from '../context.js';
import { InterruptedError, UsageError } from '../errors.js';
import { defaultRunDir, RunDir } from '../run-dir.js';
import { defaultWeightsDir } from '../weights.js';

export interface PretrainCommandOptions {
  runDir?: string;
  out?: string;
  seed?: number;
  quick?: boolean;
}

/** What the recipe reports (the signature of @prfl/pretrained/recipe's `pretrain`). */
export interface PretrainProgressEvent {
  stage: string;
  done: number;
  total: number;
  elapsedMs: number;
  metrics?: Record<string, number>;
}

export interface PretrainCall {
  runDir: string;
  out: string;
  seed?: number;
  quick?: boolean;
  log?: (line: string) => void;
  onProgress?: (p: PretrainProgressEvent) => void;
  signal?: AbortSignal;
}

export type PretrainFunction = (options: PretrainCall) => Promise<{ manifest: object; out: string }>;

export interface PretrainResult {
  runDir: string;
  out: string;
  seed: number;
  quick: boolean;
  manifest: object | null;
  interrupted: boolean;
  elapsedMs: number;
}

/** The recipe's entry point, loaded when the command runs (it pulls in every trainer). */
export async function loadPretrain(): Promise<PretrainFunction> {
  const recipe = (await import('@prfl/pretrained/recipe')) as unknown as { pretrain?: PretrainFunction };
  if (typeof recipe.pretrain !== 'function') {
    throw new UsageError('pretrain: this build of @prfl/pretrained has no recipe entry point `pretrain` yet');
  }
  return recipe.pretrain;
}

export async function pretrainCommand(
  ctx: CommandContext,
  o: PretrainCommandOptions,
): Promise<PretrainResult> {
  const began = performance.now();
  const config = await ctx.config([{ key: 'train.seed', value: o.seed, flag: '--seed' }]);
  const seed = config.number('train.seed');
  const quick = o.quick === true;
  const runDir =
    o.runDir !== undefined ? ctx.resolve(o.runDir) : defaultRunDir(ctx.io.cwd, 'pretrain', ctx.io.now());
  const out = o.out !== undefined ? ctx.resolve(o.out) : defaultWeightsDir();
  const pretrain = await loadPretrain();
  const run = await RunDir.open(runDir, config);
  await ctx.backend();
  ctx.note(`pretrain: run folder ${runDir}, weights to ${out}${quick ? ' (quick)' : ''}`);
  run.metrics({ event: 'start', seed, quick, out, backend: ctx.global.backend });
  let stage = '';
  try {
    const result = await pretrain({
      runDir,
      out,
      seed,
      quick,
      signal: ctx.signal,
      log: (line) => {
        ctx.note(line);
        run.metrics({ event: 'log', line });
      },
      onProgress: (p) => {
        if (p.stage !== stage) {
          stage = p.stage;
          ctx.progress.phase(p.stage, p.total);
        }
        ctx.progress.update(p.done, p.metrics);
        run.metrics({
          stage: p.stage,
          step: p.done,
          total: p.total,
          elapsedMs: Math.round(p.elapsedMs),
          ...p.metrics,
        });
      },
    });
    ctx.progress.end();
    const interrupted = ctx.signal.aborted;
    run.metrics({ event: interrupted ? 'interrupted' : 'done', out: result.out });
    if (interrupted) {
      throw new InterruptedError(
        `interrupted; the last checkpoint is in ${runDir}: continue with \`prfl pretrain --run-dir ${runDir}${quick ? ' --quick' : ''}\``,
      );
    }
    return {
      runDir,
      out: result.out,
      seed,
      quick,
      manifest: result.manifest,
      interrupted,
      elapsedMs: Math.round(performance.now() - began),
    };
  } catch (e) {
    if (ctx.signal.aborted && !(e instanceof InterruptedError)) {
      run.metrics({ event: 'interrupted', error: (e as Error).message });
      throw new InterruptedError(
        `interrupted (${(e as Error).message}); continue with \`prfl pretrain --run-dir ${runDir}${quick ? ' --quick' : ''}\``,
      );
    }
    throw e;
  } finally {
    run.close();
  }
}

export function formatPretrain(r: PretrainResult): string {
  return `pretrained in ${(r.elapsedMs / 1000).toFixed(0)} s: weights in ${r.out}, run folder ${r.runDir}\n`;
}
