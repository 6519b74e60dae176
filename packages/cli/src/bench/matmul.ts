/**
 * `prfl bench matmul`: the backend's 2-D tf.matMul rate in GFLOP/s at a few sizes, the ceiling every
 * other number of the backend is read against (packages/tensor/bench/matmul.mjs calls the best forward
 * 2-D tf.matMul rate of a run the backend's peak). The shapes are those packages/refl/bench reads its
 * peak from: square products and the widths of the models ([tokens, width] x [width, width'] and a VAE
 * convolution tap as XNNPACK multiplies it). A product above the backend's FLOP budget (the one
 * packages/tensor/bench/matmul.mjs uses: seconds per call on the cpu backend) is listed as skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@prfl/tensor';
import type { CommandContext } from '../context.js';
import { type BenchItem, runItems } from './items.js';
import type { BenchDefinition, BenchOptions, BenchOutcome } from './types.js';

/** [m, k, n]: an [m, k] x [k, n] product. */
export const MATMUL_SHAPES: ReadonlyArray<readonly [number, number, number]> = Object.freeze([
  [512, 512, 512],
  [320, 384, 384],
  [320, 384, 1024],
  [1024, 1024, 1024],
  [4096, 864, 96],
] as const);

/** Largest single product (GFLOP) worth timing per backend; a backend not listed has no limit. */
export const MATMUL_BUDGET_GFLOP: Readonly<Record<string, number>> = Object.freeze({
  cpu: 1.0,
  wasm: 25,
  webgpu: 0.4,
});

/** 2 m k n / 1e9. */
export function matmulGflop([m, k, n]: readonly [number, number, number]): number {
  return (2 * m * k * n) / 1e9;
}

const rate = (gflop: number, seconds: number) => Math.round((100 * gflop) / seconds) / 100;

async function runMatmul(ctx: CommandContext, o: BenchOptions): Promise<BenchOutcome> {
  const backend = tf.getBackend();
  const budget = MATMUL_BUDGET_GFLOP[backend] ?? Number.POSITIVE_INFINITY;
  const timed = MATMUL_SHAPES.filter((s) => matmulGflop(s) <= budget);
  const skipped = MATMUL_SHAPES.filter((s) => matmulGflop(s) > budget).map((s) => ({
    shape: [...s],
    gflop: matmulGflop(s),
    reason: `above the ${budget} GFLOP budget of ${backend}`,
  }));
  const items: BenchItem[] = timed.map((shape) => {
    const [m, k, n] = shape;
    const gflop = matmulGflop(shape);
    return {
      id: `matmul-${m}x${k}x${n}`,
      what: `matMul [${m}, ${k}] x [${k}, ${n}]`,
      batch: 1,
      prepare: () => {
        const g = new Generator(`prfl-bench/matmul/${m}x${k}x${n}`);
        const a = g.normal([m, k]);
        const b = g.normal([k, n]);
        return {
          call: async () => {
            const y = tf.matMul(a, b);
            await y.data();
            y.dispose();
          },
          extra: (t) => ({
            shape: [m, k, n],
            gflop,
            gflops: rate(gflop, t.medianSeconds),
            gflopsBest: rate(gflop, t.minSeconds),
          }),
          dispose: () => tf.dispose([a, b]),
        };
      },
    };
  });
  const rows = await runItems(ctx, 'matmul', items, o);
  const gflops = rows.map((r) => r.gflops as number);
  const best = rows.map((r) => r.gflopsBest as number);
  return {
    settings: {
      repeats: o.repeats,
      warmup: o.warmup,
      op: 'tf.matMul, 2-D, forward, float32',
      budgetGflop: Number.isFinite(budget) ? budget : null,
      skipped,
    },
    rows,
    ratios: [],
    ...(rows.length > 0
      ? { summary: { peakGflops: Math.max(...gflops), peakGflopsBest: Math.max(...best) } }
      : {}),
  };
}

export const matmulBench: BenchDefinition = {
  name: 'matmul',
  description:
    "the backend's 2-D matMul GFLOP/s at a few sizes: the peak the other numbers are compared against",
  columns: [
    { key: 'gflops', label: 'GFLOP/s' },
    { key: 'gflopsBest', label: 'best GFLOP/s' },
  ],
  run: runMatmul,
};
