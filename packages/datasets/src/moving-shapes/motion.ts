/**
 * Trajectories of the MovingShapes world, as closed forms of continuous time t in frames (t = 0 is the
 * first frame). Every plan keeps the shape's centroid inside `bounds`, the box in which the whole shape
 * (with room for a deformation) stays on the canvas. The physics is Newtonian: constant velocity,
 * constant gravity, uniform circular motion, and elastic reflection off the floor or the side walls.
 * Speeds are in pixels per frame and chosen so that every clip moves at least ~0.7 px per frame.
 */
import { InvalidArgumentError, type Generator } from '@prfl/tensor';
import type { MotionKind } from './vocabulary.js';

/** The box the centroid stays in. */
export interface Bounds {
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
}

export type MotionPlan =
  | {
      kind: 'left' | 'right' | 'up' | 'down' | 'up-left' | 'up-right' | 'down-left' | 'down-right';
      x0: number;
      y0: number;
      vx: number;
      vy: number;
    }
  | { kind: 'fall'; x0: number; y0: number; v0: number; g: number }
  | { kind: 'arc-right' | 'arc-left'; x0: number; y0: number; vx: number; vy0: number; g: number }
  | {
      kind: 'bounce-right' | 'bounce-left';
      x0: number;
      vx: number;
      floor: number;
      vb: number;
      g: number;
      phase: number;
    }
  | { kind: 'walls'; y: number; xmin: number; xmax: number; u0: number; vx: number }
  | { kind: 'orbit-cw' | 'orbit-ccw'; cx: number; cy: number; radius: number; theta0: number; omega: number };

const LINEAR_DIRECTION: Record<string, readonly [number, number]> = {
  left: [-1, 0],
  right: [1, 0],
  up: [0, -1],
  down: [0, 1],
  'up-left': [-Math.SQRT1_2, -Math.SQRT1_2],
  'up-right': [Math.SQRT1_2, -Math.SQRT1_2],
  'down-left': [-Math.SQRT1_2, Math.SQRT1_2],
  'down-right': [Math.SQRT1_2, Math.SQRT1_2],
};

function uniform(rng: Generator, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.nextDouble();
}

/**
 * Draws the parameters of a motion of `kind` lasting `duration` frames (frames - 1) inside `bounds`.
 * Walls and the floor are at `contact` (default `bounds`): the box where the shape touches the canvas
 * edges, so bounces happen at the visible edge even when `bounds` keeps extra room for deformations.
 * @throws InvalidArgumentError when the bounds leave no room to move (a shape too large for the canvas).
 */
export function planMotion(
  kind: MotionKind,
  bounds: Bounds,
  duration: number,
  rng: Generator,
  contact: Bounds = bounds,
): MotionPlan {
  const { xmin, xmax, ymin, ymax } = bounds;
  const lx = xmax - xmin;
  const ly = ymax - ymin;
  if (lx < 8 || ly < 8) {
    throw new InvalidArgumentError(
      `planMotion: the shape leaves ${lx.toFixed(1)} x ${ly.toFixed(1)} px to move in; need at least 8 x 8 (smaller shape or larger canvas)`,
    );
  }
  const T = duration;
  switch (kind) {
    case 'left':
    case 'right':
    case 'up':
    case 'down':
    case 'up-left':
    case 'up-right':
    case 'down-left':
    case 'down-right': {
      const [dx, dy] = LINEAR_DIRECTION[kind] as [number, number];
      const room = Math.min(dx !== 0 ? lx / Math.abs(dx) : Infinity, dy !== 0 ? ly / Math.abs(dy) : Infinity);
      const travel = room * uniform(rng, 0.6, 0.95);
      const vx = (dx * travel) / T;
      const vy = (dy * travel) / T;
      // Start where the whole travel fits; the free coordinate (if any) is uniform.
      const x0 =
        dx > 0
          ? uniform(rng, xmin, xmax - dx * travel)
          : dx < 0
            ? uniform(rng, xmin - dx * travel, xmax)
            : uniform(rng, xmin, xmax);
      const y0 =
        dy > 0
          ? uniform(rng, ymin, ymax - dy * travel)
          : dy < 0
            ? uniform(rng, ymin - dy * travel, ymax)
            : uniform(rng, ymin, ymax);
      return { kind, x0, y0, vx, vy };
    }
    case 'fall': {
      // Starts already moving (>= 0.7 px/frame) so a slow start never reads as a stall, then accelerates.
      const v0 = uniform(rng, 0.7, 1.1);
      const y0 = ymin + uniform(rng, 0, 2);
      const yEnd = ymax - uniform(rng, 0, 2);
      const g = Math.max(0.02, (2 * (yEnd - y0 - v0 * T)) / (T * T));
      return { kind, x0: uniform(rng, xmin, xmax), y0, v0, g };
    }
    case 'arc-right':
    case 'arc-left': {
      const dir = kind === 'arc-right' ? 1 : -1;
      const travel = lx * uniform(rng, 0.65, 0.95);
      const vx = (dir * travel) / T;
      const x0 = dir > 0 ? uniform(rng, xmin, xmax - travel) : uniform(rng, xmin + travel, xmax);
      const tApex = T * uniform(rng, 0.35, 0.65);
      const yApex = ymin + uniform(rng, 0, 2);
      const yLow = ymax - uniform(rng, 0, 2);
      const g = (2 * (yLow - yApex)) / Math.max(tApex, T - tApex) ** 2;
      const vy0 = g * tApex; // upward speed at launch
      const y0 = yApex + 0.5 * g * tApex * tApex;
      return { kind, x0, y0, vx, vy0, g };
    }
    case 'bounce-right':
    case 'bounce-left': {
      const dir = kind === 'bounce-right' ? 1 : -1;
      const travel = lx * uniform(rng, 0.6, 0.95);
      const vx = (dir * travel) / T;
      const x0 = dir > 0 ? uniform(rng, xmin, xmax - travel) : uniform(rng, xmin + travel, xmax);
      const height = ly * uniform(rng, 0.5, 0.9);
      const period = uniform(rng, 7, 12);
      const g = (8 * height) / (period * period);
      const vb = (4 * height) / period;
      return { kind, x0, vx, floor: contact.ymax, vb, g, phase: uniform(rng, 0, period) };
    }
    case 'walls': {
      // Fast enough to hit a wall at least once (travel > the width between the walls), and the first
      // leg is 30-55 % of that width, so both legs before and after the first hit are clearly visible.
      const wall = contact.xmax - contact.xmin;
      const speed = (wall / T) * uniform(rng, 1.15, 1.7);
      const dir = rng.nextDouble() < 0.5 ? 1 : -1;
      const firstLeg = wall * uniform(rng, 0.3, 0.55);
      const u0 = dir > 0 ? contact.xmax - firstLeg : contact.xmin + firstLeg;
      return {
        kind,
        y: uniform(rng, ymin, ymax),
        xmin: contact.xmin,
        xmax: contact.xmax,
        u0,
        vx: dir * speed,
      };
    }
    case 'orbit-cw':
    case 'orbit-ccw': {
      const maxRadius = Math.min(lx, ly) / 2;
      const radius = uniform(rng, Math.min(maxRadius, Math.max(6, 0.6 * maxRadius)), maxRadius);
      const cx = uniform(rng, xmin + radius, xmax - radius);
      const cy = uniform(rng, ymin + radius, ymax - radius);
      // Screen y points down, so increasing angle is clockwise on screen.
      const omega = uniform(rng, 0.18, 0.26) * (kind === 'orbit-cw' ? 1 : -1);
      return { kind, cx, cy, radius, theta0: uniform(rng, 0, 2 * Math.PI), omega };
    }
  }
}

function reflectInto(u: number, lo: number, hi: number): number {
  const L = hi - lo;
  const P = 2 * L;
  const w = (((u - lo) % P) + P) % P;
  return lo + (w <= L ? w : P - w);
}

/** The centroid at time t (frames, may be fractional). */
export function positionAt(plan: MotionPlan, t: number): [number, number] {
  switch (plan.kind) {
    case 'fall':
      return [plan.x0, plan.y0 + plan.v0 * t + 0.5 * plan.g * t * t];
    case 'arc-right':
    case 'arc-left':
      return [plan.x0 + plan.vx * t, plan.y0 - plan.vy0 * t + 0.5 * plan.g * t * t];
    case 'bounce-right':
    case 'bounce-left': {
      const period = (2 * plan.vb) / plan.g;
      const tau = (((t + plan.phase) % period) + period) % period;
      return [plan.x0 + plan.vx * t, plan.floor - (plan.vb * tau - 0.5 * plan.g * tau * tau)];
    }
    case 'walls':
      return [reflectInto(plan.u0 + plan.vx * t, plan.xmin, plan.xmax), plan.y];
    case 'orbit-cw':
    case 'orbit-ccw': {
      const a = plan.theta0 + plan.omega * t;
      return [plan.cx + plan.radius * Math.cos(a), plan.cy + plan.radius * Math.sin(a)];
    }
    default:
      return [plan.x0 + plan.vx * t, plan.y0 + plan.vy * t];
  }
}

/** Times (frames) in [0, duration] at which the shape hits the floor or a wall. */
export function collisionTimes(plan: MotionPlan, duration: number): number[] {
  const out: number[] = [];
  if (plan.kind === 'bounce-right' || plan.kind === 'bounce-left') {
    const period = (2 * plan.vb) / plan.g;
    for (let k = -1; k < duration / period + 2; k++) {
      const t = k * period - plan.phase;
      if (t >= 0 && t <= duration) out.push(t);
    }
  } else if (plan.kind === 'walls') {
    const L = plan.xmax - plan.xmin;
    const speed = Math.abs(plan.vx);
    // Unfolded coordinate hits xmin + k L for integer k.
    const u0 = plan.u0 - plan.xmin;
    const reach = Math.ceil((speed * duration) / L) + 2;
    for (let k = -reach; k <= reach; k++) {
      const t = (k * L - u0) / plan.vx;
      if (t > 0 && t <= duration) out.push(t);
    }
    out.sort((a, b) => a - b);
  }
  return out;
}
