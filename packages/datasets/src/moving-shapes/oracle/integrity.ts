/**
 * Integrity of the object's appearance: area, extent along x and y, aspect ratio, contrast and colour
 * direction stay at their median values over the clip; a frame without the object is a failure.
 *
 * Area and extents are measured on pixels, and a hard-edged shape gains or loses whole rows and
 * columns of pixels as it moves (a cross's thin arms most of all): its area changes by up to about
 * 1.7 / r in |log| for an equal-area radius of r px, an extent by up to about 0.5 / sd for a
 * second-moment standard deviation of sd px. Each limit is therefore the larger of a fixed fraction
 * (what a deformation must exceed) and that quantisation scaled by a margin (`areaQuantisation`,
 * `shapeQuantisation`, `aspectQuantisation`): small shapes are allowed the wobble their pixels force on
 * them, large ones are held to the fixed fraction. The aspect ratio (log sd_x - log sd_y) doubles the
 * signal of a squash or a wobble, which stretch one axis and shrink the other, while quantisation in x
 * and in y is independent, so it catches on small shapes what the extents alone would let through.
 */
import { median } from './path.js';
import { type OracleThresholds, scoreFromRatio } from './thresholds.js';
import type { Track } from './track.js';

export interface IntegrityReport {
  score: number;
  label: 0 | 1;
  missingFrames: number;
  /** Largest |log(value / median)| over frames, and the limit this clip's size gives it. */
  areaChange: number;
  areaLimit: number;
  /** Extent along x or y: the axis closest to its limit. */
  shapeChange: number;
  shapeLimit: number;
  aspectChange: number;
  aspectLimit: number;
  flicker: number;
  hueChange: number;
  worst: string;
}

/** Largest |log(v / median(v))|. */
function largestLogChange(values: readonly number[]): number {
  const m = median(values);
  return Math.max(0, ...values.map((v) => Math.abs(Math.log(v / m))));
}

export function assessIntegrity(track: Track, th: OracleThresholds): IntegrityReport {
  const frames = track.perFrame.filter((t) => t.present);
  const missingFrames = track.frames - frames.length;
  const report: Omit<IntegrityReport, 'score' | 'label' | 'worst'> = {
    missingFrames,
    areaChange: 0,
    areaLimit: th.areaChange,
    shapeChange: 0,
    shapeLimit: th.shapeChange,
    aspectChange: 0,
    aspectLimit: th.aspectChange,
    flicker: 0,
    hueChange: 0,
  };
  if (frames.length >= 2) {
    const areas = frames.map((f) => Math.max(f.area, 1e-6));
    const sdx = frames.map((f) => Math.sqrt(Math.max(f.cxx, 1e-6)));
    const sdy = frames.map((f) => Math.sqrt(Math.max(f.cyy, 1e-6)));
    const radius = Math.sqrt(median(areas) / Math.PI);
    const medX = median(sdx);
    const medY = median(sdy);
    report.areaChange = largestLogChange(areas);
    report.areaLimit = Math.max(th.areaChange, th.areaQuantisation / radius);
    // Each axis against its own limit (a 2:1 rectangle is twice as coarse across as along).
    const axes = [
      [largestLogChange(sdx), Math.max(th.shapeChange, th.shapeQuantisation / medX)],
      [largestLogChange(sdy), Math.max(th.shapeChange, th.shapeQuantisation / medY)],
    ] as const;
    const [change, limit] = axes[0][0] / axes[0][1] >= axes[1][0] / axes[1][1] ? axes[0] : axes[1];
    report.shapeChange = change;
    report.shapeLimit = limit;
    const aspect = sdx.map((x, i) => Math.log(x / (sdy[i] as number)));
    const medAspect = median(aspect);
    report.aspectChange = Math.max(0, ...aspect.map((a) => Math.abs(a - medAspect)));
    report.aspectLimit = Math.max(th.aspectChange, th.aspectQuantisation / Math.min(medX, medY));
    report.flicker = largestLogChange(frames.map((f) => Math.max(f.contrast, 1e-6)));
    const md = [0, 1, 2].map((c) => median(frames.map((f) => f.direction[c] as number)));
    const mn = Math.hypot(md[0] as number, md[1] as number, md[2] as number) || 1;
    for (const f of frames) {
      const dot =
        (f.direction[0] * (md[0] as number) +
          f.direction[1] * (md[1] as number) +
          f.direction[2] * (md[2] as number)) /
        mn;
      report.hueChange = Math.max(report.hueChange, Math.acos(Math.min(1, Math.max(-1, dot))));
    }
  }
  const ratios: Array<[string, number]> = [
    ['missing', missingFrames > th.missingFrames ? Math.max(1, missingFrames) : 0],
    ['area', report.areaChange / report.areaLimit],
    ['shape', report.shapeChange / report.shapeLimit],
    ['aspect', report.aspectChange / report.aspectLimit],
    ['flicker', report.flicker / th.flicker],
    ['hue', report.hueChange / th.hueChange],
  ];
  const [worst, ratio] = ratios.reduce((a, b) => (b[1] > a[1] ? b : a));
  return { score: scoreFromRatio(ratio), label: ratio < 1 ? 1 : 0, ...report, worst };
}
