/**
 * `prfl bench [name]`: runs a named benchmark of bench/registry.ts (default `steps`; `list` names them)
 * on the --backend backend and writes its result as one JSON document, atomically, to --out or to
 * `bench-<name>.json` in a run folder runs/bench-<time>: the benchmark's settings, rows and ratios, with
 * the machine, the backend, the versions and the command line that made them. Prints a table, or the
 * JSON with --json.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, describeBackend } from '@prfl/tensor';
import { type MachineInfo, loadAverage, machineInfo } from '../bench/machine.js';
import { BENCHES, DEFAULT_BENCH, findBench, LIST_BENCHES } from '../bench/registry.js';
import type { BenchOptions, BenchOutcome } from '../bench/types.js';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { defaultRunDir, RunDir, writeTextAtomic } from '../run-dir.js';

export interface BenchCommandOptions {
  weights?: string;
  batchSize: number;
  repeats: number;
  warmup: number;
  frames?: number;
  out?: string;
}

/** What `prfl bench <name>` writes and prints with --json. */
export interface BenchResult extends BenchOutcome {
  name: string;
  description: string;
  /** The tfjs backend the numbers were measured on. */
  backend: string;
  /** The backend in one line, with wasm's thread count: `wasm (simd, 2 threads)`. */
  backendDetail: string;
  machine: MachineInfo;
  versions: { tfjs: string };
  /** The command line that made the result. */
  command: string;
  /** When the run started (ISO). */
  date: string;
  elapsedSeconds: number;
  /** The JSON file written, and the run folder (null with --out). */
  out: string;
  runDir: string | null;
}

/** What `prfl bench list` prints. */
export interface BenchListing {
  benches: { name: string; description: string }[];
}

/** The registered benchmarks. */
export function listBenches(): BenchListing {
  return { benches: [...BENCHES.values()].map((b) => ({ name: b.name, description: b.description })) };
}

/** `prfl` and its arguments as a shell would take them back. */
export function commandLine(argv: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a));
  return ['prfl', ...argv.map(quote)].join(' ');
}

function checkCount(flag: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`${flag}: expected an integer >= ${min}, got ${String(value)}`);
  }
}

/** Runs the benchmark `name` (not `list`) and writes its JSON. */
export async function runBench(
  ctx: CommandContext,
  name: string,
  o: BenchCommandOptions,
  argv: readonly string[],
): Promise<BenchResult> {
  const bench = findBench(name);
  checkCount('--batch-size', o.batchSize, 1);
  checkCount('--repeats', o.repeats, 1);
  checkCount('--warmup', o.warmup, 0);
  if (
    o.frames !== undefined &&
    (!Number.isSafeInteger(o.frames) || o.frames < 1 || (o.frames - 1) % 4 !== 0)
  ) {
    throw new UsageError(
      `--frames: expected 4k + 1 frames (the VAE compresses time 4x after the first frame), got ${String(o.frames)}`,
    );
  }
  if (o.frames !== undefined && bench.name !== 'steps') {
    throw new UsageError(`--frames: only 'prfl bench steps' has videos; ${bench.name} does not take it`);
  }
  const began = performance.now();
  const date = ctx.io.now();
  const config = await ctx.config();
  const backend = await ctx.backend();
  const machine = machineInfo();
  const options: BenchOptions = {
    ...(o.weights !== undefined ? { weights: ctx.resolve(o.weights) } : {}),
    batchSize: o.batchSize,
    repeats: o.repeats,
    warmup: o.warmup,
    ...(o.frames !== undefined ? { frames: o.frames } : {}),
  };
  const outcome = await bench.run(ctx, options);
  // The run folder is made once there is something to put in it: a failed or stopped run leaves none.
  const run =
    o.out === undefined ? await RunDir.open(defaultRunDir(ctx.io.cwd, 'bench', date), config) : undefined;
  try {
    const out = o.out !== undefined ? ctx.resolve(o.out) : (run as RunDir).file(`bench-${name}.json`);
    const result: BenchResult = {
      name: bench.name,
      description: bench.description,
      backend,
      backendDetail: (() => {
        const info = currentBackend();
        return info === undefined ? backend : describeBackend(info);
      })(),
      machine: { ...machine, loadAverageAtEnd: loadAverage() },
      versions: { tfjs: tf.version_core },
      command: commandLine(argv),
      date: date.toISOString(),
      elapsedSeconds: Math.round((performance.now() - began) / 100) / 10,
      ...outcome,
      out,
      runDir: run?.dir ?? null,
    };
    mkdirSync(path.dirname(out), { recursive: true });
    await writeTextAtomic(out, `${JSON.stringify(result, null, 2)}\n`);
    run?.metrics({ event: 'done', bench: name, out, rows: result.rows.length });
    return result;
  } finally {
    run?.close();
  }
}

/** `prfl bench [name]`: `list`, or a benchmark (default `steps`); prints its result. */
export async function benchCommand(
  ctx: CommandContext,
  name: string | undefined,
  o: BenchCommandOptions,
  argv: readonly string[],
): Promise<void> {
  const which = name ?? DEFAULT_BENCH;
  if (which === LIST_BENCHES) {
    const listing = listBenches();
    ctx.result(formatBenchList(listing), listing);
    return;
  }
  const r = await runBench(ctx, which, o, argv);
  ctx.result(formatBench(r), r);
}

/** One line per benchmark. */
export function formatBenchList(l: BenchListing): string {
  const width = Math.max(...l.benches.map((b) => b.name.length));
  return `${l.benches.map((b) => `${b.name.padEnd(width)}  ${b.description}`).join('\n')}\n`;
}

const MiB = 2 ** 20;

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Seconds with three significant digits (no exponent). */
function seconds(s: number): string {
  return s >= 100 ? s.toFixed(0) : s.toPrecision(3);
}

function table(header: string[], lines: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const row = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')}`;
  return [row(header), ...lines.map(row)];
}

/** The result as a table, its ratios and summary, and where it was written. */
export function formatBench(r: BenchResult): string {
  const columns = BENCHES.get(r.name)?.columns ?? [];
  const m = r.machine;
  const first = r.rows[0];
  const lines = [
    `prfl bench ${r.name} on ${r.backend}: ${m.cpuModel} (${m.cores} cores), ${m.platform}, node ${m.node}, ` +
      `load ${m.loadAverageAtStart[0] ?? '?'} at start, ${m.loadAverageAtEnd?.[0] ?? '?'} at end`,
    first !== undefined
      ? `median and fastest of ${plural(first.repeats, 'measured call')} after ${plural(Number(r.settings.warmup ?? 0), 'warm-up call')} per item; ` +
        'peak = rise of tf.memory().numBytes during a call'
      : 'no rows',
    ...table(
      ['what', 'batch', 'median s', 'min s', 'peak MiB', ...columns.map((c) => c.label)],
      r.rows.map((row) => [
        row.what,
        String(row.batch),
        seconds(row.medianSeconds),
        seconds(row.minSeconds),
        (row.peakBytes / MiB).toFixed(1),
        ...columns.map((c) => (typeof row[c.key] === 'number' ? String(row[c.key]) : '-')),
      ]),
    ),
  ];
  for (const q of r.ratios) {
    lines.push(
      q.of === 'seconds'
        ? `${q.what}: ${q.value.toFixed(2)}x (of the fastest calls ${q.valueOfMin?.toFixed(2)}x)`
        : `${q.what}: ${q.value.toFixed(2)}x`,
    );
  }
  for (const [key, value] of Object.entries(r.summary ?? {})) lines.push(`${key}: ${value}`);
  lines.push(`wrote ${r.out}`);
  return `${lines.join('\n')}\n`;
}
