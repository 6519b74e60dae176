/**
 * Motion quality from a track: physical plausibility of the centroid's path and integrity of the
 * object's appearance. In this world the only forces are constant (gravity, none) or central (orbits),
 * and the only abrupt changes of velocity are reflections off the frame's edges, so:
 *
 * - an *impulse* is the part of a frame's acceleration (second difference of the centroid) that its
 *   neighbours do not predict (leave-one-out linear fit over the two frames either side); the normal
 *   component is ignored around a reflection (the velocity along that axis flips while the object is
 *   within one step of the frame's edge). Teleports give one huge impulse, sudden speed changes one
 *   clear impulse, jitter many medium ones (root mean square);
 * - a *stall* is two or more steps in a row much slower than the clip's median speed;
 * - *integrity*: area, extent along x and y, contrast and colour direction stay at their median
 *   values; a frame without the object is a failure.
 */
import { scoreFromRatio, type OracleThresholds } from './thresholds.js';
import type { Track, TrackedFrame } from './track.js';

export interface PhysicsReport {
  score: number;
  label: 0 | 1;
  medianSpeed: number;
  longestStall: number;
  maxImpulse: number;
  rmsImpulse: number;
  /** Frame indices around reflections, per axis, where the normal impulse was ignored. */
  reflections: number;
  /** The feature that decided the score. */
  worst: string;
}

export interface IntegrityReport {
  score: number;
  label: 0 | 1;
  missingFrames: number;
  areaChange: number;
  shapeChange: number;
  flicker: number;
  hueChange: number;
  worst: string;
}

export interface MotionQualityReport {
  score: number;
  label: 0 | 1;
  physics: PhysicsReport;
  integrity: IntegrityReport;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : 0.5 * ((s[m - 1] as number) + (s[m] as number));
}

/** Centroids with missing frames filled by linear interpolation (constant at the ends). */
export function filledPath(track: Track): { x: number[]; y: number[] } {
  const F = track.frames;
  const x = new Array<number>(F).fill(Number.NaN);
  const y = new Array<number>(F).fill(Number.NaN);
  const present = track.perFrame.map((t) => t.present);
  const idx = present.flatMap((p, i) => (p ? [i] : []));
  if (idx.length === 0) return { x: x.fill(track.width / 2), y: y.fill(track.height / 2) };
  for (let t = 0; t < F; t++) {
    const f = track.perFrame[t] as TrackedFrame;
    if (f.present) {
      x[t] = f.x;
      y[t] = f.y;
      continue;
    }
    let a = -1;
    let b = -1;
    for (const i of idx) {
      if (i < t) a = i;
      else if (b < 0 && i > t) b = i;
    }
    const fa = a >= 0 ? (track.perFrame[a] as TrackedFrame) : undefined;
    const fb = b >= 0 ? (track.perFrame[b] as TrackedFrame) : undefined;
    if (fa && fb) {
      const w = (t - a) / (b - a);
      x[t] = fa.x + w * (fb.x - fa.x);
      y[t] = fa.y + w * (fb.y - fa.y);
    } else {
      const g = (fa ?? fb) as TrackedFrame;
      x[t] = g.x;
      y[t] = g.y;
    }
  }
  return { x, y };
}

export function assessPhysics(track: Track, th: OracleThresholds): PhysicsReport {
  const F = track.frames;
  const scale = Math.min(track.height, track.width) / 64;
  const { x, y } = filledPath(track);
  const present = track.perFrame.map((t) => t.present);
  const vx: number[] = [];
  const vy: number[] = [];
  const speed: number[] = [];
  for (let t = 0; t + 1 < F; t++) {
    vx.push((x[t + 1] as number) - (x[t] as number));
    vy.push((y[t + 1] as number) - (y[t] as number));
    speed.push(Math.hypot(vx[t] as number, vy[t] as number));
  }
  const medianSpeed = median(speed);

  // Stalls: runs of steps much slower than the clip's median speed.
  const slow = Math.min(th.stallSpeed * scale, th.stallRelative * medianSpeed);
  let run = 0;
  let longestStall = 0;
  for (const s of speed) {
    run = s < slow ? run + 1 : 0;
    if (run > longestStall) longestStall = run;
  }

  // Accelerations a_t (t = 1..F-2) and the frames whose normal component a reflection explains.
  const ax: number[] = new Array(F).fill(0);
  const ay: number[] = new Array(F).fill(0);
  const valid: boolean[] = new Array(F).fill(false);
  for (let t = 1; t + 1 < F; t++) {
    ax[t] = (vx[t] as number) - (vx[t - 1] as number);
    ay[t] = (vy[t] as number) - (vy[t - 1] as number);
    valid[t] = !!(present[t - 1] && present[t] && present[t + 1]);
  }
  const exemptX: boolean[] = new Array(F).fill(false);
  const exemptY: boolean[] = new Array(F).fill(false);
  let reflections = 0;
  const moving = 0.3 * scale;
  // Distance from frame t's object to the canvas edge on one side (+1: right/bottom, -1: left/top).
  const gapTo = (t: number, axis: 'x' | 'y', side: number): number => {
    const f = track.perFrame[t] as TrackedFrame;
    if (!f.present) return Infinity;
    const [bx0, bx1, by0, by1] = f.bbox;
    if (axis === 'x') return side > 0 ? track.width - bx1 : bx0;
    return side > 0 ? track.height - by1 : by0;
  };
  const exemptAround = (exempt: boolean[], from: number, to: number) => {
    for (let k = from; k <= to; k++) if (k >= 1 && k + 1 < F) exempt[k] = true;
  };
  for (const axis of ['x', 'y'] as const) {
    const v = axis === 'x' ? vx : vy;
    const a = axis === 'x' ? ax : ay;
    const exempt = axis === 'x' ? exemptX : exemptY;
    // How far a_k is from the axis's typical acceleration (gravity or none); 0 outside the clip.
    const typical = median(a.slice(1, F - 1));
    const deviation = (k: number): number => (k >= 1 && k + 1 < F ? Math.abs((a[k] as number) - typical) : 0);
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
      // A maximum of the path hits the right or bottom edge, a minimum the left or top one.
      const side = before > 0 ? 1 : -1;
      const gap = Math.min(gapTo(t, axis, side), gapTo(afterIdx, axis, side));
      if (gap > Math.max(Math.abs(before), Math.abs(after)) + 2.5 * scale) continue;
      // Elastic: about the same speed away as towards the edge, reached by a steady approach and left by a
      // steady departure. A jump to the edge and back has the first two but not the last two.
      if (!agree(Math.abs(before), Math.abs(after))) continue;
      if (t - 2 >= 0 && !agree(v[t - 2] as number, before)) continue;
      if (afterIdx + 1 < steps && !agree(v[afterIdx + 1] as number, after)) continue;
      reflections++;
      // A hit during step (t-1, t) or (t, t+1) changes exactly two accelerations: {t-1, t} or {t, t+1}.
      // Only those are ignored, so the rest of the path is still checked.
      if (straddle) exemptAround(exempt, t, t + 1);
      // The side is the one that leaves the other acceleration typical.
      else if (deviation(t + 1) < deviation(t - 1)) exemptAround(exempt, t - 1, t);
      else exemptAround(exempt, t, t + 1);
    }
    // A hit between the first two (or last two) frames shows no flip, only an acceleration at frame 1
    // (or F - 2) that differs from the typical one towards the inside of an edge that those frames
    // touch, after (or before) a steady stretch; only that acceleration is ignored.
    for (const [t, e0, e1, s0, s1] of [
      [1, 0, 1, 1, 2],
      [F - 2, F - 2, F - 1, F - 4, F - 3],
    ] as const) {
      if (t < 1 || t + 1 >= F || exempt[t]) continue;
      const acc = (a[t] as number) - typical;
      if (Math.abs(acc) < th.maxImpulse * scale) continue;
      const side = acc < 0 ? 1 : -1;
      const gap = Math.min(gapTo(e0, axis, side), gapTo(e1, axis, side));
      const reach = Math.max(Math.abs(v[t - 1] as number), Math.abs(v[t] as number)) + 2.5 * scale;
      if (gap > reach) continue;
      if (s0 >= 0 && s1 < steps && !agree(v[s0] as number, v[s1] as number)) continue;
      reflections++;
      exemptAround(exempt, t, t);
    }
  }

  // Leave-one-out impulses.
  let maxImpulse = 0;
  let sumSq = 0;
  let count = 0;
  for (let t = 1; t + 1 < F; t++) {
    if (!valid[t]) continue;
    let e2 = 0;
    for (const axis of ['x', 'y'] as const) {
      const a = axis === 'x' ? ax : ay;
      const exempt = axis === 'x' ? exemptX : exemptY;
      if (exempt[t]) continue;
      const ts: number[] = [];
      const as: number[] = [];
      for (const k of [t - 2, t - 1, t + 1, t + 2]) {
        if (k >= 1 && k + 1 < F && valid[k] && !exempt[k]) {
          ts.push(k);
          as.push(a[k] as number);
        }
      }
      if (ts.length === 0) continue;
      let pred: number;
      const before = ts.some((k) => k < t);
      const after = ts.some((k) => k > t);
      if (ts.length >= 2 && before && after) {
        // Least-squares line through the neighbours, read at t.
        const mt = ts.reduce((s, k) => s + k, 0) / ts.length;
        const ma = as.reduce((s, k) => s + k, 0) / as.length;
        let num = 0;
        let den = 0;
        ts.forEach((k, i) => {
          num += (k - mt) * ((as[i] as number) - ma);
          den += (k - mt) * (k - mt);
        });
        pred = ma + (den > 0 ? (num / den) * (t - mt) : 0);
      } else {
        // One-sided: the nearest neighbour's value (extrapolating a line from one side is too noisy).
        let nearest = 0;
        let bestD = Infinity;
        ts.forEach((k, i) => {
          if (Math.abs(k - t) < bestD) {
            bestD = Math.abs(k - t);
            nearest = as[i] as number;
          }
        });
        pred = nearest;
      }
      const e = (a[t] as number) - pred;
      e2 += e * e;
    }
    const e = Math.sqrt(e2);
    if (e > maxImpulse) maxImpulse = e;
    sumSq += e2;
    count++;
  }
  const rmsImpulse = count > 0 ? Math.sqrt(sumSq / count) : 0;

  const ratios: Array<[string, number]> = [
    ['still', medianSpeed > 0 ? (th.minMedianSpeed * scale) / medianSpeed : Infinity],
    ['stall', longestStall / th.stallSteps],
    ['impulse', maxImpulse / (th.maxImpulse * scale)],
    ['jitter', rmsImpulse / (th.rmsImpulse * scale)],
  ];
  const [worst, ratio] = ratios.reduce((a, b) => (b[1] > a[1] ? b : a));
  const score = scoreFromRatio(ratio);
  return {
    score,
    label: ratio < 1 ? 1 : 0,
    medianSpeed,
    longestStall,
    maxImpulse,
    rmsImpulse,
    reflections,
    worst,
  };
}

export function assessIntegrity(track: Track, th: OracleThresholds): IntegrityReport {
  const frames = track.perFrame.filter((t) => t.present);
  const missingFrames = track.frames - frames.length;
  let areaChange = 0;
  let shapeChange = 0;
  let flicker = 0;
  let hueChange = 0;
  if (frames.length >= 2) {
    const medArea = median(frames.map((f) => f.area));
    const sdx = frames.map((f) => Math.sqrt(Math.max(f.cxx, 1e-6)));
    const sdy = frames.map((f) => Math.sqrt(Math.max(f.cyy, 1e-6)));
    const medX = median(sdx);
    const medY = median(sdy);
    const medC = median(frames.map((f) => f.contrast));
    const md = [0, 1, 2].map((c) => median(frames.map((f) => f.direction[c] as number)));
    const mn = Math.hypot(md[0] as number, md[1] as number, md[2] as number) || 1;
    frames.forEach((f, i) => {
      areaChange = Math.max(areaChange, Math.abs(Math.log(f.area / medArea)));
      shapeChange = Math.max(
        shapeChange,
        Math.abs(Math.log((sdx[i] as number) / medX)),
        Math.abs(Math.log((sdy[i] as number) / medY)),
      );
      flicker = Math.max(flicker, Math.abs(Math.log(f.contrast / medC)));
      const dot =
        (f.direction[0] * (md[0] as number) +
          f.direction[1] * (md[1] as number) +
          f.direction[2] * (md[2] as number)) /
        mn;
      hueChange = Math.max(hueChange, Math.acos(Math.min(1, Math.max(-1, dot))));
    });
  }
  const ratios: Array<[string, number]> = [
    ['missing', missingFrames > th.missingFrames ? Math.max(1, missingFrames) : 0],
    ['area', areaChange / th.areaChange],
    ['shape', shapeChange / th.shapeChange],
    ['flicker', flicker / th.flicker],
    ['hue', hueChange / th.hueChange],
  ];
  const [worst, ratio] = ratios.reduce((a, b) => (b[1] > a[1] ? b : a));
  return {
    score: scoreFromRatio(ratio),
    label: ratio < 1 ? 1 : 0,
    missingFrames,
    areaChange,
    shapeChange,
    flicker,
    hueChange,
    worst,
  };
}

export function assessMotionQuality(track: Track, th: OracleThresholds): MotionQualityReport {
  const physics = assessPhysics(track, th);
  const integrity = assessIntegrity(track, th);
  return {
    score: Math.min(physics.score, integrity.score),
    label: physics.label && integrity.label ? 1 : 0,
    physics,
    integrity,
  };
}
