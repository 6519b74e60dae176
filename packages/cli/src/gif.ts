/// <reference path="./types/gifenc.d.ts" />
/**
 * Animated GIFs of videos (gifenc): the videos side by side, one GIF frame per video frame, upscaled
 * with nearest neighbour, on one palette shared by every frame so colours do not flicker.
 */
import * as gifencModule from 'gifenc';
import type { Video } from '@prfl/datasets';
import { InvalidArgumentError } from '@prfl/tensor';

// gifenc is CommonJS without named-export hints: Node's ESM loader gives its exports as `default`, a
// bundler's interop as the namespace itself.
const gifenc: typeof import('gifenc') =
  typeof (gifencModule as { GIFEncoder?: unknown }).GIFEncoder === 'function'
    ? gifencModule
    : (gifencModule as unknown as { default: typeof import('gifenc') }).default;

export interface GifOptions {
  /** Frames per second (default 8). */
  fps?: number;
  /** Integer upscaling (default 4). */
  scale?: number;
  /** Pixels between videos (default 2, white). */
  gap?: number;
}

const toByte = (v: number) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));

/** Encodes videos ([F, H, W, 3] in [-1, 1], all of one size) as one animated GIF. */
export function encodeGif(videos: readonly Video[], options: GifOptions = {}): Uint8Array {
  if (videos.length === 0) throw new InvalidArgumentError('encodeGif: expected at least one video');
  const first = videos[0] as Video;
  const { frames, height: h, width: w } = first;
  if (videos.some((v) => v.frames !== frames || v.height !== h || v.width !== w)) {
    throw new InvalidArgumentError('encodeGif: every video must have the same frames, height and width');
  }
  const scale = options.scale ?? 4;
  const gap = options.gap ?? 2;
  const fps = options.fps ?? 8;
  if (!Number.isInteger(scale) || scale < 1)
    throw new InvalidArgumentError(`encodeGif: scale must be a positive integer, got ${scale}`);
  if (!(fps > 0)) throw new InvalidArgumentError(`encodeGif: fps must be positive, got ${fps}`);
  const W = videos.length * w * scale + (videos.length - 1) * gap;
  const H = h * scale;
  const rgbaFrames: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const rgba = new Uint8Array(W * H * 4).fill(255);
    videos.forEach((video, col) => {
      const x0 = col * (w * scale + gap);
      for (let y = 0; y < H; y++) {
        const sy = Math.floor(y / scale);
        for (let x = 0; x < w * scale; x++) {
          const sx = Math.floor(x / scale);
          const src = ((f * h + sy) * w + sx) * 3;
          const dst = (y * W + x0 + x) * 4;
          rgba[dst] = toByte(video.data[src] as number);
          rgba[dst + 1] = toByte(video.data[src + 1] as number);
          rgba[dst + 2] = toByte(video.data[src + 2] as number);
        }
      }
    });
    rgbaFrames.push(rgba);
  }
  // One palette for the whole clip, from every frame's pixels.
  const all = new Uint8Array(rgbaFrames.reduce((a, f) => a + f.length, 0));
  let offset = 0;
  for (const f of rgbaFrames) {
    all.set(f, offset);
    offset += f.length;
  }
  const palette = gifenc.quantize(all, 256);
  const gif = gifenc.GIFEncoder();
  const delay = Math.round(1000 / fps);
  rgbaFrames.forEach((rgba, i) => {
    const index = gifenc.applyPalette(rgba, palette);
    gif.writeFrame(index, W, H, i === 0 ? { palette, delay, repeat: 0 } : { delay });
  });
  gif.finish();
  return gif.bytes();
}
