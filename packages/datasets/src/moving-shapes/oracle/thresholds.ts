/**
 * The oracle's decision thresholds. Distances are in pixels of a 64 x 64 canvas and scale with the
 * canvas; each feature is divided by its threshold, so a ratio >= 1 means "defective" and the score is
 * 2^-ratio (0.5 exactly at the threshold). The motion-quality ones are set between what pixel
 * quantisation, blur and noise do to good motion and the weakest defect the world draws, on
 * development runs of our renderer and of the tests' second renderer (hard edges, supersampling, other
 * sizes, blur, noise); they are checked on other seeds in the tests, in bench/throughput.mjs and in
 * bench/oracle-agreement.mjs. docs/datasets.md explains each.
 */
export interface OracleThresholds {
  /** Median speed below this (px/frame) is a still video: no motion at all. */
  minMedianSpeed: number;
  /** A step slower than this (px/frame) and than `stallRelative` x the median speed counts as stalled... */
  stallSpeed: number;
  stallRelative: number;
  /** ...and this many stalled steps in a row make a stall. */
  stallSteps: number;
  /**
   * Largest acceleration impulse (px/frame^2) not explained by the neighbouring frames nor by a wall
   * hit: a teleport (>= 7.7 px) gives 7 or more, usually over 15; a hard edge's quantisation up to ~2.7.
   */
  maxImpulse: number;
  /** Root mean square of those impulses over the clip: jitter (>= 1.3 px) gives ~3 or more, quantisation up to ~1.5. */
  rmsImpulse: number;
  /** A change of speed at least this large (px/frame) that the path's trajectory model does not explain... */
  kinkSpeed: number;
  /** ...and that stands this many standard errors above the clip's own measurement noise. */
  kinkSignificance: number;
  /** Residual per coordinate (px) of the path's model, allowed one change of speed, beyond which the path is not physical. */
  maxResidual: number;
  /** A path is modelled as an orbit when it sweeps at least this angle (radians) around a fitted circle. */
  orbitSweep: number;
  /** Largest |log(area / median area)| over frames (growing, shrinking)... */
  areaChange: number;
  /** ...or this over the equal-area radius in px, if larger (hard edges gain and lose whole pixels). */
  areaQuantisation: number;
  /** Largest |log(extent / median extent)| along x or y (squash and stretch, wobble)... */
  shapeChange: number;
  /** ...or this over that axis's second-moment standard deviation in px, if larger. */
  shapeQuantisation: number;
  /** Largest change of log(extent x / extent y) from its median (squash and stretch, wobble)... */
  aspectChange: number;
  /** ...or this over the smaller second-moment standard deviation in px, if larger. */
  aspectQuantisation: number;
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
  maxImpulse: 4,
  rmsImpulse: 2,
  kinkSpeed: 1,
  kinkSignificance: 4,
  maxResidual: 0.6,
  orbitSweep: 1.5,
  areaChange: 0.18,
  areaQuantisation: 2,
  shapeChange: 0.12,
  shapeQuantisation: 0.7,
  aspectChange: 0.25,
  aspectQuantisation: 0.6,
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
