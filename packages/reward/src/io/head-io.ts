/**
 * PAVRM's aggregation and head as the reference stores them: two PyTorch state dicts, one per module,
 * under the reference's keys (QueryAttention: `queries`, `multihead_attn.in_proj_weight`,
 * `multihead_attn.in_proj_bias`, `multihead_attn.out_proj.weight`, `multihead_attn.out_proj.bias`; MLP:
 * `fc1.weight`, `fc1.bias`, ... `fc3.bias`), Linear weights [out, in]. These convert to and from our
 * variables (tfjs layout, [in, out]), checked key by key and shape by shape before anything changes.
 * A state dict saved inside a wrapper (`{"state_dict": ...}`, which the reference's PRFL script also
 * accepts, or DistributedDataParallel's `module.` prefix) is unwrapped first.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, stripKeyPrefix } from '@prfl/tensor';
import type { HeadParamSpec } from '../model/head-params.js';

/** Tensors by name, as a Map or a plain record (what loadSafetensors returns). */
export type StateDict = ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>;

/** The head's two PyTorch state dicts (query attention only for the attention aggregations). */
export interface HeadStateDicts {
  queryAttention?: StateDict;
  mlp: StateDict;
}

/** Wrapper prefixes of saved state dicts: a training script's `{"state_dict": ...}`, DDP's `module.`, `model.`. */
const WRAPPER_PREFIXES = ['state_dict.', 'module.', 'model.'];

/**
 * The module's tensors, unwrapped: when no key is one the module has (`wanted`) but keys carry a wrapper
 * prefix (`state_dict.fc1.weight`, `module.fc1.weight`), the prefix is taken off, up to three levels;
 * keys outside the wrapper (an optimizer's state saved beside it) are then left out. A state dict whose
 * keys already match is used as it is, so unexpected keys there are still reported.
 */
function entries(state: StateDict | undefined, wanted: ReadonlySet<string>): Map<string, tf.Tensor> {
  if (state === undefined) return new Map();
  let current = state instanceof Map ? new Map(state) : new Map(Object.entries(state));
  for (let level = 0; level < 3 && wanted.size > 0; level++) {
    if ([...current.keys()].some((k) => wanted.has(k))) break;
    const prefix = WRAPPER_PREFIXES.find((p) => [...current.keys()].some((k) => k.startsWith(p)));
    if (prefix === undefined) break;
    current = stripKeyPrefix(current, prefix);
  }
  return current;
}

/**
 * Our head variables (tfjs layout) -> the reference's two state dicts (PyTorch layout). New tensors;
 * the caller disposes them.
 */
export function headToStateDicts(
  specs: readonly HeadParamSpec[],
  variables: ReadonlyMap<string, tf.Tensor>,
): { queryAttention?: Map<string, tf.Tensor>; mlp: Map<string, tf.Tensor> } {
  const qa = new Map<string, tf.Tensor>();
  const mlp = new Map<string, tf.Tensor>();
  for (const s of specs) {
    const v = variables.get(s.name);
    if (v === undefined) throw new InvalidArgumentError(`head state dict: no variable ${s.name}`);
    const t = tf.tidy(() => (s.layout === 'linear' ? tf.transpose(v) : tf.clone(v)));
    (s.module === 'mlp' ? mlp : qa).set(s.key, t);
  }
  return qa.size > 0 ? { queryAttention: qa, mlp } : { mlp };
}

/**
 * The reference's two state dicts (PyTorch layout) -> head weights in tfjs layout by stable name, for
 * `new Pavrm(backbone, { headWeights })`. New tensors; the caller disposes them and keeps the input.
 *
 * @throws InvalidArgumentError listing missing and unexpected keys of each module, or naming the first key
 *   whose shape differs (with both shapes).
 */
export function headFromStateDicts(
  specs: readonly HeadParamSpec[],
  state: HeadStateDicts,
): Map<string, tf.Tensor> {
  const keysOf = (module: 'query_attention' | 'mlp') =>
    new Set(specs.filter((s) => s.module === module).map((s) => s.key));
  const modules = {
    query_attention: entries(state.queryAttention, keysOf('query_attention')),
    mlp: entries(state.mlp, keysOf('mlp')),
  };
  for (const module of ['query_attention', 'mlp'] as const) {
    const given = modules[module];
    const wanted = specs.filter((s) => s.module === module);
    if (wanted.length === 0 && given.size === 0) continue;
    const keys = new Set(wanted.map((s) => s.key));
    const missing = wanted.filter((s) => !given.has(s.key)).map((s) => s.key);
    const unexpected = [...given.keys()].filter((k) => !keys.has(k));
    if (missing.length > 0 || unexpected.length > 0) {
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`missing keys ${missing.join(', ')}`);
      if (unexpected.length > 0) parts.push(`unexpected keys ${unexpected.join(', ')}`);
      throw new InvalidArgumentError(
        `${module} state dict does not match the head's configuration: ${parts.join('; ')}${wanted.length === 0 ? ' (this aggregation has no query attention)' : ''}`,
      );
    }
    for (const s of wanted) {
      const t = given.get(s.key) as tf.Tensor;
      if (t.shape.length !== s.torchShape.length || t.shape.some((d, i) => d !== s.torchShape[i])) {
        throw new InvalidArgumentError(
          `${module} state dict: ${s.key} has shape ${formatShape(t.shape)}, expected ${formatShape(s.torchShape)} (PyTorch layout)`,
        );
      }
    }
  }
  const out = new Map<string, tf.Tensor>();
  for (const s of specs) {
    const t = modules[s.module].get(s.key) as tf.Tensor;
    out.set(
      s.name,
      tf.tidy(() => {
        const v = tf.cast(t, 'float32');
        return s.layout === 'linear' ? tf.transpose(v) : tf.clone(v);
      }),
    );
  }
  return out;
}
