/**
 * Training checkpoints of a PRFL run (Node), written so that a run resumed from its last checkpoint
 * continues exactly (bit-identical weights on the same backend): the generator's variables, AdamW's
 * moments, the accumulation window's partial gradient sum, the EMA, the three random streams' positions,
 * the reward normaliser's statistics, the step counters and the data position.
 *
 *     checkpoint.json                 what follows, plus the options (for the record; not restored)
 *     model-<step>.safetensors        generator variables under their stable names (tfjs layout); with
 *                                     LoRA only the adapters (`<module>.lora_A.weight` [in, r], ...), since
 *                                     the base weights never change
 *     optimizer-<step>.safetensors    AdamW state, '<stable name>.exp_avg' ...
 *     window-<step>.safetensors       the open window's gradient sums and 'window.count'
 *     ema-<step>.safetensors          EMA weights (when the run keeps one)
 *
 * Every file is written atomically (temp file, fsync, rename) and checkpoint.json last, so a crash at any
 * point leaves the previous checkpoint loadable; older weight files are removed afterwards.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CorruptFileError,
  formatShape,
  type GeneratorState,
  InvalidArgumentError,
  loadSafetensors,
  saveSafetensors,
} from '@prfl/tensor';
import type { RewardNormalizerState } from './guards/reward-normalizer.js';
import type { PrflRun } from './run.js';
import { nodeFs, nodePath, readText, writeTextAtomic } from './util/node-fs.js';

export const CHECKPOINT_FORMAT = 'prfl-refl-checkpoint';
export const CHECKPOINT_FILE = 'checkpoint.json';

/** Where the data stream stands: epoch and batches of it already trained. */
export interface DataPosition {
  epoch: number;
  batchInEpoch: number;
}

/** checkpoint.json. */
export interface PrflCheckpointState extends DataPosition {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  /** Micro-steps taken. */
  step: number;
  updates: number;
  skippedSteps: number;
  skippedUpdates: number;
  seed: number;
  random: { data: GeneratorState; sft: GeneratorState; rollout: GeneratorState };
  rewardNormalizer: RewardNormalizerState | null;
  files: { model: string; optimizer: string; window: string; ema?: string };
  /** The run's options at save time, for the record (functions left out); not restored. */
  options: Record<string, unknown>;
  savedAt: string;
}

const FILE_PATTERN = /^(model|optimizer|window|ema)-\d{8}\.safetensors$/;
/** `<variable name>.<field>` of an AdamW state key. */
const STATE_KEY = /^(.*)\.(exp_avg|exp_avg_sq|max_exp_avg_sq|step)$/;

/** variable.name <-> stable name maps of what the checkpoint holds (the generator, or its LoRA adapters). */
function nameMaps(run: PrflRun): { byStable: Map<string, tf.Variable>; stableOf: Map<string, string> } {
  const byStable = new Map(run.checkpointVariables);
  return { byStable, stableOf: new Map([...byStable].map(([stable, v]) => [v.name, stable])) };
}

/** Renames the keys of a state dict (a variable name, or `<variable name>.<field>`) by `rename`. */
function renameKeys(state: Record<string, tf.Tensor>, rename: (name: string) => string | undefined) {
  const out: Record<string, tf.Tensor> = {};
  for (const [key, t] of Object.entries(state)) {
    const m = STATE_KEY.exec(key);
    const direct = rename(key);
    if (direct !== undefined) out[direct] = t;
    else if (m && rename(m[1] as string) !== undefined) out[`${rename(m[1] as string)}.${m[2]}`] = t;
    else out[key] = t;
  }
  return out;
}

async function saveRenamed(file: string, state: Record<string, tf.Tensor>, stableOf: Map<string, string>) {
  try {
    await saveSafetensors(
      file,
      renameKeys(state, (n) => stableOf.get(n)),
      {
        metadata: { format: CHECKPOINT_FORMAT },
      },
    );
  } finally {
    tf.dispose(Object.values(state));
  }
}

/** Writes a checkpoint of `run` at `position` into `dir` (created if missing). */
export async function saveCheckpoint(
  run: PrflRun,
  dir: string,
  position: DataPosition,
): Promise<PrflCheckpointState> {
  const fs = await nodeFs();
  const path = await nodePath();
  await fs.mkdir(dir, { recursive: true });
  const { byStable, stableOf } = nameMaps(run);
  const tag = String(run.microSteps).padStart(8, '0');
  const files: PrflCheckpointState['files'] = {
    model: `model-${tag}.safetensors`,
    optimizer: `optimizer-${tag}.safetensors`,
    window: `window-${tag}.safetensors`,
    ...(run.ema ? { ema: `ema-${tag}.safetensors` } : {}),
  };
  await saveSafetensors(path.join(dir, files.model), byStable, {
    metadata: { format: CHECKPOINT_FORMAT, layout: 'tfjs', content: run.lora ? 'lora' : 'weights' },
  });
  await saveRenamed(path.join(dir, files.optimizer), run.optimizer.stateDict(), stableOf);
  await saveRenamed(path.join(dir, files.window), run.window.stateDict(), stableOf);
  if (run.ema && files.ema) await saveRenamed(path.join(dir, files.ema), run.ema.stateDict(), stableOf);
  const { lrSchedule, ...options } = run.options;
  const state: PrflCheckpointState = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    step: run.microSteps,
    updates: run.updates,
    skippedSteps: run.skippedSteps,
    skippedUpdates: run.skippedUpdates,
    epoch: position.epoch,
    batchInEpoch: position.batchInEpoch,
    seed: run.options.seed,
    random: {
      data: run.random.data.getState(),
      sft: run.random.sft.getState(),
      rollout: run.random.rollout.getState(),
    },
    rewardNormalizer: run.normalizer ? run.normalizer.getState() : null,
    files,
    options: { ...options, lrSchedule: lrSchedule ? 'custom' : 'constant' },
    savedAt: new Date().toISOString(),
  };
  await writeTextAtomic(path.join(dir, CHECKPOINT_FILE), `${JSON.stringify(state, null, 2)}\n`);
  const keep = new Set(Object.values(files));
  for (const name of await fs.readdir(dir)) {
    if (FILE_PATTERN.test(name) && !keep.has(name)) await fs.rm(path.join(dir, name), { force: true });
  }
  return state;
}

/** Reads and checks checkpoint.json. */
export async function readCheckpointState(dir: string): Promise<PrflCheckpointState> {
  const path = await nodePath();
  const file = path.join(dir, CHECKPOINT_FILE);
  let state: PrflCheckpointState;
  try {
    state = JSON.parse(await readText(file)) as PrflCheckpointState;
  } catch (e) {
    throw new CorruptFileError(`${file}: not a checkpoint (${(e as Error).message})`);
  }
  if (state?.format !== CHECKPOINT_FORMAT || state.version !== 1) {
    throw new CorruptFileError(
      `${file}: expected format '${CHECKPOINT_FORMAT}' version 1, got ${JSON.stringify(state?.format)} version ${String(state?.version)}`,
    );
  }
  for (const k of [
    'step',
    'updates',
    'skippedSteps',
    'skippedUpdates',
    'epoch',
    'batchInEpoch',
    'seed',
  ] as const) {
    if (!Number.isSafeInteger(state[k]) || (state[k] as number) < 0) {
      throw new CorruptFileError(`${file}: '${k}': expected a non-negative integer, got ${String(state[k])}`);
    }
  }
  for (const k of ['model', 'optimizer', 'window'] as const) {
    if (typeof state.files?.[k] !== 'string' || !FILE_PATTERN.test(state.files[k])) {
      throw new CorruptFileError(
        `${file}: files.${k}: expected a '${k}-<step>.safetensors' name, got ${JSON.stringify(state.files?.[k])}`,
      );
    }
  }
  return state;
}

/**
 * Restores the checkpoint in `dir` into `run` (models and run built the same way as when it was saved).
 * Everything is read and checked before anything is assigned.
 * @throws CorruptFileError for a missing or malformed checkpoint.json; InvalidArgumentError when the saved
 *   variables do not match the generator (names listed) or a shape differs, or when the checkpoint holds
 *   an EMA the run does not keep (or the other way round).
 */
export async function loadCheckpoint(run: PrflRun, dir: string): Promise<PrflCheckpointState> {
  const path = await nodePath();
  const state = await readCheckpointState(dir);
  if (Boolean(state.files.ema) !== Boolean(run.ema)) {
    throw new InvalidArgumentError(
      `${dir}: the checkpoint ${state.files.ema ? 'holds' : 'has no'} an EMA but the run ${run.ema ? 'keeps one (emaDecay set)' : 'keeps none (emaDecay null)'}`,
    );
  }
  const savedLora = state.options?.lora != null;
  if (savedLora !== (run.lora !== null)) {
    throw new InvalidArgumentError(
      `${dir}: the checkpoint ${savedLora ? 'holds LoRA adapters' : 'holds the generator weights (no LoRA)'} but the run ${run.lora ? 'trains LoRA adapters (lora set)' : 'has no LoRA (lora null)'}`,
    );
  }
  const { byStable } = nameMaps(run);
  const toVariable = (stable: string) => byStable.get(stable)?.name;
  const loaded: Record<string, tf.Tensor>[] = [];
  try {
    const weights = await loadSafetensors(path.join(dir, state.files.model));
    loaded.push(weights);
    const saved = new Set(Object.keys(weights));
    const missing = [...byStable.keys()].filter((k) => !saved.has(k));
    const unexpected = [...saved].filter((k) => !byStable.has(k));
    if (missing.length > 0 || unexpected.length > 0) {
      const parts = [
        ...(missing.length > 0 ? [`missing ${missing.join(', ')}`] : []),
        ...(unexpected.length > 0 ? [`unexpected ${unexpected.join(', ')}`] : []),
      ];
      throw new InvalidArgumentError(
        `${dir}: the checkpoint's variables do not match the ${run.lora ? 'LoRA adapters' : 'generator'}: ${parts.join('; ')}`,
      );
    }
    for (const [name, v] of byStable) {
      const t = weights[name] as tf.Tensor;
      if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        throw new InvalidArgumentError(
          `${dir}: '${name}' has shape ${formatShape(t.shape)} in the checkpoint, the generator's is ${formatShape(v.shape)}`,
        );
      }
    }
    const optimizer = renameKeys(await loadSafetensors(path.join(dir, state.files.optimizer)), toVariable);
    loaded.push(optimizer);
    const window = renameKeys(await loadSafetensors(path.join(dir, state.files.window)), toVariable);
    loaded.push(window);
    const ema = state.files.ema
      ? renameKeys(await loadSafetensors(path.join(dir, state.files.ema)), toVariable)
      : null;
    if (ema) loaded.push(ema);

    run.optimizer.loadStateDict(optimizer);
    run.window.loadStateDict(window);
    if (ema) run.ema?.loadStateDict(ema);
    for (const [name, v] of byStable) v.assign(tf.cast(weights[name] as tf.Tensor, 'float32'));
  } finally {
    for (const m of loaded) tf.dispose(Object.values(m));
  }
  run.random.data.setState(state.random.data);
  run.random.sft.setState(state.random.sft);
  run.random.rollout.setState(state.random.rollout);
  if (run.normalizer && state.rewardNormalizer) run.normalizer.setState(state.rewardNormalizer);
  run.microSteps = state.step;
  run.updates = state.updates;
  run.skippedSteps = state.skippedSteps;
  run.skippedUpdates = state.skippedUpdates;
  return state;
}
