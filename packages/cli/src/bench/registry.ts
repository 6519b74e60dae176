/**
 * The named benchmarks of `prfl bench <name>`. A new one (a table of the paper, a backend comparison) is
 * a BenchDefinition in a file of its own, added here; the command, its JSON, its table and `prfl bench
 * list` pick it up.
 */
import { UsageError } from '../errors.js';
import { matmulBench } from './matmul.js';
import { stepsBench } from './steps.js';
import type { BenchDefinition } from './types.js';

/** The benchmark `prfl bench` runs without a name. */
export const DEFAULT_BENCH = 'steps';

/** The name that lists the benchmarks instead of running one. */
export const LIST_BENCHES = 'list';

/** Every benchmark by name, in the order `prfl bench list` shows them. */
export const BENCHES: ReadonlyMap<string, BenchDefinition> = new Map(
  [stepsBench, matmulBench].map((b) => [b.name, b]),
);

/** The benchmark called `name`. @throws UsageError naming the known ones. */
export function findBench(name: string): BenchDefinition {
  const bench = BENCHES.get(name);
  if (bench === undefined) {
    throw new UsageError(
      `bench: unknown benchmark '${name}'; expected one of ${[...BENCHES.keys(), LIST_BENCHES].join(', ')}`,
    );
  }
  return bench;
}
