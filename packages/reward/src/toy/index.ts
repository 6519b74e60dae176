/**
 * @prfl/reward/toy: a small Wan-shaped video transformer (a FeatureBackbone) and a synthetic latent
 * motion world (smooth vs jittering blobs), so PAVRM can be trained, tested and benchmarked with nothing
 * but @prfl/tensor and tfjs installed. Not a model of anything real.
 */
export { TINY_VIDEO_BACKBONE_PRESETS, TinyVideoBackbone } from './tiny-video-backbone.js';
export type { TinyVideoBackboneConfig, TinyVideoBackboneOptions } from './tiny-video-backbone.js';
export { motionLatentBatch, motionLatentPairs } from './motion-latents.js';
export type { MotionLatentOptions } from './motion-latents.js';
