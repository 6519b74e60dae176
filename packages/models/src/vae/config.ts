/**
 * The Wan2.1 video VAE configuration (wan/modules/vae.py, `WanVAE_` and `_video_vae`), camel-cased, plus
 * the per-channel latent normalisation that `WanVAE` (the wrapper) applies: z = (mu - mean) / std.
 */
import { InvalidArgumentError } from '@prfl/tensor';

export interface WanVAEConfig {
  /** Base width: stage i of the encoder is `dim * dimMult[i]` wide (Wan: 96). */
  readonly dim: number;
  /** Latent channels C (Wan: 16). The encoder outputs 2C (mean and log-variance). */
  readonly zDim: number;
  /** Width multipliers per resolution; `dimMult.length - 1` spatial 2x downsamples (Wan: [1, 2, 4, 4], 8x). */
  readonly dimMult: readonly number[];
  /** Residual blocks per encoder stage; the decoder has one more per stage, as in Wan (Wan: 2). */
  readonly numResBlocks: number;
  /**
   * Resolutions (1, 1/2, 1/4, ...) at which an attention block follows every residual block of a stage
   * (Wan: none). The middle attention block is separate (`midAttention`).
   */
  readonly attnScales: readonly number[];
  /**
   * Per downsample (length `dimMult.length - 1`): whether it also halves time (Wan: [false, true, true],
   * 4x in time). The decoder upsamples in the reverse order.
   */
  readonly temporalDownsample: readonly boolean[];
  /** The single-head attention block between the middle residual blocks (Wan: always on). */
  readonly midAttention: boolean;
  /** Per-channel latent mean (length zDim): latents are normalised as (mu - mean) / std. */
  readonly latentMean: readonly number[];
  /** Per-channel latent std (length zDim, all > 0). */
  readonly latentStd: readonly number[];
}

/** Wan2.1's per-channel latent statistics (WanVAE in wan/modules/vae.py). */
export const WAN21_LATENT_MEAN: readonly number[] = Object.freeze([
  -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632,
  -0.1922, -0.9497, 0.2503, -0.2921,
]);
export const WAN21_LATENT_STD: readonly number[] = Object.freeze([
  2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382,
  1.1253, 2.8251, 1.916,
]);

function identityStats(zDim: number): { latentMean: number[]; latentStd: number[] } {
  return { latentMean: new Array<number>(zDim).fill(0), latentStd: new Array<number>(zDim).fill(1) };
}

/**
 * Presets.
 * - `wan2.1`: the released Wan2.1 VAE (Wan2.1_VAE.pth, 127M parameters), its latent statistics.
 * - `tiny`: the MovingShapes world: 17 frames of 64x64 RGB -> latents [5, 8, 8, 16]. Same compression
 *   and 16 latent channels as Wan (so a tiny DiT reads it like Wan latents), widths 8/16/16/16, one
 *   residual block per stage, the middle attention kept. 220,107 parameters; statistics start at
 *   mean 0 / std 1 and are measured after training (`measureLatentStats`).
 * - `test`: widths 4/8/8/8 and 4 latent channels (52,851 parameters), for unit tests.
 */
export const WAN_VAE_PRESETS = {
  'wan2.1': {
    dim: 96,
    zDim: 16,
    dimMult: [1, 2, 4, 4],
    numResBlocks: 2,
    attnScales: [],
    temporalDownsample: [false, true, true],
    midAttention: true,
    latentMean: WAN21_LATENT_MEAN,
    latentStd: WAN21_LATENT_STD,
  },
  tiny: {
    dim: 8,
    zDim: 16,
    dimMult: [1, 2, 2, 2],
    numResBlocks: 1,
    attnScales: [],
    temporalDownsample: [false, true, true],
    midAttention: true,
    ...identityStats(16),
  },
  test: {
    dim: 4,
    zDim: 4,
    dimMult: [1, 2, 2, 2],
    numResBlocks: 1,
    attnScales: [],
    temporalDownsample: [false, true, true],
    midAttention: true,
    ...identityStats(4),
  },
} as const satisfies Record<string, WanVAEConfig>;

export type WanVAEPresetName = keyof typeof WAN_VAE_PRESETS;

function checkInt(name: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new InvalidArgumentError(`WanVAE config: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
}

/**
 * A complete, validated config from a preset name or a partial config. A partial config's missing fields
 * come from `base` (a preset name or a full config), by default 'wan2.1': Wan's `_video_vae` defaults,
 * which are the released VAE. Every entry point (the constructor, `fromStateDict`, the loaders, config
 * JSON) follows this rule and takes the same `base`. A partial config that changes `zDim` without giving
 * statistics gets the identity normalisation (mean 0, std 1).
 *
 * @throws InvalidArgumentError naming the field when the config cannot build the network.
 */
export function wanVAEConfig(
  config: WanVAEPresetName | Partial<WanVAEConfig>,
  base: WanVAEPresetName | WanVAEConfig = 'wan2.1',
): WanVAEConfig {
  let merged: WanVAEConfig;
  if (typeof config === 'string') merged = presetOrThrow(config);
  else if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new InvalidArgumentError(
      `WanVAE config: expected a preset name (${Object.keys(WAN_VAE_PRESETS).join(', ')}) or a partial config object, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`,
    );
  } else {
    const b = typeof base === 'string' ? presetOrThrow(base) : base;
    merged = { ...b, ...config };
    if (config.zDim !== undefined && config.zDim !== b.zDim && config.latentMean === undefined) {
      merged = { ...merged, ...identityStats(config.zDim) };
    }
  }
  validateWanVAEConfig(merged);
  return {
    ...merged,
    dimMult: [...merged.dimMult],
    attnScales: [...merged.attnScales],
    temporalDownsample: [...merged.temporalDownsample],
    latentMean: [...merged.latentMean],
    latentStd: [...merged.latentStd],
  };
}

function presetOrThrow(name: string): WanVAEConfig {
  const preset = (WAN_VAE_PRESETS as Record<string, WanVAEConfig>)[name];
  if (preset === undefined) {
    throw new InvalidArgumentError(
      `WanVAE config: unknown preset '${name}'; expected one of ${Object.keys(WAN_VAE_PRESETS).join(', ')}`,
    );
  }
  return preset;
}

/** Throws InvalidArgumentError unless `c` describes a buildable VAE. */
export function validateWanVAEConfig(c: WanVAEConfig): void {
  checkInt('dim', c.dim, 1);
  checkInt('zDim', c.zDim, 1);
  checkInt('numResBlocks', c.numResBlocks, 1);
  if (!Array.isArray(c.dimMult) || c.dimMult.length < 1) {
    throw new InvalidArgumentError(
      `WanVAE config: dimMult must be a non-empty array, got ${JSON.stringify(c.dimMult)}`,
    );
  }
  c.dimMult.forEach((m, i) => {
    checkInt(`dimMult[${i}]`, m, 1);
  });
  // Wan's Resample halves the channels when upsampling (Conv2d(dim, dim // 2)); the next stage reads dims // 2.
  const dims = [c.dimMult[c.dimMult.length - 1] as number, ...[...c.dimMult].reverse()].map((m) => m * c.dim);
  for (let i = 1; i < dims.length - 1; i++) {
    if ((dims[i] as number) % 2 !== 0) {
      throw new InvalidArgumentError(
        `WanVAE config: decoder stage ${i - 1} is ${dims[i]} wide; upsampling halves it, so it must be even (dim * dimMult)`,
      );
    }
  }
  const downs = c.dimMult.length - 1;
  if (!Array.isArray(c.temporalDownsample) || c.temporalDownsample.length !== downs) {
    throw new InvalidArgumentError(
      `WanVAE config: temporalDownsample must hold ${downs} booleans (one per downsample), got ${JSON.stringify(c.temporalDownsample)}`,
    );
  }
  if (c.temporalDownsample.some((t) => typeof t !== 'boolean')) {
    throw new InvalidArgumentError(
      `WanVAE config: temporalDownsample must hold booleans, got ${JSON.stringify(c.temporalDownsample)}`,
    );
  }
  if (!Array.isArray(c.attnScales) || c.attnScales.some((s) => typeof s !== 'number' || !(s > 0))) {
    throw new InvalidArgumentError(
      `WanVAE config: attnScales must hold positive numbers (1, 0.5, 0.25, ...), got ${JSON.stringify(c.attnScales)}`,
    );
  }
  if (typeof c.midAttention !== 'boolean') {
    throw new InvalidArgumentError(
      `WanVAE config: midAttention must be a boolean, got ${String(c.midAttention)}`,
    );
  }
  for (const key of ['latentMean', 'latentStd'] as const) {
    const v = c[key];
    if (
      !Array.isArray(v) ||
      v.length !== c.zDim ||
      v.some((x) => typeof x !== 'number' || !Number.isFinite(x))
    ) {
      throw new InvalidArgumentError(
        `WanVAE config: ${key} must hold zDim = ${c.zDim} finite numbers, got ${Array.isArray(v) ? `${v.length} values` : String(v)}`,
      );
    }
  }
  if (c.latentStd.some((s) => !(s > 0))) {
    throw new InvalidArgumentError(
      `WanVAE config: latentStd must be positive, got [${c.latentStd.join(', ')}]`,
    );
  }
}

/** Time compression of a config: 2 ^ (number of temporal downsamples); Wan: 4. */
export function temporalCompression(c: WanVAEConfig): number {
  return 2 ** c.temporalDownsample.filter(Boolean).length;
}

/** Spatial compression of a config: 2 ^ (number of downsamples); Wan: 8. */
export function spatialCompression(c: WanVAEConfig): number {
  return 2 ** (c.dimMult.length - 1);
}

/**
 * The latent shape of one video of `frames` x `height` x `width`, as [F', H', W', C]: channels last and
 * without the batch axis (a batch of B is the LatentVideo [B, F', H', W', C]; PyTorch's Wan holds the
 * same latent as [C, F', H', W'], see `latentsToTorch` of @prfl/tensor). F' = 1 + (F - 1) / 4 for Wan
 * (the first frame alone, then chunks of 4), H' = H / 8, W' = W / 8, C = zDim. E.g. Wan2.1's 81 x 480 x
 * 832 gives [21, 60, 104, 16].
 *
 * @throws InvalidArgumentError when F is not 1 + 4k or H, W are not multiples of 8 (for Wan's compression).
 */
export function latentShape(
  c: WanVAEConfig,
  frames: number,
  height: number,
  width: number,
): [number, number, number, number] {
  const ct = temporalCompression(c);
  const cs = spatialCompression(c);
  if (!Number.isInteger(frames) || frames < 1 || (frames - 1) % ct !== 0) {
    const near = Math.max(1, Math.round((frames - 1) / ct) * ct + 1);
    throw new InvalidArgumentError(
      `video: the frame count must be 1 + ${ct}k (the first frame is encoded alone, then chunks of ${ct}), got ${frames}` +
        (Number.isInteger(frames) ? `; e.g. ${near}` : ''),
    );
  }
  if (
    !Number.isInteger(height) ||
    !Number.isInteger(width) ||
    height % cs !== 0 ||
    width % cs !== 0 ||
    height < 1 ||
    width < 1
  ) {
    throw new InvalidArgumentError(
      `video: height and width must be positive multiples of ${cs} (the spatial compression), got ${height}x${width}`,
    );
  }
  return [1 + (frames - 1) / ct, height / cs, width / cs, c.zDim];
}

/** The pixel video shape [F, H, W, 3] a latent of `latentFrames` x `h` x `w` decodes to. */
export function videoShape(
  c: WanVAEConfig,
  latentFrames: number,
  h: number,
  w: number,
): [number, number, number, number] {
  const ct = temporalCompression(c);
  const cs = spatialCompression(c);
  return [1 + (latentFrames - 1) * ct, h * cs, w * cs, 3];
}

/** The config as JSON (Wan's snake_case names where Wan has them), for checkpoint metadata. */
export function wanVAEConfigToJson(c: WanVAEConfig): Record<string, unknown> {
  return {
    _class_name: 'WanVAE',
    dim: c.dim,
    z_dim: c.zDim,
    dim_mult: [...c.dimMult],
    num_res_blocks: c.numResBlocks,
    attn_scales: [...c.attnScales],
    temperal_downsample: [...c.temporalDownsample],
    mid_attention: c.midAttention,
    latents_mean: [...c.latentMean],
    latents_std: [...c.latentStd],
  };
}

/**
 * Reads `wanVAEConfigToJson`'s output (also diffusers-style `latents_mean`/`latents_std` names); keys the
 * JSON leaves out come from `base` (default 'wan2.1', as for every partial config).
 */
export function wanVAEConfigFromJson(
  json: Record<string, unknown>,
  base: WanVAEPresetName | WanVAEConfig = 'wan2.1',
): WanVAEConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidArgumentError(`WanVAE config JSON: expected an object, got ${JSON.stringify(json)}`);
  }
  const keys: Record<string, keyof WanVAEConfig> = {
    dim: 'dim',
    base_dim: 'dim',
    z_dim: 'zDim',
    dim_mult: 'dimMult',
    num_res_blocks: 'numResBlocks',
    attn_scales: 'attnScales',
    temperal_downsample: 'temporalDownsample',
    mid_attention: 'midAttention',
    latents_mean: 'latentMean',
    latents_std: 'latentStd',
  };
  const partial: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    const field = keys[k];
    if (field !== undefined) partial[field] = v;
  }
  return wanVAEConfig(partial as Partial<WanVAEConfig>, base);
}
