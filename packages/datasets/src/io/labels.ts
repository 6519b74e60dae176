/**
 * Quality labels as the reference writes them: 0/1, "good"/"poor" or null (not annotated), and the rule
 * that combines them: motion quality = physics_quality AND human_quality.
 */
import { CorruptFileError } from '@prfl/tensor';
import { previewValue } from './preview.js';

/** 1 good, 0 bad, null unknown. */
export type QualityLabel = 0 | 1 | null;

const GOOD = new Set(['good', '1', 'true', 'yes', 'pos', 'positive']);
const BAD = new Set(['poor', 'bad', '0', 'false', 'no', 'neg', 'negative']);

/**
 * Reads one label: 0/1 (also 0.0/1.0 and booleans), "good"/"poor" (also "bad", "1", "0", any case), or
 * null/undefined/"" for not annotated.
 * @throws CorruptFileError naming `where` for anything else.
 */
export function parseQualityLabel(value: unknown, where: string): QualityLabel {
  if (value === null || value === undefined || value === '') return null;
  if (value === 1 || value === true) return 1;
  if (value === 0 || value === false) return 0;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (GOOD.has(v)) return 1;
    if (BAD.has(v)) return 0;
  }
  throw new CorruptFileError(
    `${where}: expected a quality label 0, 1, "good", "poor" or null, got ${previewValue(value, 60)}`,
  );
}

/**
 * Motion quality = physics AND human: 0 as soon as one is 0, 1 when both are 1, otherwise unknown
 * (a clip annotated on one axis only and good there says nothing about the other).
 */
export function motionQualityOf(physics: QualityLabel, human: QualityLabel): QualityLabel {
  if (physics === 0 || human === 0) return 0;
  if (physics === 1 && human === 1) return 1;
  return null;
}
