/**
 * The `prfl` program: commander parses, each command runs in a context (global options, config,
 * progress, Ctrl-C), and `run` turns every outcome into an exit code: 0 done, 2 the user's mistake (one
 * line on stderr), 1 an unexpected error (its stack), 130 Ctrl-C.
 */
import { Command, CommanderError, InvalidArgumentError as CommanderInvalidArgument, Option } from 'commander';
import { configCommand } from './commands/config.js';
import { demoCommand, formatDemo } from './commands/demo.js';
import { formatGenerate, generate } from './commands/generate.js';
import { formatInspect, inspectPath } from './commands/inspect.js';
import { formatPretrain, pretrainCommand } from './commands/pretrain.js';
import { formatScore, score } from './commands/score.js';
import { withContext } from './context.js';
import { describeFailure, EXIT } from './errors.js';
import { addGlobalOptions } from './global-options.js';
import { type CliIo, processIo } from './io.js';

export const VERSION = '0.1.0';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function integer(min = Number.MIN_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(n) || n < min) {
      throw new CommanderInvalidArgument(
        `expected an integer${min > Number.MIN_SAFE_INTEGER ? ` >= ${min}` : ''}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) {
    throw new CommanderInvalidArgument(`expected a number, got ${JSON.stringify(value)}`);
  }
  return n;
}

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** Builds the program; `io` receives its output. */
export function createProgram(io: CliIo): Command {
  const program = new Command('prfl')
    .description(
      'Latent reward feedback learning for video diffusion models (PRFL, PAVRM) on TensorFlow.js.\n' +
        'Config keys follow the PyTorch reference layout; `prfl config --keys` lists them.',
    )
    .version(VERSION, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`prfl: ${s.replace(/^error: /, '')}`),
    })
    .exitOverride();
  addGlobalOptions(program);
  program.addHelpText(
    'after',
    examples([
      'prfl inspect weights/dit',
      'prfl generate --prompt "a large red circle moving left" --out circle.gif',
      'prfl pretrain --quick',
      'prfl config --config run.yaml --set optimizer.learning_rate=1e-5',
    ]),
  );

  program
    .command('inspect')
    .description(
      'show what a weights file or folder holds: safetensors, PyTorch (.pth/.bin/.ckpt), .npy, a Wan DiT folder, a PAVRM folder, a trainer checkpoint, embedded weights or a run folder',
    )
    .argument('<path>', 'file or folder')
    .option('--all', 'list every tensor (default: the first 40)')
    .addHelpText(
      'after',
      examples([
        'prfl inspect model.safetensors',
        'prfl inspect Wan2.1-T2V-1.3B/diffusion_pytorch_model.safetensors --all',
        'prfl inspect runs/pretrain-20250101-120000',
        'prfl inspect packages/pretrained/weights --json',
      ]),
    )
    .action(async (target: string, opts: { all?: boolean }, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await inspectPath(ctx.resolve(target));
        ctx.result(formatInspect(r, { all: opts.all === true }), r);
      }),
    );

  program
    .command('generate')
    .description(
      'generate videos with the embedded models, write a GIF or PNG strip, and judge them (oracle and PAVRM)',
    )
    .requiredOption(
      '--prompt <text>',
      'a prompt of the MovingShapes grammar (repeatable: one video each)',
      collect,
    )
    .option(
      '--seed <n>',
      'seed of the initial noise (config eval.seed); video i uses "<seed>-<i>"',
      integer(0),
    )
    .option('--steps <n>', 'sampling steps (config prfl.sampling.num_steps)', integer(1))
    .option('--guidance <g>', 'classifier-free guidance scale (config prfl.sampling.guidance_scale)', number)
    .option(
      '--timestep <t>',
      'timestep at which the PAVRM scores the clean video (config eval.timestep)',
      number,
    )
    .option('--out <file>', 'output .gif (animation) or .png (frame strip); default <run folder>/video.gif')
    .option('--weights <dir>', 'weights folder (default: the embedded weights of @prfl/pretrained)')
    .option('--run-dir <dir>', 'run folder (default runs/generate-<time> when --out is not given)')
    .option('--fps <n>', 'GIF frames per second', number, 8)
    .option('--scale <n>', 'integer upscaling of the frames', integer(1), 4)
    .option('--batch-size <n>', 'videos per pipeline call', integer(1), 8)
    .addHelpText(
      'after',
      examples([
        'prfl generate --prompt "a large red circle moving left"',
        'prfl generate --prompt "a large blue square moving up" --prompt "a large green triangle moving right" --seed 3 --out two.gif',
        'prfl generate --prompt "a large red circle moving left" --steps 20 --guidance 4 --out strip.png --json',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await generate(ctx, opts);
        ctx.result(formatGenerate(r), r);
      }),
    );

  program
    .command('score')
    .description('PAVRM probability of good motion for a video or latent stored as .npy')
    .argument(
      '<file>',
      ".npy latent [F', H', W', C] or video [F, H, W, 3] in [-1, 1] (a batch axis first is allowed)",
    )
    .requiredOption(
      '--prompt <text>',
      'the prompt of the video (repeat for one per video of a batch)',
      collect,
    )
    .option(
      '--timestep <t>',
      'read the latent at this timestep, noised to it first when > 0 (config eval.timestep)',
      number,
    )
    .option('--seed <n>', 'seed of that noise (config eval.seed)', integer(0))
    .option('--weights <dir>', 'weights folder (default: the embedded weights of @prfl/pretrained)')
    .addOption(
      new Option('--kind <kind>', 'what the file holds').choices(['auto', 'latent', 'video']).default('auto'),
    )
    .addHelpText(
      'after',
      examples([
        'prfl score video.npy --prompt "a large red circle moving left"',
        'prfl score latents.npy --prompt "a large red circle moving left" --timestep 500 --json',
      ]),
    )
    .action(async (file: string, opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await score(ctx, file, opts);
        ctx.result(formatScore(r), r);
      }),
    );

  program
    .command('demo')
    .description(
      'the paper in minutes: videos of the embedded generator labelled by the oracle, a PAVRM trained on them, PRFL fine-tuning, the oracle before and after on held-out prompts and seeds; writes report.html',
    )
    .option('--quick', 'seconds-long budgets (checks the pipeline, not the result)')
    .option('--full', 'about three times the default budgets')
    .option('--steps <n>', 'PRFL steps', integer(1))
    .option('--seed <n>', 'seed of every stage', integer(0))
    .option('--weights <dir>', 'weights folder (default: the embedded weights of @prfl/pretrained)')
    .option('--run-dir <dir>', 'run folder (default runs/demo-<time>)')
    .option(
      '--resume <run>',
      'continue a stopped demo in its run folder (same result as a run never stopped)',
    )
    .addHelpText(
      'after',
      examples(['prfl demo', 'prfl demo --quick --json', 'prfl demo --resume runs/demo-20261207-101500']),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await demoCommand(ctx, opts);
        ctx.result(formatDemo(r), r);
      }),
    );

  program
    .command('pretrain')
    .description(
      'make the embedded models (VAE, text encoder + DiT, PAVRM) and write their weights folder; resumable',
    )
    .option(
      '--run-dir <dir>',
      'run folder with every stage’s checkpoints (default runs/pretrain-<time>); reuse it to resume',
    )
    .option(
      '--out <dir>',
      'weights folder to write (default: the embedded weights folder of @prfl/pretrained)',
    )
    .option('--seed <n>', 'one seed for every stage (config train.seed)', integer(0))
    .option('--quick', 'tiny budgets: checks the pipeline in minutes, not the quality')
    .addHelpText(
      'after',
      examples([
        'prfl pretrain --quick --out /tmp/weights',
        'prfl pretrain --run-dir runs/pretrain-main   # Ctrl-C, then the same command resumes',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await pretrainCommand(ctx, opts);
        ctx.result(formatPretrain(r), r);
      }),
    );

  program
    .command('config')
    .description(
      'print the merged configuration (defaults < --config files < --set), or every key with --keys',
    )
    .option('--keys', 'list every key with its default, range and meaning')
    .addHelpText(
      'after',
      examples([
        'prfl config --keys',
        'prfl config --config base.yaml --config mine.yaml --set train.seed=3',
        'prfl config --set optimizer.learning_rate=1e-5 --json',
      ]),
    )
    .action(async (opts: { keys?: boolean }, cmd: Command) =>
      withContext(io, cmd, (ctx) => configCommand(ctx, { keys: opts.keys === true })),
    );

  for (const c of program.commands) {
    c.configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`prfl ${c.name()}: ${s.replace(/^error: /, '')}`),
    });
    c.showHelpAfterError(`(run prfl ${c.name()} --help for usage)`);
  }
  return program;
}

/** Runs `prfl` with `argv` (without node and the script), returning the exit code. */
export async function run(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const program = createProgram(io);
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.ok;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version end with exitCode 0; parse errors were already printed by commander.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { code, text } = describeFailure(e);
    io.stderr.write(text);
    return code;
  }
}
