/**
 * Motion defects and prompt mismatches, each with the parameters that reproduce it exactly (a clip spec
 * is plain JSON). Three groups, one ground-truth label each:
 *
 * - physics (physical plausibility): jitter, teleport, stall, speed-change;
 * - integrity (shape integrity, the analogue of the paper's "human quality" / anatomy): deformation,
 *   flicker;
 * - alignment (text alignment): wrong-colour, wrong-shape, wrong-size, wrong-motion.
 *
 * Motion quality, the label PAVRM learns, is physics AND integrity (as in the reference, where motion
 * quality = physics_quality AND human_quality). Every defect is drawn strong enough to be visible:
 * the minimum strengths below are what the oracle's thresholds are set against (docs/datasets.md).
 */
import type { Generator } from '@prfl/tensor';
import type { FrameState } from './render.js';
import type { ColourName, MotionKind, ShapeName, SizeName } from './vocabulary.js';

export type PhysicsDefectKind = 'jitter' | 'teleport' | 'stall' | 'speed-change';
export type IntegrityDefectKind = 'deformation' | 'flicker';
export type MotionDefectKind = PhysicsDefectKind | IntegrityDefectKind;
export type AlignmentDefectKind = 'wrong-colour' | 'wrong-shape' | 'wrong-size' | 'wrong-motion';
export type DefectKind = MotionDefectKind | AlignmentDefectKind;

export const PHYSICS_DEFECTS: readonly PhysicsDefectKind[] = ['jitter', 'teleport', 'stall', 'speed-change'];
export const INTEGRITY_DEFECTS: readonly IntegrityDefectKind[] = ['deformation', 'flicker'];
export const MOTION_DEFECTS: readonly MotionDefectKind[] = [...PHYSICS_DEFECTS, ...INTEGRITY_DEFECTS];
export const ALIGNMENT_DEFECTS: readonly AlignmentDefectKind[] = [
  'wrong-colour',
  'wrong-shape',
  'wrong-size',
  'wrong-motion',
];

export type Defect =
  /** Per-frame offsets (pixels) added to the centroid. */
  | { kind: 'jitter'; std: number; offsets: Array<[number, number]> }
  /** The object jumps away for `length` frames from `frame` on, then returns to its path. */
  | { kind: 'teleport'; frame: number; length: number; offset: [number, number] }
  /**
   * The object freezes at `frame` for `length` steps; 'delay' resumes from where it stopped (the rest of
   * the clip runs late), 'catch-up' jumps to where it should be.
   */
  | { kind: 'stall'; frame: number; length: number; resume: 'delay' | 'catch-up' }
  /** From `frame` on, time runs `factor` times faster; `prescale` slows the start so the path still fits. */
  | { kind: 'speed-change'; frame: number; factor: number; prescale: number }
  /** Stretch without moving the centroid: a squash-and-stretch bump, a grow/shrink bump, or a wobble. */
  | {
      kind: 'deformation';
      mode: 'squash' | 'scale' | 'wobble';
      frame: number;
      length: number;
      amount: number;
      period: number;
      phase: number;
    }
  /** Listed frames fade towards the background to the given opacity. */
  | { kind: 'flicker'; frames: number[]; opacity: number[] }
  | { kind: 'wrong-colour'; drawn: ColourName }
  | { kind: 'wrong-shape'; drawn: ShapeName }
  | { kind: 'wrong-size'; drawn: SizeName }
  | { kind: 'wrong-motion'; drawn: MotionKind };

export function isPhysicsDefect(d: Defect): boolean {
  return (PHYSICS_DEFECTS as readonly string[]).includes(d.kind);
}
export function isIntegrityDefect(d: Defect): boolean {
  return (INTEGRITY_DEFECTS as readonly string[]).includes(d.kind);
}
export function isAlignmentDefect(d: Defect): boolean {
  return (ALIGNMENT_DEFECTS as readonly string[]).includes(d.kind);
}

/** The time at which the path is read in frame t, after stalls and speed changes. */
export function warpTime(defects: readonly Defect[], t: number): number {
  let tau = t;
  for (const d of defects) {
    if (d.kind === 'stall') {
      const end = d.frame + d.length;
      if (d.resume === 'delay') tau = tau < d.frame ? tau : tau <= end ? d.frame : tau - d.length;
      else tau = tau < d.frame ? tau : tau < end ? d.frame : tau;
    } else if (d.kind === 'speed-change') {
      const s = d.prescale;
      tau = tau <= d.frame ? s * tau : s * d.frame + d.factor * s * (tau - d.frame);
    }
  }
  return tau;
}

/** Applies offsets, stretches and fades of `defects` to frame states built from the (warped) path. */
export function applyStateDefects(defects: readonly Defect[], states: FrameState[]): void {
  for (const d of defects) {
    switch (d.kind) {
      case 'jitter':
        states.forEach((s, t) => {
          const o = d.offsets[t];
          if (o) {
            s.x += o[0];
            s.y += o[1];
          }
        });
        break;
      case 'teleport':
        for (let t = d.frame; t < d.frame + d.length && t < states.length; t++) {
          const s = states[t] as FrameState;
          s.x += d.offset[0];
          s.y += d.offset[1];
        }
        break;
      case 'deformation':
        states.forEach((s, t) => {
          const [sx, sy] = deformationScale(d, t);
          s.sx *= sx;
          s.sy *= sy;
        });
        break;
      case 'flicker':
        d.frames.forEach((t, k) => {
          const s = states[t];
          if (s) s.opacity *= d.opacity[k] as number;
        });
        break;
      default:
        break;
    }
  }
}

/** Stretch (sx, sy) of a deformation in frame t. */
export function deformationScale(d: Extract<Defect, { kind: 'deformation' }>, t: number): [number, number] {
  if (d.mode === 'wobble') {
    const k = 1 + d.amount * Math.sin((2 * Math.PI * t) / d.period + d.phase);
    return [k, 1 / k];
  }
  if (t < d.frame || t >= d.frame + d.length) return [1, 1];
  const bump = Math.sin((Math.PI * (t - d.frame + 1)) / (d.length + 1));
  if (d.mode === 'scale') {
    const k = 1 + d.amount * bump;
    return [k, k];
  }
  // Squash: a positive amount stretches horizontally, a negative one vertically, by the same factor.
  const k = 1 + Math.abs(d.amount) * bump;
  return d.amount >= 0 ? [k, 1 / k] : [1 / k, k];
}

function uniform(rng: Generator, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.nextDouble();
}

/** What an injector may look at: the clean path, the frame count, the room to move and the canvas scale. */
export interface InjectionContext {
  /** Clean centroid at time t. */
  path: (t: number) => [number, number];
  frames: number;
  /** Box the centroid must stay in (whole shape on the canvas). */
  bounds: { xmin: number; xmax: number; ymin: number; ymax: number };
  /** Pixels per pixel of the 64 x 64 reference canvas. */
  scale: number;
  /** Times of wall or floor hits of the clean path. */
  collisions: readonly number[];
  /**
   * Time-warping defects (stall, speed change) must still read the path up to this time in the last
   * frame, so that what the prompt says stays visible (a wall bounce must still reach its wall).
   */
  mustReach?: number;
}

function clampInto(v: number, lo: number, hi: number): number {
  return v < lo ? lo : Math.min(v, hi);
}

/**
 * Draws one motion defect of `kind`. Strengths (64 x 64 canvas; scaled with the canvas):
 * jitter std 1.3-2.2 px on every frame; teleport 9.6-16 px for 1-2 frames (at least 7.7 px after
 * keeping the shape on the canvas); stall 3-5 frames while moving >= 0.7 px/frame; speed change x0.2-0.45
 * or x2-3 with a velocity jump >= 0.8 px/frame away from wall hits; deformation squash 35-55 %, grow
 * 30-40 % or shrink 30-35 %, wobble 25-40 %; flicker 2-5 frames at opacity 0.15-0.5.
 * A speed change that cannot be made visible in 40 draws falls back to a stall.
 */
export function drawMotionDefect(kind: MotionDefectKind, ctx: InjectionContext, rng: Generator): Defect {
  const T = ctx.frames - 1;
  const { bounds, scale } = ctx;
  switch (kind) {
    case 'jitter': {
      const std = uniform(rng, 1.3, 2.2) * scale;
      const noise = rng.normalArray(2 * ctx.frames, 0, std);
      const offsets: Array<[number, number]> = [];
      for (let t = 0; t < ctx.frames; t++) {
        const [x, y] = ctx.path(t);
        const nx = clampInto(x + (noise[2 * t] as number), bounds.xmin, bounds.xmax);
        const ny = clampInto(y + (noise[2 * t + 1] as number), bounds.ymin, bounds.ymax);
        offsets.push([nx - x, ny - y]);
      }
      return { kind, std, offsets };
    }
    case 'teleport': {
      let best: Defect | undefined;
      let bestDist = -1;
      for (let attempt = 0; attempt < 20; attempt++) {
        const frame = 2 + rng.nextInt(T - 3);
        const length = 1 + rng.nextInt(2);
        const dist = uniform(rng, 9.6, 16) * scale;
        const angle = uniform(rng, 0, 2 * Math.PI);
        // The shortest displacement over the jumped frames once clamped to the canvas.
        let ox = Math.cos(angle) * dist;
        let oy = Math.sin(angle) * dist;
        for (let t = frame; t < frame + length; t++) {
          const [x, y] = ctx.path(t);
          ox = clampInto(x + ox, bounds.xmin, bounds.xmax) - x;
          oy = clampInto(y + oy, bounds.ymin, bounds.ymax) - y;
        }
        const got = Math.hypot(ox, oy);
        if (got > bestDist) {
          bestDist = got;
          best = { kind, frame, length, offset: [ox, oy] };
        }
        if (got >= 7.7 * scale) break;
      }
      return best as Defect;
    }
    case 'stall': {
      let fallback: Defect | undefined;
      for (let attempt = 0; attempt < 40; attempt++) {
        const length = 3 + rng.nextInt(3);
        const frame = 2 + rng.nextInt(Math.max(1, T - length - 3));
        const resume = rng.nextDouble() < 0.5 ? 'delay' : 'catch-up';
        const d: Defect = { kind, frame, length, resume };
        if (warpTime([d], T) < (ctx.mustReach ?? 0)) continue;
        fallback ??= d;
        const [x0, y0] = ctx.path(frame);
        const [x1, y1] = ctx.path(frame + 1);
        if (Math.hypot(x1 - x0, y1 - y0) >= 0.7 * scale) return d;
      }
      return fallback ?? { kind, frame: 2, length: 3, resume: 'catch-up' };
    }
    case 'speed-change': {
      for (let attempt = 0; attempt < 40; attempt++) {
        const frame = 4 + rng.nextInt(Math.max(1, T - 7));
        const factor = rng.nextDouble() < 0.5 ? uniform(rng, 0.2, 0.45) : uniform(rng, 2, 3);
        const prescale = Math.min(1, T / (frame + factor * (T - frame)));
        const tc = prescale * frame;
        const [ax, ay] = ctx.path(tc + factor * prescale);
        const [bx, by] = ctx.path(tc + prescale);
        const jump = Math.hypot(ax - bx, ay - by);
        const nearHit = ctx.collisions.some(
          (c) => c > tc - 2 * prescale && c < tc + 2 * factor * prescale + 1,
        );
        const d: Defect = { kind, frame, factor, prescale };
        if (jump >= 1.3 * scale && !nearHit && warpTime([d], T) >= (ctx.mustReach ?? 0)) return d;
      }
      return drawMotionDefect('stall', ctx, rng);
    }
    case 'deformation': {
      const r = rng.nextDouble();
      const mode = r < 0.4 ? 'squash' : r < 0.75 ? 'scale' : 'wobble';
      const length = 4 + rng.nextInt(4);
      const frame = 1 + rng.nextInt(Math.max(1, T - length - 1));
      let amount: number;
      if (mode === 'squash') amount = uniform(rng, 0.35, 0.55) * (rng.nextDouble() < 0.5 ? 1 : -1);
      else if (mode === 'scale')
        amount = rng.nextDouble() < 0.5 ? uniform(rng, 0.3, 0.4) : -uniform(rng, 0.3, 0.35);
      else amount = uniform(rng, 0.25, 0.4);
      return {
        kind,
        mode,
        frame,
        length,
        amount,
        period: uniform(rng, 4, 8),
        phase: uniform(rng, 0, 2 * Math.PI),
      };
    }
    case 'flicker': {
      const count = 2 + rng.nextInt(4);
      const frames = rng
        .permutation(T)
        .slice(0, count)
        .map((k) => k + 1)
        .sort((a, b) => a - b);
      return { kind, frames, opacity: frames.map(() => uniform(rng, 0.15, 0.5)) };
    }
  }
}
