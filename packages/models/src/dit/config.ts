/**
 * The Wan2.1 DiT configuration: field meanings follow Wan's `WanModel.__init__` (wan/modules/model.py),
 * camel-cased; `wanDiTConfigToJson` / `wanDiTConfigFromJson` speak the `config.json` that ships with Wan
 * checkpoints (snake_case keys, `_class_name: "WanModel"`).
 */
import { InvalidArgumentError } from '@prfl/tensor';

export type WanModelType = 't2v' | 'i2v';

export interface WanDiTConfig {
  /** 't2v' (text-to-video) or 'i2v' (image-to-video: CLIP image tokens through `img_emb`, separate k_img/v_img). */
  readonly modelType: WanModelType;
  /** [t, h, w] patch of the Conv3d patch embedding (kernel = stride). Wan: [1, 2, 2]. */
  readonly patchSize: readonly [number, number, number];
  /**
   * Text context length: shorter text embeddings are zero-padded to it, as in Wan. i2v models need 512
   * (see `I2V_TEXT_LEN`).
   */
  readonly textLen: number;
  /** Input channels: latent channels, plus the image condition's channels for i2v (16 + 4 + 16 = 36). */
  readonly inDim: number;
  /** Transformer width D. */
  readonly dim: number;
  /** FFN hidden width. */
  readonly ffnDim: number;
  /** Width of the sinusoidal timestep embedding (Wan: 256). */
  readonly freqDim: number;
  /** Width of the text embeddings read (umT5-XXL: 4096). */
  readonly textDim: number;
  /** Output (velocity) channels. */
  readonly outDim: number;
  readonly numHeads: number;
  readonly numLayers: number;
  /** Local attention window; only global attention ([-1, -1], what every Wan2.1 release uses) is implemented. */
  readonly windowSize: readonly [number, number];
  /** RMSNorm on q and k (over the full width). */
  readonly qkNorm: boolean;
  /** Affine LayerNorm (norm3) before cross-attention. */
  readonly crossAttnNorm: boolean;
  /** Epsilon of the LayerNorms and RMSNorms. */
  readonly eps: number;
  /** i2v only: width of the CLIP image tokens `img_emb` reads (Wan: 1280, open-clip ViT-H/14). */
  readonly imageDim: number;
}

/**
 * Wan's WanModel constructor defaults (model.py): preset 'wan2.1', what the fields a config.json or a
 * partial config omits are taken from unless another base is named. Not a released checkpoint (those
 * are the `wan2.1-*` presets).
 */
export const WAN_DIT_DEFAULTS: WanDiTConfig = {
  modelType: 't2v',
  patchSize: [1, 2, 2],
  textLen: 512,
  inDim: 16,
  dim: 2048,
  ffnDim: 8192,
  freqDim: 256,
  textDim: 4096,
  outDim: 16,
  numHeads: 16,
  numLayers: 32,
  windowSize: [-1, -1],
  qkNorm: true,
  crossAttnNorm: true,
  eps: 1e-6,
  imageDim: 1280,
};

/**
 * The text length an i2v model must have. Wan2.1's WanI2VCrossAttention does not know how many image
 * tokens precede the text: it takes the first `context.shape[1] - 512` tokens (T5_CONTEXT_TOKEN_NUMBER)
 * of the [image; text] context as the image tokens and the last 512 as the text. That is the image / text
 * split only when the text is padded to 512; with another textLen Wan would attend to some text tokens
 * through k_img/v_img (textLen > 512) or to image tokens through k/v (textLen < 512), and our forward
 * (which keeps the two apart) would compute something else. So i2v configs are refused unless 512.
 */
export const I2V_TEXT_LEN = 512;

/**
 * Presets. `wan2.1` is WanModel's constructor defaults (WAN_DIT_DEFAULTS: D 2048, 32 blocks), the base
 * partial configs are completed from. `tiny` trains and samples in seconds on a CPU (the MovingShapes
 * world, tests, fixtures);
 * `mid` is the configuration packages/models/bench times against PyTorch (dim 384, 8 layers, 320 tokens), so the
 * two stacks can be compared on one machine; the `wan2.1-*` ones are the released checkpoints'
 * configs (constructing a model from them allocates 1.3B or 14B parameters).
 */
export const WAN_DIT_PRESETS = {
  'wan2.1': WAN_DIT_DEFAULTS,
  /** 262,784 parameters: D 64, 4 blocks, 4 heads (head dim 16), FFN 128, 16 latent channels, text 16 x 32. */
  tiny: {
    ...WAN_DIT_DEFAULTS,
    dim: 64,
    ffnDim: 128,
    numHeads: 4,
    numLayers: 4,
    inDim: 16,
    outDim: 16,
    textDim: 32,
    textLen: 16,
  },
  /**
   * `tiny` for image-to-video: 36 input channels, 32-wide image tokens, and text padded to 512 tokens
   * (I2V_TEXT_LEN: Wan's i2v cross-attention splits its context at 512 text tokens).
   */
  'tiny-i2v': {
    ...WAN_DIT_DEFAULTS,
    modelType: 'i2v',
    dim: 64,
    ffnDim: 128,
    numHeads: 4,
    numLayers: 4,
    inDim: 36,
    outDim: 16,
    textDim: 32,
    textLen: I2V_TEXT_LEN,
    imageDim: 32,
  },
  /** 17.3M parameters: D 384, 8 blocks, 6 heads (head dim 64), FFN 1024, text 64 x 512. */
  mid: {
    ...WAN_DIT_DEFAULTS,
    dim: 384,
    ffnDim: 1024,
    numHeads: 6,
    numLayers: 8,
    inDim: 16,
    outDim: 16,
    textDim: 512,
    textLen: 64,
  },
  'wan2.1-t2v-1.3b': {
    ...WAN_DIT_DEFAULTS,
    dim: 1536,
    ffnDim: 8960,
    numHeads: 12,
    numLayers: 30,
  },
  'wan2.1-t2v-14b': {
    ...WAN_DIT_DEFAULTS,
    dim: 5120,
    ffnDim: 13824,
    numHeads: 40,
    numLayers: 40,
  },
  'wan2.1-i2v-14b': {
    ...WAN_DIT_DEFAULTS,
    modelType: 'i2v',
    inDim: 36,
    dim: 5120,
    ffnDim: 13824,
    numHeads: 40,
    numLayers: 40,
  },
} as const satisfies Record<string, WanDiTConfig>;

export type WanDiTPresetName = keyof typeof WAN_DIT_PRESETS;

/** RoPE split of a head dim d into frame / height / width parts (Wan: d - 4(d//6), 2(d//6), 2(d//6)). */
export function ropeSplit(headDim: number): [number, number, number] {
  const k = Math.floor(headDim / 6);
  return [headDim - 4 * k, 2 * k, 2 * k];
}

/** Largest frame/height/width patch-grid index the RoPE tables cover (Wan precomputes 1024 positions). */
export const ROPE_MAX_POSITIONS = 1024;

function checkInt(name: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new InvalidArgumentError(`WanDiT config: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
}

/**
 * A complete, validated config from a preset name or a partial config. A partial config's missing fields
 * come from `base` (a preset name or a full config), by default 'wan2.1': Wan's WanModel defaults, as
 * Wan itself fills them. Every entry point (the constructor, `fromStateDict`, the loaders, config.json)
 * follows this rule and takes the same `base`.
 *
 * @throws InvalidArgumentError naming the field and the value when the config cannot build a Wan DiT:
 *   dim not divisible by numHeads, a head dim that is odd or below 6 (the 3-D RoPE gives frame, height
 *   and width at least one rotary pair each), an unknown model type, a window other than [-1, -1], ...
 */
export function wanDiTConfig(
  config: WanDiTPresetName | Partial<WanDiTConfig>,
  base: WanDiTPresetName | WanDiTConfig = 'wan2.1',
): WanDiTConfig {
  const baseConfig = typeof base === 'string' ? presetOrThrow(base) : base;
  const merged: WanDiTConfig =
    typeof config === 'string' ? presetOrThrow(config) : { ...baseConfig, ...config };
  validateWanDiTConfig(merged);
  return {
    ...merged,
    patchSize: [...merged.patchSize] as [number, number, number],
    windowSize: [...merged.windowSize] as [number, number],
  };
}

function presetOrThrow(name: string): WanDiTConfig {
  const preset = (WAN_DIT_PRESETS as Record<string, WanDiTConfig>)[name];
  if (preset === undefined) {
    throw new InvalidArgumentError(
      `WanDiT config: unknown preset '${name}'; expected one of ${Object.keys(WAN_DIT_PRESETS).join(', ')}`,
    );
  }
  return preset;
}

/** Throws InvalidArgumentError (see `wanDiTConfig`) unless `c` describes a buildable Wan DiT. */
export function validateWanDiTConfig(c: WanDiTConfig): void {
  if (c.modelType !== 't2v' && c.modelType !== 'i2v') {
    throw new InvalidArgumentError(
      `WanDiT config: modelType must be 't2v' or 'i2v', got ${JSON.stringify(c.modelType)}`,
    );
  }
  if (!Array.isArray(c.patchSize) || c.patchSize.length !== 3) {
    throw new InvalidArgumentError(
      `WanDiT config: patchSize must be [t, h, w], got ${JSON.stringify(c.patchSize)}`,
    );
  }
  for (const [i, p] of c.patchSize.entries()) checkInt(`patchSize[${i}]`, p, 1);
  for (const name of [
    'textLen',
    'inDim',
    'dim',
    'ffnDim',
    'textDim',
    'outDim',
    'numHeads',
    'imageDim',
  ] as const)
    checkInt(name, c[name], 1);
  checkInt('numLayers', c.numLayers, 0);
  checkInt('freqDim', c.freqDim, 2);
  if (c.freqDim % 2 !== 0) {
    throw new InvalidArgumentError(
      `WanDiT config: freqDim must be even (cos and sin halves), got ${c.freqDim}`,
    );
  }
  if (c.dim % c.numHeads !== 0) {
    throw new InvalidArgumentError(
      `WanDiT config: dim (${c.dim}) must be divisible by numHeads (${c.numHeads})`,
    );
  }
  const headDim = c.dim / c.numHeads;
  if (headDim % 2 !== 0 || headDim < 6) {
    throw new InvalidArgumentError(
      `WanDiT config: head dim dim/numHeads = ${headDim} must be even and >= 6 for the 3-D RoPE split ` +
        `(frame/height/width = d - 4*floor(d/6), 2*floor(d/6), 2*floor(d/6) = ${ropeSplit(headDim).join('/')})`,
    );
  }
  if (
    !Array.isArray(c.windowSize) ||
    c.windowSize.length !== 2 ||
    c.windowSize[0] !== -1 ||
    c.windowSize[1] !== -1
  ) {
    throw new InvalidArgumentError(
      `WanDiT config: only global attention (windowSize [-1, -1]) is implemented, got ${JSON.stringify(c.windowSize)}`,
    );
  }
  if (typeof c.qkNorm !== 'boolean' || typeof c.crossAttnNorm !== 'boolean') {
    throw new InvalidArgumentError(
      `WanDiT config: qkNorm and crossAttnNorm must be booleans, got ${String(c.qkNorm)} and ${String(c.crossAttnNorm)}`,
    );
  }
  if (typeof c.eps !== 'number' || !(c.eps > 0) || !Number.isFinite(c.eps)) {
    throw new InvalidArgumentError(`WanDiT config: eps must be a positive number, got ${String(c.eps)}`);
  }
  if (c.modelType === 'i2v' && c.textLen !== I2V_TEXT_LEN) {
    throw new InvalidArgumentError(
      `WanDiT config: an i2v model needs textLen ${I2V_TEXT_LEN}, got ${c.textLen}. Wan2.1's i2v ` +
        `cross-attention takes the first (context length - ${I2V_TEXT_LEN}) context tokens as image tokens, ` +
        `which is the image / text split only when text is padded to ${I2V_TEXT_LEN}; pad shorter prompts ` +
        `(the model zero-pads to textLen; conditioning.textMask keeps the padding out of attention)`,
    );
  }
}

/** Parameter count of a config, computed from its shapes (no allocation). */
export function wanDiTParameterCount(c: WanDiTConfig): number {
  const [pt, ph, pw] = c.patchSize;
  const patch = pt * ph * pw;
  const d = c.dim;
  const lin = (i: number, o: number) => i * o + o;
  let n = patch * c.inDim * d + d; // patch embedding
  n += lin(c.textDim, d) + lin(d, d); // text embedding
  n += lin(c.freqDim, d) + lin(d, d) + lin(d, 6 * d); // time embedding + projection
  let block = 4 * lin(d, d) + 4 * lin(d, d) + lin(d, c.ffnDim) + lin(c.ffnDim, d) + 6 * d;
  if (c.qkNorm) block += 4 * d;
  if (c.crossAttnNorm) block += 2 * d;
  if (c.modelType === 'i2v') block += 2 * lin(d, d) + (c.qkNorm ? d : 0);
  n += c.numLayers * block;
  n += lin(d, patch * c.outDim) + 2 * d; // head
  if (c.modelType === 'i2v') n += 2 * c.imageDim + lin(c.imageDim, c.imageDim) + lin(c.imageDim, d) + 2 * d;
  return n;
}

/** The `config.json` of a Wan checkpoint (diffusers `ConfigMixin` style, Wan's key names). */
export function wanDiTConfigToJson(c: WanDiTConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    _class_name: 'WanModel',
    _diffusers_version: '0.30.0',
    model_type: c.modelType,
    patch_size: [...c.patchSize],
    text_len: c.textLen,
    in_dim: c.inDim,
    dim: c.dim,
    ffn_dim: c.ffnDim,
    freq_dim: c.freqDim,
    text_dim: c.textDim,
    out_dim: c.outDim,
    num_heads: c.numHeads,
    num_layers: c.numLayers,
    window_size: [...c.windowSize],
    qk_norm: c.qkNorm,
    cross_attn_norm: c.crossAttnNorm,
    eps: c.eps,
  };
  // Wan hard-codes the CLIP width 1280; a different width (tiny i2v models) needs recording. Extra keys
  // are ignored by diffusers' ConfigMixin.
  if (c.modelType === 'i2v' && c.imageDim !== 1280) json.image_dim = c.imageDim;
  return json;
}

const JSON_KEYS: Record<string, keyof WanDiTConfig> = {
  model_type: 'modelType',
  patch_size: 'patchSize',
  text_len: 'textLen',
  in_dim: 'inDim',
  dim: 'dim',
  ffn_dim: 'ffnDim',
  freq_dim: 'freqDim',
  text_dim: 'textDim',
  out_dim: 'outDim',
  num_heads: 'numHeads',
  num_layers: 'numLayers',
  window_size: 'windowSize',
  qk_norm: 'qkNorm',
  cross_attn_norm: 'crossAttnNorm',
  eps: 'eps',
  image_dim: 'imageDim',
};

/**
 * Reads a Wan `config.json` (as parsed JSON). Keys the file leaves out come from `base`, by default
 * 'wan2.1' (Wan's constructor defaults, which is what Wan does: the released configs omit patch_size,
 * qk_norm, cross_attn_norm, text_dim and window_size, `ignore_for_config`). Keys starting with `_` are
 * metadata and ignored.
 *
 * @throws InvalidArgumentError for a `_class_name` other than WanModel, an unknown model type
 *   ('flf2v' is not implemented) or an invalid config.
 */
export function wanDiTConfigFromJson(
  json: Record<string, unknown>,
  base: WanDiTPresetName | WanDiTConfig = 'wan2.1',
): WanDiTConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidArgumentError(`WanDiT config.json: expected an object, got ${JSON.stringify(json)}`);
  }
  const cls = json._class_name;
  if (cls !== undefined && cls !== 'WanModel') {
    throw new InvalidArgumentError(
      `WanDiT config.json: _class_name must be 'WanModel', got ${JSON.stringify(cls)}`,
    );
  }
  const partial: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = JSON_KEYS[key];
    if (field !== undefined) partial[field] = value;
  }
  return wanDiTConfig(partial as Partial<WanDiTConfig>, base);
}
