/**
 * The `prfl` program: commander parses, each command runs in a context (global options, config,
 * progress, Ctrl-C), and `run` turns every outcome into an exit code: 0 done, 2 the user's mistake (one
 * line on stderr), 1 an unexpected error (its stack), 130 Ctrl-C.
 */
import { Command, CommanderError, InvalidArgumentError as CommanderInvalidArgument, Option } from 'commander';
import { benchCommand } from './commands/bench.js';
import { configCommand } from './commands/config.js';
import { demoCommand, formatDemo } from './commands/demo.js';
import { evalRewardCommand, formatEvalReward } from './commands/eval-reward.js';
import { DEFAULT_EXPORT_DIR, EXPORT_TARGETS, exportRun, formatExport } from './commands/export.js';
import { formatGenerate, generate } from './commands/generate.js';
import { formatInspect, inspectPath } from './commands/inspect.js';
import { formatPretrain, pretrainCommand } from './commands/pretrain.js';
import { formatSample, sample } from './commands/sample.js';
import { formatScore, score } from './commands/score.js';
import { formatTrain, TRAIN_METHODS, trainCommand } from './commands/train.js';
import { formatTrainReward, trainRewardCommand } from './commands/train-reward.js';
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

/** The long flags of `cmd`'s own options given on the command line (not defaults, not --resume). */
function givenOptions(cmd: Command): string[] {
  return cmd.options
    .filter((o) => o.attributeName() !== 'resume' && cmd.getOptionValueSource(o.attributeName()) === 'cli')
    .map((o) => o.long ?? o.name());
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
    .command('sample')
    .description(
      'inference-time process reward: sample N seeds of a prompt, let the PAVRM score their noisy latents part-way, finish only the best; writes a GIF per kept video and result.json (--compare: vs no pruning and best-of-N)',
    )
    .requiredOption('--prompt <text>', 'a prompt of the MovingShapes grammar')
    .option('--seeds <n>', 'N: seeds sampled together', integer(1), 8)
    .option(
      '--prune-at <step>',
      'prune after this many sampling steps (default: a quarter of --steps)',
      integer(0),
    )
    .option('--keep <k>', 'K: seeds that survive the pruning (default N / 4, at least 1)', integer(1))
    .option(
      '--threshold <p>',
      'keep instead the seeds whose PAVRM probability is >= p, in (0, 1) (at least the best one)',
      number,
    )
    .option(
      '--steps <n>',
      'sampling steps (default 20, or prfl.sampling.num_steps from a config)',
      integer(1),
    )
    .option(
      '--guidance <g>',
      'classifier-free guidance scale (default 4, or prfl.sampling.guidance_scale from a config)',
      number,
    )
    .option(
      '--seed <n>',
      'seed of the initial noise (config eval.seed); seed i uses "<seed>-<i>"',
      integer(0),
    )
    .option('--weights <dir>', 'weights folder (default: the embedded weights of @prfl/pretrained)')
    .option('--run-dir <dir>', 'run folder (default runs/sample-<time>)')
    .option(
      '--compare',
      'also finish every seed without pruning: oracle motion-good rate and compute of no pruning, early pruning and best-of-N',
    )
    .addHelpText(
      'after',
      examples([
        'prfl sample --prompt "a large red circle moving left"',
        'prfl sample --prompt "a large red circle moving left" --seeds 16 --keep 4 --compare',
        'prfl sample --prompt "a large blue square moving up" --prune-at 3 --threshold 0.2 --json',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await sample(ctx, opts);
        ctx.result(formatSample(r), r);
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
    .option('--reward-videos <n>', 'videos of training prompts the PAVRM learns from', integer(2))
    .option('--reward-steps <n>', 'PAVRM training steps', integer(1))
    .option(
      '--control',
      'also fine-tune the base generator with the SFT term alone (same budget) and judge it on the same videos: what the reward adds',
    )
    .option('--seed <n>', 'seed of every stage', integer(0))
    .option('--weights <dir>', 'weights folder (default: the embedded weights of @prfl/pretrained)')
    .option('--run-dir <dir>', 'run folder (default runs/demo-<time>)')
    .option(
      '--resume <run>',
      'continue a stopped demo in its run folder (same result as a run never stopped)',
    )
    .addHelpText(
      'after',
      examples([
        'prfl demo',
        'prfl demo --control',
        'prfl demo --quick --json',
        'prfl demo --resume runs/demo-20261207-101500',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await demoCommand(ctx, opts);
        ctx.result(formatDemo(r), r);
      }),
    );

  program
    .command('train-reward')
    .description(
      "train a PAVRM on the generator's own videos labelled by the oracle (or on the reference's data layout with --data), judge it per sigma bucket on held-out prompts and seeds; writes a weights folder",
    )
    .addOption(
      new Option(
        '--space <space>',
        "latent: a PAVRM on noisy latents; pixel: the RGB ReFL baseline's reward on decoded frames",
      )
        .choices(['latent', 'pixel'])
        .default('latent'),
    )
    .addOption(
      new Option(
        '--frames <frames>',
        'pixel space: train on all decoded frames or the first (as rgb-refl decodes)',
      ).choices(['all', 'first']),
    )
    .option('--videos <n>', 'videos of the training prompts to generate and label (default 768)', integer(1))
    .option('--steps <n>', 'training steps (config optimizer.max_train_steps; default 1500)', integer(1))
    .option('--seed <n>', 'seed of the videos, the head and the sigmas (config train.seed)', integer(0))
    .option(
      '--data <list>',
      'a .list of meta JSONs in the reference layout instead of generating (repeatable; config dataset.meta_file_list)',
      collect,
    )
    .option('--eval-videos <n>', 'held-out videos judged after training (0: none)', integer(0), 112)
    .option('--weights <dir>', 'weights folder of the generator (default: the embedded weights)')
    .option('--run-dir <dir>', 'run folder (default runs/train-reward-<time>)')
    .option('--resume <run>', 'continue a stopped run with its own configuration')
    .addHelpText(
      'after',
      examples([
        'prfl train-reward --videos 256 --steps 400',
        'prfl train-reward --set lrm.pool=mean --set lrm.feature_layer=1 --json',
        'prfl train-reward --set lrm.loss=bt --weights runs/train-20261207-120000/weights',
        'prfl train-reward --data export/data/train.list --eval-videos 0',
        'prfl train-reward --space pixel --videos 256 --steps 600   # for prfl train --method rgb-refl',
        'prfl train-reward --resume runs/train-reward-20261207-101500',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await trainRewardCommand(ctx, { ...opts, given: givenOptions(cmd) });
        ctx.result(formatTrainReward(r), r);
      }),
    );

  program
    .command('eval-reward')
    .description(
      "judge the PAVRM of a weights folder the paper's way: five sigma buckets, one random sigma per bucket per video, accuracy and ROC-AUC, on held-out generations labelled by the oracle (or --data)",
    )
    .option('--videos <n>', 'held-out videos to generate and label', integer(1), 112)
    .option('--seed <n>', 'seed of the videos and the sigmas (config eval.seed)', integer(0))
    .option('--steps <n>', 'sampling steps (config prfl.sampling.num_steps)', integer(1))
    .option('--guidance <g>', 'guidance scale (config prfl.sampling.guidance_scale)', number)
    .option(
      '--data <list>',
      'a .list of meta JSONs in the reference layout instead (repeatable; config dataset.val_meta_file_list)',
      collect,
    )
    .option('--weights <dir>', 'weights folder (default: the embedded weights)')
    .option('--run-dir <dir>', 'run folder (default runs/eval-reward-<time>)')
    .addHelpText(
      'after',
      examples([
        'prfl eval-reward',
        'prfl eval-reward --weights runs/train-reward-20261207-101500/weights --videos 224 --json',
        'prfl eval-reward --data export/data/train.list',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await evalRewardCommand(ctx, opts);
        ctx.result(formatEvalReward(r), r);
      }),
    );

  program
    .command('train')
    .description(
      'fine-tune the generator of a weights folder with PRFL or a baseline (sft, rwr, rgb-refl), then judge base and fine-tuned on held-out prompts and seeds; writes a weights folder',
    )
    .addOption(
      new Option('--method <method>', 'what to train with').choices([...TRAIN_METHODS]).default('prfl'),
    )
    .option('--steps <n>', 'micro-steps (config optimizer.max_train_steps; default 70)', integer(1))
    .option('--seed <n>', 'seed of every draw (config train.seed)', integer(0))
    .option('--clips <n>', 'training clips of the SFT term (and of rwr)', integer(1), 128)
    .addOption(
      new Option('--k-range <range>', 'where the reward step k is drawn (default: the whole chain)').choices([
        'full',
        'early',
        'middle',
        'late',
      ]),
    )
    .option('--eval-videos <n>', 'held-out videos judged before and after (0: none)', integer(0), 112)
    .option('--pixel-reward <file>', 'the pixel reward of --method rgb-refl (a .safetensors)')
    .option(
      '--data <list>',
      'train on a .list of meta JSONs in the reference layout instead of rendered clips (repeatable; config dataset.meta_file_list)',
      collect,
    )
    .option('--weights <dir>', 'weights folder (default: the embedded weights)')
    .option('--run-dir <dir>', 'run folder (default runs/train-<time>)')
    .option('--resume <run>', 'continue a stopped run with its own configuration')
    .addHelpText(
      'after',
      examples([
        'prfl train',
        'prfl train --method sft --steps 60 --json',
        'prfl train --steps 120 --set optimizer.learning_rate=5e-5 --set prfl.reward_weight=0.2',
        'prfl train --weights runs/train-reward-20261207-101500/weights --k-range early',
        'prfl train --resume runs/train-20261207-103000',
      ]),
    )
    .action(async (opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await trainCommand(ctx, { ...opts, given: givenOptions(cmd) });
        ctx.result(formatTrain(r), r);
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
    .command('bench')
    .description(
      'time the method on this machine: seconds and peak memory per generation, PAVRM and training step (PRFL, SFT, RWR, RGB ReFL), or the backend matMul peak; writes JSON',
    )
    .argument('[name]', 'which benchmark: steps (default), matmul, or list to name them all')
    .option('--weights <dir>', 'weights folder (default: the embedded weights of @prfl/pretrained)')
    .option('--batch-size <n>', 'videos per measured batch', integer(1), 2)
    .option('--repeats <n>', 'measured calls per item (median and fastest reported)', integer(1), 5)
    .option('--warmup <n>', 'unmeasured calls per item before them', integer(0), 1)
    .option('--frames <n>', "frames per video, 4k + 1 (steps; default the world's 17)", integer(1))
    .option('--out <file>', 'the JSON result (default <run folder>/bench-<name>.json in runs/bench-<time>)')
    .addHelpText(
      'after',
      examples([
        'prfl bench list',
        'prfl bench steps --json',
        'prfl bench steps --batch-size 4 --repeats 10 --out steps-b4.json',
        'prfl bench steps --frames 33 --out steps-33.json',
        'prfl bench matmul --backend cpu',
      ]),
    )
    .action(async (name: string | undefined, opts, cmd: Command) =>
      withContext(io, cmd, (ctx) =>
        benchCommand(
          ctx,
          name,
          opts,
          (cmd.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? [],
        ),
      ),
    );

  program
    .command('export')
    .description(
      "write a run folder in the files the PyTorch reference (HY-Video-PRFL) takes: its generations as meta JSONs + .npy + a .list, the DiT in Wan's layout, the PAVRM's three parts, LoRA adapters, config.yaml and a README",
    )
    .argument('<run>', 'run folder of prfl train, train-reward or demo')
    .addOption(
      new Option('--to <layout>', 'the layout to write').choices([...EXPORT_TARGETS]).makeOptionMandatory(),
    )
    .option('--out <dir>', `folder to write, new or empty (default <run>/${DEFAULT_EXPORT_DIR})`)
    .option('--force', 'replace --out when it exists and is not empty')
    .addHelpText(
      'after',
      examples([
        'prfl export --to reference runs/train-20261207-103000',
        'prfl export --to reference runs/train-20261207-103000 --set model.base_path=/models/Wan2.1-T2V-1.3B --force',
        'prfl export --to reference runs/demo-20261207-101500 --out /data/prfl-export --force --json',
      ]),
    )
    .action(async (target: string, opts, cmd: Command) =>
      withContext(io, cmd, async (ctx) => {
        const r = await exportRun(ctx, target, opts);
        ctx.result(formatExport(r), r);
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
