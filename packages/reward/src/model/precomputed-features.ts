/**
 * A feature backbone for token features computed elsewhere: a PAVRM head trained or evaluated on
 * features cached from a large generator (one pass of the K blocks, saved, then many head epochs), or
 * computed by another runtime. It has a width and nothing else: no blocks, no variables. A `Pavrm` built
 * on it (`Pavrm.forFeatures(D)`) scores tokens [B, N, D] with `scoreFeatures`; asking it for features
 * of a latent is refused with an error that says so.
 */
import {
  type Conditioning,
  type FeatureBackbone,
  InvalidArgumentError,
  type LatentVideo,
  type TimestepsLike,
  type TokenSequence,
} from '@prfl/tensor';
import type * as tf from '@tensorflow/tfjs-core';

const NO_VARIABLES: ReadonlyMap<string, tf.Variable> = new Map();

/** The width-only FeatureBackbone of precomputed features; see the file comment. */
export class PrecomputedFeatures implements FeatureBackbone {
  readonly featureDim: number;
  /** No blocks: the features arrive already computed. */
  readonly numBlocks = 0;

  /** @throws InvalidArgumentError unless `featureDim` (D of the tokens [B, N, D]) is a positive integer. */
  constructor(featureDim: number) {
    if (!Number.isInteger(featureDim) || featureDim < 1) {
      throw new InvalidArgumentError(
        `PrecomputedFeatures: featureDim (D of the tokens [B, N, D]) must be a positive integer, got ${String(featureDim)}`,
      );
    }
    this.featureDim = featureDim;
  }

  /** Always throws: there is no network to run on a latent. */
  features(_x: LatentVideo, _timesteps: TimestepsLike, _conditioning: Conditioning): TokenSequence {
    throw new InvalidArgumentError(
      `PrecomputedFeatures: this backbone only carries the width of precomputed features (D = ${this.featureDim}) ` +
        'and cannot compute features from latents; score the tokens [B, N, D] with scoreFeatures(tokens), ' +
        'or build the Pavrm on a real backbone (e.g. WanDiT.truncate(k)) to score latents',
    );
  }

  /** No variables. */
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return NO_VARIABLES;
  }
}
