/**
 * The second renderer's trajectories, one closed form per motion family, written from what the prompt
 * grammar says rather than from src/moving-shapes/motion.ts: constant velocity in the named direction
 * (within 8 degrees of it), a fall from a moving start under constant gravity, a thrown arc, hops on the
 * floor, a pass between the side walls with elastic reflections at the visible edge, uniform circular
 * motion. "Good" motion is exactly this: Newtonian, with every change of velocity either constant
 * (gravity, the orbit's centripetal pull) or a reflection where the shape touches the canvas edge.
 */
import type { MotionKind } from '../../../src/moving-shapes/vocabulary.js';
import type { Rng } from './rng.js';

/** A box for the centroid. */
export interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export interface Path {
  kind: MotionKind;
  /** Centroid at (possibly fractional) time t in frames. */
  at: (t: number) => [number, number];
  /** Times of floor or wall contacts in [0, duration]. */
  hits: number[];
}

const DEG = Math.PI / 180;

const HEADING: Partial<Record<MotionKind, number>> = {
  right: 0,
  'down-right': 45 * DEG,
  down: 90 * DEG,
  'down-left': 135 * DEG,
  left: 180 * DEG,
  'up-left': 225 * DEG,
  up: 270 * DEG,
  'up-right': 315 * DEG,
};

/** Folds u into [lo, hi] as a ball between two walls does. */
function fold(u: number, lo: number, hi: number): number {
  const L = hi - lo;
  const w = (((u - lo) % (2 * L)) + 2 * L) % (2 * L);
  return lo + (w <= L ? w : 2 * L - w);
}

/**
 * A good path of `kind` lasting `duration` frames. `room`: where the centroid may go with the shape
 * (deformed) on the canvas; `touch`: where the undeformed shape touches the canvas edges (floor, walls).
 */
export function drawPath(kind: MotionKind, room: Box, touch: Box, duration: number, rng: Rng): Path {
  const T = duration;
  const lx = room.x1 - room.x0;
  const ly = room.y1 - room.y0;
  const heading = HEADING[kind];
  if (heading !== undefined) {
    const a = heading + rng.uniform(-8, 8) * DEG;
    const dx = Math.cos(a);
    const dy = Math.sin(a);
    const longest = Math.min(
      Math.abs(dx) > 1e-9 ? lx / Math.abs(dx) : Infinity,
      Math.abs(dy) > 1e-9 ? ly / Math.abs(dy) : Infinity,
    );
    const travel = longest * rng.uniform(0.5, 0.95);
    const tx = dx * travel;
    const ty = dy * travel;
    const xs = rng.uniform(Math.max(room.x0, room.x0 - tx), Math.min(room.x1, room.x1 - tx));
    const ys = rng.uniform(Math.max(room.y0, room.y0 - ty), Math.min(room.y1, room.y1 - ty));
    return { kind, at: (t) => [xs + (tx * t) / T, ys + (ty * t) / T], hits: [] };
  }
  switch (kind) {
    case 'fall': {
      const xs = rng.uniform(room.x0, room.x1);
      const ys = room.y0 + rng.uniform(0, 3);
      const ye = room.y1 - rng.uniform(0, 3);
      const v0 = Math.min(rng.uniform(0.75, 1.2), (0.6 * (ye - ys)) / T);
      const g = (2 * (ye - ys - v0 * T)) / (T * T);
      return { kind, at: (t) => [xs, ys + v0 * t + 0.5 * g * t * t], hits: [] };
    }
    case 'arc-left':
    case 'arc-right': {
      const dir = kind === 'arc-right' ? 1 : -1;
      const travel = lx * rng.uniform(0.6, 0.95);
      const xs = dir > 0 ? rng.uniform(room.x0, room.x1 - travel) : rng.uniform(room.x0 + travel, room.x1);
      const tTop = T * rng.uniform(0.3, 0.7);
      const yTop = room.y0 + rng.uniform(0, 3);
      const drop = (room.y1 - rng.uniform(0, 3) - yTop) * rng.uniform(0.7, 1);
      const g = (2 * drop) / Math.max(tTop, T - tTop) ** 2;
      return {
        kind,
        at: (t) => [xs + (dir * travel * t) / T, yTop + 0.5 * g * (t - tTop) ** 2],
        hits: [],
      };
    }
    case 'bounce-left':
    case 'bounce-right': {
      const dir = kind === 'bounce-right' ? 1 : -1;
      const travel = lx * rng.uniform(0.55, 0.95);
      const xs = dir > 0 ? rng.uniform(room.x0, room.x1 - travel) : rng.uniform(room.x0 + travel, room.x1);
      const floor = touch.y1;
      const hop = (floor - room.y0) * rng.uniform(0.45, 0.9);
      const period = rng.uniform(6, 12);
      const shift = rng.uniform(0, period);
      // Each hop is the parabola through the floor at both ends with its top `hop` above it.
      const at = (t: number): [number, number] => {
        const s = (((t + shift) % period) + period) % period;
        return [xs + (dir * travel * t) / T, floor - (4 * hop * s * (period - s)) / (period * period)];
      };
      const hits: number[] = [];
      for (let k = 0; k * period - shift <= T + period; k++) {
        const t = k * period - shift;
        if (t >= 0 && t <= T) hits.push(t);
      }
      return { kind, at, hits };
    }
    case 'walls': {
      const lo = touch.x0;
      const hi = touch.x1;
      const width = hi - lo;
      const speed = (width / T) * rng.uniform(1.2, 1.8);
      const dir = rng.sign();
      // The first leg, up to the first wall, is 25-60 % of the width.
      const first = width * rng.uniform(0.25, 0.6);
      const us = dir > 0 ? hi - first : lo + first;
      const y = rng.uniform(room.y0, room.y1);
      const hits: number[] = [];
      for (let k = 0; ; k++) {
        const t = (first + k * width) / speed;
        if (t > T) break;
        hits.push(t);
      }
      return { kind, at: (t) => [fold(us + dir * speed * t, lo, hi), y], hits };
    }
    default: {
      // Orbits: uniform circular motion, clockwise on screen when the angle grows (y is down).
      const dir = kind === 'orbit-cw' ? 1 : -1;
      const most = Math.min(lx, ly) / 2;
      const radius = rng.uniform(Math.min(most, Math.max(5, 0.55 * most)), most);
      const cx = rng.uniform(room.x0 + radius, room.x1 - radius);
      const cy = rng.uniform(room.y0 + radius, room.y1 - radius);
      const omega = dir * Math.max(rng.uniform(0.15, 0.3), 0.75 / radius);
      const a0 = rng.uniform(0, 2 * Math.PI);
      return {
        kind,
        at: (t) => [cx + radius * Math.cos(a0 + omega * t), cy + radius * Math.sin(a0 + omega * t)],
        hits: [],
      };
    }
  }
}
