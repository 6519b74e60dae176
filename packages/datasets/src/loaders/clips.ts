/**
 * What a loader holds in memory: an index of clips (ids, prompts, labels, splits and *references* to
 * their arrays), never the arrays themselves. Arrays are read when a batch needs them, from the latent
 * shard store or from .npy files.
 */
import { InvalidArgumentError, PrflError } from '@prfl/tensor';
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
  /** The reference's blur label (null when the source has none). */
  blurQuality?: QualityLabel;
}

export interface ClipItem {
  id: string;
  prompt: string;
  labels: ClipLabelSet;
  split?: Split;
  latent: ArrayRef;
  text?: ArrayRef;
  textMask?: ArrayRef;
  /**
   * A second caption and its embedding (the reference's long caption); sources use it instead of
   * `prompt` / `text` with probability `longCaptionRate`.
   */
  long?: { prompt: string; text?: ArrayRef };
  /** Image-to-video: the first-frame condition latent (channels-last at load). */
  condition?: ArrayRef;
  /** Image-to-video: image tokens [S, D]. */
  imageEmbeds?: ArrayRef;
  /** Where the clip was defined ("manifest.jsonl:12", "data.list:3"), for error messages. */
  origin?: string;
}

/** A short human-readable form of a reference, for error messages. */
export function describeRef(ref: ArrayRef): string {
  return ref.kind === 'store' ? `store key "${ref.key}"` : ref.path;
}

/** What an array is, for error messages: `clip "a" latent (manifest.jsonl:3)`. */
export function describeArray(item: ClipItem, part: string): string {
  return `clip "${item.id}" ${part}${item.origin ? ` (${item.origin})` : ''}`;
}

/** Reads the arrays that refs point to, as float32. Errors start with `what` (see describeArray). */
export class ArrayLoader {
  constructor(private readonly store?: LatentShardStore) {}

  async load(ref: ArrayRef, what: string): Promise<FloatArray> {
    try {
      return await this.loadRaw(ref, what);
    } catch (e) {
      // Keep the class; say which clip and part the file or key was for.
      if (!(e instanceof PrflError) || e.message.startsWith(what)) throw e;
      const Ctor = e.constructor as new (message: string) => PrflError;
      throw new Ctor(`${what}: ${e.message}`);
    }
  }

  private async loadRaw(ref: ArrayRef, what: string): Promise<FloatArray> {
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
