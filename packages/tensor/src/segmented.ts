/**
 * Segmented (checkpointed) backprop for chains of blocks on TensorFlow.js.
 *
 * A model is a chain x_{i+1} = f_i(x_i) (transformer blocks, a scheduler step, a reward head). The plain
 * tape keeps every intermediate of every block alive until the backward pass ends. Here the forward pass
 * keeps only the boundaries x_i (no tape), and the backward pass re-runs one block at a time under a tape
 * seeded with the upstream gradient, so the peak holds one block's intermediates instead of all of them.
 * The gradients are the ones the plain tape computes: the same kernels run on the same values and the
 * upstream gradient enters each block's tape exactly where the whole-chain tape would deliver it.
 *
 * tfjs cannot do this with `tf.customGrad` (a gradient function that calls `tf.grads` crashes the
 * engine), so the chain is driven from outside the tape.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from './errors.js';

/**
 * What flows between segments: one tensor, or a fixed-length list of tensors (for blocks that carry more
 * than one stream, e.g. `[tokens, skip]`). Everything else a segment reads (conditioning, timestep
 * embeddings, weights) is closed over.
 */
export type Activation = tf.Tensor | readonly tf.Tensor[];

/**
 * One block of the chain. It must be deterministic: the backward pass runs it a second time and relies
 * on getting the same values (pass seeded noise in as a closed-over tensor). Segment outputs must be
 * float32, since gradients flow through them.
 */
export type Segment<S extends Activation = tf.Tensor> = (x: S) => S;

/** Gradients of a scalar with respect to variables, by variable name (what `optimizer.applyGradients` takes). */
export type NamedGradients = Record<string, tf.Tensor>;

export interface SegmentBackwardOptions {
  /**
   * The variables to differentiate. Defaults to every trainable registered variable, like
   * `tf.variableGrads`. Variables with `trainable = false` never get gradients; a variable no segment
   * reads is absent from the result.
   */
  variables?: readonly tf.Variable[];
  /** Also return the gradient with respect to the chain's input (default false). */
  inputGradient?: boolean;
}

export interface SegmentedGradientsOptions<S extends Activation = tf.Tensor> extends SegmentBackwardOptions {
  /** The chain, applied in order. */
  segments: ReadonlyArray<Segment<S>>;
  /** The chain's input; owned by the caller (never disposed here). */
  input: S;
  /** Reduces the chain's output to the scalar to differentiate; may read variables too. */
  loss: (output: S) => tf.Scalar;
}

export interface SegmentGradients<S extends Activation = tf.Tensor> {
  /** By variable name; a variable read by several segments (or the loss) gets the sum. The caller disposes them. */
  grads: NamedGradients;
  /** Gradient with respect to the input, shaped like it, when `inputGradient` was asked for. */
  inputGrad?: S;
}

export interface SegmentedGradientsResult<S extends Activation = tf.Tensor> extends SegmentGradients<S> {
  /** The loss; the caller disposes it (reading it is left to the caller so no GPU sync is forced here). */
  value: tf.Scalar;
}

type Grad = tf.Tensor | null;

interface Engine {
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: Array<tf.Tensor | undefined> };
  state: { gradientDepth: number; activeTape: Array<{ saved?: tf.Tensor[] }> | null };
  registeredVariables: Record<string, tf.Variable>;
}

function engine(): Engine {
  return tf.engine() as unknown as Engine;
}

/** `tf.tidy` for results holding tensors next to nulls (tfjs's container type has no room for null). */
function tidy<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}

function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (x instanceof Promise) return 'a Promise (segments must be synchronous)';
  if (isTensor(x)) return `a ${x.dtype} tensor of shape ${formatShape(x.shape)}`;
  return `a value of type ${typeof x}`;
}

/** The structure of the activations: a single tensor, or a list of `length` tensors. */
export interface Structure {
  list: boolean;
  length: number;
}

function structureOf(input: unknown, what: string): Structure {
  if (isTensor(input)) return { list: false, length: 1 };
  if (Array.isArray(input) && input.length > 0 && input.every(isTensor)) {
    return { list: true, length: input.length };
  }
  throw new InvalidArgumentError(
    `${what}: expected a tf.Tensor or a non-empty array of tf.Tensors, got ${describeValue(input)}`,
  );
}

function toList(x: Activation): tf.Tensor[] {
  // Anything else is wrapped as is, for the caller's checks to name it.
  return isTensor(x) ? [x] : Array.isArray(x) ? [...x] : [x as unknown as tf.Tensor];
}

function fromList<S extends Activation>(list: readonly tf.Tensor[], structure: Structure): S {
  return (structure.list ? [...list] : list[0]) as S;
}

/** Checks a segment's output against the chain's structure; returns it as a list. */
function checkOutput(out: unknown, structure: Structure, index: number): tf.Tensor[] {
  const what = `segment ${index}`;
  if (structure.list) {
    if (!Array.isArray(out) || out.length !== structure.length || !out.every(isTensor)) {
      throw new InvalidArgumentError(
        `${what}: expected it to return an array of ${structure.length} tf.Tensors (like its input), got ${describeValue(out)}`,
      );
    }
  } else if (!isTensor(out)) {
    throw new InvalidArgumentError(`${what}: expected it to return a tf.Tensor, got ${describeValue(out)}`);
  }
  const list = toList(out as Activation);
  list.forEach((t, j) => {
    if (t.isDisposed) {
      throw new InvalidArgumentError(
        `${what}: returned a disposed tensor${structure.list ? ` at ${j}` : ''}`,
      );
    }
    if (t.dtype !== 'float32') {
      throw new InvalidArgumentError(
        `${what}: returned a ${t.dtype} tensor${structure.list ? ` at ${j}` : ''}; segment outputs carry gradients and must be float32`,
      );
    }
  });
  return list;
}

function checkSegments(segments: unknown): void {
  if (!Array.isArray(segments) || segments.length === 0) {
    throw new InvalidArgumentError(
      `segments: expected a non-empty array of functions, got ${Array.isArray(segments) ? 'an empty array' : describeValue(segments)}`,
    );
  }
  segments.forEach((s, i) => {
    if (typeof s !== 'function') {
      throw new InvalidArgumentError(`segment ${i}: expected a function, got ${describeValue(s)}`);
    }
  });
}

function resolveVariables(variables: readonly tf.Variable[] | undefined): tf.Variable[] {
  if (variables === undefined) {
    return Object.values(engine().registeredVariables).filter((v) => v.trainable);
  }
  if (!Array.isArray(variables)) {
    throw new InvalidArgumentError(
      `variables: expected an array of tf.Variable, got ${describeValue(variables)}`,
    );
  }
  const seen = new Set<string>();
  const out: tf.Variable[] = [];
  variables.forEach((v, i) => {
    if (!(v instanceof tf.Variable)) {
      throw new InvalidArgumentError(`variables[${i}]: expected a tf.Variable, got ${describeValue(v)}`);
    }
    if (v.trainable && !seen.has(v.name)) {
      seen.add(v.name);
      out.push(v);
    }
  });
  return out;
}

/**
 * Runs `f` under a fresh tape and backpropagates `dy` (or 1 for a scalar) to `xs`. On an error, frees the
 * tensors the tape had saved (tfjs leaves them behind when `f` throws).
 */
function taped(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor | undefined) {
  const e = engine();
  try {
    return e.gradients(f, xs, dy, true);
  } catch (err) {
    if (e.state.gradientDepth === 0 && e.state.activeTape) {
      for (const node of e.state.activeTape) for (const t of node.saved ?? []) t.dispose();
      e.state.activeTape = null;
    }
    throw err;
  }
}

/**
 * Makes every returned tensor a distinct object that is not one of `notOwned`, so that the caller can
 * dispose each exactly once (tfjs returns the same object for an input that appears twice, and returns
 * `dy` itself for a segment that passes its input through).
 */
function ownDistinct(grads: Grad[], notOwned: readonly Grad[]): Grad[] {
  const seen = new Set<tf.Tensor>();
  for (const t of notOwned) if (t) seen.add(t);
  return grads.map((g) => {
    if (!g) return null;
    const own = seen.has(g) ? tf.clone(g) : g;
    seen.add(own);
    return own;
  });
}

function addInto(acc: Map<string, tf.Tensor>, name: string, g: tf.Tensor): void {
  const prev = acc.get(name);
  if (prev === undefined) {
    acc.set(name, g);
    return;
  }
  // Same order as the whole-chain tape: the later segment's contribution first.
  const sum = tf.add(prev, g);
  prev.dispose();
  g.dispose();
  acc.set(name, sum);
}

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The boundaries a segmented forward pass kept, for the backward pass to re-run each segment from.
 * Returned by {@link segmentedForward}; consumed by {@link backwardThroughSegments}.
 */
export class SegmentCheckpoints<S extends Activation = tf.Tensor> {
  /** The chain's output. Owned by the caller: dispose it when done (the backward pass does not). */
  readonly output: S;
  readonly numSegments: number;
  /** @internal boundaries[i] is the input of segment i (as a list); boundaries[n] is the output. */
  readonly boundaries: tf.Tensor[][];
  /** @internal */
  readonly segments: ReadonlyArray<Segment<S>>;
  /** @internal */
  readonly structure: Structure;
  /** @internal tensors this object disposes, with the first boundary index they appear at. */
  readonly owned: Map<tf.Tensor, number>;
  #consumed = false;

  /** @internal use {@link segmentedForward}. */
  constructor(
    segments: ReadonlyArray<Segment<S>>,
    structure: Structure,
    boundaries: tf.Tensor[][],
    owned: Map<tf.Tensor, number>,
  ) {
    this.segments = segments;
    this.structure = structure;
    this.boundaries = boundaries;
    this.owned = owned;
    this.numSegments = segments.length;
    this.output = fromList<S>(boundaries[boundaries.length - 1] as tf.Tensor[], structure);
  }

  /** True once the backward pass ran (or `dispose` was called); the boundaries are gone then. */
  get consumed(): boolean {
    return this.#consumed;
  }

  /** Bytes held by the saved inner boundaries (not counting the input and the output). */
  get savedBytes(): number {
    let bytes = 0;
    for (const t of this.owned.keys()) if (!t.isDisposed) bytes += t.size * 4;
    return bytes;
  }

  /** @internal marks the checkpoints as used; throws if they already were. */
  consume(): void {
    if (this.#consumed) {
      throw new InvalidArgumentError(
        'checkpoints: already consumed (backwardThroughSegments runs once per segmentedForward)',
      );
    }
    this.#consumed = true;
  }

  /** Frees the saved boundaries without a backward pass (an error path, an evaluation-only forward). Idempotent. */
  dispose(): void {
    this.#consumed = true;
    for (const t of this.owned.keys()) t.dispose();
    this.owned.clear();
  }
}

/**
 * Runs the chain without a tape, keeping only the segment boundaries, so the backward pass can later
 * re-run one segment at a time. Use it with {@link backwardThroughSegments} when the gradient of the
 * output comes from elsewhere (a reward model's gradient in a PRFL step); {@link segmentedGradients}
 * does both for a scalar loss.
 *
 * Do not call it under an enclosing `tf.grads`/`tf.variableGrads`: the forward pass would then be taped.
 *
 * @throws InvalidArgumentError for empty `segments`, a non-function segment, or a segment whose output is
 * not a float32 tensor (or list of the input's length); the message names the segment index.
 */
export function segmentedForward<S extends Activation = tf.Tensor>(
  segments: ReadonlyArray<Segment<S>>,
  input: S,
): SegmentCheckpoints<S> {
  return forward(segments, input, false);
}

function forward<S extends Activation>(
  segments: ReadonlyArray<Segment<S>>,
  input: S,
  ownOutput: boolean,
): SegmentCheckpoints<S> {
  checkSegments(segments);
  const structure = structureOf(input, 'input');
  const inputList = toList(input);
  inputList.forEach((t, j) => {
    if (t.isDisposed) throw new InvalidArgumentError(`input${structure.list ? `[${j}]` : ''}: is disposed`);
  });
  // Tensor ids grow monotonically: anything with a larger id than this probe was made by the segments
  // (a segment may also return a closed-over tensor, which is not ours to free).
  const probe = tf.scalar(0);
  const firstNewId = probe.id;
  probe.dispose();
  const boundaries: tf.Tensor[][] = [inputList];
  const created = new Set<tf.Tensor>();
  try {
    segments.forEach((segment, i) => {
      const prev = boundaries[i] as tf.Tensor[];
      const out = tf.tidy(() => checkOutput(segment(fromList<S>(prev, structure)), structure, i));
      for (const t of out) if (t.id > firstNewId) created.add(t);
      boundaries.push(out);
    });
  } catch (err) {
    for (const t of created) t.dispose();
    throw err;
  }
  // The input (and, from segmentedForward, the output) belong to the caller; the other boundaries made
  // here belong to the checkpoints, each freed once the backward pass is past its first appearance.
  const callerOwned = new Set<tf.Tensor>(inputList);
  if (!ownOutput) for (const t of boundaries[segments.length] as tf.Tensor[]) callerOwned.add(t);
  const owned = new Map<tf.Tensor, number>();
  for (let i = 1; i <= segments.length; i++) {
    for (const t of boundaries[i] as tf.Tensor[]) {
      if (created.has(t) && !callerOwned.has(t) && !owned.has(t)) owned.set(t, i);
    }
  }
  return new SegmentCheckpoints<S>(segments, structure, boundaries, owned);
}

function checkDy(dy: unknown, checkpoints: SegmentCheckpoints<Activation>): Grad[] {
  const structure = checkpoints.structure;
  const output = checkpoints.boundaries[checkpoints.numSegments] as tf.Tensor[];
  let list: unknown[];
  if (structure.list) {
    if (!Array.isArray(dy) || dy.length !== structure.length) {
      throw new InvalidArgumentError(
        `dy: expected an array of ${structure.length} tensors (or nulls) like the output, got ${describeValue(dy)}`,
      );
    }
    list = dy;
  } else {
    list = [dy];
  }
  return list.map((g, j) => {
    const where = structure.list ? `dy[${j}]` : 'dy';
    if (g === null || g === undefined) {
      if (!structure.list)
        throw new InvalidArgumentError(`dy: expected a tf.Tensor, got ${describeValue(g)}`);
      return null;
    }
    if (!isTensor(g))
      throw new InvalidArgumentError(`${where}: expected a tf.Tensor, got ${describeValue(g)}`);
    const out = output[j] as tf.Tensor;
    if (!shapesEqual(g.shape, out.shape) || g.dtype !== 'float32') {
      throw new InvalidArgumentError(
        `${where}: expected a float32 tensor of the output's shape ${formatShape(out.shape)}, got ${g.dtype} ${formatShape(g.shape)}`,
      );
    }
    return g;
  });
}

/**
 * The backward pass proper: walks the segments from last to first, each re-run under its own tape with
 * the upstream gradient. `dy` is borrowed (never disposed); `acc` collects variable gradients.
 */
function backwardCore(
  checkpoints: SegmentCheckpoints<Activation>,
  dyIn: Grad[],
  variables: tf.Variable[],
  inputGradient: boolean,
  acc: Map<string, tf.Tensor>,
): Grad[] {
  const { boundaries, segments, structure, owned } = checkpoints;
  let dy: Grad[] = dyIn;
  let dyOwned = false;
  const releaseDy = () => {
    if (dyOwned) for (const g of dy) g?.dispose();
  };
  try {
    for (let i = segments.length - 1; i >= 0; i--) {
      const xs = boundaries[i] as tf.Tensor[];
      const expected = boundaries[i + 1] as tf.Tensor[];
      const wantInput = i > 0 || inputGradient;
      // Differentiate w.r.t. the float inputs of this segment (those can carry gradients) and the variables.
      const inputSlots = wantInput ? xs.map((t) => t.dtype === 'float32') : xs.map(() => false);
      const live = dy.filter((g): g is tf.Tensor => g !== null);
      let next: Grad[];
      if (live.length === 0 || (!inputSlots.some(Boolean) && variables.length === 0)) {
        // Nothing flows into this segment (or nothing is wanted from it): skip the recompute.
        next = xs.map(() => null);
      } else {
        const segment = segments[i] as Segment<Activation>;
        const targets = [...xs.filter((_, j) => inputSlots[j]), ...variables];
        const single = live.length === 1 ? dy.findIndex((g) => g !== null) : -1;
        const result = tidy(() => {
          const f = () => {
            const recomputed = toList(segment(fromList(xs, structure)) as Activation);
            // Checked before any gradient flows: a shape change means the recompute is not the forward pass.
            if (
              recomputed.length !== expected.length ||
              recomputed.some(
                (y, j) => !isTensor(y) || !shapesEqual(y.shape, (expected[j] as tf.Tensor).shape),
              )
            ) {
              throw new InvalidArgumentError(
                `segment ${i}: returned ${recomputed.map((y) => (isTensor(y) ? formatShape(y.shape) : describeValue(y))).join(', ')} when re-run in the backward pass but ${expected.map((y) => formatShape(y.shape)).join(', ')} in the forward pass; segments must be deterministic`,
              );
            }
            if (single >= 0) return recomputed[single] as tf.Tensor;
            // Several outputs carry gradients: sum_j <y_j, dy_j> has gradient exactly dy_j at y_j.
            let total: tf.Tensor | null = null;
            recomputed.forEach((y, j) => {
              const g = dy[j];
              if (!g) return;
              const term = tf.sum(tf.mul(y, g));
              total = total === null ? term : tf.add(total, term);
            });
            return total as unknown as tf.Tensor;
          };
          const { grads } = taped(f, targets, single >= 0 ? (dy[single] as tf.Tensor) : undefined);
          return ownDistinct(
            grads.map((g) => g ?? null),
            dy,
          );
        });
        let k = 0;
        next = xs.map((_, j) => (inputSlots[j] ? (result[k++] ?? null) : null));
        variables.forEach((v, j) => {
          const g = result[k + j];
          if (g) addInto(acc, v.name, g);
        });
      }
      releaseDy();
      dy = next;
      dyOwned = true;
      // Boundary i is no longer needed by anyone once segment i has been differentiated.
      for (const t of xs) {
        if (owned.get(t) === i) {
          t.dispose();
          owned.delete(t);
        }
      }
    }
    return dy;
  } catch (err) {
    releaseDy();
    throw err;
  }
}

function finishInputGrad<S extends Activation>(checkpoints: SegmentCheckpoints<Activation>, dx: Grad[]): S {
  const input = checkpoints.boundaries[0] as tf.Tensor[];
  const list = input.map((x, j) => {
    const g = dx[j];
    if (g) return g;
    return tf.zeros(x.shape, 'float32');
  });
  return fromList<S>(list, checkpoints.structure);
}

function checkInputGradient(checkpoints: SegmentCheckpoints<Activation>): void {
  (checkpoints.boundaries[0] as tf.Tensor[]).forEach((x, j) => {
    if (x.dtype !== 'float32') {
      throw new InvalidArgumentError(
        `inputGradient: the input${checkpoints.structure.list ? `[${j}]` : ''} is ${x.dtype}; only float32 inputs have gradients`,
      );
    }
  });
}

/**
 * Backpropagates an upstream gradient `dy` (same structure and shapes as `checkpoints.output`) through
 * the chain, re-running one segment at a time. This is the entry point when the output's gradient comes
 * from something outside the chain, such as a frozen reward model in a PRFL step.
 *
 * Consumes the checkpoints (their inner boundaries are freed as the pass goes). `dy`, the input and the
 * output stay the caller's. For list-valued chains, a `null` entry in `dy` means no gradient flows there.
 *
 * @throws InvalidArgumentError when `dy` does not match the output, when the checkpoints were already
 * used, or when a segment re-run returns other shapes than in the forward pass (segment index named).
 */
export function backwardThroughSegments<S extends Activation = tf.Tensor>(
  checkpoints: SegmentCheckpoints<S>,
  dy: S | ReadonlyArray<tf.Tensor | null>,
  options: SegmentBackwardOptions = {},
): SegmentGradients<S> {
  if (!(checkpoints instanceof SegmentCheckpoints)) {
    throw new InvalidArgumentError(
      `checkpoints: expected the result of segmentedForward, got ${describeValue(checkpoints)}`,
    );
  }
  const ck = checkpoints as unknown as SegmentCheckpoints<Activation>;
  const dyList = checkDy(dy, ck);
  const variables = resolveVariables(options.variables);
  const inputGradient = options.inputGradient ?? false;
  if (inputGradient) checkInputGradient(ck);
  ck.consume();
  const acc = new Map<string, tf.Tensor>();
  try {
    const dx = backwardCore(ck, dyList, variables, inputGradient, acc);
    const result: SegmentGradients<S> = { grads: Object.fromEntries(acc) };
    if (inputGradient) result.inputGrad = finishInputGrad<S>(ck, dx);
    else for (const g of dx) g?.dispose();
    return result;
  } catch (err) {
    for (const g of acc.values()) g.dispose();
    throw err;
  } finally {
    ck.dispose();
  }
}

/**
 * Gradients of `loss(chain(input))` with the memory of one segment's tape instead of the whole chain's:
 * the drop-in replacement for `tf.variableGrads` over a deep stack of blocks. The results match the
 * plain tape's (same kernels on the same values).
 *
 * @throws InvalidArgumentError for empty `segments`, a segment returning something other than a float32
 * tensor of the chain's structure (segment index named), or a loss that is not a scalar tensor.
 */
export function segmentedGradients<S extends Activation = tf.Tensor>(
  options: SegmentedGradientsOptions<S>,
): SegmentedGradientsResult<S> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`options: expected an object, got ${describeValue(options)}`);
  }
  const { segments, input, loss } = options;
  if (typeof loss !== 'function') {
    throw new InvalidArgumentError(`loss: expected a function, got ${describeValue(loss)}`);
  }
  const inputGradient = options.inputGradient ?? false;
  const checkpoints = forward<S>(segments, input, true);
  const ck = checkpoints as unknown as SegmentCheckpoints<Activation>;
  const n = ck.numSegments;
  const output = ck.boundaries[n] as tf.Tensor[];
  const acc = new Map<string, tf.Tensor>();
  let value: tf.Tensor | undefined;
  try {
    // Resolved after the forward pass, so variables a segment creates on its first call are included.
    const variables = resolveVariables(options.variables);
    if (inputGradient) checkInputGradient(ck);
    const lossResult = tidy(() => {
      const { value: v, grads } = taped(
        () => {
          const l = loss(fromList<S>(output, ck.structure));
          if (!isTensor(l)) {
            throw new InvalidArgumentError(
              `loss: expected it to return a scalar tf.Tensor, got ${describeValue(l)}`,
            );
          }
          return l;
        },
        [...output, ...variables],
        undefined,
      );
      if (v.rank !== 0) {
        throw new InvalidArgumentError(
          `loss: expected a scalar (rank 0) from the output of segment ${n - 1}, got shape ${formatShape(v.shape)}`,
        );
      }
      // A loss that returns the (scalar) output itself still hands the caller a tensor of its own.
      const [ownValue, ...ownGrads] = ownDistinct([v, ...grads.map((g) => g ?? null)], output);
      return { value: ownValue as tf.Tensor, grads: ownGrads };
    });
    value = lossResult.value;
    const dyOut = lossResult.grads.slice(0, output.length);
    variables.forEach((v, j) => {
      const g = lossResult.grads[output.length + j];
      if (g) addInto(acc, v.name, g);
    });
    // The output is not needed by the backward pass (it re-runs the last segment), except a tensor that is
    // also an earlier boundary (a passed-through stream): that one stays until its first segment is done.
    for (const [t, first] of ck.owned) {
      if (first === n) {
        t.dispose();
        ck.owned.delete(t);
      }
    }
    ck.consume();
    let dx: Grad[];
    try {
      dx = backwardCore(ck, dyOut, variables, inputGradient, acc);
    } finally {
      for (const g of dyOut) g?.dispose();
    }
    const result: SegmentedGradientsResult<S> = { value: value as tf.Scalar, grads: Object.fromEntries(acc) };
    if (inputGradient) result.inputGrad = finishInputGrad<S>(ck, dx);
    else for (const g of dx) g?.dispose();
    return result;
  } catch (err) {
    value?.dispose();
    for (const g of acc.values()) g.dispose();
    throw err;
  } finally {
    ck.dispose();
  }
}
