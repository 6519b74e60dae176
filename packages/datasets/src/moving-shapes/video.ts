/**
 * A pixel video as the MovingShapes renderer and oracle see it: RGB float32, values in [-1, 1],
 * channels last, [F, H, W, 3] in one Float32Array (a video model's decoder output in the same layout
 * and range can be handed to the oracle directly).
 */
import { InvalidArgumentError } from '@prfl/tensor';

export interface Video {
  frames: number;
  height: number;
  width: number;
  /** [frames, height, width, 3], row-major, values in [-1, 1]. */
  data: Float32Array;
}

/** A black video of the given size. */
export function createVideo(frames: number, height: number, width: number): Video {
  for (const [name, v] of [
    ['frames', frames],
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new InvalidArgumentError(`createVideo: ${name} must be a positive integer, got ${String(v)}`);
    }
  }
  return { frames, height, width, data: new Float32Array(frames * height * width * 3).fill(-1) };
}

/** Checks that `video.data` has F * H * W * 3 elements. */
export function assertVideo(what: string, video: Video): void {
  const { frames, height, width, data } = video ?? ({} as Video);
  if (!(data instanceof Float32Array)) {
    throw new InvalidArgumentError(
      `${what}: expected { frames, height, width, data: Float32Array }, got ${typeof data}`,
    );
  }
  const expected = frames * height * width * 3;
  if (!Number.isInteger(expected) || expected <= 0 || data.length !== expected) {
    throw new InvalidArgumentError(
      `${what}: data has ${data.length} values but [F, H, W, 3] = [${frames}, ${height}, ${width}, 3] needs ${expected}`,
    );
  }
}

/** A view of frame f ([H, W, 3]). */
export function frameView(video: Video, f: number): Float32Array {
  const n = video.height * video.width * 3;
  return video.data.subarray(f * n, (f + 1) * n);
}
