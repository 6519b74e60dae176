/**
 * The VAE as data: the module list of the encoder and decoder, built exactly as Wan's `Encoder3d` /
 * `Decoder3d` constructors build their `nn.Sequential`s (so module indices, and hence state-dict keys,
 * are Wan's), and the parameter table derived from it (Wan key, tfjs shape, PyTorch shape, layout, init).
 *
 * tfjs layouts: every convolution is a tf.conv3d filter [t, h, w, in, out] (Wan's per-frame Conv2d
 * becomes a [1, h, w, in, out] conv3d, which has gradients on wasm where conv2d's filter gradient does
 * not); the attention block's 1x1 Conv2d projections are Linear weights [in, out]; RMS_norm gammas
 * ([C, 1, 1, 1] or [C, 1, 1] in PyTorch) are vectors [C].
 */
import type { WanVAEConfig } from './config.js';

/** How a value converts between PyTorch and tfjs layouts. */
export type VAEParamLayout = 'conv3d' | 'conv2d' | 'conv1x1' | 'gamma' | 'plain';

export interface VAEParamSpec {
  /** Wan's state-dict key, e.g. `encoder.downsamples.0.residual.2.weight`. */
  readonly name: string;
  /** Shape in tfjs layout. */
  readonly shape: readonly number[];
  /** Shape in Wan's PyTorch checkpoint. */
  readonly torchShape: readonly number[];
  readonly layout: VAEParamLayout;
  /**
   * PyTorch's default init for convolutions, U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for weight and bias;
   * ones for gammas; zeros for the attention output projection (Wan zeroes it).
   */
  readonly init: { kind: 'uniform'; bound: number } | { kind: 'ones' } | { kind: 'zeros' };
}

/** One module of the encoder's `downsamples`, the decoder's `upsamples`, or a `middle`. */
export type VAEModule =
  | { kind: 'residual'; prefix: string; inDim: number; outDim: number }
  | { kind: 'attention'; prefix: string; dim: number }
  | { kind: 'downsample'; prefix: string; dim: number; temporal: boolean }
  | { kind: 'upsample'; prefix: string; dim: number; temporal: boolean };

/** The structure of the whole VAE: what the forward pass walks. */
export interface VAELayout {
  encoder: { conv1: ConvDims; blocks: VAEModule[]; middle: VAEModule[]; headDim: number; outDim: number };
  decoder: { conv1: ConvDims; middle: VAEModule[]; blocks: VAEModule[]; headDim: number };
}

/** Input and output channels of a convolution of the VAE's layout. */
export interface ConvDims {
  inDim: number;
  outDim: number;
}

function middle(prefix: string, dim: number, attention: boolean): VAEModule[] {
  const m: VAEModule[] = [{ kind: 'residual', prefix: `${prefix}.0`, inDim: dim, outDim: dim }];
  // Index 1 stays the attention block's even when it is switched off, so the keys keep Wan's numbering.
  if (attention) m.push({ kind: 'attention', prefix: `${prefix}.1`, dim });
  m.push({ kind: 'residual', prefix: `${prefix}.2`, inDim: dim, outDim: dim });
  return m;
}

/** Builds the module lists as Wan's constructors do. */
export function vaeLayout(c: WanVAEConfig): VAELayout {
  // Encoder3d
  const encDims = [1, ...c.dimMult].map((u) => c.dim * u);
  const enc: VAEModule[] = [];
  let scale = 1.0;
  let outDim = encDims[0] as number;
  for (let i = 0; i < c.dimMult.length; i++) {
    let inDim = encDims[i] as number;
    outDim = encDims[i + 1] as number;
    for (let r = 0; r < c.numResBlocks; r++) {
      enc.push({ kind: 'residual', prefix: `encoder.downsamples.${enc.length}`, inDim, outDim });
      if (c.attnScales.includes(scale))
        enc.push({ kind: 'attention', prefix: `encoder.downsamples.${enc.length}`, dim: outDim });
      inDim = outDim;
    }
    if (i !== c.dimMult.length - 1) {
      enc.push({
        kind: 'downsample',
        prefix: `encoder.downsamples.${enc.length}`,
        dim: outDim,
        temporal: c.temporalDownsample[i] as boolean,
      });
      scale /= 2;
    }
  }
  const encoder = {
    conv1: { inDim: 3, outDim: encDims[0] as number },
    blocks: enc,
    middle: middle('encoder.middle', outDim, c.midAttention),
    headDim: outDim,
    outDim: 2 * c.zDim,
  };

  // Decoder3d: stages run from the coarsest resolution; temporal upsampling is the reverse of downsampling.
  const mults = c.dimMult;
  const decDims = [mults[mults.length - 1] as number, ...[...mults].reverse()].map((u) => c.dim * u);
  const temporalUp = [...c.temporalDownsample].reverse();
  const dec: VAEModule[] = [];
  scale = 1.0 / 2 ** (mults.length - 2);
  let decOut = decDims[0] as number;
  for (let i = 0; i < mults.length; i++) {
    let inDim = decDims[i] as number;
    decOut = decDims[i + 1] as number;
    // After an upsample the width is halved (Resample's Conv2d(dim, dim // 2)).
    if (i > 0) inDim = Math.floor(inDim / 2);
    for (let r = 0; r < c.numResBlocks + 1; r++) {
      dec.push({ kind: 'residual', prefix: `decoder.upsamples.${dec.length}`, inDim, outDim: decOut });
      if (c.attnScales.includes(scale))
        dec.push({ kind: 'attention', prefix: `decoder.upsamples.${dec.length}`, dim: decOut });
      inDim = decOut;
    }
    if (i !== mults.length - 1) {
      dec.push({
        kind: 'upsample',
        prefix: `decoder.upsamples.${dec.length}`,
        dim: decOut,
        temporal: temporalUp[i] as boolean,
      });
      scale *= 2;
    }
  }
  const decoder = {
    conv1: { inDim: c.zDim, outDim: decDims[0] as number },
    middle: middle('decoder.middle', decDims[0] as number, c.midAttention),
    blocks: dec,
    headDim: decOut,
  };
  return { encoder, decoder };
}

/** The parameter table of a config, in Wan's module order. */
export function wanVAEParamSpecs(c: WanVAEConfig): VAEParamSpec[] {
  const specs: VAEParamSpec[] = [];
  const conv = (name: string, inDim: number, outDim: number, k: [number, number, number]): void => {
    const bound = 1 / Math.sqrt(inDim * k[0] * k[1] * k[2]);
    specs.push({
      name: `${name}.weight`,
      shape: [...k, inDim, outDim],
      torchShape: [outDim, inDim, ...k],
      layout: 'conv3d',
      init: { kind: 'uniform', bound },
    });
    specs.push({
      name: `${name}.bias`,
      shape: [outDim],
      torchShape: [outDim],
      layout: 'plain',
      init: { kind: 'uniform', bound },
    });
  };
  const conv2d = (name: string, inDim: number, outDim: number): void => {
    const bound = 1 / Math.sqrt(inDim * 9);
    specs.push({
      name: `${name}.weight`,
      shape: [1, 3, 3, inDim, outDim],
      torchShape: [outDim, inDim, 3, 3],
      layout: 'conv2d',
      init: { kind: 'uniform', bound },
    });
    specs.push({
      name: `${name}.bias`,
      shape: [outDim],
      torchShape: [outDim],
      layout: 'plain',
      init: { kind: 'uniform', bound },
    });
  };
  const gamma = (name: string, dim: number, images: boolean): void => {
    specs.push({
      name: `${name}.gamma`,
      shape: [dim],
      torchShape: images ? [dim, 1, 1] : [dim, 1, 1, 1],
      layout: 'gamma',
      init: { kind: 'ones' },
    });
  };
  const module = (m: VAEModule): void => {
    switch (m.kind) {
      case 'residual':
        gamma(`${m.prefix}.residual.0`, m.inDim, false);
        conv(`${m.prefix}.residual.2`, m.inDim, m.outDim, [3, 3, 3]);
        gamma(`${m.prefix}.residual.3`, m.outDim, false);
        conv(`${m.prefix}.residual.6`, m.outDim, m.outDim, [3, 3, 3]);
        if (m.inDim !== m.outDim) conv(`${m.prefix}.shortcut`, m.inDim, m.outDim, [1, 1, 1]);
        return;
      case 'attention': {
        gamma(`${m.prefix}.norm`, m.dim, true);
        const bound = 1 / Math.sqrt(m.dim);
        for (const [name, out, zero] of [
          ['to_qkv', 3 * m.dim, false],
          ['proj', m.dim, true],
        ] as const) {
          specs.push({
            name: `${m.prefix}.${name}.weight`,
            shape: [m.dim, out],
            torchShape: [out, m.dim, 1, 1],
            layout: 'conv1x1',
            init: zero ? { kind: 'zeros' } : { kind: 'uniform', bound },
          });
          specs.push({
            name: `${m.prefix}.${name}.bias`,
            shape: [out],
            torchShape: [out],
            layout: 'plain',
            init: { kind: 'uniform', bound },
          });
        }
        return;
      }
      case 'downsample':
        conv2d(`${m.prefix}.resample.1`, m.dim, m.dim);
        if (m.temporal) conv(`${m.prefix}.time_conv`, m.dim, m.dim, [3, 1, 1]);
        return;
      case 'upsample':
        conv2d(`${m.prefix}.resample.1`, m.dim, Math.floor(m.dim / 2));
        if (m.temporal) conv(`${m.prefix}.time_conv`, m.dim, 2 * m.dim, [3, 1, 1]);
        return;
    }
  };
  const { encoder, decoder } = vaeLayout(c);
  conv('encoder.conv1', 3, encoder.conv1.outDim, [3, 3, 3]);
  encoder.blocks.forEach(module);
  encoder.middle.forEach(module);
  gamma('encoder.head.0', encoder.headDim, false);
  conv('encoder.head.2', encoder.headDim, encoder.outDim, [3, 3, 3]);
  conv('conv1', 2 * c.zDim, 2 * c.zDim, [1, 1, 1]);
  conv('conv2', c.zDim, c.zDim, [1, 1, 1]);
  conv('decoder.conv1', c.zDim, decoder.conv1.outDim, [3, 3, 3]);
  decoder.middle.forEach(module);
  decoder.blocks.forEach(module);
  gamma('decoder.head.0', decoder.headDim, false);
  conv('decoder.head.2', decoder.headDim, 3, [3, 3, 3]);
  return specs;
}

/** Parameter count of a config (no allocation). */
export function wanVAEParameterCount(c: WanVAEConfig): number {
  return wanVAEParamSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}
