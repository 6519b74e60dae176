/**
 * Acceptance of the oracle: on rendered clips (balanced good / defective for motion quality and,
 * independently, for text alignment) its labels agree with the ground truth >= 98 % clean and >= 95 %
 * after a VAE-like degradation (blur 1 px, noise 0.1, colour shift 0.05). 200 clips here, enough to
 * catch a regression and quick on a loaded machine (PRFL_ORACLE_CLIPS=1000 for more); the full-size
 * numbers come from bench/throughput.mjs (1000 clips) and bench/oracle-agreement.mjs (500 per cell).
 * The seeds differ from those the thresholds were tuned on and from the benchmarks' ("bench/...").
 */
import { describe, expect, it } from 'vitest';
import {
  degradeVideo,
  evaluateOracle,
  judgeVideo,
  MOTION_DEFECTS,
  renderClip,
  sampleClip,
  sampleClips,
} from '../src/index.js';

const COUNT = Number(process.env.PRFL_ORACLE_CLIPS ?? 200);
const clips = sampleClips({ count: COUNT, seed: 'test', alignmentDefectRate: 0.5 });

describe(`oracle agreement on ${COUNT} clips`, () => {
  it('clean: >= 98 % on motion quality and on text alignment', () => {
    const r = evaluateOracle({ clips });
    expect(r.motionQuality, JSON.stringify(r.disagreements.slice(0, 5))).toBeGreaterThanOrEqual(0.98);
    expect(r.textAlignment, JSON.stringify(r.disagreements.slice(0, 5))).toBeGreaterThanOrEqual(0.98);
    for (const [kind, d] of Object.entries(r.perDefect))
      expect(d.detected / d.count, kind).toBeGreaterThan(0.9);
  }, 60_000);

  it('degraded (blur 1, noise 0.1, colour shift 0.05): >= 95 %', () => {
    const r = evaluateOracle({ clips, degrade: { blurSigma: 1, noiseStd: 0.1, colourShift: 0.05 } });
    expect(r.motionQuality, JSON.stringify(r.disagreements.slice(0, 5))).toBeGreaterThanOrEqual(0.95);
    expect(r.textAlignment, JSON.stringify(r.disagreements.slice(0, 5))).toBeGreaterThanOrEqual(0.95);
  }, 60_000);
});

describe('oracle reports', () => {
  it('scores a good clip above 0.5 and names the feature that fails a bad one', () => {
    const good = sampleClip({
      seed: 'r1',
      prompt: { colour: 'red', shape: 'circle', size: 'medium', motion: 'bounce-right' },
    });
    const g = judgeVideo(renderClip(good), good.prompt);
    expect(g.motionQuality.label).toBe(1);
    expect(g.motionQuality.score).toBeGreaterThan(0.5);
    expect(g.promptAdherence?.label).toBe(1);
    expect(g.promptAdherence?.colour.observed).toBe('red');
    expect(g.promptAdherence?.shape.observed).toBe('circle');

    const worst: Record<string, string> = {};
    for (const kind of MOTION_DEFECTS) {
      const bad = sampleClip({ seed: 'r1', prompt: good.said, motionDefect: kind });
      const r = judgeVideo(renderClip(bad), bad.prompt);
      expect(r.motionQuality.label, kind).toBe(0);
      expect(r.motionQuality.score, kind).toBeLessThan(0.5);
      worst[kind] =
        r.motionQuality.physics.label === 0 ? r.motionQuality.physics.worst : r.motionQuality.integrity.worst;
    }
    expect(worst.teleport).toBe('impulse');
    expect(['shape', 'area', 'aspect']).toContain(worst.deformation);
  });

  it('reads the wrong colour, shape and direction', () => {
    const said = { colour: 'blue', shape: 'triangle', size: 'large', motion: 'orbit-cw' } as const;
    for (const kind of ['wrong-colour', 'wrong-shape', 'wrong-motion', 'wrong-size'] as const) {
      const spec = sampleClip({ seed: 's2', prompt: said, alignmentDefect: kind });
      const r = judgeVideo(degradeVideo(renderClip(spec), { seed: 1 }), spec.prompt);
      expect(r.promptAdherence?.label, kind).toBe(0);
      const failed = (['colour', 'shape', 'size', 'motion'] as const).filter(
        (k) => !r.promptAdherence?.[k].ok,
      );
      expect(failed, kind).toEqual([kind.slice(6)]);
    }
  });

  it('calls a still video or an empty one defective', () => {
    const spec = sampleClip({ seed: 'still' });
    const v = renderClip(spec);
    const frameSize = v.height * v.width * 3;
    for (let f = 1; f < v.frames; f++) v.data.copyWithin(f * frameSize, 0, frameSize);
    const still = judgeVideo(v, spec.prompt);
    expect(still.motionQuality.label).toBe(0);
    expect(still.motionQuality.physics.worst).toBe('still');
    v.data.fill(-0.8);
    const empty = judgeVideo(v, spec.prompt);
    expect(empty.motionQuality.integrity.missingFrames).toBe(v.frames);
    expect(empty.motionQuality.label).toBe(0);
    expect(empty.promptAdherence?.label).toBe(0);
  });
});
