/**
 * Impulses: the part of a frame's acceleration (second difference of the centroid) that its neighbours
 * do not predict, from a least-squares line through the accelerations of the two frames on either side
 * (leave-one-out; a local cubic path passes exactly). Accelerations that a recognised hit explains are
 * left out on that axis. A teleport gives one huge impulse (about 2.5 x its distance), jitter many
 * medium ones (about 3 x its standard deviation, root mean square).
 */
import type { Axis, Kinematics, Reflections } from './reflections.js';

export interface Impulses {
  /** Largest impulse (px/frame^2, both axes together). */
  max: number;
  /** Root mean square over the frames that have one. */
  rms: number;
  /** Frame of the largest one. */
  frame: number;
}

export function leaveOneOutImpulses(
  k: Kinematics,
  reflections: Reflections,
  present: readonly boolean[],
): Impulses {
  const F = present.length;
  const valid = (t: number) => t >= 1 && t + 1 < F && !!present[t - 1] && !!present[t] && !!present[t + 1];
  let max = 0;
  let frame = -1;
  let sumSq = 0;
  let count = 0;
  for (let t = 1; t + 1 < F; t++) {
    if (!valid(t)) continue;
    let e2 = 0;
    for (const axis of ['x', 'y'] as Axis[]) {
      const a = k.a[axis];
      const exempt = reflections.exempt[axis];
      if (exempt[t]) continue;
      const ts: number[] = [];
      const as: number[] = [];
      for (const j of [t - 2, t - 1, t + 1, t + 2]) {
        if (valid(j) && !exempt[j]) {
          ts.push(j);
          as.push(a[j] as number);
        }
      }
      if (ts.length === 0) continue;
      let pred: number;
      if (ts.length >= 2 && ts.some((j) => j < t) && ts.some((j) => j > t)) {
        const mt = ts.reduce((s, j) => s + j, 0) / ts.length;
        const ma = as.reduce((s, j) => s + j, 0) / as.length;
        let num = 0;
        let den = 0;
        ts.forEach((j, i) => {
          num += (j - mt) * ((as[i] as number) - ma);
          den += (j - mt) * (j - mt);
        });
        pred = ma + (den > 0 ? (num / den) * (t - mt) : 0);
      } else {
        // One-sided: the nearest neighbour's value (extrapolating a line from one side is too noisy).
        let best = Infinity;
        pred = 0;
        ts.forEach((j, i) => {
          if (Math.abs(j - t) < best) {
            best = Math.abs(j - t);
            pred = as[i] as number;
          }
        });
      }
      const e = (a[t] as number) - pred;
      e2 += e * e;
    }
    const e = Math.sqrt(e2);
    if (e > max) {
      max = e;
      frame = t;
    }
    sumSq += e2;
    count++;
  }
  return { max, rms: count > 0 ? Math.sqrt(sumSq / count) : 0, frame };
}
