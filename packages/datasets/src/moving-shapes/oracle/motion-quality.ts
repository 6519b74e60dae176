/**
 * Motion quality from a track: physical plausibility of the centroid's path (physics.ts) AND integrity
 * of the object's appearance (integrity.ts), as the reference's physics_quality AND human_quality.
 */
import { assessIntegrity, type IntegrityReport } from './integrity.js';
import { assessPhysics, type PhysicsReport } from './physics.js';
import type { OracleThresholds } from './thresholds.js';
import type { Track } from './track.js';

export { assessIntegrity, type IntegrityReport } from './integrity.js';
export { filledPath } from './path.js';
export { assessPhysics, type PhysicsReport } from './physics.js';

export interface MotionQualityReport {
  score: number;
  label: 0 | 1;
  physics: PhysicsReport;
  integrity: IntegrityReport;
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
