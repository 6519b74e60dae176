/**
 * Recognising elastic hits on the canvas edges, the only abrupt changes of velocity good motion has in
 * this world (bounces on the floor, passes between the side walls; nothing bounces off the top). A hit is accepted only when it looks
 * elastic: the velocity's component normal to an edge flips while the object is within a step of that
 * edge, with about the same speed towards and away from it, a steady approach and a steady departure.
 * A teleport to the edge and back fails the last two, so it cannot hide there. Hits between the first
 * or last two frames (no flip visible) are recognised from the acceleration alone.
 *
 * A hit during step k (between frames k and k + 1) changes exactly two accelerations, a_k and a_k+1;
 * the result lists them (`exempt`, ignored by the impulse check) and the frame k + 1 at which the path
 * restarts (`breaks`, where the trajectory models start a new segment on that axis). Unless the hit
 * plainly falls inside a step (one short step between two full ones), the frame nearest the edge could
 * be on either side of it: pixel quantisation decides, so it is listed as `ambiguous` and the models
 * leave it out on that axis.
 */
import { median } from './path.js';
import type { OracleThresholds } from './thresholds.js';
import type { Track, TrackedFrame } from './track.js';

export type Axis = 'x' | 'y';

export interface Reflections {
  /** Per axis and frame: the acceleration at that frame is explained by a hit. */
  exempt: Record<Axis, boolean[]>;
  /** Per axis: frames at which the path restarts after a hit, ascending. */
  breaks: Record<Axis, number[]>;
  /** Per axis: frames at the turn that could belong to either side of a hit. */
  ambiguous: Record<Axis, number[]>;
  count: number;
}

/** Steps v_t = p_t+1 - p_t and accelerations a_t = v_t - v_t-1 (t = 1..F-2; 0 elsewhere). */
export interface Kinematics {
  v: Record<Axis, number[]>;
  a: Record<Axis, number[]>;
}

export function kinematics(x: readonly number[], y: readonly number[]): Kinematics {
  const F = x.length;
  const v = { x: [] as number[], y: [] as number[] };
  for (let t = 0; t + 1 < F; t++) {
    v.x.push((x[t + 1] as number) - (x[t] as number));
    v.y.push((y[t + 1] as number) - (y[t] as number));
  }
  const a = { x: new Array<number>(F).fill(0), y: new Array<number>(F).fill(0) };
  for (let t = 1; t + 1 < F; t++) {
    a.x[t] = (v.x[t] as number) - (v.x[t - 1] as number);
    a.y[t] = (v.y[t] as number) - (v.y[t - 1] as number);
  }
  return { v, a };
}

export function findReflections(
  track: Track,
  k: Kinematics,
  th: OracleThresholds,
  scale: number,
): Reflections {
  const F = track.frames;
  const out: Reflections = {
    exempt: { x: new Array<boolean>(F).fill(false), y: new Array<boolean>(F).fill(false) },
    breaks: { x: [], y: [] },
    ambiguous: { x: [], y: [] },
    count: 0,
  };
  const moving = 0.3 * scale;
  // Distance from frame t's object to the canvas edge on one side (+1: right/bottom, -1: left/top).
  const gapTo = (t: number, axis: Axis, side: number): number => {
    const f = track.perFrame[t] as TrackedFrame;
    if (!f.present) return Infinity;
    const [bx0, bx1, by0, by1] = f.bbox;
    if (axis === 'x') return side > 0 ? track.width - bx1 : bx0;
    return side > 0 ? track.height - by1 : by0;
  };
  for (const axis of ['x', 'y'] as const) {
    const v = k.v[axis];
    const a = k.a[axis];
    const exempt = out.exempt[axis];
    const breaks = new Set<number>();
    // A hit during step s: a_s and a_s+1 are explained, the path restarts at frame s + 1.
    const hitDuring = (s: number) => {
      for (const j of [s, s + 1]) if (j >= 1 && j + 1 < F) exempt[j] = true;
      breaks.add(s + 1);
      out.count++;
    };
    // How far a_j is from the axis's typical acceleration (gravity or none); 0 outside the clip.
    const typical = median(a.slice(1, F - 1));
    const deviation = (j: number): number => (j >= 1 && j + 1 < F ? Math.abs((a[j] as number) - typical) : 0);
    // Two steps agree as one motion (up to 45 %, twice the typical acceleration and a pixel).
    const agree = (p: number, q: number) =>
      Math.abs(p - q) <= 0.45 * Math.max(Math.abs(p), Math.abs(q)) + 2 * Math.abs(typical) + scale;
    const steps = v.length;
    for (let t = 1; t + 1 < F; t++) {
      const before = v[t - 1] as number;
      // A hit inside step t leaves that step short: the flip then pairs the steps on either side.
      const next = t + 1 < steps ? (v[t + 1] as number) : 0;
      const straddle =
        t + 1 < steps && Math.abs(v[t] as number) < 0.5 * Math.max(Math.abs(before), Math.abs(next));
      const afterIdx = straddle ? t + 1 : t;
      const after = v[afterIdx] as number;
      if (Math.abs(before) < moving || Math.abs(after) < moving || Math.sign(before) === Math.sign(after))
        continue;
      // A maximum of the path hits the right or bottom edge, a minimum the left or top one; this world
      // has side walls and a floor, no ceiling.
      const side = before > 0 ? 1 : -1;
      if (axis === 'y' && side < 0) continue;
      const gap = Math.min(gapTo(t, axis, side), gapTo(afterIdx, axis, side));
      if (gap > Math.max(Math.abs(before), Math.abs(after)) + 2.5 * scale) continue;
      // Elastic: about the same speed away as towards the edge, a steady approach and departure.
      if (!agree(Math.abs(before), Math.abs(after))) continue;
      if (t - 2 >= 0 && !agree(v[t - 2] as number, before)) continue;
      if (afterIdx + 1 < steps && !agree(v[afterIdx + 1] as number, after)) continue;
      // The side is the one that leaves the other acceleration typical.
      if (straddle) hitDuring(t);
      else {
        if (deviation(t + 1) < deviation(t - 1)) hitDuring(t - 1);
        else hitDuring(t);
        out.ambiguous[axis].push(t);
      }
    }
    // A hit between the first two (or last two) frames shows no flip, only an acceleration at frame 1
    // (or F - 2) that differs from the typical one towards the inside of an edge that those frames
    // touch, after (or before) a steady stretch; only that acceleration is ignored.
    for (const [t, e0, e1, s0, s1, during] of [
      [1, 0, 1, 1, 2, 0],
      [F - 2, F - 2, F - 1, F - 4, F - 3, F - 2],
    ] as const) {
      if (t < 1 || t + 1 >= F || exempt[t]) continue;
      const acc = (a[t] as number) - typical;
      // Only an acceleration that would read as a change of speed needs explaining.
      if (Math.abs(acc) < th.kinkSpeed * scale) continue;
      const side = acc < 0 ? 1 : -1;
      if (axis === 'y' && side < 0) continue;
      const gap = Math.min(gapTo(e0, axis, side), gapTo(e1, axis, side));
      const reach = Math.max(Math.abs(v[t - 1] as number), Math.abs(v[t] as number)) + 2.5 * scale;
      if (gap > reach) continue;
      if (s0 >= 0 && s1 < steps && !agree(v[s0] as number, v[s1] as number)) continue;
      exempt[t] = true;
      breaks.add(during + 1);
      out.count++;
    }
    out.breaks[axis] = [...breaks].sort((p, q) => p - q);
  }
  return out;
}
