/**
 * Physical plausibility of the centroid's path. In this world the only forces are constant (gravity,
 * none) or central (orbits), and the only abrupt changes of velocity are elastic reflections off the
 * canvas edges (reflections.ts), so the oracle looks for what physics cannot explain:
 *
 * - still: no motion at all (median speed);
 * - stall: two or more steps in a row much slower than the clip's median speed;
 * - impulse: one frame's acceleration far from what its neighbours predict (teleports; impulses.ts);
 * - jitter: many such impulses (root mean square);
 * - kink: a change of speed that the path's trajectory model does not explain (trajectory.ts, kinks.ts);
 * - irregular: a path that even the model with one change of speed leaves far from (gravity that
 *   changes between two hops, a jump the edge hid from the impulse check).
 *
 * Impulses and jitter are local and read single frames, so their thresholds sit well above what pixel
 * quantisation does to a centroid (up to +-0.5 px per frame for a hard-edged square, i.e. second
 * differences up to 2 px/frame^2); the subtler change of speed is read from the whole path instead.
 */
import { findKink } from './kinks.js';
import { leaveOneOutImpulses } from './impulses.js';
import { canvasScale, filledPath, median } from './path.js';
import { findReflections, kinematics } from './reflections.js';
import { type OracleThresholds, scoreFromRatio } from './thresholds.js';
import { fitBallistic, fitOrbit } from './trajectory.js';
import type { Track } from './track.js';

export interface PhysicsReport {
  score: number;
  label: 0 | 1;
  medianSpeed: number;
  longestStall: number;
  maxImpulse: number;
  rmsImpulse: number;
  /** Recognised elastic hits on the canvas edges (per axis). */
  reflections: number;
  /**
   * The trajectory model of the path and its residual per coordinate (px) once allowed one change of
   * speed: the measurement noise of a good path, more for a path this world's physics cannot draw.
   */
  model: 'ballistic' | 'orbit';
  noise: number;
  /** The most significant change of speed: frame, velocity jump (px/frame), significance (standard errors). */
  kink: { frame: number; delta: number; z: number };
  /** The feature that decided the score. */
  worst: string;
}

export function assessPhysics(track: Track, th: OracleThresholds): PhysicsReport {
  const scale = canvasScale(track);
  const { x, y } = filledPath(track);
  const present = track.perFrame.map((t) => t.present);
  const k = kinematics(x, y);
  const speed = k.v.x.map((vx, t) => Math.hypot(vx, k.v.y[t] as number));
  const medianSpeed = median(speed);

  // Stalls: runs of steps much slower than the clip's median speed.
  const slow = Math.min(th.stallSpeed * scale, th.stallRelative * medianSpeed);
  let run = 0;
  let longestStall = 0;
  for (const s of speed) {
    run = s < slow ? run + 1 : 0;
    if (run > longestStall) longestStall = run;
  }

  const reflections = findReflections(track, k, th, scale);
  const impulses = leaveOneOutImpulses(k, reflections, present);
  // The path's model: ballistic, or an orbit when the path sweeps round a circle; of the two, the one
  // that explains the path better once allowed one change of speed (a change of pace along an orbit
  // keeps it an orbit; a thrown arc with a change of speed stays an arc).
  const ballistic = fitBallistic({ x, y }, reflections, present);
  let model = ballistic;
  let kink = findKink(ballistic, track.frames, th, scale);
  const orbit = fitOrbit({ x, y }, present);
  if (Math.abs(orbit.sweep ?? 0) >= th.orbitSweep) {
    const orbitKink = findKink(orbit, track.frames, th, scale);
    if (orbitKink.residual < kink.residual) {
      model = orbit;
      kink = orbitKink;
    }
  }

  const ratios: Array<[string, number]> = [
    ['still', medianSpeed > 0 ? (th.minMedianSpeed * scale) / medianSpeed : Infinity],
    ['stall', longestStall / th.stallSteps],
    ['impulse', impulses.max / (th.maxImpulse * scale)],
    ['jitter', impulses.rms / (th.rmsImpulse * scale)],
    ['kink', kink.ratio],
    // A path too short to fit has no residual to speak of (missing frames fail integrity instead).
    ['irregular', Number.isFinite(kink.residual) ? kink.residual / (th.maxResidual * scale) : 0],
  ];
  const [worst, ratio] = ratios.reduce((a, b) => (b[1] > a[1] ? b : a));
  return {
    score: scoreFromRatio(ratio),
    label: ratio < 1 ? 1 : 0,
    medianSpeed,
    longestStall,
    maxImpulse: impulses.max,
    rmsImpulse: impulses.rms,
    reflections: reflections.count,
    model: model.kind,
    noise: kink.residual,
    kink: { frame: kink.frame, delta: kink.delta, z: kink.z },
    worst,
  };
}
