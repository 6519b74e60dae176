/**
 * The oracle's decision thresholds. Distances are in pixels of a 64 x 64 canvas and scale with the
 * canvas; each feature is divided by its threshold, so a ratio >= 1 means "defective" and the score is
 * 2^-ratio (0.5 exactly at the threshold). Tuned on clips with seeds "tune/*" (clean and degraded) and
 * checked on different seeds in tests and in bench/throughput.mjs; docs/datasets.md explains each.
 */
export interface OracleThresholds {
  /** Median speed below this (px/frame) is a still video: no motion at all. */
  minMedianSpeed: number;
  /** A step slower than this (px/frame) and than `stallRelative` x the median speed counts as stalled... */
  stallSpeed: number;
  stallRelative: number;
  /** ...and this many stalled steps in a row make a stall. */
  stallSteps: number;
  /** Largest acceleration impulse (px/frame^2) not explained by the neighbouring frames nor by a wall hit. */
  maxImpulse: number;
  /** Root mean square of those impulses over the clip (jitter). */
  rmsImpulse: number;
  /** Largest |log(area / median area)| over frames (growing, shrinking). */
  areaChange: number;
  /** Largest |log(extent / median extent)| along x or y (squash and stretch, wobble). */
  shapeChange: number;
  /** Largest |log(contrast / median contrast)| (fading, flashing). */
  flicker: number;
  /** Largest angle (radians) between a frame's object colour direction and the median one. */
  hueChange: number;
  /** Frames without a detectable object allowed. */
  missingFrames: number;
  /** Smallest net travel (px) for a directional motion to count. */
  minTravel: number;
  /** Largest angle (radians) between the travel and the prompt's direction. */
  directionAngle: number;
  /** A back-and-forth of at least this many px counts as a bounce off a wall (walls motion). */
  wallSwing: number;
  /** A frame this far (px) from the midpoint of its neighbours is a teleport, not a bounce (walls motion). */
  spike: number;
  /** Smallest swept angle (radians) of an orbit. */
  minSweep: number;
}

export const ORACLE_THRESHOLDS: Readonly<OracleThresholds> = {
  minMedianSpeed: 0.35,
  stallSpeed: 0.3,
  stallRelative: 0.3,
  stallSteps: 2,
  maxImpulse: 0.8,
  rmsImpulse: 0.5,
  areaChange: 0.18,
  shapeChange: 0.12,
  flicker: 0.25,
  hueChange: 0.35,
  missingFrames: 0,
  minTravel: 5,
  directionAngle: 0.7,
  wallSwing: 7,
  spike: 7,
  minSweep: 1,
};

/** 2^-ratio: 1 for a perfect feature, 0.5 at the threshold, towards 0 beyond. */
export function scoreFromRatio(ratio: number): number {
  return ratio <= 0 ? 1 : 2 ** -ratio;
}
