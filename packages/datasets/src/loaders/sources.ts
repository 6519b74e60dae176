/**
 * Preference sources (the @prfl/tensor contract): pointwise batches for BCE on 0/1 labels, and
 * (win, lose) pairs for Bradley-Terry. Both stream: only the index is in memory, the arrays of a batch
 * are read when it is due, and the next batch's arrays are read while the current one is used.
 * Tensors of a yielded batch belong to the caller (dispose them, e.g. with `disposeBatch`).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type BatchOptions,
  type Conditioning,
  Generator,
  InvalidArgumentError,
  type PairwiseBatch,
  type PointwiseBatch,
  type PreferenceSource,
} from '@prfl/tensor';
import type { FloatArray } from '../io/layout.js';
import { disposeConditioning, stackLatents, stackText } from './batch.js';
import { type ArrayLoader, type ClipItem, type ClipLabelSet, describeArray, describeRef } from './clips.js';
import { checkBatchOptions, chunk, epochOrder } from './order.js';

/** Which label a source reads. */
export type LabelName = keyof ClipLabelSet;

/** Text conditioning for clips without stored embeddings (e.g. a text encoder over the prompts). */
export type EncodeText = (prompts: readonly string[]) => Conditioning | Promise<Conditioning>;

export interface SourceOptions {
  /** Builds conditioning from prompts; required when clips have no stored text embedding. */
  encodeText?: EncodeText;
  /** Read the next batch while the current one is in use (default true). */
  prefetch?: boolean;
  /**
   * For clips with two captions (the reference's short and long): how often the long one is used
   * (default 0.7, the rate of the reference's training reader; 0 = always the short one, as its
   * reward-model readers do). The choice is a function of (seed, epoch, clip id).
   */
  longCaptionRate?: number;
}

/** The reference's training reader takes the long caption 70 % of the time. */
export const DEFAULT_LONG_CAPTION_RATE = 0.7;

function checkLongCaptionRate(rate: number | undefined): number {
  const r = rate ?? DEFAULT_LONG_CAPTION_RATE;
  if (typeof r !== 'number' || !(r >= 0 && r <= 1)) {
    throw new InvalidArgumentError(`longCaptionRate: expected a number in [0, 1], got ${String(rate)}`);
  }
  return r;
}

/**
 * The clip as a batch of (seed, epoch) sees it: with its long caption (and that caption's embedding)
 * in place of the short one with probability `rate`, drawn from a stream named by seed, epoch and id,
 * so the choice does not depend on batch size, order or prefetching. With `storedText` (no text
 * encoder), a long caption without a stored embedding cannot be used, and the short one stays.
 */
export function withCaption(
  item: ClipItem,
  seed: number,
  epoch: number,
  rate: number,
  storedText = false,
): ClipItem {
  if (!item.long || rate <= 0 || (storedText && !item.long.text)) return item;
  if (rate < 1 && new Generator(`${seed}/caption/${epoch}/${item.id}`).nextDouble() >= rate) return item;
  const { textMask: _mask, text: _text, ...rest } = item;
  const chosen: ClipItem = { ...rest, prompt: item.long.prompt };
  if (item.long.text) chosen.text = item.long.text;
  return chosen;
}

interface LoadedClip {
  item: ClipItem;
  latent: FloatArray;
  text?: FloatArray;
  textMask?: FloatArray;
}

function clipName(c: LoadedClip): string {
  return `clip "${c.item.id}" (${describeRef(c.item.latent)})`;
}

async function loadClip(loader: ArrayLoader, item: ClipItem, needText: boolean): Promise<LoadedClip> {
  const [latent, text, textMask] = await Promise.all([
    loader.load(item.latent, describeArray(item, 'latent')),
    needText && item.text ? loader.loadText(item.text, describeArray(item, 'text embedding')) : undefined,
    needText && item.textMask ? loader.load(item.textMask, describeArray(item, 'text mask')) : undefined,
  ]);
  return { item, latent, text, textMask };
}

async function conditioningFor(
  clips: readonly LoadedClip[],
  encodeText: EncodeText | undefined,
): Promise<Conditioning> {
  if (encodeText) return encodeText(clips.map((c) => c.item.prompt));
  const missing = clips.find((c) => !c.text);
  if (missing) {
    throw new InvalidArgumentError(
      `clip "${missing.item.id}" has no stored text embedding; pass options.encodeText to build conditioning from prompts`,
    );
  }
  return stackText(
    clips.map((c) => c.text as FloatArray),
    clips.map((c) => c.textMask),
    clips.map((c) => c.item.id),
  );
}

/** Runs `load` for each group, one ahead of the consumer. */
async function* prefetched<G, R>(
  groups: readonly G[],
  load: (g: G) => Promise<R>,
  prefetch: boolean,
): AsyncGenerator<R> {
  let pending: Promise<R> | undefined;
  const start = (g: G) => {
    const p = load(g);
    p.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection if the consumer stops early
    return p;
  };
  try {
    for (let i = 0; i < groups.length; i++) {
      const current = pending ?? start(groups[i] as G);
      pending = undefined;
      const value = await current;
      if (prefetch && i + 1 < groups.length) pending = start(groups[i + 1] as G);
      yield value;
    }
  } finally {
    // A consumer that stops early must not leave reads running (it may close the store next).
    if (pending) await pending.catch(() => undefined);
  }
}

/** Pointwise batches: latents [B, F, H, W, C], conditioning and labels [B] in {0, 1}. */
export class PointwiseSource implements PreferenceSource<PointwiseBatch> {
  constructor(
    /** Clips with a 0/1 value of `label`. */
    readonly items: readonly ClipItem[],
    private readonly loader: ArrayLoader,
    readonly label: LabelName = 'motionQuality',
    private readonly options: SourceOptions = {},
  ) {
    for (const it of items) {
      const v = it.labels[label];
      if (v !== 0 && v !== 1) {
        throw new InvalidArgumentError(
          `PointwiseSource: clip "${it.id}" has no ${label} label (got ${String(v)}); filter unlabelled clips first`,
        );
      }
    }
  }

  get size(): number {
    return this.items.length;
  }

  async *batches(options: BatchOptions): AsyncGenerator<PointwiseBatch> {
    checkBatchOptions(options);
    const order = epochOrder(this.items.length, options.seed, options.epoch, options.shuffle ?? true);
    const groups = chunk(order, options.batchSize, options.dropLast);
    const needText = !this.options.encodeText;
    const rate = checkLongCaptionRate(this.options.longCaptionRate);
    const view = (i: number) =>
      withCaption(this.items[i] as ClipItem, options.seed, options.epoch, rate, needText);
    const load = (g: number[]) => Promise.all(g.map((i) => loadClip(this.loader, view(i), needText)));
    for await (const clips of prefetched(groups, load, this.options.prefetch ?? true)) {
      const ids = clips.map((c) => c.item.id);
      const conditioning = await conditioningFor(clips, this.options.encodeText);
      let latents: tf.Tensor5D;
      try {
        latents = stackLatents(
          clips.map((c) => c.latent),
          clips.map(clipName),
        );
      } catch (e) {
        disposeConditioning(conditioning);
        throw e;
      }
      const labels = tf.tensor1d(
        clips.map((c) => c.item.labels[this.label] as number),
        'float32',
      );
      yield { ids, latents, conditioning, labels };
    }
  }
}

/** How (win, lose) pairs are formed each epoch. */
export type PairingMode = 'explicit' | 'within-prompt' | 'across' | 'lose-list';

export interface PairingOptions {
  /**
   * 'within-prompt' (default): a good and a bad clip of the same prompt; 'across': any good with any
   * bad clip; 'explicit': the pairs given (a pairwise manifest); 'lose-list': every clip wins against
   * a loser drawn uniformly from a second set (the reference's meta_file_lose_list).
   */
  mode?: PairingMode;
  /** Within-prompt: what to do with a prompt that lacks a good or a bad clip (default 'skip'). */
  fallback?: 'skip' | 'across';
}

/**
 * Good x bad pairs for one epoch, drawn from `rng`: in each group every clip of the larger side is used
 * once and the smaller side is cycled (shuffled), so the count per epoch is sum(max(good, bad)).
 */
export function pairClips(
  items: readonly ClipItem[],
  label: LabelName,
  mode: 'within-prompt' | 'across',
  rng: Generator,
  fallback: 'skip' | 'across' = 'skip',
): Array<[ClipItem, ClipItem]> {
  const pairGroup = (good: ClipItem[], bad: ClipItem[]): Array<[ClipItem, ClipItem]> => {
    if (!good.length || !bad.length) return [];
    const g = rng.permutation(good.length).map((i) => good[i] as ClipItem);
    const b = rng.permutation(bad.length).map((i) => bad[i] as ClipItem);
    const n = Math.max(g.length, b.length);
    return Array.from({ length: n }, (_, i) => [g[i % g.length] as ClipItem, b[i % b.length] as ClipItem]);
  };
  const good = items.filter((i) => i.labels[label] === 1);
  const bad = items.filter((i) => i.labels[label] === 0);
  if (mode === 'across') return pairGroup(good, bad);
  const groups = new Map<string, { good: ClipItem[]; bad: ClipItem[] }>();
  for (const it of items) {
    const v = it.labels[label];
    if (v !== 0 && v !== 1) continue;
    const g = groups.get(it.prompt) ?? { good: [], bad: [] };
    (v === 1 ? g.good : g.bad).push(it);
    groups.set(it.prompt, g);
  }
  const pairs: Array<[ClipItem, ClipItem]> = [];
  const leftGood: ClipItem[] = [];
  const leftBad: ClipItem[] = [];
  for (const prompt of [...groups.keys()].sort()) {
    const g = groups.get(prompt) as { good: ClipItem[]; bad: ClipItem[] };
    // Loops rather than push(...xs): spreading a group of 100k clips as arguments overflows the stack.
    if (g.good.length && g.bad.length) for (const p of pairGroup(g.good, g.bad)) pairs.push(p);
    else {
      for (const c of g.good) leftGood.push(c);
      for (const c of g.bad) leftBad.push(c);
    }
  }
  if (fallback === 'across') for (const p of pairGroup(leftGood, leftBad)) pairs.push(p);
  return pairs;
}

/** A pairwise batch whose losers may have their own prompt (pairing 'across'). */
export interface CrossPromptPairwiseBatch extends PairwiseBatch {
  /** The losers' conditioning when it differs from the winners' (pairing 'across'); absent otherwise. */
  loseConditioning?: Conditioning;
}

/** (win, lose) batches for Bradley-Terry: win and lose [B, F, H, W, C], the winners' conditioning. */
export class PairwiseSource implements PreferenceSource<CrossPromptPairwiseBatch> {
  private readonly fixedSize: number;

  constructor(
    private readonly items: readonly ClipItem[],
    private readonly loader: ArrayLoader,
    private readonly pairing:
      | { mode: 'explicit'; pairs: ReadonlyArray<readonly [ClipItem, ClipItem]> }
      | { mode: 'lose-list'; losers: readonly ClipItem[] }
      | { mode: 'within-prompt' | 'across'; label: LabelName; fallback?: 'skip' | 'across' },
    private readonly options: SourceOptions = {},
  ) {
    if (pairing.mode === 'lose-list' && pairing.losers.length === 0 && items.length > 0) {
      throw new InvalidArgumentError(
        "pairs: mode 'lose-list' needs at least one loser (options.loseList when opening)",
      );
    }
    this.fixedSize =
      pairing.mode === 'explicit'
        ? pairing.pairs.length
        : pairing.mode === 'lose-list'
          ? items.length
          : pairClips(items, pairing.label, pairing.mode, new Generator(0), pairing.fallback).length;
  }

  /** Pairs per epoch. */
  get size(): number {
    return this.fixedSize;
  }

  /** The pairs of an epoch, in visiting order. */
  epochPairs(seed: number, epoch: number, shuffle = true): Array<readonly [ClipItem, ClipItem]> {
    const pairing = this.pairing;
    let pairs: Array<readonly [ClipItem, ClipItem]>;
    if (pairing.mode === 'explicit') pairs = [...pairing.pairs];
    else if (pairing.mode === 'lose-list') {
      // As the reference does for each winner: one loser drawn uniformly, a fresh draw every epoch.
      const rng = new Generator(`${seed}/losers/${epoch}`);
      pairs = this.items.map((w) => [w, pairing.losers[rng.nextInt(pairing.losers.length)] as ClipItem]);
    } else {
      pairs = pairClips(
        this.items,
        pairing.label,
        pairing.mode,
        new Generator(`${seed}/pairs/${epoch}`),
        pairing.fallback,
      );
    }
    return epochOrder(pairs.length, seed, epoch, shuffle).map(
      (i) => pairs[i] as readonly [ClipItem, ClipItem],
    );
  }

  async *batches(options: BatchOptions): AsyncGenerator<CrossPromptPairwiseBatch> {
    checkBatchOptions(options);
    const pairs = this.epochPairs(options.seed, options.epoch, options.shuffle ?? true);
    const groups = chunk(pairs, options.batchSize, options.dropLast);
    const needText = !this.options.encodeText;
    const rate = checkLongCaptionRate(this.options.longCaptionRate);
    const view = (c: ClipItem) => withCaption(c, options.seed, options.epoch, rate, needText);
    const load = (g: Array<readonly [ClipItem, ClipItem]>) =>
      Promise.all(
        g.map(
          async ([w, l]) =>
            [
              await loadClip(this.loader, view(w), needText),
              await loadClip(this.loader, view(l), needText),
            ] as const,
        ),
      );
    for await (const loaded of prefetched(groups, load, this.options.prefetch ?? true)) {
      const wins = loaded.map((p) => p[0]);
      const loses = loaded.map((p) => p[1]);
      const ids = loaded.map(([w, l]) => [w.item.id, l.item.id] as const);
      const conditioning = await conditioningFor(wins, this.options.encodeText);
      const crossPrompt = loaded.some(([w, l]) => w.item.prompt !== l.item.prompt);
      const loseConditioning = crossPrompt
        ? await conditioningFor(loses, this.options.encodeText)
        : undefined;
      let win: tf.Tensor5D | undefined;
      let lose: tf.Tensor5D | undefined;
      try {
        win = stackLatents(
          wins.map((c) => c.latent),
          wins.map(clipName),
          'win latents',
        );
        lose = stackLatents(
          loses.map((c) => c.latent),
          loses.map(clipName),
          'lose latents',
        );
        if (win.shape.some((d, k) => d !== (lose as tf.Tensor5D).shape[k])) {
          throw new InvalidArgumentError(
            `pairs: win latents are [${win.shape.join(', ')}] but lose latents [${lose.shape.join(', ')}] (e.g. ${clipName(wins[0] as LoadedClip)} vs ${clipName(loses[0] as LoadedClip)})`,
          );
        }
      } catch (e) {
        tf.dispose([win, lose].filter((t): t is tf.Tensor5D => !!t));
        disposeConditioning(conditioning);
        if (loseConditioning) disposeConditioning(loseConditioning);
        throw e;
      }
      const batch: CrossPromptPairwiseBatch = { ids, win, lose, conditioning };
      if (loseConditioning) batch.loseConditioning = loseConditioning;
      yield batch;
    }
  }
}

/** Disposes every tensor of a pointwise or pairwise batch. */
export function disposeBatch(batch: PointwiseBatch | CrossPromptPairwiseBatch): void {
  if ('labels' in batch) tf.dispose([batch.latents, batch.labels]);
  else {
    tf.dispose([batch.win, batch.lose]);
    if (batch.loseConditioning) disposeConditioning(batch.loseConditioning);
  }
  disposeConditioning(batch.conditioning);
}
