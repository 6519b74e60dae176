/**
 * Peak tensor memory per phase of a training step, and a leak check for tests.
 *
 * Why not `tf.profile`: it wraps every kernel in the backend's timer (on a backend without one it reads
 * every output back with `dataSync`), records a snapshot object per kernel, samples memory only after
 * kernels (not after `tf.tensor`/variable creation), reports the absolute `numBytes` (not the rise
 * above the start) and cannot nest (an inner `tf.profile` resets the outer one's kernel list and turns
 * profiling off). Instead, while a phase is being measured, the engine's `trackTensor` (the only place
 * its byte count grows) and `removeDataId` (where a buffer is freed) are wrapped by a few lines that
 * update the running peaks: no per-kernel work beyond a compare, exact peaks, nesting and overlap for
 * free, and nothing installed at all while no phase is open.
 *
 * Two byte counts are kept:
 * - `bytes`: tfjs's own `tf.memory().numBytes`, which counts each tensor object, so a reshape or the
 *   clones the tape saves for backward count again although they share the buffer;
 * - `bufferBytes`: distinct data buffers, each counted once: what the backend actually holds.
 * Neither counts a backend's scratch memory inside a kernel or allocator slack (a wasm heap never
 * shrinks); both are what tfjs tracks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, PrflError } from './errors.js';

/** Thrown by {@link assertNoLeak} when tensors or bytes pile up across iterations. */
export class TensorLeakError extends PrflError {
  override name = 'TensorLeakError';
}

interface TensorInfo {
  backend: unknown;
  bytes: number;
  dtype: string;
}

interface EngineInternals {
  state: {
    numBytes: number;
    numTensors: number;
    tensorInfo: { has(id: object): boolean; get(id: object): TensorInfo | undefined };
  };
  trackTensor(a: tf.Tensor, backend: unknown): void;
  removeDataId(dataId: object, backend: unknown): void;
}

interface Frame {
  startBytes: number;
  startTensors: number;
  startBuffer: number;
  peakBytes: number;
  peakBuffer: number;
}

interface HookState {
  frames: Set<Frame>;
  /** Bytes in distinct buffers, relative to when the hook was installed. */
  buffer: number;
  restore: (() => void) | null;
}

// Kept on the engine under a global symbol so that two copies of this module (source and built, in one
// process) share one hook instead of wrapping each other.
const HOOK_KEY = Symbol.for('@prfl/tensor.memory-hook');

function engineInternals(): EngineInternals {
  return tf.engine() as unknown as EngineInternals;
}

function hookState(): HookState {
  const e = engineInternals() as unknown as Record<symbol, HookState | undefined>;
  let h = e[HOOK_KEY];
  if (h === undefined) {
    h = { frames: new Set(), buffer: 0, restore: null };
    e[HOOK_KEY] = h;
  }
  return h;
}

function install(h: HookState): void {
  const e = engineInternals();
  const ownTrack = Object.hasOwn(e, 'trackTensor');
  const ownRemove = Object.hasOwn(e, 'removeDataId');
  const prevTrack = e.trackTensor;
  const prevRemove = e.removeDataId;
  e.trackTensor = function trackTensorMetered(this: EngineInternals, a: tf.Tensor, backend: unknown) {
    const st = this.state;
    const fresh = a.dtype !== 'string' && !st.tensorInfo.has(a.dataId);
    prevTrack.call(this, a, backend);
    if (fresh) h.buffer += st.tensorInfo.get(a.dataId)?.bytes ?? 0;
    const bytes = st.numBytes;
    const buffer = h.buffer;
    for (const f of h.frames) {
      if (bytes > f.peakBytes) f.peakBytes = bytes;
      if (buffer > f.peakBuffer) f.peakBuffer = buffer;
    }
  };
  e.removeDataId = function removeDataIdMetered(this: EngineInternals, dataId: object, backend: unknown) {
    const info = this.state.tensorInfo.get(dataId);
    if (info !== undefined && info.backend === backend && info.dtype !== 'string') h.buffer -= info.bytes;
    prevRemove.call(this, dataId, backend);
  };
  h.restore = () => {
    const target = e as unknown as Record<string, unknown>;
    if (ownTrack) e.trackTensor = prevTrack;
    else delete target.trackTensor;
    if (ownRemove) e.removeDataId = prevRemove;
    else delete target.removeDataId;
  };
}

function openFrame(): Frame {
  const h = hookState();
  if (h.frames.size === 0 && h.restore === null) install(h);
  const st = engineInternals().state;
  const frame: Frame = {
    startBytes: st.numBytes,
    startTensors: st.numTensors,
    startBuffer: h.buffer,
    peakBytes: st.numBytes,
    peakBuffer: h.buffer,
  };
  h.frames.add(frame);
  return frame;
}

/** What one measured call did to tfjs's tensor memory. */
export interface MemorySample {
  /** Highest `tf.memory().numBytes` reached, above the value at the start. */
  peakBytes: number;
  /** Highest bytes in distinct buffers reached, above the start (shared buffers counted once). */
  peakBufferBytes: number;
  /** Highest absolute `tf.memory().numBytes` reached (everything alive, not only this phase's). */
  peakTotalBytes: number;
  /** `numBytes` at the end minus at the start: what the call returned or leaked. */
  retainedBytes: number;
  /** Tensor count at the end minus at the start. */
  retainedTensors: number;
  /** Wall time of the call in milliseconds (for GPU backends, only what the call awaited). */
  ms: number;
}

function closeFrame(frame: Frame, t0: number): MemorySample {
  const h = hookState();
  h.frames.delete(frame);
  if (h.frames.size === 0 && h.restore !== null) {
    h.restore();
    h.restore = null;
    h.buffer = 0;
  }
  const st = engineInternals().state;
  return {
    peakBytes: Math.max(0, frame.peakBytes - frame.startBytes),
    peakBufferBytes: Math.max(0, frame.peakBuffer - frame.startBuffer),
    peakTotalBytes: frame.peakBytes,
    retainedBytes: st.numBytes - frame.startBytes,
    retainedTensors: st.numTensors - frame.startTensors,
    ms: performance.now() - t0,
  };
}

function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return (
    x !== null &&
    (typeof x === 'object' || typeof x === 'function') &&
    typeof (x as { then?: unknown }).then === 'function'
  );
}

/**
 * Runs `fn` (sync, or async: the result is then a promise) and calls `done` with its memory sample, also
 * when it throws. Overlapping async calls each see every allocation made while they are open.
 */
function metered<T>(fn: () => T, done: (sample: MemorySample) => void): T {
  const frame = openFrame();
  const t0 = performance.now();
  let result: T;
  try {
    result = fn();
  } catch (err) {
    done(closeFrame(frame, t0));
    throw err;
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      (value) => {
        done(closeFrame(frame, t0));
        return value;
      },
      (err: unknown) => {
        done(closeFrame(frame, t0));
        throw err;
      },
    ) as T;
  }
  done(closeFrame(frame, t0));
  return result;
}

/** A {@link MemorySample} together with what the measured function returned. */
export interface MemoryMeasurement<T> extends MemorySample {
  result: T;
}

/**
 * Measures one function's peak tensor memory: for comparing two ways of computing the same thing (plain
 * tape against segmented backprop) without setting up a {@link MemoryMeter}. Can be nested.
 */
export function measureMemory<T>(fn: () => Promise<T>): Promise<MemoryMeasurement<T>>;
export function measureMemory<T>(fn: () => T): MemoryMeasurement<T>;
export function measureMemory<T>(fn: () => T): MemoryMeasurement<T> | Promise<MemoryMeasurement<unknown>> {
  let sample: MemorySample | undefined;
  const result = metered(fn, (s) => {
    sample = s;
  });
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then((value) => ({ ...(sample as MemorySample), result: value }));
  }
  return { ...(sample as MemorySample), result };
}

/** Per-phase totals of a {@link MemoryMeter}; plain data, safe to `JSON.stringify`. */
export interface PhaseReport {
  phase: string;
  calls: number;
  /** Highest rise of `tf.memory().numBytes` above the phase's start, over all calls. */
  peakBytes: number;
  /** Highest rise in distinct buffer bytes above the phase's start, over all calls. */
  peakBufferBytes: number;
  /** Highest absolute `tf.memory().numBytes` seen during the phase. */
  peakTotalBytes: number;
  /** Bytes the last call left behind (positive: it returned or leaked tensors). */
  retainedBytes: number;
  /** Tensors the last call left behind. */
  retainedTensors: number;
  totalMs: number;
  meanMs: number;
}

export interface MemoryReport {
  /** The tfjs backend at the time of the report. */
  backend: string;
  enabled: boolean;
  /** In the order the phases were first entered. */
  phases: PhaseReport[];
  /** Highest absolute `tf.memory().numBytes` seen in any phase. */
  peakTotalBytes: number;
}

export interface MemoryMeterOptions {
  /**
   * When false, `measure` only runs the function and times it: nothing is installed in the engine, so a
   * production loop can keep its `measure` calls at no cost. Default true.
   */
  enabled?: boolean;
}

/**
 * Records the peak tensor memory of named phases of a training step (rollout, taped generator step,
 * reward, backward, optimizer) across iterations, so that where a method's memory goes is visible in a
 * report, not only its total. Phases may nest (an outer 'step' around inner phases) and may be async.
 */
export class MemoryMeter {
  readonly enabled: boolean;
  readonly #phases = new Map<string, PhaseReport>();

  constructor(options: MemoryMeterOptions = {}) {
    this.enabled = options.enabled ?? true;
  }

  /**
   * Runs `fn` as one call of `phase` and returns what it returns (a promise for an async `fn`; the phase
   * ends when the promise settles). A throwing `fn` is still recorded.
   */
  measure<T>(phase: string, fn: () => T): T {
    checkPhase(phase);
    if (!this.enabled) {
      const t0 = performance.now();
      const timeOnly = (): void => {
        this.#add(phase, {
          peakBytes: 0,
          peakBufferBytes: 0,
          peakTotalBytes: 0,
          retainedBytes: 0,
          retainedTensors: 0,
          ms: performance.now() - t0,
        });
      };
      let result: T;
      try {
        result = fn();
      } catch (err) {
        timeOnly();
        throw err;
      }
      if (isPromiseLike(result)) {
        return Promise.resolve(result).finally(timeOnly) as T;
      }
      timeOnly();
      return result;
    }
    return metered(fn, (sample) => this.#add(phase, sample));
  }

  /**
   * Starts `phase` for code that is not one function (a loop body split over several statements); call
   * the returned function to end it. Each start must be ended once.
   */
  start(phase: string): () => MemorySample {
    checkPhase(phase);
    const t0 = performance.now();
    const frame = this.enabled ? openFrame() : null;
    let ended = false;
    return () => {
      if (ended) throw new InvalidArgumentError(`phase ${JSON.stringify(phase)}: already ended`);
      ended = true;
      const sample: MemorySample = frame
        ? closeFrame(frame, t0)
        : {
            peakBytes: 0,
            peakBufferBytes: 0,
            peakTotalBytes: 0,
            retainedBytes: 0,
            retainedTensors: 0,
            ms: performance.now() - t0,
          };
      this.#add(phase, sample);
      return sample;
    };
  }

  #add(phase: string, s: MemorySample): void {
    const r = this.#phases.get(phase);
    if (r === undefined) {
      this.#phases.set(phase, {
        phase,
        calls: 1,
        peakBytes: s.peakBytes,
        peakBufferBytes: s.peakBufferBytes,
        peakTotalBytes: s.peakTotalBytes,
        retainedBytes: s.retainedBytes,
        retainedTensors: s.retainedTensors,
        totalMs: s.ms,
        meanMs: s.ms,
      });
      return;
    }
    r.calls++;
    r.peakBytes = Math.max(r.peakBytes, s.peakBytes);
    r.peakBufferBytes = Math.max(r.peakBufferBytes, s.peakBufferBytes);
    r.peakTotalBytes = Math.max(r.peakTotalBytes, s.peakTotalBytes);
    r.retainedBytes = s.retainedBytes;
    r.retainedTensors = s.retainedTensors;
    r.totalMs += s.ms;
    r.meanMs = r.totalMs / r.calls;
  }

  /** The totals so far, as plain data for JSON files and benchmark records. */
  report(): MemoryReport {
    const phases = [...this.#phases.values()].map((p) => ({ ...p }));
    return {
      backend: tf.getBackend() ?? 'none',
      enabled: this.enabled,
      phases,
      peakTotalBytes: phases.reduce((m, p) => Math.max(m, p.peakTotalBytes), 0),
    };
  }

  /** The report as an aligned text table for logs and the CLI. */
  table(): string {
    return formatMemoryTable(this.report());
  }

  toJSON(): MemoryReport {
    return this.report();
  }

  /** Forgets all phases (e.g. after warm-up iterations). */
  reset(): void {
    this.#phases.clear();
  }
}

function checkPhase(phase: unknown): void {
  if (typeof phase !== 'string' || phase.length === 0) {
    throw new InvalidArgumentError(`phase: expected a non-empty string, got ${JSON.stringify(phase)}`);
  }
}

/** Bytes as text with binary units (`1.5 MiB`), signed when negative, for tables and error messages. */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  let v = Math.abs(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${sign}${u === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/**
 * Renders a {@link MemoryReport} as a compact table (one row per phase), so a report saved as JSON can be
 * printed the same way later.
 */
export function formatMemoryTable(report: MemoryReport): string {
  const head = ['phase', 'calls', 'peak +', 'buffers +', 'peak total', 'retained', 'tensors', 'ms/call'];
  const rows = report.phases.map((p) => [
    p.phase,
    String(p.calls),
    report.enabled ? formatBytes(p.peakBytes) : '-',
    report.enabled ? formatBytes(p.peakBufferBytes) : '-',
    report.enabled ? formatBytes(p.peakTotalBytes) : '-',
    report.enabled ? formatBytes(p.retainedBytes) : '-',
    report.enabled ? String(p.retainedTensors) : '-',
    p.meanMs.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [`memory by phase (${report.backend})`, line(head), ...rows.map(line)].join('\n');
}

export interface LeakCheckOptions {
  /** Measured iterations after the warm-up (default 3). */
  iterations?: number;
  /** Iterations run first and not counted: lazy caches, first-call allocations (default 1). */
  warmup?: number;
  /** Dispose whatever tensors `fn` returns, so a function returning its result is not a leak (default true). */
  disposeResult?: boolean;
  /** Names the check in the error message. */
  label?: string;
}

export interface LeakCheckResult {
  /** Tensor count after each measured iteration, minus the count after the warm-up. */
  tensors: number[];
  /** `numBytes` after each measured iteration, minus after the warm-up. */
  bytes: number[];
}

/**
 * Runs `fn` repeatedly and fails if the tensor count or tensor bytes rise from one iteration to the
 * next: a leak of a few tensors per training step is invisible in one call and fatal over thousands.
 * For tests of every package; works with sync and async `fn`.
 *
 * @throws TensorLeakError with the per-iteration counts when anything accumulates.
 */
export async function assertNoLeak(
  fn: () => unknown,
  options: LeakCheckOptions = {},
): Promise<LeakCheckResult> {
  const iterations = options.iterations ?? 3;
  const warmup = options.warmup ?? 1;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new InvalidArgumentError(`iterations: expected a positive integer, got ${String(iterations)}`);
  }
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new InvalidArgumentError(`warmup: expected a non-negative integer, got ${String(warmup)}`);
  }
  const disposeResult = options.disposeResult ?? true;
  const runOnce = async () => {
    const result = await fn();
    if (disposeResult) tf.dispose(result as tf.TensorContainer);
  };
  for (let i = 0; i < warmup; i++) await runOnce();
  const base = tf.memory();
  const tensors: number[] = [];
  const bytes: number[] = [];
  for (let i = 0; i < iterations; i++) {
    await runOnce();
    const m = tf.memory();
    tensors.push(m.numTensors - base.numTensors);
    bytes.push(m.numBytes - base.numBytes);
  }
  if (tensors.some((t) => t > 0) || bytes.some((b) => b > 0)) {
    const label = options.label ? `${options.label}: ` : '';
    throw new TensorLeakError(
      `${label}tensors leak across iterations: after each of ${iterations} iterations the count rose by ${tensors.join(', ')} tensors (${bytes.map(formatBytes).join(', ')}) over the count after warm-up`,
    );
  }
  return { tensors, bytes };
}
