/**
 * How far the oracle can be trusted, cell by cell: for one rendering (ours clean, ours degraded, or one
 * of the second renderer's) and one motion defect (or none), how many of `count` clips the oracle calls
 * defective on motion quality. On good clips that is the false-alarm rate, on defective ones the recall.
 * Shared by test/oracle-second-renderer.test.ts (small seeded samples) and bench/oracle-agreement.mjs
 * (the full table).
 */
import { degradeVideo } from '../../src/moving-shapes/degrade.js';
import { MOTION_DEFECTS, type MotionDefectKind } from '../../src/moving-shapes/defects.js';
import { judgeVideo } from '../../src/moving-shapes/oracle/oracle.js';
import type { Video } from '../../src/moving-shapes/video.js';
import { renderClip, sampleClip } from '../../src/moving-shapes/world.js';
import { RENDERING_NAMES, RENDERINGS, type RenderingName, secondClip } from './second-renderer/index.js';

export const OUR_RENDERINGS = ['ours', 'ours, degraded'] as const;
export type TableRendering = (typeof OUR_RENDERINGS)[number] | RenderingName;
export const TABLE_RENDERINGS: readonly TableRendering[] = [...OUR_RENDERINGS, ...RENDERING_NAMES];
export const TABLE_DEFECTS: ReadonlyArray<MotionDefectKind | 'none'> = ['none', ...MOTION_DEFECTS];

/** The degradation the oracle is held to on our renderer (docs/datasets.md). */
export const OUR_DEGRADATION = { blurSigma: 1, noiseStd: 0.1, colourShift: 0.05 } as const;

/** One line per rendering: what it is. */
export const RENDERING_NOTES: Readonly<Record<TableRendering, string>> = {
  ours: 'src/moving-shapes renderClip, anti-aliased by a one-pixel coverage ramp',
  'ours, degraded': `ours, then degradeVideo(blur ${OUR_DEGRADATION.blurSigma} px, noise ${OUR_DEGRADATION.noiseStd}, colour shift ${OUR_DEGRADATION.colourShift})`,
  ...(Object.fromEntries(
    RENDERING_NAMES.map((name) => [name, `second renderer: ${JSON.stringify(RENDERINGS[name])}`]),
  ) as Record<RenderingName, string>),
};

export interface CellOptions {
  rendering: TableRendering;
  defect: MotionDefectKind | 'none';
  count: number;
  /** Prefix of the clips' seeds. */
  seed: string;
  frames?: number;
}

export interface Cell {
  rendering: TableRendering;
  defect: MotionDefectKind | 'none';
  count: number;
  /** Clips the oracle called defective (motion quality 0). */
  flagged: number;
  /** Which feature decided, over the flagged clips. */
  reasons: Record<string, number>;
  /** A few flagged good clips or missed defective ones, to look at. */
  examples: string[];
}

function video(o: CellOptions, i: number): { video: Video; id: string } {
  const seed = `${o.seed}/${i}`;
  if (o.rendering === 'ours' || o.rendering === 'ours, degraded') {
    const spec = sampleClip({ seed, frames: o.frames, motionDefect: o.defect });
    let v = renderClip(spec);
    if (o.rendering === 'ours, degraded') v = degradeVideo(v, { ...OUR_DEGRADATION, seed });
    return { video: v, id: `${seed}: ${spec.prompt}` };
  }
  const c = secondClip({ seed, rendering: o.rendering, defect: o.defect, frames: o.frames });
  const s = c.said;
  return { video: c.video, id: `${seed}: ${s.colour} ${s.shape} r=${c.radius.toFixed(1)} ${s.motion}` };
}

export function measureCell(o: CellOptions): Cell {
  const reasons: Record<string, number> = {};
  const examples: string[] = [];
  let flagged = 0;
  for (let i = 0; i < o.count; i++) {
    const { video: v, id } = video(o, i);
    const m = judgeVideo(v).motionQuality;
    const bad = m.label === 0;
    const why = m.physics.label === 0 ? m.physics.worst : m.integrity.worst;
    if (bad) {
      flagged++;
      reasons[why] = (reasons[why] ?? 0) + 1;
    }
    if (bad === (o.defect === 'none') && examples.length < 5) {
      const p = m.physics;
      examples.push(
        `${id}: ${bad ? `flagged (${why})` : 'missed'}, score ${m.score.toFixed(2)}; impulse ${p.maxImpulse.toFixed(2)}, ` +
          `jitter ${p.rmsImpulse.toFixed(2)}, kink ${p.kink.delta.toFixed(2)} px/frame at ${p.kink.z.toFixed(1)} s.e., ` +
          `${p.model} residual ${p.noise.toFixed(2)} px`,
      );
    }
  }
  return { rendering: o.rendering, defect: o.defect, count: o.count, flagged, reasons, examples };
}
