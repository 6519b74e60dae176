/**
 * The PAVRM training loop around `pavrmTrainStep`: builds AdamW with the paper's parameter groups, walks
 * a PreferenceSource epoch by epoch, reports per-step metrics, and writes and resumes checkpoints that
 * continue bit-identically (weights, optimizer moments, noise-generator position, data position).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  AdamW,
  type AdamWParamGroup,
  CorruptFileError,
  formatShape,
  Generator,
  type GeneratorState,
  InvalidArgumentError,
  type LatentRewardModel,
  loadSafetensors,
  type PairwiseBatch,
  type PointwiseBatch,
  type PreferenceSource,
  removeStaleTempFiles,
  saveSafetensors,
  type Trainable,
} from '@prfl/tensor';
import { Pavrm } from '../model/pavrm.js';
import { REFERENCE_SIGMA_SAMPLER, type SigmaSampler } from '../sigma-sampling.js';
import { ensureDir, nodeFs, nodePath, readText, writeTextAtomic } from '../util/node-fs.js';
import { disposeBatch } from './batch.js';
import {
  type PavrmGradientWorkers,
  type PavrmStepMetrics,
  type PavrmTrainRun,
  pavrmTrainStep,
  pavrmTrainStepParallel,
} from './train-step.js';

/** Hyperparameters of PAVRM training. Defaults are the paper's (docs/method.md §4). */
export interface PavrmTrainerOptions {
  /** Learning rate of the aggregation and MLP head. Paper: 1e-5. */
  lrHead?: number;
  /** Learning rate of the backbone's trainable blocks. Paper: 1e-6. */
  lrBackbone?: number;
  /** AdamW decoupled weight decay. Paper: 0.01. */
  weightDecay?: number;
  betas?: readonly [number, number];
  eps?: number;
  /** Global gradient-norm clip; null for none. Default 1.0 (the reference's). */
  maxGradNorm?: number | null;
  /** How training noise levels are drawn. Default the reference's uniform index on the shift-5 grid. */
  sigmaSampler?: SigmaSampler;
  /** Seed of the training noise and of the data order. Default 0. */
  seed?: number;
  /** Learning-rate factor per step (default constant 1). */
  lrSchedule?: (step: number) => number;
  /** Train only the head (the backbone's variables get no gradient). Default false. */
  freezeBackbone?: boolean;
  /** Called after every step with its metrics and the data position. */
  onStep?: (metrics: PavrmStepMetrics, position: TrainingPosition) => void;
  /**
   * Data-parallel training: worker threads holding replicas of the reward (Node;
   * `await startPavrmWorkers(reward, { workers: 2 })` from @prfl/reward/parallel). `fit` then splits
   * every batch over them and sums their gradients (equal to one process up to float summation order);
   * `trainStep` still runs here. The caller closes them.
   */
  workers?: PavrmGradientWorkers;
}

/** Where training stands: steps taken, current epoch, batches of it already trained. */
export interface TrainingPosition {
  step: number;
  epoch: number;
  batchInEpoch: number;
}

export interface FitOptions {
  /** Train until this many epochs are complete (counting epochs before a resume). */
  epochs: number;
  batchSize: number;
  /** Default true (shuffle by seed and epoch). */
  shuffle?: boolean;
  dropLast?: boolean;
  /** Stop after this many optimizer steps in total (counting steps before a resume). */
  maxSteps?: number;
  /** Write a checkpoint here every `checkpointEvery` steps and at the end. */
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Dispose each batch after its step (default true: sources hand out fresh tensors). */
  disposeBatches?: boolean;
  /**
   * Stops before the next step once aborted (Ctrl-C), writing the checkpoint (with checkpointDir) so that
   * a resumed run continues exactly where this one stopped.
   */
  signal?: AbortSignal;
}

export interface FitResult extends TrainingPosition {
  /** The last step's metrics (undefined when no step ran). */
  last?: PavrmStepMetrics;
}

/** The JSON written beside the weights of a training checkpoint. */
export interface PavrmCheckpointState extends TrainingPosition {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  seed: number;
  noise: GeneratorState;
  files: { model: string; optimizer: string };
  /** The trainer's hyperparameters at save time (configuration, for the record; not restored). */
  options: Record<string, unknown>;
  /** The reward model's architecture when it is a Pavrm. */
  reward?: Record<string, unknown>;
  savedAt: string;
}

export const CHECKPOINT_FORMAT = 'prfl-reward-checkpoint';
export const CHECKPOINT_FILE = 'checkpoint.json';

/** What `PavrmTrainer` trains: any latent reward model whose variables have stable names. */
export type TrainableReward = LatentRewardModel & Trainable;

/** Trains a PAVRM (or any trainable LatentRewardModel, e.g. the pixel reward) with BCE or Bradley-Terry. */
export class PavrmTrainer {
  readonly reward: TrainableReward;
  readonly options: Readonly<PavrmTrainerOptions>;
  readonly #run: PavrmTrainRun;
  /** Stable name -> variable and variable.name -> stable name, for checkpoints. */
  readonly #byStable: Map<string, tf.Variable>;
  readonly #stableOf: Map<string, string>;
  #seed: number;
  #epoch = 0;
  #batchInEpoch = 0;

  /**
   * @throws InvalidArgumentError for bad hyperparameters or a model with nothing to train.
   */
  constructor(reward: TrainableReward, options: PavrmTrainerOptions = {}) {
    if (
      reward === null ||
      typeof reward?.score !== 'function' ||
      typeof reward?.namedVariables !== 'function'
    ) {
      throw new InvalidArgumentError(
        'PavrmTrainer: reward must implement LatentRewardModel and Trainable (score, namedVariables)',
      );
    }
    this.reward = reward;
    this.options = Object.freeze({ ...options });
    if (options.workers !== undefined && typeof options.workers?.gradients !== 'function') {
      throw new InvalidArgumentError(
        'workers: expected the result of startPavrmWorkers (@prfl/reward/parallel), with gradients()',
      );
    }
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed))
      throw new InvalidArgumentError(`seed: expected a safe integer, got ${String(seed)}`);
    this.#seed = seed;
    const lrHead = options.lrHead ?? 1e-5;
    const lrBackbone = options.lrBackbone ?? 1e-6;

    // Parameter groups: the backbone's trainable blocks at 1e-6, aggregation + head at 1e-5 (paper). Frozen
    // variables (variable.trainable false, e.g. the generator's embeddings) are in no group.
    const groups: AdamWParamGroup[] = [];
    if (reward instanceof Pavrm) {
      const { backbone, head } = reward.trainableVariables();
      if (backbone.length > 0 && !options.freezeBackbone)
        groups.push({ name: 'backbone', params: backbone, lr: lrBackbone });
      if (head.length > 0) groups.push({ name: 'head', params: head, lr: lrHead });
    } else {
      const params = [...reward.namedVariables().values()].filter((v) => v.trainable);
      if (params.length > 0) groups.push({ name: 'model', params, lr: lrHead });
    }
    if (groups.length === 0)
      throw new InvalidArgumentError('PavrmTrainer: the reward model has no trainable variables');
    const optimizer = new AdamW(groups, {
      weightDecay: options.weightDecay ?? 0.01,
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-8,
    });
    const maxGradNorm = options.maxGradNorm === undefined ? 1 : options.maxGradNorm;
    this.#run = {
      reward,
      variables: groups.flatMap((g) => [...g.params]),
      optimizer,
      noise: new Generator(`pavrm-noise/${seed}`),
      sigmaSampler: options.sigmaSampler ?? REFERENCE_SIGMA_SAMPLER,
      maxGradNorm,
      step: 0,
      baseLearningRates: groups.map((g) => g.lr as number),
      ...(options.lrSchedule ? { lrSchedule: options.lrSchedule } : {}),
    };
    this.#byStable = new Map(reward.namedVariables());
    this.#stableOf = new Map([...this.#byStable].map(([stable, v]) => [v.name, stable]));
  }

  /** Optimizer steps taken. */
  get step(): number {
    return this.#run.step;
  }

  get position(): TrainingPosition {
    return { step: this.#run.step, epoch: this.#epoch, batchInEpoch: this.#batchInEpoch };
  }

  get seed(): number {
    return this.#seed;
  }

  get optimizer(): AdamW {
    return this.#run.optimizer;
  }

  /** One training step on a batch (not disposed here); see `pavrmTrainStep`. */
  trainStep(batch: PointwiseBatch | PairwiseBatch): PavrmStepMetrics {
    const metrics = pavrmTrainStep(this.#run, batch);
    this.options.onStep?.(metrics, this.position);
    return metrics;
  }

  /**
   * Trains over `source` until `epochs` epochs (or `maxSteps` steps) are complete. After a resume it skips
   * the batches of the current epoch already trained, so the run continues where it stopped.
   */
  async fit(
    source: PreferenceSource<PointwiseBatch> | PreferenceSource<PairwiseBatch>,
    options: FitOptions,
  ): Promise<FitResult> {
    const { epochs, batchSize } = options;
    if (!Number.isInteger(epochs) || epochs < 0)
      throw new InvalidArgumentError(`epochs: expected a non-negative integer, got ${String(epochs)}`);
    const every = options.checkpointEvery;
    if (
      every !== undefined &&
      (!Number.isInteger(every) || every < 1 || options.checkpointDir === undefined)
    ) {
      throw new InvalidArgumentError(
        `checkpointEvery: expected a positive integer together with checkpointDir, got ${String(every)}`,
      );
    }
    const maxSteps = options.maxSteps ?? Number.POSITIVE_INFINITY;
    const dispose = options.disposeBatches ?? true;
    let last: PavrmStepMetrics | undefined;
    outer: for (; this.#epoch < epochs; this.#epoch++, this.#batchInEpoch = 0) {
      let index = 0;
      const batches = (source as PreferenceSource<PointwiseBatch | PairwiseBatch>).batches({
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
          if (this.#run.step >= maxSteps || options.signal?.aborted) break outer;
          last = this.options.workers
            ? await pavrmTrainStepParallel(this.#run, batch, this.options.workers)
            : pavrmTrainStep(this.#run, batch);
          index++;
          this.#batchInEpoch = index;
          this.options.onStep?.(last, this.position);
          if (every !== undefined && this.#run.step % every === 0) {
            await this.saveCheckpoint(options.checkpointDir as string);
          }
        } finally {
          if (dispose) disposeBatch(batch);
        }
      }
    }
    if (options.checkpointDir !== undefined) await this.saveCheckpoint(options.checkpointDir);
    return last ? { ...this.position, last } : this.position;
  }

  /**
   * Writes a checkpoint into `dir` (Node): the model's variables and the optimizer state as safetensors
   * under stable names (each file written atomically), then checkpoint.json (temp + rename) naming them;
   * older weight files of the folder are removed after that. A crash at any point leaves the previous
   * checkpoint loadable. Temporary files that a killed earlier save left behind are removed first (only
   * @prfl/tensor's writeFileAtomic temporaries whose writer process is gone).
   */
  async saveCheckpoint(dir: string): Promise<PavrmCheckpointState> {
    await ensureDir(dir);
    await removeStaleTempFiles(dir);
    const path = await nodePath();
    const tag = String(this.#run.step).padStart(8, '0');
    const files = { model: `model-${tag}.safetensors`, optimizer: `optimizer-${tag}.safetensors` };
    await saveSafetensors(path.join(dir, files.model), this.#byStable, {
      metadata: { format: CHECKPOINT_FORMAT, layout: 'tfjs' },
    });
    const optimizerState = this.#run.optimizer.stateDict();
    try {
      const renamed: Record<string, tf.Tensor> = {};
      for (const [key, t] of Object.entries(optimizerState)) renamed[this.#stableKey(key)] = t;
      await saveSafetensors(path.join(dir, files.optimizer), renamed, {
        metadata: { format: CHECKPOINT_FORMAT },
      });
    } finally {
      tf.dispose(Object.values(optimizerState));
    }
    const o = this.options;
    const state: PavrmCheckpointState = {
      format: CHECKPOINT_FORMAT,
      version: 1,
      ...this.position,
      seed: this.#seed,
      noise: this.#run.noise.getState(),
      files,
      options: {
        lrHead: o.lrHead ?? 1e-5,
        lrBackbone: o.lrBackbone ?? 1e-6,
        weightDecay: o.weightDecay ?? 0.01,
        maxGradNorm: this.#run.maxGradNorm,
        sigmaSampler: this.#run.sigmaSampler,
        freezeBackbone: o.freezeBackbone ?? false,
      },
      ...(this.reward instanceof Pavrm ? { reward: { ...this.reward.config } } : {}),
      savedAt: new Date().toISOString(),
    };
    await writeTextAtomic(path.join(dir, CHECKPOINT_FILE), `${JSON.stringify(state, null, 2)}\n`);
    const fs = await nodeFs();
    for (const name of await fs.readdir(dir)) {
      if (
        /^(model|optimizer)-\d{8}\.safetensors$/.test(name) &&
        name !== files.model &&
        name !== files.optimizer
      ) {
        await fs.rm(path.join(dir, name), { force: true });
      }
    }
    return state;
  }

  /**
   * Restores a checkpoint written by `saveCheckpoint` into this trainer's model and optimizer: weights,
   * AdamW moments and step counts, the noise generator's position, the seed and the data position.
   * Everything is checked before anything is assigned. Stale temporary files of a killed save are
   * removed from the folder, as saveCheckpoint does.
   * @throws CorruptFileError for a missing or malformed checkpoint.json; InvalidArgumentError when the
   *   saved variables do not match the model (names listed) or a shape differs.
   */
  async loadCheckpoint(dir: string): Promise<PavrmCheckpointState> {
    await removeStaleTempFiles(dir);
    const path = await nodePath();
    const file = path.join(dir, CHECKPOINT_FILE);
    let state: PavrmCheckpointState;
    try {
      state = JSON.parse(await readText(file)) as PavrmCheckpointState;
    } catch (e) {
      throw new CorruptFileError(`${file}: not a checkpoint (${(e as Error).message})`);
    }
    if (
      state?.format !== CHECKPOINT_FORMAT ||
      state.version !== 1 ||
      typeof state.files?.model !== 'string'
    ) {
      throw new CorruptFileError(
        `${file}: expected format '${CHECKPOINT_FORMAT}' version 1, got ${JSON.stringify(state?.format)} ${String(state?.version)}`,
      );
    }
    for (const k of ['step', 'epoch', 'batchInEpoch', 'seed'] as const) {
      if (!Number.isSafeInteger(state[k]) || (state[k] as number) < 0) {
        throw new CorruptFileError(`${file}: '${k}' must be a non-negative integer, got ${String(state[k])}`);
      }
    }
    const weights = await loadSafetensors(path.join(dir, state.files.model));
    const moments = await loadSafetensors(path.join(dir, state.files.optimizer));
    try {
      const saved = new Set(Object.keys(weights));
      const missing = [...this.#byStable.keys()].filter((k) => !saved.has(k));
      const unexpected = [...saved].filter((k) => !this.#byStable.has(k));
      if (missing.length > 0 || unexpected.length > 0) {
        throw new InvalidArgumentError(
          `${dir}: the checkpoint's variables do not match the model: ${missing.length > 0 ? `missing ${missing.join(', ')}` : ''}${missing.length > 0 && unexpected.length > 0 ? '; ' : ''}${unexpected.length > 0 ? `unexpected ${unexpected.join(', ')}` : ''}`,
        );
      }
      for (const [name, v] of this.#byStable) {
        const t = weights[name] as tf.Tensor;
        if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
          throw new InvalidArgumentError(
            `${dir}: '${name}' has shape ${formatShape(t.shape)} in the checkpoint, the model's is ${formatShape(v.shape)}`,
          );
        }
      }
      const optimizerState: Record<string, tf.Tensor> = {};
      for (const [key, t] of Object.entries(moments)) optimizerState[this.#variableKey(key)] = t;
      this.#run.optimizer.loadStateDict(optimizerState);
      for (const [name, v] of this.#byStable) v.assign(tf.cast(weights[name] as tf.Tensor, 'float32'));
    } finally {
      tf.dispose([...Object.values(weights), ...Object.values(moments)]);
    }
    this.#run.noise.setState(state.noise);
    this.#run.step = state.step;
    this.#epoch = state.epoch;
    this.#batchInEpoch = state.batchInEpoch;
    this.#seed = state.seed;
    return state;
  }

  /** A trainer for `reward` continuing from the checkpoint in `dir`. */
  static async resume(
    dir: string,
    reward: TrainableReward,
    options: PavrmTrainerOptions = {},
  ): Promise<PavrmTrainer> {
    const trainer = new PavrmTrainer(reward, options);
    try {
      await trainer.loadCheckpoint(dir);
    } catch (e) {
      trainer.dispose();
      throw e;
    }
    return trainer;
  }

  /** Frees the optimizer state (not the model). */
  dispose(): void {
    this.#run.optimizer.dispose();
  }

  /** `<variable.name>.<field>` -> `<stable name>.<field>` (the optimizer-wide step count is kept). */
  #stableKey(key: string): string {
    const m = STATE_KEY.exec(key);
    const stable = m ? this.#stableOf.get(m[1] as string) : undefined;
    return m && stable !== undefined ? `${stable}.${m[2]}` : key;
  }

  /** `<stable name>.<field>` -> `<variable.name>.<field>`. */
  #variableKey(key: string): string {
    const m = STATE_KEY.exec(key);
    const v = m ? this.#byStable.get(m[1] as string) : undefined;
    return m && v !== undefined ? `${v.name}.${m[2]}` : key;
  }
}

/** An AdamW state key: `<parameter>.<field>`. */
const STATE_KEY = /^(.*)\.(exp_avg|exp_avg_sq|max_exp_avg_sq|step)$/;
