/**
 * The second renderer's rasteriser: the shape's point test applied at pixel centres (hard edges, no
 * anti-aliasing: what a renderer without coverage does), or at n x n sub-samples per pixel (anti-aliased
 * by supersampling, a box filter), over a background that is one colour or a linear gradient.
 */
import type { Video } from '../../../src/moving-shapes/video.js';
import type { Rgb } from '../../../src/moving-shapes/vocabulary.js';
import type { State } from './defects.js';
import type { Outline } from './geometry.js';

export type Backdrop = { colour: Rgb } | { from: Rgb; to: Rgb; angle: number };

function paintBackdrop(backdrop: Backdrop, width: number, height: number): Float32Array {
  const img = new Float32Array(width * height * 3);
  const dx = 'angle' in backdrop ? Math.cos(backdrop.angle) : 0;
  const dy = 'angle' in backdrop ? Math.sin(backdrop.angle) : 0;
  // Projections of the canvas corners on the gradient's direction: the gradient spans them exactly.
  const corners = [0, width * dx, height * dy, width * dx + height * dy];
  const lo = Math.min(...corners);
  const hi = Math.max(...corners);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const p = 3 * (i * width + j);
      let c: Rgb;
      if ('colour' in backdrop) c = backdrop.colour;
      else {
        const s = ((j + 0.5) * dx + (i + 0.5) * dy - lo) / (hi - lo);
        const { from, to } = backdrop;
        c = [
          from[0] + (to[0] - from[0]) * s,
          from[1] + (to[1] - from[1]) * s,
          from[2] + (to[2] - from[2]) * s,
        ];
      }
      img[p] = c[0];
      img[p + 1] = c[1];
      img[p + 2] = c[2];
    }
  }
  return img;
}

export interface RasterOptions {
  width: number;
  height: number;
  outline: Outline;
  colour: Rgb;
  backdrop: Backdrop;
  /** Sub-samples per pixel side: 1 = hard edges (pixel-centre test), n > 1 = n x n supersampling. */
  samples: number;
}

export function rasterise(states: readonly State[], o: RasterOptions): Video {
  const { width: W, height: H, outline, colour, samples: n } = o;
  const F = states.length;
  const size = W * H * 3;
  const data = new Float32Array(F * size);
  const back = paintBackdrop(o.backdrop, W, H);
  const offsets = Array.from({ length: n }, (_, k) => (k + 0.5) / n);
  for (let f = 0; f < F; f++) {
    const s = states[f] as State;
    const base = f * size;
    data.set(back, base);
    if (s.opacity <= 0) continue;
    const jLo = Math.max(0, Math.floor(s.x - outline.left * s.sx) - 1);
    const jHi = Math.min(W - 1, Math.ceil(s.x + outline.right * s.sx) + 1);
    const iLo = Math.max(0, Math.floor(s.y - outline.up * s.sy) - 1);
    const iHi = Math.min(H - 1, Math.ceil(s.y + outline.down * s.sy) + 1);
    for (let i = iLo; i <= iHi; i++) {
      for (let j = jLo; j <= jHi; j++) {
        let hits = 0;
        for (const oy of offsets) {
          const v = (i + oy - s.y) / s.sy;
          for (const ox of offsets) if (outline.inside((j + ox - s.x) / s.sx, v)) hits++;
        }
        if (hits === 0) continue;
        const a = (s.opacity * hits) / (n * n);
        const p = base + 3 * (i * W + j);
        for (let c = 0; c < 3; c++)
          data[p + c] = (data[p + c] as number) * (1 - a) + (colour[c] as number) * a;
      }
    }
  }
  return { frames: F, height: H, width: W, data };
}
