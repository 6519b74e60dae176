/**
 * Which of the generator's variables train: all of them, a range of transformer blocks, or names matched
 * by patterns. The selection decides the variable list every tape, AdamW, the gradient window and the EMA
 * see, so a variable outside it never gets a gradient and keeps its value bit for bit. (LoRA is the other
 * way to choose what trains: see lora/.)
 *
 * Names are the generator's stable checkpoint names (`namedVariables()`); for Wan they follow Wan's
 * state dict, `blocks.<i>.self_attn.q.weight`, so a block is recognised by `blocks.<i>.` in the name.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@prfl/tensor';

/**
 * 'all' (default): every variable whose `trainable` flag is set. Otherwise the flagged variables that pass
 * every given filter:
 * - `blocks: [lo, hi]`: names inside blocks lo..hi (both inclusive), i.e. containing `<layersPattern>.<i>.`;
 * - `include`: names matching at least one glob (`*` any run of characters, dots included; `?` one);
 * - `exclude`: names matching none of these globs.
 * Globs are strings (not RegExps) so a selection stays plain JSON in checkpoint.json.
 */
export type TrainableSelection =
  | 'all'
  | {
      readonly blocks?: readonly [number, number];
      readonly include?: readonly string[];
      readonly exclude?: readonly string[];
      /** The name of the block list in variable names (PEFT's layers_pattern). Default 'blocks'. */
      readonly layersPattern?: string;
    };

/** Checks the shape of a selection (not the names: those are checked against a model in `selectTrainable`). */
export function checkTrainableSelection(selection: unknown): void {
  if (selection === 'all') return;
  const what = 'trainable';
  if (typeof selection !== 'object' || selection === null || Array.isArray(selection)) {
    throw new InvalidArgumentError(
      `${what}: expected 'all' or { blocks?: [lo, hi], include?: globs, exclude?: globs }, got ${JSON.stringify(selection)}`,
    );
  }
  const s = selection as Record<string, unknown>;
  const known = new Set(['blocks', 'include', 'exclude', 'layersPattern']);
  const unknown = Object.keys(s).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `${what}: unknown key(s) ${unknown.join(', ')}; expected blocks, include, exclude, layersPattern`,
    );
  }
  if (s.blocks !== undefined) checkBlockRange(`${what}.blocks`, s.blocks);
  for (const key of ['include', 'exclude'] as const) {
    const list = s[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((g) => typeof g !== 'string' || g.length === 0)) {
      throw new InvalidArgumentError(
        `${what}.${key}: expected an array of non-empty glob strings, got ${JSON.stringify(list)}`,
      );
    }
  }
  if (s.layersPattern !== undefined && !isPlainName(s.layersPattern)) {
    throw new InvalidArgumentError(
      `${what}.layersPattern: expected a module name such as 'blocks' (letters, digits, '_', '.'), got ${JSON.stringify(s.layersPattern)}`,
    );
  }
  if (s.blocks === undefined && s.include === undefined && s.exclude === undefined) {
    throw new InvalidArgumentError(`${what}: expected at least one of blocks, include, exclude (or 'all')`);
  }
}

/** Checks `[lo, hi]`: non-negative integers with lo <= hi. */
export function checkBlockRange(what: string, range: unknown): void {
  if (
    !Array.isArray(range) ||
    range.length !== 2 ||
    !range.every((b) => Number.isInteger(b) && b >= 0) ||
    (range[0] as number) > (range[1] as number)
  ) {
    throw new InvalidArgumentError(
      `${what}: expected [lo, hi] with integers 0 <= lo <= hi (both inclusive), got ${JSON.stringify(range)}`,
    );
  }
}

function isPlainName(x: unknown): x is string {
  return typeof x === 'string' && /^[A-Za-z0-9_.]+$/.test(x);
}

/** The block index in `name` (`<pattern>.<i>.` anywhere, at the start or after a dot), or null. */
export function blockIndexOf(name: string, layersPattern = 'blocks'): number | null {
  const escaped = layersPattern.replace(/\./g, '\\.');
  const m = new RegExp(`(?:^|\\.)${escaped}\\.(\\d+)\\.`).exec(name);
  return m ? Number(m[1]) : null;
}

/** A glob as an anchored RegExp: `*` any run of characters (dots included), `?` one character. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * The variables `selection` trains, in the model's order.
 * @throws InvalidArgumentError when nothing is selected (naming the selection and a few of the names),
 *   or a block range beyond the model's blocks.
 */
export function selectTrainable(
  named: ReadonlyMap<string, tf.Variable>,
  selection: TrainableSelection = 'all',
): tf.Variable[] {
  checkTrainableSelection(selection);
  const flagged = [...named].filter(([, v]) => v.trainable);
  if (selection === 'all') return flagged.map(([, v]) => v);
  const pattern = selection.layersPattern ?? 'blocks';
  if (selection.blocks) {
    const present = [...named.keys()].map((n) => blockIndexOf(n, pattern)).filter((i) => i !== null);
    const last = present.length > 0 ? Math.max(...(present as number[])) : -1;
    if (selection.blocks[1] > last) {
      throw new InvalidArgumentError(
        `trainable.blocks: expected a range within the model's blocks 0..${last} ('${pattern}.<i>.' in the names), got [${selection.blocks.join(', ')}]`,
      );
    }
  }
  const include = selection.include?.map(globToRegExp);
  const exclude = selection.exclude?.map(globToRegExp) ?? [];
  const chosen = flagged.filter(([name]) => {
    if (selection.blocks) {
      const i = blockIndexOf(name, pattern);
      if (i === null || i < selection.blocks[0] || i > selection.blocks[1]) return false;
    }
    if (include && !include.some((r) => r.test(name))) return false;
    return !exclude.some((r) => r.test(name));
  });
  if (chosen.length === 0) {
    const sample = [...named.keys()].slice(0, 3).join(', ');
    throw new InvalidArgumentError(
      `trainable: ${JSON.stringify(selection)} selects none of the generator's ${flagged.length} trainable variables (names look like ${sample})`,
    );
  }
  return chosen.map(([, v]) => v);
}
