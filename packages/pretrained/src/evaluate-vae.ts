/**
 * How well a VAE reproduces the embedded world: on held-out clips (the held-out side of the world's
 * prompt split, with motion defects), each clip is encoded and decoded whole (17 frames) and the oracle
 * judges the original and the reconstruction. The acceptance target of the embedded default: the
 * motion-quality and prompt-adherence labels of the reconstruction agree with the original's on at least
 * 95% of 500 held-out clips. PSNR (peak 2, the range [-1, 1]) is reported with them.
 */
import { judgeVideo, renderClip } from '@prfl/datasets';
import type { WanVAE } from '@prfl/models';
import { InvalidArgumentError } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { tensorToVideo, videoToTensor } from './clips.js';
import { EMBEDDED_WORLD, type EmbeddedWorld, sampleWorldClips } from './world.js';

export interface EvaluateVaeOptions {
  /** Held-out clips (default 500). */
  count?: number;
  /** Seed of the clips (default 'vae-eval'). */
  seed?: number | string;
  /** Fraction of clips with a motion defect (default 0.5: both motion-quality labels). */
  motionDefectRate?: number;
  world?: EmbeddedWorld;
  /** After every clip. */
  onProgress?: (done: number, count: number) => void;
}

export interface VaeEvaluation {
  count: number;
  /** Mean over clips of the PSNR (dB) of the reconstruction, peak-to-peak 2. */
  psnr: number;
  /** Lowest per-clip PSNR. */
  minPsnr: number;
  /** Fraction of clips whose reconstruction's motion-quality label equals the original's. */
  motionQualityAgreement: number;
  /** The same for the prompt-adherence label (the clip's prompt). */
  promptAdherenceAgreement: number;
  /** Fraction of clips where both labels agree. */
  bothAgreement: number;
  /** Counts behind the fractions. */
  counts: {
    motionQualityAgree: number;
    promptAdherenceAgree: number;
    bothAgree: number;
    /** Originals labelled good motion / adherent by the oracle. */
    originalGoodMotion: number;
    originalAdherent: number;
    reconstructionGoodMotion: number;
    reconstructionAdherent: number;
  };
}

/** Reconstructs held-out clips with `vae` (posterior mean, decoded and clamped) and compares oracle labels. */
export async function evaluateVae(vae: WanVAE, options: EvaluateVaeOptions = {}): Promise<VaeEvaluation> {
  const count = options.count ?? 500;
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(`evaluateVae: count must be a positive integer, got ${String(count)}`);
  }
  const specs = sampleWorldClips(options.world ?? EMBEDDED_WORLD, {
    side: 'held-out',
    count,
    seed: options.seed ?? 'vae-eval',
    motionDefectRate: options.motionDefectRate ?? 0.5,
  });
  const c = {
    motionQualityAgree: 0,
    promptAdherenceAgree: 0,
    bothAgree: 0,
    originalGoodMotion: 0,
    originalAdherent: 0,
    reconstructionGoodMotion: 0,
    reconstructionAdherent: 0,
  };
  let psnrSum = 0;
  let minPsnr = Infinity;
  for (const [i, spec] of specs.entries()) {
    const original = renderClip(spec);
    const x = videoToTensor(original);
    const y = tf.tidy(() => vae.decode(vae.encode(x)));
    x.dispose();
    const rec = await tensorToVideo(y);
    y.dispose();
    let se = 0;
    for (let k = 0; k < rec.data.length; k++) {
      const d = (rec.data[k] as number) - (original.data[k] as number);
      se += d * d;
    }
    const p = 10 * Math.log10(4 / Math.max(se / rec.data.length, 1e-12));
    psnrSum += p;
    minPsnr = Math.min(minPsnr, p);
    const a = judgeVideo(original, spec.said);
    const b = judgeVideo(rec, spec.said);
    const mq = a.motionQuality.label === b.motionQuality.label;
    const pa = a.promptAdherence?.label === b.promptAdherence?.label;
    c.motionQualityAgree += mq ? 1 : 0;
    c.promptAdherenceAgree += pa ? 1 : 0;
    c.bothAgree += mq && pa ? 1 : 0;
    c.originalGoodMotion += a.motionQuality.label;
    c.originalAdherent += a.promptAdherence?.label ?? 0;
    c.reconstructionGoodMotion += b.motionQuality.label;
    c.reconstructionAdherent += b.promptAdherence?.label ?? 0;
    options.onProgress?.(i + 1, count);
  }
  return {
    count,
    psnr: psnrSum / count,
    minPsnr,
    motionQualityAgreement: c.motionQualityAgree / count,
    promptAdherenceAgreement: c.promptAdherenceAgree / count,
    bothAgreement: c.bothAgree / count,
    counts: c,
  };
}
