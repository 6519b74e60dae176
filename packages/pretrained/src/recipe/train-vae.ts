/**
 * The recipe that trains the embedded default's VAE (`new WanVAE('tiny')`, 220K parameters) on the
 * embedded world, in minutes on two CPU cores (wasm).
 *
 * The recipe (measured, see the package notes):
 * - MSE reconstruction, z = mu (no sampling), KL weight 0 until the last phase. With L1 the network sits
 *   on a flat "mean background" plateau for hundreds of steps: every pixel pulls with the same force, and
 *   the object covers a few per cent of the frame. MSE lets the large errors on the object pull harder.
 * - Short crops first: Wan's causal VAE encodes the first frame alone, with the same convolutions that
 *   later see chunks of 4 frames, so a batch of single frames trains every spatial weight at a fraction of
 *   the cost of a clip; then 5-frame crops (1 + 4: one chunk, the temporal down/upsamplers), then whole
 *   17-frame clips.
 * - AdamW (no weight decay), linear warm-up, a constant learning rate, and a cosine decay over the last
 *   part of the run.
 *
 * Data: clips of the training side of the world with motion defects (rate 0.5: the VAE must reproduce
 * defective motion faithfully too), rendered on the fly. Every step's crops and noise come from generators
 * seeded by (seed, step), so a run is deterministic on one backend and resumes exactly from a checkpoint
 * (weights, AdamW state, step).
 *
 *     <checkpointDir>/vae-train.json                 step, seed, files, the options (for the record)
 *     <checkpointDir>/vae-model-<step>.safetensors   the VAE's variables by Wan key (tfjs layout)
 *     <checkpointDir>/vae-optimizer-<step>.safetensors  AdamW state by Wan key
 */
import { type ClipSpec, renderClip } from '@prfl/datasets';
import { measureLatentStats, type ReconstructionLoss, vaeTrainStep, WanVAE } from '@prfl/models';
import {
  AdamW,
  assertFiniteInRange,
  CorruptFileError,
  Generator,
  InvalidArgumentError,
  loadSafetensors,
  nodeImport,
  saveSafetensors,
  writeFileAtomic,
} from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { type ClipCrop, renderCrops, videoToTensor } from '../clips.js';
import { EMBEDDED_WORLD, type EmbeddedWorld, sampleWorldClips, wideScenes } from '../world.js';

/** One phase of the recipe: `steps` steps on batches of `batch` crops of `frames` consecutive frames. */
export interface VaePhase {
  /** A name for progress reports. */
  name: string;
  steps: number;
  batch: number;
  /** Frames per crop: 1 + 4k, at most the world's frame count. */
  frames: number;
  /** Reconstruction loss (default 'mse'). */
  reconstruction?: ReconstructionLoss;
  /** KL weight (default 0). */
  beta?: number;
  /** Sample z = mu + sigma eps instead of z = mu (default false). */
  sample?: boolean;
  /**
   * Square windows of this many pixels (a multiple of 8) at random 8-aligned places instead of whole
   * frames (default: whole frames). The VAE is convolutional: a 32 x 32 window trains the same weights
   * as a 64 x 64 frame at a quarter of the cost.
   */
  size?: number;
  /** Peak learning rate of this phase (default: the run's `lr`). */
  lr?: number;
  /**
   * At the start of this phase, turn the image autoencoder trained so far into a video one (`inflateVae`):
   * every causal convolution keeps only its current-frame tap, the temporal resamplers start as "keep
   * one frame" (encoder) and "repeat the frame" (decoder). Colours and shapes then survive the first
   * multi-frame step, and the phase only has to learn motion.
   */
  inflate?: boolean;
  /**
   * Train only the decoder (and its post-quantisation convolution): the encoder, and so every latent and
   * the latent statistics, stay exactly as they are. What a trained VAE can still learn after a generator
   * was trained on its latents.
   */
  decoderOnly?: boolean;
}

/**
 * The recipe's second VAE stage (`tuneVaeDecoder`): the decoder alone on whole clips of the embedded
 * world itself. Measured on 200 held-out clips of that world, against the VAE it starts from: PSNR
 * 25.6 -> 29.1 dB, the oracle's prompt-adherence label of the reconstruction equal to the clip's
 * 90% -> 99% of the time; the motion-quality agreement (91% -> 90%) stays where the encoder's 4x time
 * compression leaves it.
 */
export const DECODER_PHASES: readonly VaePhase[] = Object.freeze([
  Object.freeze({ name: 'decoder', steps: 300, batch: 1, frames: 17, lr: 2e-4, decoderOnly: true }),
]);

/**
 * Makes the temporal taps of a VAE trained on single frames start from "no temporal mixing" (see
 * `VaePhase.inflate`). Single frames only ever train the last tap of a causal convolution (the others
 * read zero padding), so the other taps are still at their random initialisation; they are zeroed. The
 * encoder's time downsampler takes the last frame of each pair, the decoder's time upsampler copies
 * its frame into both halves.
 */
export function inflateVae(vae: WanVAE): void {
  for (const [key, v] of vae.namedVariables()) {
    const s = v.shape;
    if (s.length !== 5 || s[0] !== 3) continue;
    tf.tidy(() => {
      if (key.endsWith('time_conv.weight')) {
        const cin = s[3] as number;
        const cout = s[4] as number;
        const eye = tf.eye(cin);
        const last = cout === cin ? eye : tf.concat([eye, eye], 1);
        v.assign(tf.concat([tf.zeros([2, 1, 1, cin, cout]), tf.reshape(last, [1, 1, 1, cin, cout])], 0));
        const bias = vae.namedVariables().get(key.replace(/weight$/, 'bias'));
        bias?.assign(tf.zerosLike(bias));
      } else {
        const rest = s.slice(1);
        v.assign(tf.concat([tf.zeros([2, ...rest]), tf.slice(v, [2, 0, 0, 0, 0], [1, ...rest])], 0));
      }
    });
  }
}

/**
 * The default recipe's phases (about 18 minutes on two cores, wasm). An image autoencoder first: single
 * frames in 32 x 32 windows, 16 per step, where colours and shapes are learned at a quarter of the cost
 * of whole frames; then `inflate` turns it into a video autoencoder that starts as "no temporal mixing",
 * and 5-frame windows (the first frame and one chunk of 4) teach the temporal layers motion; last, whole
 * 17-frame clips at 64 x 64. (Measured on 40 held-out clips after the first two phases of a shorter run:
 * PSNR 24.0 dB, oracle motion-quality agreement 82.5%, prompt-adherence agreement 92.5%; training the
 * same network on whole frames and clips from the start gave 17.9 dB, 50% and 0% in the same time.)
 */
export const DEFAULT_VAE_PHASES: readonly VaePhase[] = Object.freeze([
  Object.freeze({ name: 'frames', steps: 2400, batch: 16, frames: 1, size: 32, lr: 2e-3 }),
  Object.freeze({ name: 'chunks', steps: 700, batch: 4, frames: 5, size: 32, lr: 1e-3, inflate: true }),
  Object.freeze({ name: 'clips', steps: 120, batch: 1, frames: 17, lr: 5e-4 }),
]);

export interface TrainEmbeddedVaeOptions {
  /** Seed of the initialisation, the clips, the crops and the noise (default 0). */
  seed?: number | string;
  /** The world the clips come from (default `wideScenes(EMBEDDED_WORLD)`: its vocabulary on every scene). */
  world?: EmbeddedWorld;
  /**
   * Continue training this VAE (in place; it is returned) instead of a new `WanVAE('tiny', { seed })`.
   * Its latent statistics are kept unless `statsClips` > 0.
   */
  from?: WanVAE;
  /** The phases (default DEFAULT_VAE_PHASES). */
  phases?: readonly VaePhase[];
  /** Peak learning rate of AdamW where a phase sets none (default 2e-3). */
  lr?: number;
  /** Linear warm-up steps (default 30). */
  warmupSteps?: number;
  /** Fraction of all steps, at the end, over which the rate decays (cosine) to `finalLrFraction` (default 0.1). */
  decayFraction?: number;
  /** The rate at the end, as a fraction of `lr` (default 0.05). */
  finalLrFraction?: number;
  /** Global gradient-norm clip (default 10: a guard; the recipe's norms stay below about 3). */
  maxGradNorm?: number;
  /** Training clip specs the crops are drawn from (default 4000). */
  clipPool?: number;
  /** Fraction of training clips with a motion defect (default 0.5). */
  motionDefectRate?: number;
  /** Training clips whose posterior means give the latent statistics at the end (default 32, or 0 with `from`; 0: keep the VAE's). */
  statsClips?: number;
  /** Write a checkpoint here every `checkpointEvery` steps and at the end; resume from it when present. Node only. */
  checkpointDir?: string;
  /** Default 100. */
  checkpointEvery?: number;
  /** Resume from `checkpointDir` when it holds a checkpoint (default true). */
  resume?: boolean;
  /** Stop after this many steps in total (counted from step 0, resumed steps included); for tests of resuming. */
  stopAfter?: number;
  /**
   * Stops between steps when aborted: the current step is checkpointed (with `checkpointDir`) and the VAE
   * is returned as it is, without measured latent statistics; run again with the same options to resume.
   */
  signal?: AbortSignal;
  /** After every step. */
  onProgress?: (p: VaeTrainProgress) => void | Promise<void>;
}

export interface VaeTrainProgress {
  phase: string;
  /** 1-based step over all phases. */
  step: number;
  steps: number;
  loss: number;
  reconstruction: number;
  kl: number;
  lr: number;
  /** Time of this call (resumed steps not included). */
  elapsedMs: number;
}

export const VAE_CHECKPOINT_FORMAT = 'prfl-pretrained-vae-checkpoint';
export const VAE_CHECKPOINT_FILE = 'vae-train.json';

interface VaeCheckpointState {
  format: typeof VAE_CHECKPOINT_FORMAT;
  version: 1;
  step: number;
  seed: number | string;
  files: { model: string; optimizer: string };
  options: Record<string, unknown>;
  savedAt: string;
}

interface Resolved {
  seed: number | string;
  world: EmbeddedWorld;
  phases: VaePhase[];
  lr: number;
  warmupSteps: number;
  decayFraction: number;
  finalLrFraction: number;
  maxGradNorm: number;
  clipPool: number;
  motionDefectRate: number;
  statsClips: number;
  checkpointDir: string | undefined;
  checkpointEvery: number;
  resume: boolean;
  stopAfter: number | undefined;
}

function checkInt(what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new InvalidArgumentError(
      `trainEmbeddedVae: ${what} must be an integer >= ${min}, got ${String(v)}`,
    );
  }
  return v;
}

function resolve(options: TrainEmbeddedVaeOptions): Resolved {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError(`trainEmbeddedVae: expected an options object, got ${String(options)}`);
  }
  const seed = options.seed ?? 0;
  if (typeof seed !== 'string' && !(typeof seed === 'number' && Number.isFinite(seed))) {
    throw new InvalidArgumentError(
      `trainEmbeddedVae: seed must be a finite number or a string, got ${String(seed)}`,
    );
  }
  const world = options.world ?? wideScenes(EMBEDDED_WORLD);
  const phases = [...(options.phases ?? DEFAULT_VAE_PHASES)].map((p) => ({ ...p }));
  if (phases.length === 0) throw new InvalidArgumentError('trainEmbeddedVae: phases is empty');
  phases.forEach((p, i) => {
    const what = `phases[${i}]${typeof p?.name === 'string' ? ` ('${p.name}')` : ''}`;
    if (typeof p?.name !== 'string')
      throw new InvalidArgumentError(`trainEmbeddedVae: ${what}.name must be a string`);
    checkInt(`${what}.steps`, p.steps, 1);
    checkInt(`${what}.batch`, p.batch, 1);
    checkInt(`${what}.frames`, p.frames, 1);
    if ((p.frames - 1) % 4 !== 0 || p.frames > world.frames) {
      throw new InvalidArgumentError(
        `trainEmbeddedVae: ${what}.frames must be 1 + 4k and at most the world's ${world.frames} frames, got ${p.frames}`,
      );
    }
    if (p.reconstruction !== undefined && p.reconstruction !== 'l1' && p.reconstruction !== 'mse') {
      throw new InvalidArgumentError(
        `trainEmbeddedVae: ${what}.reconstruction must be 'l1' or 'mse', got ${JSON.stringify(p.reconstruction)}`,
      );
    }
    if (p.beta !== undefined) assertFiniteInRange(`trainEmbeddedVae: ${what}.beta`, p.beta, 0);
    if (p.size !== undefined) {
      checkInt(`${what}.size`, p.size, 8);
      if (p.size % 8 !== 0 || p.size > Math.min(world.height, world.width)) {
        throw new InvalidArgumentError(
          `trainEmbeddedVae: ${what}.size must be a multiple of 8 up to ${Math.min(world.height, world.width)}, got ${p.size}`,
        );
      }
    }
    if (p.lr !== undefined && !(typeof p.lr === 'number' && Number.isFinite(p.lr) && p.lr > 0)) {
      throw new InvalidArgumentError(
        `trainEmbeddedVae: ${what}.lr must be a positive finite number, got ${String(p.lr)}`,
      );
    }
  });
  const lr = options.lr ?? 2e-3;
  if (!(typeof lr === 'number' && Number.isFinite(lr) && lr > 0)) {
    throw new InvalidArgumentError(
      `trainEmbeddedVae: lr must be a positive finite number, got ${String(lr)}`,
    );
  }
  const decayFraction = options.decayFraction ?? 0.1;
  assertFiniteInRange('trainEmbeddedVae: decayFraction', decayFraction, 0, 1);
  const finalLrFraction = options.finalLrFraction ?? 0.05;
  assertFiniteInRange('trainEmbeddedVae: finalLrFraction', finalLrFraction, 0, 1);
  const maxGradNorm = options.maxGradNorm ?? 10;
  if (!(typeof maxGradNorm === 'number' && maxGradNorm > 0)) {
    throw new InvalidArgumentError(
      `trainEmbeddedVae: maxGradNorm must be positive, got ${String(maxGradNorm)}`,
    );
  }
  const motionDefectRate = options.motionDefectRate ?? 0.5;
  assertFiniteInRange('trainEmbeddedVae: motionDefectRate', motionDefectRate, 0, 1);
  if (
    options.checkpointDir !== undefined &&
    (typeof options.checkpointDir !== 'string' || options.checkpointDir === '')
  ) {
    throw new InvalidArgumentError(
      `trainEmbeddedVae: checkpointDir must be a non-empty path, got ${JSON.stringify(options.checkpointDir)}`,
    );
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('trainEmbeddedVae: signal must be an AbortSignal');
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new InvalidArgumentError('trainEmbeddedVae: onProgress must be a function');
  }
  return {
    seed,
    world,
    phases,
    lr,
    warmupSteps: checkInt('warmupSteps', options.warmupSteps ?? 30, 0),
    decayFraction,
    finalLrFraction,
    maxGradNorm,
    clipPool: checkInt('clipPool', options.clipPool ?? 4000, 1),
    motionDefectRate,
    statsClips: checkInt('statsClips', options.statsClips ?? (options.from === undefined ? 32 : 0), 0),
    checkpointDir: options.checkpointDir,
    checkpointEvery: checkInt('checkpointEvery', options.checkpointEvery ?? 100, 1),
    resume: options.resume ?? true,
    stopAfter: options.stopAfter === undefined ? undefined : checkInt('stopAfter', options.stopAfter, 1),
  };
}

/** The learning-rate schedule of the VAE's training: its peak and the shape of its warm-up and decay. */
export interface VaeLearningRateSchedule {
  /** The peak learning rate. */
  lr: number;
  /** Steps of linear warm-up from lr / warmupSteps to lr. */
  warmupSteps: number;
  /** The last fraction of the steps decays along a cosine ... */
  decayFraction: number;
  /** ... down to this fraction of lr. */
  finalLrFraction: number;
}

/** The learning rate of 0-based `step` of `total`: linear warm-up, constant, cosine decay at the end. */
export function vaeLearningRate(step: number, total: number, o: VaeLearningRateSchedule): number {
  const warm = o.warmupSteps > 0 ? Math.min(1, (step + 1) / o.warmupSteps) : 1;
  const decaySteps = Math.round(total * o.decayFraction);
  const decayStart = total - decaySteps;
  if (decaySteps === 0 || step < decayStart) return o.lr * warm;
  const t = (step - decayStart) / decaySteps;
  return o.lr * warm * (o.finalLrFraction + (1 - o.finalLrFraction) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** The first 0-based step of a phase. */
function phaseStart(phases: readonly VaePhase[], phase: VaePhase): number {
  let start = 0;
  for (const p of phases) {
    if (p === phase) return start;
    start += p.steps;
  }
  return start;
}

/** The phase of a 0-based step over all phases. */
function phaseAt(phases: readonly VaePhase[], step: number): VaePhase {
  let end = 0;
  for (const p of phases) {
    end += p.steps;
    if (step < end) return p;
  }
  return phases[phases.length - 1] as VaePhase;
}

/** The batch of a step: `batch` crops of random training clips at random offsets, from (seed, step). */
function stepBatch(
  pool: readonly ClipSpec[],
  phase: VaePhase,
  frames: number,
  seed: number | string,
  step: number,
) {
  const gen = new Generator(`${String(seed)}/vae-data/${step}`);
  const crops: ClipCrop[] = [];
  for (let b = 0; b < phase.batch; b++) {
    const spec = pool[gen.nextInt(pool.length)] as ClipSpec;
    const crop: ClipCrop = { spec, start: gen.nextInt(frames - phase.frames + 1), frames: phase.frames };
    if (phase.size !== undefined && (phase.size < spec.height || phase.size < spec.width)) {
      const size = phase.size;
      crop.window = {
        top: 8 * gen.nextInt((spec.height - size) / 8 + 1),
        left: 8 * gen.nextInt((spec.width - size) / 8 + 1),
        size,
      };
    }
    crops.push(crop);
  }
  return renderCrops(crops);
}

/** The options as plain JSON, for the checkpoint's record. */
function optionsRecord(o: Resolved): Record<string, unknown> {
  const { world, checkpointDir: _dir, stopAfter: _stop, ...rest } = o;
  return { ...rest, world: { ...world } };
}

async function nodeFs(): Promise<typeof import('node:fs/promises')> {
  return nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
}

async function nodePath(): Promise<typeof import('node:path')> {
  return nodeImport<typeof import('node:path')>('node:path');
}

const FILE_PATTERN = /^vae-(model|optimizer)-\d{8}\.safetensors$/;

/** Renames `<variable name>` and `<variable name>.<field>` keys by a map (other keys unchanged). */
function renameState(
  state: Record<string, tf.Tensor>,
  names: ReadonlyMap<string, string>,
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [key, t] of Object.entries(state)) {
    const dot = key.lastIndexOf('.');
    const direct = names.get(key);
    const base = dot > 0 ? names.get(key.slice(0, dot)) : undefined;
    out[direct ?? (base !== undefined ? `${base}${key.slice(dot)}` : key)] = t;
  }
  return out;
}

async function saveCheckpoint(
  dir: string,
  vae: WanVAE,
  optimizer: AdamW,
  step: number,
  o: Resolved,
): Promise<void> {
  const fs = await nodeFs();
  const path = await nodePath();
  await fs.mkdir(dir, { recursive: true });
  const tag = String(step).padStart(8, '0');
  const files = { model: `vae-model-${tag}.safetensors`, optimizer: `vae-optimizer-${tag}.safetensors` };
  const meta = { format: VAE_CHECKPOINT_FORMAT };
  await saveSafetensors(path.join(dir, files.model), vae.namedVariables(), {
    metadata: { ...meta, layout: 'tfjs' },
  });
  const byVariable = new Map([...vae.namedVariables()].map(([key, v]) => [v.name, key]));
  const state = optimizer.stateDict();
  try {
    await saveSafetensors(path.join(dir, files.optimizer), renameState(state, byVariable), {
      metadata: meta,
    });
  } finally {
    tf.dispose(Object.values(state));
  }
  const json: VaeCheckpointState = {
    format: VAE_CHECKPOINT_FORMAT,
    version: 1,
    step,
    seed: o.seed,
    files,
    options: optionsRecord(o),
    savedAt: new Date().toISOString(),
  };
  const bytes = new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`);
  await writeFileAtomic(path.join(dir, VAE_CHECKPOINT_FILE), (write) => write(bytes));
  const keep = new Set(Object.values(files));
  for (const name of await fs.readdir(dir)) {
    if (FILE_PATTERN.test(name) && !keep.has(name)) await fs.rm(path.join(dir, name), { force: true });
  }
}

/** Restores a checkpoint into `vae` and `optimizer`; resolves to its step, or 0 when `dir` holds none. */
async function loadCheckpoint(dir: string, vae: WanVAE, optimizer: AdamW, o: Resolved): Promise<number> {
  const fs = await nodeFs();
  const path = await nodePath();
  const file = path.join(dir, VAE_CHECKPOINT_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return 0;
  }
  let state: VaeCheckpointState;
  try {
    state = JSON.parse(text) as VaeCheckpointState;
  } catch (e) {
    throw new CorruptFileError(`${file}: not a VAE training checkpoint (${(e as Error).message})`);
  }
  if (state?.format !== VAE_CHECKPOINT_FORMAT || state.version !== 1) {
    throw new CorruptFileError(`${file}: expected format '${VAE_CHECKPOINT_FORMAT}' version 1`);
  }
  if (!Number.isSafeInteger(state.step) || state.step < 0) {
    throw new CorruptFileError(`${file}: step must be a non-negative integer, got ${String(state.step)}`);
  }
  for (const k of ['model', 'optimizer'] as const) {
    if (typeof state.files?.[k] !== 'string' || !FILE_PATTERN.test(state.files[k])) {
      throw new CorruptFileError(`${file}: files.${k} is not a 'vae-${k}-<step>.safetensors' name`);
    }
  }
  if (String(state.seed) !== String(o.seed)) {
    throw new InvalidArgumentError(
      `${dir}: the checkpoint was trained with seed ${JSON.stringify(state.seed)}, this run has seed ${JSON.stringify(o.seed)}; use another checkpointDir or the same seed`,
    );
  }
  const vars = vae.namedVariables();
  const weights = await loadSafetensors(path.join(dir, state.files.model));
  let optState: Record<string, tf.Tensor> | undefined;
  try {
    const missing = [...vars.keys()].filter((k) => weights[k] === undefined);
    const unexpected = Object.keys(weights).filter((k) => !vars.has(k));
    if (missing.length > 0 || unexpected.length > 0) {
      throw new InvalidArgumentError(
        `${dir}: the checkpoint's variables do not match the VAE (missing: ${missing.slice(0, 5).join(', ') || 'none'}; unexpected: ${unexpected.slice(0, 5).join(', ') || 'none'})`,
      );
    }
    for (const [k, v] of vars) {
      const t = weights[k] as tf.Tensor;
      if (t.shape.join() !== v.shape.join()) {
        throw new InvalidArgumentError(
          `${dir}: '${k}' has shape [${t.shape}] in the checkpoint, the VAE's is [${v.shape}]`,
        );
      }
    }
    const toVariable = new Map([...vars].map(([key, v]) => [key, v.name]));
    optState = renameState(await loadSafetensors(path.join(dir, state.files.optimizer)), toVariable);
    optimizer.loadStateDict(optState);
    for (const [k, v] of vars) v.assign(weights[k] as tf.Tensor);
  } finally {
    tf.dispose(Object.values(weights));
    if (optState) tf.dispose(Object.values(optState));
  }
  return state.step;
}

/**
 * Trains the embedded default's VAE (`new WanVAE('tiny', { seed })`) by the recipe and returns it with its
 * latent statistics measured (`measureLatentStats` over `statsClips` whole training clips). With
 * `checkpointDir`, writes a checkpoint every `checkpointEvery` steps and at the end, and resumes from one.
 *
 * @throws InvalidArgumentError for bad options (naming the option) or a checkpoint of another seed or shape.
 */
export async function trainEmbeddedVae(options: TrainEmbeddedVaeOptions = {}): Promise<WanVAE> {
  const o = resolve(options);
  const total = o.phases.reduce((n, p) => n + p.steps, 0);
  const end = Math.min(total, o.stopAfter ?? total);
  const pool = sampleWorldClips(o.world, {
    side: 'train',
    count: o.clipPool,
    seed: `${String(o.seed)}/vae-clips`,
    motionDefectRate: o.motionDefectRate,
  });
  if (options.from !== undefined && !(options.from instanceof WanVAE)) {
    throw new InvalidArgumentError('trainEmbeddedVae: from must be a WanVAE');
  }
  const vae = options.from ?? new WanVAE('tiny', { seed: o.seed });
  const optimizer = new AdamW(vae.trainableVariables(), { lr: o.lr, weightDecay: 0 });
  // The encoder's variables that train (a frozen one stays frozen), switched off in decoderOnly phases.
  const encoderVars = [...vae.namedVariables()]
    .filter(([k, v]) => v.trainable && !k.startsWith('decoder.') && !k.startsWith('conv2.'))
    .map(([, v]) => v);
  const trainEncoder = (on: boolean) => {
    for (const v of encoderVars) v.trainable = on;
  };
  try {
    let step = 0;
    if (o.checkpointDir !== undefined && o.resume)
      step = await loadCheckpoint(o.checkpointDir, vae, optimizer, o);
    const t0 = performance.now();
    const aborted = () => options.signal?.aborted === true;
    let saved = step;
    for (; step < end && !aborted(); step++) {
      const phase = phaseAt(o.phases, step);
      if (phase.inflate === true && step === phaseStart(o.phases, phase)) inflateVae(vae);
      const lr = vaeLearningRate(step, total, { ...o, lr: phase.lr ?? o.lr });
      optimizer.setLearningRate(lr);
      const batch = stepBatch(pool, phase, o.world.frames, o.seed, step);
      let result: Awaited<ReturnType<typeof vaeTrainStep>>;
      trainEncoder(phase.decoderOnly !== true);
      try {
        result = await vaeTrainStep(vae, optimizer, batch, {
          beta: phase.beta ?? 0,
          reconstruction: phase.reconstruction ?? 'mse',
          maxGradNorm: o.maxGradNorm,
          ...(phase.sample ? { generator: new Generator(`${String(o.seed)}/vae-noise/${step}`) } : {}),
        });
      } finally {
        batch.dispose();
        trainEncoder(true);
      }
      const done = step + 1;
      if (o.checkpointDir !== undefined && (done % o.checkpointEvery === 0 || done === end)) {
        await saveCheckpoint(o.checkpointDir, vae, optimizer, done, o);
        saved = done;
      }
      await options.onProgress?.({
        phase: phase.name,
        step: done,
        steps: total,
        loss: result.loss,
        reconstruction: result.reconstruction,
        kl: result.kl,
        lr,
        elapsedMs: performance.now() - t0,
      });
    }
    if (aborted()) {
      if (o.checkpointDir !== undefined && saved !== step)
        await saveCheckpoint(o.checkpointDir, vae, optimizer, step, o);
      return vae;
    }
    if (o.statsClips > 0) {
      const specs = sampleWorldClips(o.world, {
        side: 'train',
        count: o.statsClips,
        seed: `${String(o.seed)}/vae-stats`,
        motionDefectRate: o.motionDefectRate,
      });
      const { mean, std } = await measureLatentStats(vae, clipTensors(specs));
      vae.setLatentStats(mean, std);
    }
    return vae;
  } catch (e) {
    if (options.from === undefined) vae.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
}

export interface TuneVaeDecoderOptions
  extends Omit<TrainEmbeddedVaeOptions, 'from' | 'phases' | 'world' | 'statsClips'> {
  /** The world whose clips the decoder learns (default EMBEDDED_WORLD: the narrow world itself). */
  world?: EmbeddedWorld;
  /** Default DECODER_PHASES. */
  phases?: readonly VaePhase[];
}

/**
 * Trains the decoder of a trained VAE, in place, on whole clips of the embedded world (DECODER_PHASES):
 * sharper reconstructions of the world's own scenes with the latents unchanged. Checkpoints and resumes
 * like `trainEmbeddedVae` (use its own checkpointDir).
 */
export async function tuneVaeDecoder(vae: WanVAE, options: TuneVaeDecoderOptions = {}): Promise<WanVAE> {
  const phases = options.phases ?? DECODER_PHASES;
  if (phases.some((p) => p.decoderOnly !== true)) {
    throw new InvalidArgumentError(
      'tuneVaeDecoder: every phase must have decoderOnly: true (the latents must not change)',
    );
  }
  return trainEmbeddedVae({
    warmupSteps: 0,
    decayFraction: 0,
    ...options,
    world: options.world ?? EMBEDDED_WORLD,
    phases,
    from: vae,
    statsClips: 0,
  });
}

/** Whole clips as tensors, one at a time (each disposed when the next is drawn and at the end). */
function* clipTensors(specs: readonly ClipSpec[]): Iterable<tf.Tensor5D> {
  for (const spec of specs) {
    const x = videoToTensor(renderClip(spec));
    try {
      yield x;
    } finally {
      x.dispose();
    }
  }
}
