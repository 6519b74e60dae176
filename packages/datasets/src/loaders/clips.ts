/**
 * What a loader holds in memory: an index of clips (ids, prompts, labels, splits and *references* to
 * their arrays), never the arrays themselves. Arrays are read when a batch needs them, from the latent
 * shard store or from .npy files.
 */
import { InvalidArgumentError } from '@prfl/tensor';
import type { Split } from '../moving-shapes/split.js';
import type { QualityLabel } from '../io/labels.js';
import { type FloatArray, textEmbeddingShape, torchLatentToChannelsLast } from '../io/layout.js';
import { npyToFloat32, readNpy } from '../io/npy.js';
import type { LatentShardStore } from '../io/shard-store.js';

/** Where an array lives. */
export type ArrayRef =
  | { kind: 'store'; key: string }
  /** layout: 'fhwc' channels-last latent, 'cfhw' PyTorch latent, 'plain' as stored (text, masks). */
  | { kind: 'npy'; path: string; layout: 'fhwc' | 'cfhw' | 'plain' };

/** The labels a clip may carry (null: not annotated). */
export interface ClipLabelSet {
  motionQuality: QualityLabel;
  physics: QualityLabel;
  human: QualityLabel;
  textAlignment: QualityLabel;
}

export interface ClipItem {
  id: string;
  prompt: string;
  labels: ClipLabelSet;
  split?: Split;
  latent: ArrayRef;
  text?: ArrayRef;
  textMask?: ArrayRef;
}

/** A short human-readable form of a reference, for error messages. */
export function describeRef(ref: ArrayRef): string {
  return ref.kind === 'store' ? `store key "${ref.key}"` : ref.path;
}

/** Reads the arrays that refs point to, as float32. */
export class ArrayLoader {
  constructor(private readonly store?: LatentShardStore) {}

  async load(ref: ArrayRef, what: string): Promise<FloatArray> {
    if (ref.kind === 'store') {
      if (!this.store) {
        throw new InvalidArgumentError(
          `${what}: refers to ${describeRef(ref)} but no latent store was given (pass options.store)`,
        );
      }
      const a = await this.store.read(ref.key);
      const data = a.data instanceof Float32Array ? a.data : Float32Array.from(a.data as ArrayLike<number>);
      return { shape: a.shape, data };
    }
    const arr = await readNpy(ref.path);
    const plain = { shape: arr.shape, data: npyToFloat32(arr, ref.path) };
    if (ref.layout === 'cfhw') return torchLatentToChannelsLast(plain, ref.path);
    return plain;
  }

  /** A text embedding as [L, D] (a leading batch dimension of 1 is dropped). */
  async loadText(ref: ArrayRef, what: string): Promise<FloatArray> {
    return textEmbeddingShape(await this.load(ref, what), `${what} (${describeRef(ref)})`);
  }
}
