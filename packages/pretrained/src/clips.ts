/**
 * Rendered MovingShapes clips as the VAE reads them: tf tensors [B, F, H, W, 3] in [-1, 1], channels
 * last. A `Video` of @prfl/datasets already holds [F, H, W, 3] row-major in [-1, 1], so a clip, or a crop
 * of consecutive frames of it, is a view of its data with a batch axis in front.
 */
import { renderClip, type ClipSpec, type Video } from '@prfl/datasets';
import { InvalidArgumentError } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';

/** Frames [start, start + count) of a video as a tensor [1, count, H, W, 3] (default: every frame). */
export function videoToTensor(video: Video, start = 0, count = video.frames - start): tf.Tensor5D {
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(count) ||
    start < 0 ||
    count < 1 ||
    start + count > video.frames
  ) {
    throw new InvalidArgumentError(
      `videoToTensor: frames [${start}, ${start + count}) are not inside the video's ${video.frames} frames`,
    );
  }
  const n = video.height * video.width * 3;
  return tf.tensor5d(video.data.slice(start * n, (start + count) * n), [
    1,
    count,
    video.height,
    video.width,
    3,
  ]);
}

/** The first video of a tensor [B, F, H, W, 3] as a `Video` (what the oracle reads). */
export async function tensorToVideo(x: tf.Tensor5D): Promise<Video> {
  const [, frames, height, width] = x.shape;
  const data = (await x.data()) as Float32Array;
  return { frames, height, width, data: new Float32Array(data.subarray(0, frames * height * width * 3)) };
}

/** One crop of a batch: which clip, from which frame, how many frames; optionally a square window. */
export interface ClipCrop {
  spec: ClipSpec;
  start: number;
  frames: number;
  /** A size x size window at (top, left) instead of the whole frame. */
  window?: { top: number; left: number; size: number };
}

/** Renders the crops and stacks them into one batch [B, F, H, W, 3]; every crop must have the same length. */
export function renderCrops(crops: readonly ClipCrop[]): tf.Tensor5D {
  if (crops.length === 0) throw new InvalidArgumentError('renderCrops: no crops');
  const frames = (crops[0] as ClipCrop).frames;
  if (crops.some((c) => c.frames !== frames)) {
    throw new InvalidArgumentError('renderCrops: every crop of a batch must have the same number of frames');
  }
  return tf.tidy(() => {
    const parts = crops.map((c) => {
      const x = videoToTensor(renderClip(c.spec), c.start, c.frames);
      if (c.window === undefined) return x;
      const { top, left, size } = c.window;
      if (top < 0 || left < 0 || top + size > x.shape[2] || left + size > x.shape[3]) {
        throw new InvalidArgumentError(
          `renderCrops: window ${size} x ${size} at (${top}, ${left}) is not inside ${x.shape[2]} x ${x.shape[3]} frames`,
        );
      }
      return tf.slice(x, [0, 0, top, left, 0], [1, c.frames, size, size, 3]);
    });
    return parts.length === 1 ? (parts[0] as tf.Tensor5D) : (tf.concat(parts, 0) as tf.Tensor5D);
  });
}

/** Whole clips rendered and stacked into one batch [B, F, H, W, 3] (every clip the same size). */
export function renderClips(specs: readonly ClipSpec[]): tf.Tensor5D {
  return renderCrops(specs.map((spec) => ({ spec, start: 0, frames: spec.frames })));
}
