/**
 * Which Linear layers get adapters, by PEFT's rule (check_target_module_exists in peft/tuners/tuners_utils.py):
 * a list of target modules matches a module whose name equals an entry or ends with '.' + entry; a string
 * is a regular expression the whole name must match (re.fullmatch). A block range further keeps the
 * layers inside blocks lo..hi.
 *
 * Linear layers are found from the model's variable names alone: every rank-2 `<module>.weight` is a
 * Linear weight ([in, out] in tfjs layout). That is true of Wan's state dict, whose only other weight of
 * rank >= 2 is the Conv3d patch embedding (rank 5) and the modulation tables (rank 3).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { blockIndexOf } from '../trainable.js';

/** A Linear layer of the model: its module name and its weight variable [in, out]. */
export interface LinearModule {
  readonly module: string;
  readonly weight: tf.Variable;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** Every Linear layer of a model, in its variable order. */
export function linearModules(named: ReadonlyMap<string, tf.Variable>): LinearModule[] {
  const out: LinearModule[] = [];
  for (const [name, v] of named) {
    if (!name.endsWith('.weight') || v.rank !== 2) continue;
    out.push({
      module: name.slice(0, -'.weight'.length),
      weight: v,
      inFeatures: v.shape[0] as number,
      outFeatures: v.shape[1] as number,
    });
  }
  return out;
}

/** PEFT's check_target_module_exists for a list or a regex string, plus an optional block range. */
export function matchesTargetModules(
  module: string,
  targetModules: readonly string[] | string,
  blocks: readonly [number, number] | null = null,
): boolean {
  const found =
    typeof targetModules === 'string'
      ? new RegExp(`^(?:${targetModules})$`).test(module)
      : targetModules.some((t) => module === t || module.endsWith(`.${t}`));
  if (!found || blocks === null) return found;
  const i = blockIndexOf(`${module}.`);
  return i !== null && i >= blocks[0] && i <= blocks[1];
}
