/**
 * The second renderer's defects, injected by its own code at the severities the world's defects use
 * (src/moving-shapes/defects.ts documents them; lengths in pixels of a 64 x 64 canvas, scaled):
 *
 * - jitter: Gaussian offsets of std 1.3-2.2 px on every frame;
 * - teleport: 1-2 frames 9.6-16 px away (>= 7.7 px once the shape is kept on the canvas), then back;
 * - stall: 3-5 frames frozen while moving >= 0.7 px/frame, then late or caught up;
 * - speed change: time runs x0.2-0.45 or x2-3 from one frame on, a velocity jump >= 1.3 px/frame away
 *   from wall and floor hits;
 * - deformation: a squash-and-stretch bump of 35-55 %, a grow (30-40 %) or shrink (30-35 %) bump over
 *   4-7 frames, or a wobble of 25-40 % (period 4-8 frames) over the whole clip; the centroid stays;
 * - flicker: 2-5 frames faded to opacity 0.15-0.5.
 *
 * Where the world uses a sine bump this uses a trapezoid that holds the full amount, and its own time warps.
 */
import type { MotionDefectKind } from '../../../src/moving-shapes/defects.js';
import type { Box, Path } from './paths.js';
import type { Rng } from './rng.js';

export interface State {
  x: number;
  y: number;
  sx: number;
  sy: number;
  opacity: number;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function statesAt(path: Path, times: readonly number[]): State[] {
  return times.map((t) => {
    const [x, y] = path.at(t);
    return { x, y, sx: 1, sy: 1, opacity: 1 };
  });
}

/** Frames 0..F-1 read at their own times: a good clip. */
export function goodStates(path: Path, frames: number): State[] {
  return statesAt(
    path,
    Array.from({ length: frames }, (_, t) => t),
  );
}

/**
 * The states of a clip with one defect, or undefined when this path cannot carry it visibly (a speed
 * change on a path too slow for a 1.3 px/frame jump): the caller draws another path.
 * `box`: where the centroid may go with the whole shape on the canvas; `scale`: canvas / 64.
 */
export function defectStates(
  kind: MotionDefectKind,
  path: Path,
  frames: number,
  box: Box,
  scale: number,
  rng: Rng,
): State[] | undefined {
  const T = frames - 1;
  const times = Array.from({ length: frames }, (_, t) => t);
  switch (kind) {
    case 'jitter': {
      const std = rng.uniform(1.3, 2.2) * scale;
      const s = statesAt(path, times);
      for (const st of s) {
        st.x = clamp(st.x + std * rng.normal(), box.x0, box.x1);
        st.y = clamp(st.y + std * rng.normal(), box.y0, box.y1);
      }
      return s;
    }
    case 'teleport': {
      for (let attempt = 0; attempt < 50; attempt++) {
        const s = statesAt(path, times);
        const start = 2 + rng.int(T - 3);
        const length = rng.next() < 0.5 ? 1 : 2;
        const dist = rng.uniform(9.6, 16) * scale;
        const a = rng.uniform(0, 2 * Math.PI);
        let shortest = Infinity;
        for (let t = start; t < Math.min(frames, start + length); t++) {
          const st = s[t] as State;
          const nx = clamp(st.x + dist * Math.cos(a), box.x0, box.x1);
          const ny = clamp(st.y + dist * Math.sin(a), box.y0, box.y1);
          shortest = Math.min(shortest, Math.hypot(nx - st.x, ny - st.y));
          st.x = nx;
          st.y = ny;
        }
        if (shortest >= 7.7 * scale) return s;
      }
      return undefined;
    }
    case 'stall': {
      for (let attempt = 0; attempt < 50; attempt++) {
        const length = 3 + rng.int(3);
        const start = 2 + rng.int(Math.max(1, T - length - 3));
        const [ax, ay] = path.at(start);
        const [bx, by] = path.at(start + 1);
        if (Math.hypot(bx - ax, by - ay) < 0.7 * scale) continue;
        const late = rng.next() < 0.5;
        // Frozen on [start, start + length]; then either the rest runs `length` frames late, or it is
        // where it would have been.
        const warped = times.map((t) =>
          t <= start ? t : t <= start + length ? start : late ? t - length : t,
        );
        return statesAt(path, warped);
      }
      return undefined;
    }
    case 'speed-change': {
      for (let attempt = 0; attempt < 50; attempt++) {
        const at = 4 + rng.int(Math.max(1, T - 7));
        const factor = rng.next() < 0.5 ? rng.uniform(0.2, 0.45) : rng.uniform(2, 3);
        // Slow the whole clip down first when speeding up, so that the path lasts to the last frame.
        const pre = Math.min(1, T / (at + factor * (T - at)));
        const warp = (t: number) => (t <= at ? pre * t : pre * (at + factor * (t - at)));
        const p = (t: number) => path.at(warp(t));
        const [x0, y0] = p(at - 1);
        const [x1, y1] = p(at);
        const [x2, y2] = p(at + 1);
        const jump = Math.hypot(x2 - x1 - (x1 - x0), y2 - y1 - (y1 - y0));
        const near = path.hits.some((h) => h > warp(at - 2) && h < warp(at + 2));
        if (jump < 1.3 * scale || near) continue;
        return statesAt(path, times.map(warp));
      }
      return undefined;
    }
    case 'deformation': {
      const s = statesAt(path, times);
      const r = rng.next();
      if (r < 0.25) {
        const amount = rng.uniform(0.25, 0.4);
        const period = rng.uniform(4, 8);
        const phase = rng.uniform(0, 2 * Math.PI);
        s.forEach((st, t) => {
          const k = 1 + amount * Math.sin((2 * Math.PI * t) / period + phase);
          st.sx = k;
          st.sy = 1 / k;
        });
        return s;
      }
      const length = 4 + rng.int(4);
      const start = 1 + rng.int(Math.max(1, T - length - 1));
      const squash = r < 0.65;
      const amount = squash
        ? rng.uniform(0.35, 0.55)
        : rng.next() < 0.5
          ? rng.uniform(0.3, 0.4)
          : -rng.uniform(0.3, 0.35);
      const horizontal = rng.next() < 0.5;
      for (let k = 0; k < length && start + k < frames; k++) {
        // A trapezoid: half way up, then the full amount for length - 2 frames, then half way down.
        const w = Math.min(1, (k + 1) / 2, (length - k) / 2);
        const st = s[start + k] as State;
        const g = 1 + amount * w;
        if (!squash) {
          st.sx = g;
          st.sy = g;
        } else if (horizontal) {
          st.sx = g;
          st.sy = 1 / g;
        } else {
          st.sx = 1 / g;
          st.sy = g;
        }
      }
      return s;
    }
    case 'flicker': {
      const s = statesAt(path, times);
      const count = 2 + rng.int(4);
      const chosen = new Set<number>();
      while (chosen.size < count) chosen.add(1 + rng.int(T));
      for (const t of chosen) (s[t] as State).opacity = rng.uniform(0.15, 0.5);
      return s;
    }
  }
}
