/**
 * A Wan DiT (or a truncated PAVRM backbone) built in a worker thread from `replicaRecipe()`'s spec: the
 * same architecture and variable names, initialised anew (the pool then copies the weights in).
 */
import { type FiniteCheck, InvalidArgumentError } from '@prfl/tensor';
import type { WanDiTConfig } from './config.js';
import { WanDiT, type WanDiTBackbone } from './model.js';

/** What `replicaRecipe()` records: plain data that survives structuredClone. */
export interface WanDiTReplicaSpec {
  config: WanDiTConfig;
  /** Blocks the model runs (all of them for the full model). */
  blocks: number;
  /** The full model (with Wan's head) or a backbone truncated to `blocks`. */
  head: boolean;
  checkFinite: FiniteCheck;
}

/** Builds the model a `replicaRecipe()` describes. */
export function wanDiTReplica(spec: WanDiTReplicaSpec): WanDiT | WanDiTBackbone {
  if (spec === null || typeof spec !== 'object' || typeof spec.config !== 'object') {
    throw new InvalidArgumentError('wanDiTReplica: expected the spec of WanDiT.replicaRecipe()');
  }
  const full = new WanDiT(spec.config, { seed: 0, checkFinite: spec.checkFinite });
  if (spec.head) return full;
  try {
    return full.truncate(spec.blocks);
  } finally {
    full.dispose();
  }
}
