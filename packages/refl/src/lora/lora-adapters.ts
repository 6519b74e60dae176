/**
 * LoRA adapters on a generator's Linear layers, as PEFT's LoraLayer computes them:
 *
 *   y = base(x) + scaling * B(A(x)),   scaling = alpha / r,
 *
 * with A [r, in] initialised like nn.Linear (kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)))
 * and B [out, r] at zero, so the adapted model starts out computing exactly what the base model computes.
 * The values are held in tfjs layout, A as [in, r] and B as [r, out] (x @ A @ B, no transposes in the
 * forward pass); the PEFT files store their transposes (peft-state.ts).
 *
 * The adapters reach the model through its Linear-layer hook (adapter-host.ts), never through its
 * weights: the base variables are not touched until `merge()` folds the adapters in for export.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator, InvalidArgumentError, linear, type Trainable } from '@prfl/tensor';
import { isLinearAdapterHost, type LinearAdapter, type LinearAdapterHost } from './adapter-host.js';
import { type LoraOptions, loraScaling, type ResolvedLoraOptions, resolveLoraOptions } from './config.js';
import { type LinearModule, linearModules, matchesTargetModules } from './targets.js';

let instances = 0;

/**
 * The adapters currently attached to each model. A model has one hook, so attaching other adapters
 * replaces them; detaching (or disposing) adapters that were replaced must then leave the model alone.
 */
const attachedTo = new WeakMap<LinearAdapterHost, LoraAdapters>();

/** One adapted layer. */
interface Adapter {
  readonly base: LinearModule;
  /** [in, r] (PEFT's lora_A.weight transposed). */
  readonly a: tf.Variable;
  /** [r, out] (PEFT's lora_B.weight transposed). */
  readonly b: tf.Variable;
}

/** Suffixes of the adapter variables' stable names (PEFT's, after the module name). */
export const LORA_A_SUFFIX = '.lora_A.weight';
export const LORA_B_SUFFIX = '.lora_B.weight';

export class LoraAdapters implements Trainable {
  readonly options: Readonly<ResolvedLoraOptions>;
  readonly rank: number;
  readonly alpha: number;
  /** alpha / rank (alpha / sqrt(rank) with useRslora). */
  readonly scaling: number;
  /** Prefix of the adapters' tfjs variable names. */
  readonly name: string;
  readonly #adapters = new Map<string, Adapter>();
  readonly #named = new Map<string, tf.Variable>();
  readonly #model: LinearAdapterHost & Trainable;
  #attached = false;
  #disposed = false;

  /**
   * Creates adapters on the Linear layers of `model` that `options` targets and attaches them (the
   * model's output is unchanged until B moves away from zero).
   * @throws InvalidArgumentError for a model without the Linear-layer hook, bad options (named), or
   *   targets that match no Linear layer (the model's layer names are listed).
   */
  constructor(model: LinearAdapterHost & Trainable, options: LoraOptions = {}) {
    if (!isLinearAdapterHost(model) || typeof model.namedVariables !== 'function') {
      throw new InvalidArgumentError(
        'model: LoRA needs a model with namedVariables() and setLinearAdapter(adapter) (a Linear-layer hook; @prfl/models WanDiT has one)',
      );
    }
    const o = resolveLoraOptions(options);
    this.options = Object.freeze(o);
    this.rank = o.rank;
    this.alpha = o.alpha;
    this.scaling = loraScaling(o.rank, o.alpha, o.useRslora);
    this.name = `lora_${++instances}`;
    this.#model = model;
    const layers = linearModules(model.namedVariables());
    const targets = layers.filter((l) => matchesTargetModules(l.module, o.targetModules, o.blocks));
    if (targets.length === 0) {
      const names = layers.map((l) => l.module);
      throw new InvalidArgumentError(
        `lora.targetModules: ${JSON.stringify(o.targetModules)}${o.blocks ? ` in blocks ${o.blocks[0]}..${o.blocks[1]}` : ''} matches none of the model's ${names.length} Linear layers (${names.slice(0, 6).join(', ')}${names.length > 6 ? ', ...' : ''})`,
      );
    }
    const gen = new Generator(`lora/${o.seed}`);
    try {
      for (const base of targets) {
        const bound = 1 / Math.sqrt(base.inFeatures);
        const a = tf.tidy(() =>
          tf.variable(
            gen.derive(base.module).uniform([base.inFeatures, o.rank], -bound, bound),
            true,
            `${this.name}/${base.module}${LORA_A_SUFFIX}`,
          ),
        );
        const b = tf.variable(
          tf.zeros([o.rank, base.outFeatures]),
          true,
          `${this.name}/${base.module}${LORA_B_SUFFIX}`,
        );
        this.#adapters.set(base.module, { base, a, b });
        this.#named.set(`${base.module}${LORA_A_SUFFIX}`, a);
        this.#named.set(`${base.module}${LORA_B_SUFFIX}`, b);
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
    this.attach();
  }

  /** The adapted layers' module names (e.g. `blocks.0.self_attn.q`), in the model's order. */
  get modules(): string[] {
    return [...this.#adapters.keys()];
  }

  /** Whether the model's Linear layers currently go through these adapters. */
  get attached(): boolean {
    return this.#attached && attachedTo.get(this.#model) === this;
  }

  /**
   * The adapter variables under stable names `<module>.lora_A.weight` ([in, r]) and
   * `<module>.lora_B.weight` ([r, out]), tfjs layout. These are what trains.
   */
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.#named;
  }

  /** (Layer, A, B) of one adapted module, or undefined. */
  adapterOf(module: string): { a: tf.Variable; b: tf.Variable; weight: tf.Variable } | undefined {
    const m = this.#adapters.get(module);
    return m && { a: m.a, b: m.b, weight: m.base.weight };
  }

  /** What the model's Linear layers call: output + scaling * (input @ A) @ B for adapted modules. */
  readonly adapter: LinearAdapter = (module, input, output) => {
    const m = this.#adapters.get(module);
    if (m === undefined) return output;
    return tf.tidy(() => {
      const delta = linear(linear(input, m.a as tf.Tensor as tf.Tensor2D), m.b as tf.Tensor as tf.Tensor2D);
      // Scaling after B, as PEFT: lora_B(lora_A(x)) * scaling.
      return tf.add(output, this.scaling === 1 ? delta : tf.mul(delta, this.scaling));
    });
  };

  /**
   * Routes the model's Linear layers through these adapters (done by the constructor), replacing any
   * other adapters attached to it.
   */
  attach(): void {
    this.#checkLive();
    this.#model.setLinearAdapter(this.adapter);
    attachedTo.set(this.#model, this);
    this.#attached = true;
  }

  /**
   * Removes the hook: the model computes its base output again. The adapters keep their values. Does
   * nothing to the model when other adapters were attached since.
   */
  detach(): void {
    if (this.attached) {
      this.#model.setLinearAdapter(null);
      attachedTo.delete(this.#model);
    }
    this.#attached = false;
  }

  /** scaling * A @ B for one module: the change of its weight, [in, out] (tfjs layout). New tensor. */
  deltaWeight(module: string): tf.Tensor2D {
    this.#checkLive();
    const m = this.#adapters.get(module);
    if (m === undefined) {
      throw new InvalidArgumentError(
        `module: expected one of the adapted layers, got ${JSON.stringify(module)}`,
      );
    }
    return tf.tidy(() => tf.mul(tf.matMul(m.a, m.b), this.scaling) as tf.Tensor2D);
  }

  /**
   * W + scaling * A @ B of every adapted layer, keyed by the weight's name (`<module>.weight`, tfjs layout
   * [in, out]): the weights a merged export holds. New tensors; the model is not changed.
   */
  mergedWeights(): Map<string, tf.Tensor2D> {
    this.#checkLive();
    const out = new Map<string, tf.Tensor2D>();
    for (const [module, m] of this.#adapters) {
      out.set(
        `${module}.weight`,
        tf.tidy(() => tf.add(m.base.weight, tf.mul(tf.matMul(m.a, m.b), this.scaling)) as tf.Tensor2D),
      );
    }
    return out;
  }

  /**
   * Folds the adapters into the base weights (W += scaling * A @ B, PEFT's merge_and_unload) and detaches
   * them, so the model alone computes what the adapted model computed, e.g. to export it with its own
   * saver. The adapters keep their values; dispose them when done.
   */
  merge(): void {
    const merged = this.mergedWeights();
    this.detach();
    for (const [name, w] of merged) {
      const module = name.slice(0, -'.weight'.length);
      (this.#adapters.get(module) as Adapter).base.weight.assign(w);
    }
    tf.dispose([...merged.values()]);
  }

  /** Detaches and frees the adapter variables. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.detach();
    for (const v of this.#named.values()) v.dispose();
    this.#disposed = true;
  }

  #checkLive(): void {
    if (this.#disposed) throw new InvalidArgumentError(`${this.name}: the adapters have been disposed`);
  }
}
