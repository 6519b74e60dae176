/**
 * The MovingShapes oracle: the world's stand-in for the paper's human annotators. It reads pixels only
 * (any video in [-1, 1] RGB, [F, H, W, 3]: rendered, degraded or decoded from a generator), tracks the
 * one object, and returns
 *
 * - motion quality (label and score): physical plausibility of the path AND integrity of the shape;
 *   the label PAVRM learns, like the reference's physics_quality AND human_quality;
 * - prompt adherence (label and score): colour, shape, size and motion of the prompt.
 *
 * Scores are in (0, 1] with 0.5 at the decision threshold; labels are 1 for good.
 */
import type { PromptSpec } from '../prompt.js';
import type { Video } from '../video.js';
import { assessMotionQuality, type MotionQualityReport } from './motion-quality.js';
import { assessPromptAdherence, type PromptAdherenceReport } from './prompt-adherence.js';
import { ORACLE_THRESHOLDS, type OracleThresholds } from './thresholds.js';
import { type Track, trackObject } from './track.js';

export interface OracleOptions {
  /** Overrides of `ORACLE_THRESHOLDS`. */
  thresholds?: Partial<OracleThresholds>;
  /** Keep the per-frame track in the report (default false). */
  keepTrack?: boolean;
}

export interface OracleReport {
  motionQuality: MotionQualityReport;
  /** Present when a prompt was given. */
  promptAdherence?: PromptAdherenceReport;
  track?: Track;
}

/** Judges one video; with a prompt (text of the MovingShapes grammar or its parts) also its adherence. */
export function judgeVideo(
  video: Video,
  prompt?: string | PromptSpec,
  options: OracleOptions = {},
): OracleReport {
  const th: OracleThresholds = { ...ORACLE_THRESHOLDS, ...options.thresholds };
  const track = trackObject(video);
  const report: OracleReport = { motionQuality: assessMotionQuality(track, th) };
  if (prompt !== undefined) report.promptAdherence = assessPromptAdherence(video, track, prompt, th);
  if (options.keepTrack) report.track = track;
  return report;
}
