import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteInRange, formatShape, InvalidArgumentError, PrflError } from '../errors.js';
import type { GradientMap } from './grads.js';
import { gradientEntries, listNames, NonFiniteGradientError, nonFiniteNames } from './grads.js';

/** AdamW's hyperparameters, per parameter group. Names and defaults follow `torch.optim.AdamW`. */
export interface AdamWHyperparameters {
  /** Learning rate. Default 1e-3. */
  lr: number;
  /** Decay rates of the first and second moment averages. Default [0.9, 0.999]. */
  betas: readonly [number, number];
  /** Added to sqrt(v̂) in the denominator. Default 1e-8. */
  eps: number;
  /** Decoupled weight decay: each step first does p *= 1 - lr * weightDecay. Default 1e-2. */
  weightDecay: number;
  /** Divide by the running maximum of v̂ (AMSGrad). Default false. */
  amsgrad: boolean;
  /** Ascend instead of descend (torch's `maximize`). Default false. */
  maximize: boolean;
}

/** torch.optim.AdamW's defaults. */
export const ADAMW_DEFAULTS: Readonly<AdamWHyperparameters> = Object.freeze({
  lr: 1e-3,
  betas: Object.freeze([0.9, 0.999] as const),
  eps: 1e-8,
  weightDecay: 1e-2,
  amsgrad: false,
  maximize: false,
});

/**
 * A parameter group: variables that share hyperparameters. Unset hyperparameters come from the
 * optimizer's options. PAVRM, for example, trains the reward head at lr 1e-5 and the backbone blocks at
 * 1e-6, and norms and embeddings usually get `weightDecay: 0`.
 */
export interface AdamWParamGroup extends Partial<AdamWHyperparameters> {
  /** Optional name, usable in `setLearningRate(lr, name)`. */
  name?: string;
  params: readonly tf.Variable[];
}

/**
 * What `step` does when a gradient holds NaN or ±Inf:
 * - `throw` (default): throw NonFiniteGradientError naming the parameters; nothing is updated.
 * - `skip`: update nothing, count the step in `skippedSteps`, report it in the result (mixed-precision
 *   style loss-spike protection).
 * - `propagate`: no check (what torch does; saves one small device read per step); NaN reaches the weights.
 */
export type NonFinitePolicy = 'throw' | 'skip' | 'propagate';

/** Optimizer-wide options: default hyperparameters for groups plus behaviour switches. */
export interface AdamWOptions extends Partial<AdamWHyperparameters> {
  /** See NonFinitePolicy. Default `throw`. */
  nonFinite?: NonFinitePolicy;
  /**
   * A gradient whose name is no parameter of this optimizer: `throw` (default; catches typos and
   * forgotten `varList`s) or `ignore` (e.g. grads over all trainable variables, some of them frozen here).
   */
  unknownGradients?: 'throw' | 'ignore';
}

/** What one `step` did. */
export interface AdamWStepResult {
  /** False when the step was skipped because of non-finite gradients (`nonFinite: 'skip'`). */
  applied: boolean;
  /** Parameters that were updated (those with a gradient), in group order. */
  updated: string[];
  /** Parameters whose gradient held NaN or ±Inf (empty unless the step was skipped). */
  nonFinite: string[];
}

/** A group as the optimizer holds it: resolved hyperparameters and its parameter names. */
export interface AdamWGroupInfo extends AdamWHyperparameters {
  name: string | undefined;
  params: string[];
}

/** Key of the optimizer-wide step count in `stateDict()`. */
export const ADAMW_STEP_COUNT_KEY = 'optimizer.step_count';

/** Per-parameter state tensors in `stateDict()`: `<param>.<suffix>`, torch's names. */
const STATE_FIELDS = ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step'] as const;
type StateField = (typeof STATE_FIELDS)[number];

interface ParamState {
  /** torch's per-parameter `state['step']`: counts this parameter's updates (steps without a grad do not count). */
  step: number;
  expAvg: tf.Tensor;
  expAvgSq: tf.Tensor;
  maxExpAvgSq?: tf.Tensor;
}

interface Group extends AdamWHyperparameters {
  name: string | undefined;
  index: number;
  variables: tf.Variable[];
}

interface Param {
  variable: tf.Variable;
  group: Group;
  state?: ParamState;
}

function validateHyperparameters(what: string, h: AdamWHyperparameters): void {
  assertFiniteInRange(`${what} lr`, h.lr, 0);
  assertFiniteInRange(`${what} eps`, h.eps, 0);
  assertFiniteInRange(`${what} weightDecay`, h.weightDecay, 0);
  if (!Array.isArray(h.betas) || h.betas.length !== 2) {
    throw new InvalidArgumentError(`${what} betas: expected two numbers, got ${String(h.betas)}`);
  }
  h.betas.forEach((b, i) => {
    if (typeof b !== 'number' || !Number.isFinite(b) || b < 0 || b >= 1) {
      throw new InvalidArgumentError(`${what} betas[${i}]: expected a number in [0, 1), got ${String(b)}`);
    }
  });
}

/**
 * AdamW (Loshchilov & Hutter) computing exactly what `torch.optim.AdamW` (single-tensor path) computes, in
 * the same float32 operation order, on `tf.Variable`s identified by `variable.name`:
 *
 *     p  *= 1 - lr * weightDecay                  (decoupled decay, before the Adam update)
 *     m   = beta1 * m + (1 - beta1) * g
 *     v   = beta2 * v + (1 - beta2) * g * g
 *     p  += -(lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * with t counted per parameter. tfjs ships no AdamW (its Adam adds eps to sqrt(v) without bias correction
 * of v and has no decoupled decay), hence this class. Updates run under `tf.tidy` and assign in place; old
 * state tensors are disposed. The optimizer never disposes the gradients or the variables it is given.
 */
export class AdamW {
  readonly #groups: Group[];
  readonly #params = new Map<string, Param>();
  readonly #nonFinite: NonFinitePolicy;
  readonly #unknown: 'throw' | 'ignore';
  #stepCount = 0;
  #skipped = 0;
  #disposed = false;

  /**
   * @param params variables (one group) or parameter groups.
   * @throws InvalidArgumentError for bad hyperparameters, non-float32 or duplicate variables, an empty group.
   */
  constructor(params: readonly tf.Variable[] | readonly AdamWParamGroup[], options: AdamWOptions = {}) {
    const defaults: AdamWHyperparameters = {
      lr: options.lr ?? ADAMW_DEFAULTS.lr,
      betas: options.betas ?? ADAMW_DEFAULTS.betas,
      eps: options.eps ?? ADAMW_DEFAULTS.eps,
      weightDecay: options.weightDecay ?? ADAMW_DEFAULTS.weightDecay,
      amsgrad: options.amsgrad ?? ADAMW_DEFAULTS.amsgrad,
      maximize: options.maximize ?? ADAMW_DEFAULTS.maximize,
    };
    validateHyperparameters('AdamW options:', defaults);
    this.#nonFinite = options.nonFinite ?? 'throw';
    if (!['throw', 'skip', 'propagate'].includes(this.#nonFinite)) {
      throw new InvalidArgumentError(
        `AdamW options: nonFinite: expected 'throw', 'skip' or 'propagate', got ${String(options.nonFinite)}`,
      );
    }
    this.#unknown = options.unknownGradients ?? 'throw';
    if (!Array.isArray(params) || params.length === 0) {
      throw new InvalidArgumentError('AdamW: expected a non-empty array of variables or parameter groups');
    }
    const specs: readonly AdamWParamGroup[] =
      params[0] instanceof tf.Variable
        ? [{ params: params as readonly tf.Variable[] }]
        : (params as readonly AdamWParamGroup[]);
    const groupNames = new Set<string>();
    this.#groups = specs.map((spec, index) => {
      const what = `AdamW group ${index}${spec?.name !== undefined ? ` ('${spec.name}')` : ''}:`;
      if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.params)) {
        throw new InvalidArgumentError(`${what} expected a tf.Variable or { params: tf.Variable[], ... }`);
      }
      if (spec.params.length === 0) throw new InvalidArgumentError(`${what} has no parameters`);
      if (spec.name !== undefined) {
        if (groupNames.has(spec.name)) throw new InvalidArgumentError(`${what} duplicate group name`);
        groupNames.add(spec.name);
      }
      const group: Group = {
        name: spec.name,
        index,
        lr: spec.lr ?? defaults.lr,
        betas: [...(spec.betas ?? defaults.betas)] as [number, number],
        eps: spec.eps ?? defaults.eps,
        weightDecay: spec.weightDecay ?? defaults.weightDecay,
        amsgrad: spec.amsgrad ?? defaults.amsgrad,
        maximize: spec.maximize ?? defaults.maximize,
        variables: [...spec.params],
      };
      validateHyperparameters(what, group);
      for (const v of group.variables) {
        if (!(v instanceof tf.Variable)) {
          throw new InvalidArgumentError(`${what} expected tf.Variable parameters, got ${typeof v}`);
        }
        if (v.dtype !== 'float32') {
          throw new InvalidArgumentError(`${what} parameter '${v.name}' is ${v.dtype}; AdamW needs float32`);
        }
        if (this.#params.has(v.name)) {
          throw new InvalidArgumentError(
            `${what} parameter '${v.name}' appears twice (in one group or in two); names must be unique`,
          );
        }
        for (const f of STATE_FIELDS) {
          if (`${v.name}.${f}` === ADAMW_STEP_COUNT_KEY) {
            throw new InvalidArgumentError(
              `${what} parameter name '${v.name}' collides with the state key ${ADAMW_STEP_COUNT_KEY}`,
            );
          }
        }
        this.#params.set(v.name, { variable: v, group });
      }
      return group;
    });
  }

  /** Number of applied `step` calls (skipped ones excluded). Restored by `loadStateDict`. */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** Number of steps skipped because of non-finite gradients (`nonFinite: 'skip'`). Not saved in the state. */
  get skippedSteps(): number {
    return this.#skipped;
  }

  /** The groups with their current hyperparameters (a copy). */
  get groups(): AdamWGroupInfo[] {
    return this.#groups.map((g) => ({
      name: g.name,
      lr: g.lr,
      betas: [g.betas[0], g.betas[1]] as const,
      eps: g.eps,
      weightDecay: g.weightDecay,
      amsgrad: g.amsgrad,
      maximize: g.maximize,
      params: g.variables.map((v) => v.name),
    }));
  }

  /** The optimized variables, e.g. as the `varList` of `tf.variableGrads(f, optimizer.variables())`. */
  variables(): tf.Variable[] {
    return [...this.#params.values()].map((p) => p.variable);
  }

  #group(ref: number | string, what: string): Group {
    const g =
      typeof ref === 'number'
        ? this.#groups[ref]
        : this.#groups.find((candidate) => candidate.name === ref && candidate.name !== undefined);
    if (g === undefined || (typeof ref === 'number' && !Number.isInteger(ref))) {
      const names = this.#groups.map((x, i) => (x.name === undefined ? String(i) : `${i} ('${x.name}')`));
      throw new InvalidArgumentError(
        `${what}: no parameter group ${JSON.stringify(ref)}; groups are ${names.join(', ')}`,
      );
    }
    return g;
  }

  #describeGroup(g: Group): string {
    const label = g.name === undefined ? `group ${g.index}` : `group ${g.index} ('${g.name}')`;
    return `${label} [parameters ${listNames(
      g.variables.map((v) => v.name),
      3,
    )}]`;
  }

  /**
   * Sets the learning rate of one group (index or name), or of every group when `group` is omitted (which
   * flattens per-group ratios: to keep them, set each group or use `groups[i].lr` as the base).
   * @throws InvalidArgumentError naming the group and its parameters for a negative or non-finite lr.
   */
  setLearningRate(lr: number, group?: number | string): void {
    this.#assertLive();
    const targets = group === undefined ? this.#groups : [this.#group(group, 'AdamW.setLearningRate')];
    for (const g of targets)
      assertFiniteInRange(`AdamW.setLearningRate: lr of ${this.#describeGroup(g)}`, lr, 0);
    for (const g of targets) g.lr = lr;
  }

  /** The learning rate of a group (default the first). */
  getLearningRate(group: number | string = 0): number {
    return this.#group(group, 'AdamW.getLearningRate').lr;
  }

  /**
   * One AdamW update of every parameter that has a gradient; parameters without one are left alone and
   * their step counters do not advance (torch's `grad is None`). Everything is validated before anything
   * changes, so a throw leaves parameters and state untouched.
   *
   * @param grads gradient by parameter name, e.g. `tf.variableGrads(f).grads`. Not disposed here.
   * @throws InvalidArgumentError naming the parameter for a wrong shape or dtype, an unknown name, or a
   *   non-finite learning rate; NonFiniteGradientError for NaN/Inf gradients under `nonFinite: 'throw'`.
   */
  step(grads: GradientMap): AdamWStepResult {
    this.#assertLive();
    const entries = gradientEntries(grads, 'AdamW.step');
    const work: Array<{ name: string; param: Param; grad: tf.Tensor }> = [];
    const unknown: string[] = [];
    for (const [name, grad] of entries) {
      const param = this.#params.get(name);
      if (param === undefined) {
        unknown.push(name);
        continue;
      }
      const shape = param.variable.shape;
      if (grad.shape.length !== shape.length || grad.shape.some((d, i) => d !== shape[i])) {
        throw new InvalidArgumentError(
          `AdamW.step: gradient for parameter '${name}' has shape ${formatShape(grad.shape)} but the parameter has shape ${formatShape(shape)}`,
        );
      }
      if (grad.dtype !== 'float32') {
        throw new InvalidArgumentError(
          `AdamW.step: gradient for parameter '${name}' is ${grad.dtype}; expected float32`,
        );
      }
      if (param.variable.isDisposed) {
        throw new InvalidArgumentError(`AdamW.step: parameter '${name}' (the tf.Variable) was disposed`);
      }
      const lr = param.group.lr;
      if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) {
        throw new InvalidArgumentError(
          `AdamW.step: learning rate ${String(lr)} of parameter '${name}' (${this.#describeGroup(param.group)}) is not a finite non-negative number`,
        );
      }
      work.push({ name, param, grad });
    }
    if (unknown.length > 0 && this.#unknown === 'throw') {
      throw new InvalidArgumentError(
        `AdamW.step: gradients for ${listNames(unknown)}, which are not parameters of this optimizer (known: ${listNames([...this.#params.keys()])}); pass optimizer.variables() as varList to tf.variableGrads or set unknownGradients: 'ignore'`,
      );
    }
    if (this.#nonFinite !== 'propagate') {
      const bad = nonFiniteNames(work.map((w) => [w.name, w.grad] as const));
      if (bad.length > 0) {
        if (this.#nonFinite === 'throw') {
          throw new NonFiniteGradientError(
            `AdamW.step: non-finite (NaN or Inf) gradient for ${listNames(bad)}; nothing was updated (use nonFinite: 'skip' to skip such steps)`,
            bad,
          );
        }
        this.#skipped++;
        return { applied: false, updated: [], nonFinite: bad };
      }
    }
    // Group order, not gradient order, so the result does not depend on how the grads map was built.
    const order = new Map([...this.#params.keys()].map((n, i) => [n, i]));
    work.sort((a, b) => (order.get(a.name) as number) - (order.get(b.name) as number));

    // One tidy scope per parameter, and its old moments released right after its update: the peak above
    // the optimizer state is one parameter's temporaries, not every parameter's at once.
    for (const { param, grad } of work) {
      const prev = param.state;
      let state: ParamState | undefined;
      tf.tidy(() => {
        const g = param.group;
        const [beta1, beta2] = g.betas;
        const step = (prev?.step ?? 0) + 1;
        const expAvg0 = prev?.expAvg ?? tf.zerosLike(grad);
        const expAvgSq0 = prev?.expAvgSq ?? tf.zerosLike(grad);
        const grd = g.maximize ? tf.neg(grad) : grad;
        // The scalars are computed in float64 and rounded to float32 when they meet a tensor, as in torch.
        const biasCorrection1 = 1 - beta1 ** step;
        const biasCorrection2 = 1 - beta2 ** step;
        const stepSize = g.lr / biasCorrection1;
        const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);

        let p: tf.Tensor = param.variable;
        if (g.weightDecay !== 0) p = tf.mul(p, 1 - g.lr * g.weightDecay);
        // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        const expAvg = tf.add(tf.mul(expAvg0, beta1), tf.mul(grd, 1 - beta1));
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): self + (value * t1) * t2
        const expAvgSq = tf.add(tf.mul(expAvgSq0, beta2), tf.mul(tf.mul(grd, 1 - beta2), grd));
        let second = expAvgSq;
        let maxExpAvgSq: tf.Tensor | undefined;
        if (g.amsgrad) {
          maxExpAvgSq = prev?.maxExpAvgSq ? tf.maximum(prev.maxExpAvgSq, expAvgSq) : tf.maximum(0, expAvgSq);
          second = maxExpAvgSq;
        }
        // denom = (sqrt(v) / sqrt(bias_correction2)).add_(eps)
        const denom = tf.add(tf.div(tf.sqrt(second), biasCorrection2Sqrt), g.eps);
        // param.addcdiv_(exp_avg, denom, value=-step_size): self + (value * t1) / t2
        const updated = tf.add(p, tf.div(tf.mul(expAvg, -stepSize), denom));
        param.variable.assign(updated);

        state = { step, expAvg: tf.keep(expAvg), expAvgSq: tf.keep(expAvgSq) };
        if (maxExpAvgSq) state.maxExpAvgSq = tf.keep(maxExpAvgSq);
      });
      param.state = state;
      if (prev) tf.dispose([prev.expAvg, prev.expAvgSq, ...(prev.maxExpAvgSq ? [prev.maxExpAvgSq] : [])]);
    }
    this.#stepCount++;
    return { applied: true, updated: work.map((w) => w.name), nonFinite: [] };
  }

  /**
   * The optimizer state as named float32 tensors, torch's names: `<param>.exp_avg`, `<param>.exp_avg_sq`,
   * `<param>.max_exp_avg_sq` (amsgrad groups), `<param>.step` (scalar; float32 as in torch, exact up to
   * 2^24) and `optimizer.step_count` (ADAMW_STEP_COUNT_KEY). A parameter that never had a gradient has no
   * entries (torch's lazy state). The tensors are copies owned by the caller (dispose them after writing,
   * e.g. to safetensors). Hyperparameters (lr, ...) are configuration, not state: rebuild the optimizer
   * with them and let the schedule set lr from `stepCount`.
   */
  stateDict(): Record<string, tf.Tensor> {
    this.#assertLive();
    const out: Record<string, tf.Tensor> = {};
    for (const [name, p] of this.#params) {
      const s = p.state;
      if (!s) continue;
      out[`${name}.exp_avg`] = tf.clone(s.expAvg);
      out[`${name}.exp_avg_sq`] = tf.clone(s.expAvgSq);
      if (s.maxExpAvgSq) out[`${name}.max_exp_avg_sq`] = tf.clone(s.maxExpAvgSq);
      out[`${name}.step`] = tf.scalar(s.step, 'float32');
    }
    out[ADAMW_STEP_COUNT_KEY] = tf.scalar(this.#stepCount, 'float32');
    return out;
  }

  /**
   * Replaces the state with a `stateDict()` (of an optimizer over the same parameter names, shapes and
   * amsgrad settings). Everything is checked before anything changes; the given tensors are copied and stay
   * the caller's.
   * @throws InvalidArgumentError naming the offending key: unknown names, missing or surplus entries of a
   *   parameter, wrong shapes or dtypes, a step count that is not a non-negative integer.
   */
  loadStateDict(tensors: Readonly<Record<string, tf.Tensor>> | ReadonlyMap<string, tf.Tensor>): void {
    this.#assertLive();
    const what = 'AdamW.loadStateDict';
    const entries = new Map(gradientEntries(tensors, what));
    const index = new Map<string, { param: string; field: StateField }>();
    for (const name of this.#params.keys()) {
      for (const field of STATE_FIELDS) index.set(`${name}.${field}`, { param: name, field });
    }
    const unknown = [...entries.keys()].filter((k) => k !== ADAMW_STEP_COUNT_KEY && !index.has(k));
    if (unknown.length > 0) {
      throw new InvalidArgumentError(
        `${what}: unknown keys ${listNames(unknown)} (expected '<param>.{${STATE_FIELDS.join(',')}}' for parameters ${listNames([...this.#params.keys()])}, and '${ADAMW_STEP_COUNT_KEY}')`,
      );
    }
    const readCount = (key: string, t: tf.Tensor, min: number): number => {
      if (t.shape.length !== 0 && !(t.shape.length === 1 && t.shape[0] === 1)) {
        throw new InvalidArgumentError(
          `${what}: '${key}' must be a scalar, got shape ${formatShape(t.shape)}`,
        );
      }
      const v = t.dataSync()[0] as number;
      if (!Number.isInteger(v) || v < min) {
        throw new InvalidArgumentError(`${what}: '${key}' must be an integer >= ${min}, got ${v}`);
      }
      return v;
    };
    const countTensor = entries.get(ADAMW_STEP_COUNT_KEY);
    if (countTensor === undefined)
      throw new InvalidArgumentError(`${what}: missing '${ADAMW_STEP_COUNT_KEY}'`);
    const stepCount = readCount(ADAMW_STEP_COUNT_KEY, countTensor, 0);

    const next = new Map<string, { step: number; expAvg: tf.Tensor; expAvgSq: tf.Tensor; max?: tf.Tensor }>();
    for (const [name, p] of this.#params) {
      const fields: StateField[] = p.group.amsgrad
        ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']
        : ['exp_avg', 'exp_avg_sq', 'step'];
      const present = STATE_FIELDS.filter((f) => entries.has(`${name}.${f}`));
      if (present.length === 0) continue;
      if (!p.group.amsgrad && present.includes('max_exp_avg_sq')) {
        throw new InvalidArgumentError(
          `${what}: '${name}.max_exp_avg_sq' given but the parameter's group does not use amsgrad`,
        );
      }
      const missing = fields.filter((f) => !present.includes(f));
      if (missing.length > 0) {
        throw new InvalidArgumentError(
          `${what}: parameter '${name}' has ${present.map((f) => `'${name}.${f}'`).join(', ')} but lacks ${missing.map((f) => `'${name}.${f}'`).join(', ')}`,
        );
      }
      const tensor = (f: StateField): tf.Tensor => {
        const key = `${name}.${f}`;
        const t = entries.get(key) as tf.Tensor;
        const shape = p.variable.shape;
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
          throw new InvalidArgumentError(
            `${what}: '${key}' has shape ${formatShape(t.shape)} but parameter '${name}' has shape ${formatShape(shape)}`,
          );
        }
        if (t.dtype !== 'float32')
          throw new InvalidArgumentError(`${what}: '${key}' is ${t.dtype}; expected float32`);
        return t;
      };
      const step = readCount(`${name}.step`, entries.get(`${name}.step`) as tf.Tensor, 1);
      next.set(name, {
        step,
        expAvg: tensor('exp_avg'),
        expAvgSq: tensor('exp_avg_sq'),
        ...(p.group.amsgrad ? { max: tensor('max_exp_avg_sq') } : {}),
      });
    }
    for (const [name, p] of this.#params) {
      this.#disposeState(p);
      const n = next.get(name);
      if (!n) continue;
      p.state = { step: n.step, expAvg: tf.clone(n.expAvg), expAvgSq: tf.clone(n.expAvgSq) };
      if (n.max) p.state.maxExpAvgSq = tf.clone(n.max);
    }
    this.#stepCount = stepCount;
  }

  #disposeState(p: Param): void {
    if (!p.state) return;
    tf.dispose([p.state.expAvg, p.state.expAvgSq, ...(p.state.maxExpAvgSq ? [p.state.maxExpAvgSq] : [])]);
    p.state = undefined;
  }

  #assertLive(): void {
    if (this.#disposed) throw new PrflError('AdamW: this optimizer was disposed');
  }

  /** Frees the state tensors (not the variables). The optimizer is unusable afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    for (const p of this.#params.values()) this.#disposeState(p);
    this.#disposed = true;
  }
}
