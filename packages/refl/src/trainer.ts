/**
 * The PRFL training loop around `prflStep`: builds the run with the paper's defaults, walks a VideoSource
 * epoch by epoch, reports every micro-step's metrics to callbacks (the library prints nothing), and
 * writes and resumes checkpoints that continue bit-identically. The same class trains RGB ReFL
 * (readout 'pixel'), SFT alone (rewardWeight 0) and reward-weighted regression (see presets.ts).
 */
import { InvalidArgumentError, type MemoryReport } from '@prfl/tensor';
import { type DataPosition, loadCheckpoint, type PrflCheckpointState, saveCheckpoint } from './checkpoint.js';
import { disposeVideoBatch } from './data/tensor-source.js';
import type { PrflStepMetrics } from './metrics.js';
import type { PrflOptions } from './options.js';
import { prflStep } from './prfl-step.js';
import { type PrflGradientWorkers, parallelUnsupported, prflStepParallel } from './prfl-step-parallel.js';
import { createPrflRun, disposePrflRun, type PrflComponents, type PrflRun } from './run.js';
import type { VideoBatch, VideoSource } from './types.js';

/** Where training stands: micro-steps taken and the data position. */
export interface TrainingPosition extends DataPosition {
  step: number;
  updates: number;
}

export interface PrflTrainerOptions extends PrflOptions {
  /** Called after every micro-step with its metrics and the position after it. */
  onStep?: (metrics: PrflStepMetrics, position: TrainingPosition) => void;
  /** Called after a checkpoint is written. */
  onCheckpoint?: (state: PrflCheckpointState, dir: string) => void;
  /**
   * Data-parallel training: worker threads holding replicas of the models (Node;
   * `await startPrflWorkers(components, { workers: 2 })` from @prfl/refl/parallel). `fit` then runs steps
   * 2-6 of every micro-step on them, split by videos (equal to one process up to float summation order);
   * `trainStep` still runs here. The caller closes them.
   */
  workers?: PrflGradientWorkers;
}

export interface FitOptions {
  /** Train until this many epochs are complete (counting epochs before a resume). */
  epochs: number;
  batchSize: number;
  /** Shuffle by (seed, epoch). Default true. */
  shuffle?: boolean;
  dropLast?: boolean;
  /** Stop after this many micro-steps in total (counting steps before a resume). */
  maxSteps?: number;
  /** Write a checkpoint here every `checkpointEvery` micro-steps and at the end. */
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Dispose each batch after its step (default true: sources hand out fresh tensors). */
  disposeBatches?: boolean;
  /** Stops the loop between micro-steps (a checkpoint is still written at the end). */
  signal?: AbortSignal;
}

export interface FitResult extends TrainingPosition {
  /** The last micro-step's metrics (undefined when none ran). */
  last?: PrflStepMetrics;
}

/** Trains a generator with PRFL (or RGB ReFL, SFT, RWR) and checkpoints it. */
export class PrflTrainer {
  readonly run: PrflRun;
  readonly options: Readonly<PrflTrainerOptions>;
  #epoch = 0;
  #batchInEpoch = 0;
  /** Seed of the data order (the run's seed, or the checkpoint's after a resume). */
  #seed: number;

  /** @throws InvalidArgumentError for bad options or models (see createPrflRun). */
  constructor(components: PrflComponents, options: PrflTrainerOptions = {}) {
    const { onStep, onCheckpoint, workers, ...runOptions } = options;
    for (const [name, f] of [
      ['onStep', onStep],
      ['onCheckpoint', onCheckpoint],
    ] as const) {
      if (f !== undefined && typeof f !== 'function') {
        throw new InvalidArgumentError(`${name}: expected a function, got ${typeof f}`);
      }
    }
    if (workers !== undefined && typeof workers?.terms !== 'function') {
      throw new InvalidArgumentError(
        'workers: expected the result of startPrflWorkers (@prfl/refl/parallel), with terms()',
      );
    }
    this.run = createPrflRun(components, runOptions);
    if (workers !== undefined) {
      const why = parallelUnsupported(this.run);
      if (why !== null) {
        disposePrflRun(this.run);
        throw new InvalidArgumentError(`workers: ${why} is not available on worker threads`);
      }
    }
    this.options = Object.freeze({ ...options });
    this.#seed = this.run.options.seed;
  }

  get position(): TrainingPosition {
    return {
      step: this.run.microSteps,
      updates: this.run.updates,
      epoch: this.#epoch,
      batchInEpoch: this.#batchInEpoch,
    };
  }

  get seed(): number {
    return this.#seed;
  }

  /** Peak memory and time per phase over the whole run so far. */
  memoryReport(): MemoryReport {
    return this.run.meter.report();
  }

  /** One micro-step on a batch (not disposed here); see `prflStep`. */
  trainStep(batch: VideoBatch): PrflStepMetrics {
    const metrics = prflStep(this.run, batch);
    this.options.onStep?.(metrics, this.position);
    return metrics;
  }

  /**
   * Trains over `source` until `epochs` epochs (or `maxSteps` micro-steps) are complete. After a resume it
   * skips the batches of the current epoch already trained, so the run continues where it stopped.
   */
  async fit(source: VideoSource, options: FitOptions): Promise<FitResult> {
    const { epochs, batchSize } = options ?? ({} as FitOptions);
    if (!Number.isInteger(epochs) || epochs < 0) {
      throw new InvalidArgumentError(`epochs: expected a non-negative integer, got ${String(epochs)}`);
    }
    const every = options.checkpointEvery;
    if (
      every !== undefined &&
      (!Number.isInteger(every) || every < 1 || options.checkpointDir === undefined)
    ) {
      throw new InvalidArgumentError(
        `checkpointEvery: expected a positive integer together with checkpointDir, got ${String(every)}${options.checkpointDir === undefined ? ' and no checkpointDir' : ''}`,
      );
    }
    const maxSteps = options.maxSteps ?? Number.POSITIVE_INFINITY;
    const dispose = options.disposeBatches ?? true;
    let last: PrflStepMetrics | undefined;
    outer: for (; this.#epoch < epochs; this.#epoch++, this.#batchInEpoch = 0) {
      let index = 0;
      const batches = source.batches({
        batchSize,
        seed: this.#seed,
        epoch: this.#epoch,
        shuffle: options.shuffle ?? true,
        dropLast: options.dropLast ?? false,
      });
      for await (const batch of batches) {
        try {
          if (index < this.#batchInEpoch) {
            index++;
            continue;
          }
          if (this.run.microSteps >= maxSteps || options.signal?.aborted) break outer;
          last = this.options.workers
            ? await prflStepParallel(this.run, batch, this.options.workers)
            : prflStep(this.run, batch);
          index++;
          this.#batchInEpoch = index;
          this.options.onStep?.(last, this.position);
          if (every !== undefined && this.run.microSteps % every === 0) {
            await this.saveCheckpoint(options.checkpointDir as string);
          }
        } finally {
          if (dispose) disposeVideoBatch(batch);
        }
      }
    }
    if (options.checkpointDir !== undefined) await this.saveCheckpoint(options.checkpointDir);
    return last ? { ...this.position, last } : this.position;
  }

  /** Writes a checkpoint into `dir` (Node); see checkpoint.ts for the files. */
  async saveCheckpoint(dir: string): Promise<PrflCheckpointState> {
    const state = await saveCheckpoint(this.run, dir, {
      epoch: this.#epoch,
      batchInEpoch: this.#batchInEpoch,
    });
    this.options.onCheckpoint?.(state, dir);
    return state;
  }

  /** Restores a checkpoint written by `saveCheckpoint` into this trainer's run, and its data position. */
  async loadCheckpoint(dir: string): Promise<PrflCheckpointState> {
    const state = await loadCheckpoint(this.run, dir);
    this.#epoch = state.epoch;
    this.#batchInEpoch = state.batchInEpoch;
    this.#seed = state.seed;
    return state;
  }

  /** A trainer on `components` continuing from the checkpoint in `dir`. */
  static async resume(
    dir: string,
    components: PrflComponents,
    options: PrflTrainerOptions = {},
  ): Promise<PrflTrainer> {
    const trainer = new PrflTrainer(components, options);
    try {
      await trainer.loadCheckpoint(dir);
    } catch (e) {
      trainer.dispose();
      throw e;
    }
    return trainer;
  }

  /** Frees the optimizer state, the window and the EMA (not the models). */
  dispose(): void {
    disposePrflRun(this.run);
  }
}
