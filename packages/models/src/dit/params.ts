/**
 * Every parameter of the Wan DiT in one table, under Wan's state-dict key names: the single source of
 * truth for initialisation, checkpoint loading (which keys must be present, their PyTorch shapes and
 * layout conversion) and saving.
 *
 * Values are held in tfjs layout: Linear weights [in, out] (PyTorch [out, in]), the patch embedding as
 * tfjs's conv3d filter [t, h, w, in, out] (PyTorch Conv3d [out, in, t, h, w]); everything else as in
 * PyTorch. Initialisation follows Wan's init_weights: Xavier-uniform Linear weights with zero biases,
 * N(0, 0.02) for the text and time embeddings, a zero output head, modulation N(0, 1/dim), PyTorch's
 * default uniform bias for the Conv3d, ones/zeros for norms.
 */
import type { WanDiTConfig } from './config.js';

/** How a value converts between PyTorch and tfjs layouts. */
export type ParamLayout = 'linear' | 'conv3d' | 'plain';

/** Which part of the network a parameter belongs to (what `truncate` freezes is the embeddings). */
export type ParamGroup = 'embedding' | 'block' | 'head';

export type ParamInit =
  | { kind: 'xavier'; fanIn: number; fanOut: number }
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

export interface ParamSpec {
  /** Wan's state-dict key, e.g. `blocks.3.self_attn.q.weight`. */
  readonly name: string;
  /** Shape in tfjs layout. */
  readonly shape: readonly number[];
  /** Shape in the PyTorch checkpoint. */
  readonly torchShape: readonly number[];
  readonly layout: ParamLayout;
  readonly group: ParamGroup;
  /** Block index for group 'block'. */
  readonly block?: number;
  readonly init: ParamInit;
}

const zeros: ParamInit = { kind: 'zeros' };
const ones: ParamInit = { kind: 'ones' };

/** The parameters of a config, in Wan's module order. */
export function wanDiTParamSpecs(c: WanDiTConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const d = c.dim;
  const [pt, ph, pw] = c.patchSize;
  const patch = pt * ph * pw;

  const add = (
    name: string,
    shape: number[],
    layout: ParamLayout,
    group: ParamGroup,
    init: ParamInit,
    block?: number,
  ): void => {
    let torchShape = shape;
    if (layout === 'linear') torchShape = [shape[1] as number, shape[0] as number];
    if (layout === 'conv3d') {
      const [t, h, w, i, o] = shape as [number, number, number, number, number];
      torchShape = [o, i, t, h, w];
    }
    specs.push(
      block === undefined
        ? { name, shape, torchShape, layout, group, init }
        : { name, shape, torchShape, layout, group, init, block },
    );
  };
  const linear = (
    prefix: string,
    inDim: number,
    outDim: number,
    group: ParamGroup,
    init: ParamInit,
    block?: number,
  ): void => {
    add(`${prefix}.weight`, [inDim, outDim], 'linear', group, init, block);
    add(`${prefix}.bias`, [outDim], 'plain', group, zeros, block);
  };
  const xavier = (fanIn: number, fanOut: number): ParamInit => ({ kind: 'xavier', fanIn, fanOut });
  const vector = (name: string, n: number, group: ParamGroup, init: ParamInit, block?: number): void =>
    add(name, [n], 'plain', group, init, block);

  // Embeddings.
  add('patch_embedding.weight', [pt, ph, pw, c.inDim, d], 'conv3d', 'embedding', xavier(c.inDim * patch, d));
  vector('patch_embedding.bias', d, 'embedding', { kind: 'uniform', bound: 1 / Math.sqrt(c.inDim * patch) });
  linear('text_embedding.0', c.textDim, d, 'embedding', { kind: 'normal', std: 0.02 });
  linear('text_embedding.2', d, d, 'embedding', { kind: 'normal', std: 0.02 });
  linear('time_embedding.0', c.freqDim, d, 'embedding', { kind: 'normal', std: 0.02 });
  linear('time_embedding.2', d, d, 'embedding', { kind: 'normal', std: 0.02 });
  linear('time_projection.1', d, 6 * d, 'embedding', xavier(d, 6 * d));

  // Blocks.
  for (let i = 0; i < c.numLayers; i++) {
    const p = `blocks.${i}`;
    for (const attn of ['self_attn', 'cross_attn']) {
      if (attn === 'cross_attn' && c.crossAttnNorm) {
        vector(`${p}.norm3.weight`, d, 'block', ones, i);
        vector(`${p}.norm3.bias`, d, 'block', zeros, i);
      }
      for (const proj of ['q', 'k', 'v', 'o']) linear(`${p}.${attn}.${proj}`, d, d, 'block', xavier(d, d), i);
      if (c.qkNorm) {
        vector(`${p}.${attn}.norm_q.weight`, d, 'block', ones, i);
        vector(`${p}.${attn}.norm_k.weight`, d, 'block', ones, i);
      }
      if (attn === 'cross_attn' && c.modelType === 'i2v') {
        linear(`${p}.${attn}.k_img`, d, d, 'block', xavier(d, d), i);
        linear(`${p}.${attn}.v_img`, d, d, 'block', xavier(d, d), i);
        if (c.qkNorm) vector(`${p}.${attn}.norm_k_img.weight`, d, 'block', ones, i);
      }
    }
    linear(`${p}.ffn.0`, d, c.ffnDim, 'block', xavier(d, c.ffnDim), i);
    linear(`${p}.ffn.2`, c.ffnDim, d, 'block', xavier(c.ffnDim, d), i);
    add(`${p}.modulation`, [1, 6, d], 'plain', 'block', { kind: 'normal', std: 1 / Math.sqrt(d) }, i);
  }

  // Head.
  linear('head.head', d, patch * c.outDim, 'head', zeros);
  add('head.modulation', [1, 2, d], 'plain', 'head', { kind: 'normal', std: 1 / Math.sqrt(d) });

  // Image embedding (i2v): LayerNorm -> Linear -> GELU -> Linear -> LayerNorm (MLPProj).
  if (c.modelType === 'i2v') {
    const e = c.imageDim;
    vector('img_emb.proj.0.weight', e, 'embedding', ones);
    vector('img_emb.proj.0.bias', e, 'embedding', zeros);
    linear('img_emb.proj.1', e, e, 'embedding', xavier(e, e));
    linear('img_emb.proj.3', e, d, 'embedding', xavier(e, d));
    vector('img_emb.proj.4.weight', d, 'embedding', ones);
    vector('img_emb.proj.4.bias', d, 'embedding', zeros);
  }
  return specs;
}
