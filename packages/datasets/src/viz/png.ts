/**
 * A minimal PNG encoder (8-bit RGB, no interlace) and frame strips of videos, for docs and reports.
 * Compression goes through a caller-supplied deflate (zlib format), so the module stays free of Node
 * imports: in Node pass `zlib.deflateSync`, in a browser any zlib implementation.
 */
import { InvalidArgumentError } from '@prfl/tensor';
import type { Video } from '../moving-shapes/video.js';

/** zlib-format compression (RFC 1950), e.g. `node:zlib`'s `deflateSync`. */
export type Deflate = (data: Uint8Array) => Uint8Array;

/** An 8-bit RGB image, row-major [height, width, 3]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start = 0xffffffff): number {
  let c = start;
  for (let i = 0; i < bytes.length; i++)
    c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, (crc32(out.subarray(4, 8 + body.length)) ^ 0xffffffff) >>> 0);
  return out;
}

/** Encodes an RGB image as PNG bytes. */
export function encodePng(image: RgbImage, deflate: Deflate): Uint8Array {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidArgumentError(
      `encodePng: width and height must be positive integers, got ${width} x ${height}`,
    );
  }
  if (data.length !== width * height * 3) {
    throw new InvalidArgumentError(
      `encodePng: expected ${width * height * 3} bytes (RGB), got ${data.length}`,
    );
  }
  // Each scanline is prefixed with filter type 0 (none).
  const raw = new Uint8Array(height * (width * 3 + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    raw.set(data.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflate(raw)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface FrameStripOptions {
  /** Frames to show (default: all). */
  frames?: readonly number[];
  /** Integer upscaling with nearest neighbour (default 2). */
  scale?: number;
  /** Pixels between frames and between rows (default 2), in the gap colour. */
  gap?: number;
  gapColour?: readonly [number, number, number];
}

/**
 * Videos as rows of frames side by side: one row per video, [-1, 1] mapped to 0..255. All videos must
 * have the same frame size.
 */
export function frameStrip(videos: readonly Video[], options: FrameStripOptions = {}): RgbImage {
  if (videos.length === 0) throw new InvalidArgumentError('frameStrip: expected at least one video');
  const first = videos[0] as Video;
  const { height: h, width: w } = first;
  const scale = options.scale ?? 2;
  const gap = options.gap ?? 2;
  const gapColour = options.gapColour ?? [255, 255, 255];
  const frames = options.frames ?? Array.from({ length: first.frames }, (_, i) => i);
  const W = frames.length * w * scale + (frames.length - 1) * gap;
  const H = videos.length * h * scale + (videos.length - 1) * gap;
  const data = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++) data.set(gapColour, 3 * p);
  videos.forEach((video, row) => {
    if (video.height !== h || video.width !== w) {
      throw new InvalidArgumentError(
        `frameStrip: video ${row} is ${video.height} x ${video.width}, expected ${h} x ${w}`,
      );
    }
    frames.forEach((f, col) => {
      if (f < 0 || f >= video.frames)
        throw new InvalidArgumentError(
          `frameStrip: frame ${f} outside video ${row} (${video.frames} frames)`,
        );
      const ox = col * (w * scale + gap);
      const oy = row * (h * scale + gap);
      for (let y = 0; y < h * scale; y++) {
        for (let x = 0; x < w * scale; x++) {
          const src = 3 * ((f * h + Math.floor(y / scale)) * w + Math.floor(x / scale));
          const dst = 3 * ((oy + y) * W + ox + x);
          for (let c = 0; c < 3; c++) {
            const v = Math.round(((video.data[src + c] as number) + 1) * 127.5);
            data[dst + c] = v < 0 ? 0 : Math.min(v, 255);
          }
        }
      }
    });
  });
  return { width: W, height: H, data };
}
