/**
 * How often the oracle's labels agree with the ground truth of rendered clips, clean or degraded: the
 * acceptance measure of the oracle (>= 98 % clean, >= 95 % under a VAE-like degradation), used by the
 * tests and by bench/throughput.mjs.
 */
import { type DegradeOptions, degradeVideo } from '../degrade.js';
import { renderClip, type ClipSpec } from '../world.js';
import { judgeVideo } from './oracle.js';
import type { OracleThresholds } from './thresholds.js';

export interface EvaluateOracleOptions {
  clips: readonly ClipSpec[];
  /** Degrade every clip before judging it (seeded by the clip id); false or omitted: clean. */
  degrade?: Omit<DegradeOptions, 'seed'> | false;
  thresholds?: Partial<OracleThresholds>;
  /** How many disagreements to list (default 20). */
  keepDisagreements?: number;
}

export interface Confusion {
  /** Truth good, oracle good. */
  truePositive: number;
  trueNegative: number;
  /** Truth defective, oracle good: a missed defect. */
  falsePositive: number;
  /** Truth good, oracle defective: a false alarm. */
  falseNegative: number;
}

export interface AgreementReport {
  count: number;
  /** Fractions of clips whose oracle label equals the ground truth. */
  motionQuality: number;
  textAlignment: number;
  physics: number;
  integrity: number;
  confusion: { motionQuality: Confusion; textAlignment: Confusion };
  /** Per defect kind: how many clips had it and in how many the oracle flagged the matching label. */
  perDefect: Record<string, { count: number; detected: number }>;
  seconds: number;
  videosPerSecond: number;
  disagreements: Array<{ id: string; prompt: string; defects: string[]; truth: unknown; oracle: unknown }>;
}

function emptyConfusion(): Confusion {
  return { truePositive: 0, trueNegative: 0, falsePositive: 0, falseNegative: 0 };
}

function count(c: Confusion, truth: number, label: number): void {
  if (truth === 1 && label === 1) c.truePositive++;
  else if (truth === 0 && label === 0) c.trueNegative++;
  else if (truth === 0) c.falsePositive++;
  else c.falseNegative++;
}

/** Renders, optionally degrades and judges every clip; compares labels with the ground truth. */
export function evaluateOracle(options: EvaluateOracleOptions): AgreementReport {
  const { clips } = options;
  const keep = options.keepDisagreements ?? 20;
  const mq = emptyConfusion();
  const ta = emptyConfusion();
  let physics = 0;
  let integrity = 0;
  const perDefect: AgreementReport['perDefect'] = {};
  const disagreements: AgreementReport['disagreements'] = [];
  const start = performance.now();
  for (const spec of clips) {
    let video = renderClip(spec);
    if (options.degrade) video = degradeVideo(video, { ...options.degrade, seed: spec.id });
    const report = judgeVideo(video, spec.prompt, { thresholds: options.thresholds });
    const m = report.motionQuality;
    const pa = report.promptAdherence;
    const taLabel = pa?.label ?? 0;
    count(mq, spec.labels.motionQuality, m.label);
    count(ta, spec.labels.textAlignment, taLabel);
    if (m.physics.label === spec.labels.physics) physics++;
    if (m.integrity.label === spec.labels.integrity) integrity++;
    for (const d of spec.defects) {
      perDefect[d.kind] ??= { count: 0, detected: 0 };
      const entry = perDefect[d.kind] as { count: number; detected: number };
      entry.count++;
      const alignment = d.kind.startsWith('wrong-');
      if ((alignment ? taLabel : m.label) === 0) entry.detected++;
    }
    if (
      (m.label !== spec.labels.motionQuality || taLabel !== spec.labels.textAlignment) &&
      disagreements.length < keep
    ) {
      disagreements.push({
        id: spec.id,
        prompt: spec.prompt,
        defects: spec.defects.map((d) => d.kind),
        truth: spec.labels,
        oracle: {
          motionQuality: m.label,
          physics: `${m.physics.label} (${m.physics.worst})`,
          integrity: `${m.integrity.label} (${m.integrity.worst})`,
          textAlignment: taLabel,
          failed: pa ? (['colour', 'shape', 'size', 'motion'] as const).filter((k) => !pa[k].ok) : [],
        },
      });
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const n = clips.length;
  const agree = (c: Confusion) => (n ? (c.truePositive + c.trueNegative) / n : Number.NaN);
  return {
    count: n,
    motionQuality: agree(mq),
    textAlignment: agree(ta),
    physics: n ? physics / n : Number.NaN,
    integrity: n ? integrity / n : Number.NaN,
    confusion: { motionQuality: mq, textAlignment: ta },
    perDefect,
    seconds,
    videosPerSecond: seconds > 0 ? n / seconds : Number.POSITIVE_INFINITY,
    disagreements,
  };
}

/** Agreement of two label arrays (fraction equal). */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length === 0) return Number.NaN;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}
