/**
 * Changes of speed as kinks in the path's trajectory model. A speed change (or the end of a stall) at
 * frame f bends the path there: the model plus a ramp max(0, t - f) fits it, the model alone does not.
 * For each candidate f the ramp's coefficient delta (the velocity jump, px/frame, x and y together or
 * along the orbit) is fitted with the rest of the model, and compared with
 *
 * - an absolute floor (`kinkSpeed` px/frame): smaller changes of speed are not defects;
 * - the clip's own measurement noise: delta must be `kinkSignificance` standard errors away from 0,
 *   the standard error computed from the residuals of that same fit, so a clip whose centroid is only
 *   known to +-0.5 px per frame (hard edges) needs a larger kink than a clean anti-aliased one.
 *
 * Each series of the model says where it can tell a kink (three frames or more on either side, not at
 * a hit on an edge, which is a legitimate kink and starts a new piece) and what a change of speed does
 * to it later on (trajectory.ts).
 */
import { leastSquares } from './least-squares.js';
import type { OracleThresholds } from './thresholds.js';
import { KINK_SIDE, type Series, type TrajectoryModel } from './trajectory.js';

export interface Kink {
  /** Frame of the most significant kink (-1: none tested). */
  frame: number;
  /** Its velocity jump, px/frame. */
  delta: number;
  /** Its significance, in standard errors. */
  z: number;
  /** min(delta / kinkSpeed, z / kinkSignificance): >= 1 is a defect. */
  ratio: number;
  /** Smallest residual per coordinate (px) of the model with one kink anywhere: how well it can explain the path. */
  residual: number;
}

/** Measurement noise is never taken as smaller than this (px, 64 x 64 canvas): float rounding, resampling. */
const NOISE_FLOOR = 0.03;

/** The design with the ramp's columns appended, and the index of the velocity jump's coefficient. */
function withRamp(s: Series, f: number): { design: number[][]; jump: number } | undefined {
  const columns = s.ramp(f);
  if (!columns) return undefined;
  return {
    design: s.design.map((row, i) => [...row, ...columns.map((c) => c[i] as number)]),
    jump: s.design[0]?.length ?? 0,
  };
}

export function findKink(model: TrajectoryModel, frames: number, th: OracleThresholds, scale: number): Kink {
  let best: Kink = { frame: -1, delta: 0, z: 0, ratio: 0, residual: model.residualScale };
  let residual = model.residualScale;
  for (let f = KINK_SIDE; f + KINK_SIDE < frames; f++) {
    let rss = model.extraRss;
    let dof = model.extraDof;
    const jumps: Array<{ delta: number; factor: number }> = [];
    for (const s of model.series) {
      const ramped = withRamp(s, f);
      const design = ramped?.design ?? s.design;
      const fit = leastSquares(design, s.values);
      if (!fit) continue;
      rss += fit.rss;
      dof += s.values.length - (design[0]?.length ?? 0);
      if (ramped) {
        const k = ramped.jump;
        jumps.push({ delta: fit.beta[k] as number, factor: fit.varianceFactor[k] as number });
      }
    }
    if (jumps.length === 0 || dof <= 0) continue;
    residual = Math.min(residual, Math.sqrt(rss / dof));
    const sigma = Math.max(Math.sqrt(rss / dof), NOISE_FLOOR * scale);
    const delta = Math.sqrt(jumps.reduce((acc, j) => acc + j.delta * j.delta, 0));
    // Chi-square of the jump over its axes, with the noise of this fit.
    const chi2 = jumps.reduce((acc, j) => acc + (j.delta * j.delta) / (sigma * sigma * j.factor), 0);
    const z = Math.sqrt(chi2);
    // A kink must pass both criteria: candidates are ranked by the weaker one.
    const ratio = Math.min(delta / (th.kinkSpeed * scale), z / th.kinkSignificance);
    if (ratio > best.ratio) best = { frame: f, delta, z, ratio, residual };
  }
  return { ...best, residual };
}
