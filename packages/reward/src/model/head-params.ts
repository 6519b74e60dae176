/**
 * The parameter table of PAVRM's aggregation and head: names (the reference's, prefixed by module),
 * shapes in tfjs and PyTorch layouts, and initialisation. One table drives construction, I/O and
 * tests, so a name or a layout is written down once.
 */
import { InvalidArgumentError } from '@prfl/tensor';

/** How a pooled vector is made from the backbone's tokens. */
export type Aggregation =
  /** The paper's default: one learnable query, multi-head attention, z = attention_output + q. */
  | 'query-attention'
  /** The same attention without the query residual: z = attention_output. */
  | 'attention'
  /** Ablation: mean over tokens. */
  | 'mean'
  /** Ablation: max over tokens. */
  | 'max';

export const AGGREGATIONS: readonly Aggregation[] = ['query-attention', 'attention', 'mean', 'max'];

/** The architecture of a PAVRM's head; saved with it (pavrm.json). */
export interface PavrmHeadConfig {
  /** D, the backbone's feature width. */
  featureDim: number;
  aggregation: Aggregation;
  /** Heads of the query attention (ignored by mean/max pooling). Paper: 8. */
  numHeads: number;
  /** Hidden widths of the MLP. Paper: [1024, 512]. */
  hidden: readonly number[];
}

/** Prefix of the query attention's parameters (the reference's module holds `queries`, `multihead_attn.*`). */
export const QUERY_ATTENTION_PREFIX = 'query_attention.';
/** Prefix of the MLP's parameters (the reference's module holds `fc1.*`, `fc2.*`, `fc3.*`). */
export const MLP_PREFIX = 'mlp.';

export type HeadParamInit =
  | { kind: 'zeros' }
  | { kind: 'xavier'; fanIn: number; fanOut: number }
  | { kind: 'linear-default'; fanIn: number };

export interface HeadParamSpec {
  /** Stable name: module prefix + the reference's key, e.g. `mlp.fc1.weight`. */
  name: string;
  /** Module: which reference file (`query_attention` or `mlp`) it belongs to. */
  module: 'query_attention' | 'mlp';
  /** The key inside that module's PyTorch state dict, e.g. `fc1.weight`. */
  key: string;
  /** Shape in tfjs layout (what the variable holds). */
  shape: number[];
  /** Shape in the PyTorch state dict. */
  torchShape: number[];
  /** 'linear': a Linear weight, [in, out] here and [out, in] in PyTorch; 'none': same layout. */
  layout: 'linear' | 'none';
  init: HeadParamInit;
}

/** Checks a head configuration; returns it with defaults applied. */
export function validateHeadConfig(config: PavrmHeadConfig): PavrmHeadConfig {
  const { featureDim, aggregation, numHeads, hidden } = config;
  if (!Number.isInteger(featureDim) || featureDim < 1) {
    throw new InvalidArgumentError(`featureDim: expected a positive integer, got ${String(featureDim)}`);
  }
  if (!AGGREGATIONS.includes(aggregation)) {
    throw new InvalidArgumentError(
      `aggregation: expected one of ${AGGREGATIONS.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(aggregation)}`,
    );
  }
  if (aggregation === 'query-attention' || aggregation === 'attention') {
    if (!Number.isInteger(numHeads) || numHeads < 1 || featureDim % numHeads !== 0) {
      throw new InvalidArgumentError(
        `numHeads: expected a positive divisor of featureDim ${featureDim}, got ${String(numHeads)}`,
      );
    }
  }
  if (!Array.isArray(hidden) || hidden.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new InvalidArgumentError(
      `hidden: expected an array of positive integer widths, got ${JSON.stringify(hidden)}`,
    );
  }
  return { featureDim, aggregation, numHeads, hidden: [...hidden] };
}

/** The head's parameters for a configuration, in a fixed order. */
export function headParamSpecs(config: PavrmHeadConfig): HeadParamSpec[] {
  const c = validateHeadConfig(config);
  const d = c.featureDim;
  const specs: HeadParamSpec[] = [];
  if (c.aggregation === 'query-attention' || c.aggregation === 'attention') {
    const qa = (
      key: string,
      shape: number[],
      torchShape: number[],
      layout: 'linear' | 'none',
      init: HeadParamInit,
    ) =>
      specs.push({
        name: QUERY_ATTENTION_PREFIX + key,
        module: 'query_attention',
        key,
        shape,
        torchShape,
        layout,
        init,
      });
    // nn.init.xavier_uniform_ on queries [1, D]: fan_in = D, fan_out = 1.
    qa('queries', [1, d], [1, d], 'none', { kind: 'xavier', fanIn: d, fanOut: 1 });
    // nn.MultiheadAttention._reset_parameters: xavier_uniform_ on in_proj_weight [3D, D], zero biases; the
    // out_proj weight keeps nn.Linear's default init.
    qa('multihead_attn.in_proj_weight', [d, 3 * d], [3 * d, d], 'linear', {
      kind: 'xavier',
      fanIn: d,
      fanOut: 3 * d,
    });
    qa('multihead_attn.in_proj_bias', [3 * d], [3 * d], 'none', { kind: 'zeros' });
    qa('multihead_attn.out_proj.weight', [d, d], [d, d], 'linear', { kind: 'linear-default', fanIn: d });
    qa('multihead_attn.out_proj.bias', [d], [d], 'none', { kind: 'zeros' });
  }
  const widths = [d, ...c.hidden, 1];
  for (let i = 0; i + 1 < widths.length; i++) {
    const fin = widths[i] as number;
    const fout = widths[i + 1] as number;
    const key = `fc${i + 1}`;
    // The reference's MLP._init_weights: xavier_uniform_ weights, zero biases.
    specs.push({
      name: `${MLP_PREFIX}${key}.weight`,
      module: 'mlp',
      key: `${key}.weight`,
      shape: [fin, fout],
      torchShape: [fout, fin],
      layout: 'linear',
      init: { kind: 'xavier', fanIn: fin, fanOut: fout },
    });
    specs.push({
      name: `${MLP_PREFIX}${key}.bias`,
      module: 'mlp',
      key: `${key}.bias`,
      shape: [fout],
      torchShape: [fout],
      layout: 'none',
      init: { kind: 'zeros' },
    });
  }
  return specs;
}
