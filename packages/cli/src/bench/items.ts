/**
 * A benchmark as a list of measured items. An item is prepared (unmeasured), warmed up, timed
 * (timing.ts) and freed before the next one. Items of one `group`, listed one after another, are
 * prepared and warmed up together and then measured round by round, one call of each per round in an
 * order that rotates every round (as packages/refl/bench/cells/compare.mjs measures PRFL against RGB
 * ReFL): load from other processes then falls on all of them alike, so their ratios hold on a busy
 * machine. Progress is one phase per item (or group) with one update per call. Ctrl-C stops at the next
 * call (InterruptedError, exit 130); a stopped run writes nothing, since ratios of a half-measured run
 * would mislead.
 */
import type { CommandContext } from '../context.js';
import { InterruptedError } from '../errors.js';
import { type CallSample, type MeasuredCall, measureCall, summarizeCalls, type Timing } from './timing.js';
import type { BenchOptions, BenchRow } from './types.js';

/** What an item needs for its calls, built before they are timed. */
export interface PreparedItem {
  call: MeasuredCall;
  /** Fields added to the row after the calls (GFLOP/s, the step k, time per phase, ...). */
  extra?: (timing: Timing) => Record<string, unknown>;
  /** Frees what `prepare` made. */
  dispose(): void;
}

/** One measured item of a benchmark. */
export interface BenchItem {
  id: string;
  what: string;
  batch: number;
  /** Items of the same group listed one after another are measured interleaved (see the file comment). */
  group?: string;
  prepare(): PreparedItem | Promise<PreparedItem>;
}

/** The items split into runs of one group (an item without a group is a run of its own). */
function blocks(items: readonly BenchItem[]): BenchItem[][] {
  const out: BenchItem[][] = [];
  for (const item of items) {
    const last = out.at(-1);
    if (item.group !== undefined && last?.[0]?.group === item.group) last.push(item);
    else out.push([item]);
  }
  return out;
}

/** Runs the items in order; one row each, in the order given. */
export async function runItems(
  ctx: Pick<CommandContext, 'progress' | 'signal'>,
  bench: string,
  items: readonly BenchItem[],
  options: Pick<BenchOptions, 'warmup' | 'repeats'>,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const stopped = () =>
    new InterruptedError(
      `interrupted: bench ${bench} measured ${rows.length} of ${items.length} items; nothing written`,
    );
  const check = () => {
    if (ctx.signal.aborted) throw stopped();
  };
  for (const block of blocks(items)) {
    check();
    const at = rows.length + 1;
    const label =
      block.length === 1
        ? `${bench} ${at}/${items.length} ${block[0]?.what}`
        : `${bench} ${at}-${at + block.length - 1}/${items.length} ${block[0]?.group} (interleaved)`;
    ctx.progress.phase(label, block.length * (options.warmup + options.repeats));
    let done = 0;
    // Within a group, the metrics say which item the last call was.
    const tick = (index: number) =>
      ctx.progress.update(++done, block.length > 1 ? { item: block[index]?.id } : undefined);
    const prepared: PreparedItem[] = [];
    const samples: CallSample[][] = block.map(() => []);
    try {
      for (const item of block) prepared.push(await item.prepare());
      for (const [j, p] of prepared.entries()) {
        for (let w = 0; w < options.warmup; w++) {
          check();
          await p.call();
          tick(j);
        }
      }
      for (let round = 0; round < options.repeats; round++) {
        for (let j = 0; j < block.length; j++) {
          const index = (j + round) % block.length;
          check();
          (samples[index] as CallSample[]).push(await measureCall((prepared[index] as PreparedItem).call));
          tick(index);
        }
      }
      block.forEach((item, j) => {
        const timing = summarizeCalls(samples[j] as CallSample[], options.warmup);
        rows.push({
          id: item.id,
          what: item.what,
          batch: item.batch,
          repeats: timing.repeats,
          medianSeconds: timing.medianSeconds,
          minSeconds: timing.minSeconds,
          peakBytes: timing.peakBytes,
          peakBufferBytes: timing.peakBufferBytes,
          seconds: timing.seconds,
          ...prepared[j]?.extra?.(timing),
        });
      });
    } finally {
      for (const p of prepared) p.dispose();
    }
    ctx.progress.end();
  }
  return rows;
}
