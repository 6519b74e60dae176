/**
 * Array layouts at the boundary with PyTorch: the reference stores a video latent as [C, F, H, W] (or
 * [1, C, F, H, W]); prfl keeps latents channels-last, [F, H, W, C] per clip ([B, F, H, W, C] batched,
 * tfjs's conv3d layout). Text embeddings are [L, D] (or [1, L, D]).
 */
import { formatShape, InvalidArgumentError } from '@prfl/tensor';

/** A float32 array with its shape. */
export interface FloatArray {
  shape: number[];
  data: Float32Array;
}

/** [C, F, H, W] or [1, C, F, H, W] -> [F, H, W, C]. */
export function torchLatentToChannelsLast(array: FloatArray, what = 'latent'): FloatArray {
  let shape = array.shape;
  if (shape.length === 5) {
    if (shape[0] !== 1) {
      throw new InvalidArgumentError(
        `${what}: expected [C, F, H, W] or [1, C, F, H, W], got ${formatShape(shape)} (a batch of ${shape[0]})`,
      );
    }
    shape = shape.slice(1);
  }
  if (shape.length !== 4) {
    throw new InvalidArgumentError(
      `${what}: expected a PyTorch video latent [C, F, H, W] or [1, C, F, H, W], got ${formatShape(array.shape)}`,
    );
  }
  const [C, F, H, W] = shape as [number, number, number, number];
  const src = array.data;
  const out = new Float32Array(src.length);
  const plane = F * H * W;
  for (let c = 0; c < C; c++) {
    const base = c * plane;
    for (let q = 0; q < plane; q++) out[q * C + c] = src[base + q] as number;
  }
  return { shape: [F, H, W, C], data: out };
}

/** [F, H, W, C] -> [C, F, H, W]. */
export function channelsLastToTorchLatent(array: FloatArray, what = 'latent'): FloatArray {
  if (array.shape.length !== 4) {
    throw new InvalidArgumentError(
      `${what}: expected a channels-last latent [F, H, W, C], got ${formatShape(array.shape)}`,
    );
  }
  const [F, H, W, C] = array.shape as [number, number, number, number];
  const src = array.data;
  const out = new Float32Array(src.length);
  const plane = F * H * W;
  for (let q = 0; q < plane; q++) for (let c = 0; c < C; c++) out[c * plane + q] = src[q * C + c] as number;
  return { shape: [C, F, H, W], data: out };
}

/** [L, D] or [1, L, D] -> [L, D]. */
export function textEmbeddingShape(array: FloatArray, what = 'text embedding'): FloatArray {
  const s = array.shape;
  if (s.length === 2) return array;
  if (s.length === 3 && s[0] === 1) return { shape: s.slice(1), data: array.data };
  throw new InvalidArgumentError(`${what}: expected [L, D] or [1, L, D], got ${formatShape(s)}`);
}
