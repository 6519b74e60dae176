/**
 * `prfl export --to reference RUN [--out DIR] [--force]`: a run folder in the files the PyTorch reference
 * (HY-Video-PRFL) takes, so its scripts can continue from what a prfl run made:
 *
 *     DIR/data/meta_v1/<id>_meta_v1.json   one meta JSON per labelled generation (reference keys)
 *     DIR/data/latents/<id>*.npy           latents [1, C, F', H', W'], text states [1, L, D], float32
 *     DIR/data/train.list                  one meta path per line (dataset.meta_file_list)
 *     DIR/transformer/                     the run's DiT in Wan's layout (model.init_transformer_path)
 *     DIR/pavrm/                           the PAVRM in the reference's three parts (model.lrm_*_path)
 *     DIR/lora/                            PEFT adapter files, when the run trained LoRA adapters
 *     DIR/config.yaml                      the run's configuration, reference keys only, paths pointing here
 *     DIR/README.md                        what each file is and how the reference's scripts take it
 *
 * Whatever part the run lacks is left out and named in the result. Everything is written into
 * DIR.tmp-<pid> and renamed to DIR at the end, so a failed or stopped export leaves no half-written DIR.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type ReferenceClipInput, writeReferenceLayout } from '@prfl/datasets';
import { saveWanDiT, WAN_CONFIG_FILE, type WanDiT } from '@prfl/models';
import {
  DIT_DIR,
  disposeEmbedded,
  type EmbeddedModels,
  loadEmbedded,
  MANIFEST_FILE,
  PAVRM_DIR,
} from '@prfl/pretrained';
import {
  CHECKPOINT_FILE,
  CHECKPOINT_FORMAT,
  LoraAdapters,
  loadLora,
  PEFT_ADAPTER_FILE,
  PEFT_CONFIG_FILE,
  REFERENCE_LORA_FILE,
  readCheckpointState,
  saveLora,
} from '@prfl/refl';
import {
  MLP_FILE,
  PAVRM_CONFIG_FILE,
  type PavrmConfig,
  QUERY_ATTENTION_FILE,
  saveReward,
  TRANSFORMER_FILE,
} from '@prfl/reward';
import { CorruptFileError, decodeRaw, formatShape, loadSafetensors, openSafetensors } from '@prfl/tensor';
import {
  type ConfigLayer,
  mergeConfig,
  type ResolvedConfig,
  readConfigFile,
  setLayer,
} from '../config/resolve.js';
import { CONFIG_SCHEMA, POOL_AGGREGATION } from '../config/schema.js';
import type { CommandContext } from '../context.js';
import { InterruptedError, isUserError, UsageError } from '../errors.js';
import { METRICS_FILE, RESOLVED_CONFIG_FILE, writeTextAtomic } from '../run-dir.js';
import { CHECKPOINTS_DIR, GENERATIONS_FILE, GENERATIONS_JSON_FILE, RUN_WEIGHTS_DIR } from '../run-layout.js';
import { toYaml } from '../yaml-text.js';

/** The layouts `--to` accepts. */
export const EXPORT_TARGETS = Object.freeze(['reference'] as const);
export type ExportTarget = (typeof EXPORT_TARGETS)[number];

/** DIR when --out is not given: this folder inside the run. */
export const DEFAULT_EXPORT_DIR = 'export-reference';
/** The list of every exported clip, in DIR/data. */
export const EXPORT_LIST_FILE = 'train.list';
/** save.output_dir when the run left it null (its own folder): DIR/output. */
const OUTPUT_DIR = 'output';
/** Where `prfl demo` keeps its generations (its reward stage's folder). */
const DEMO_REWARD_DIR = 'reward';
/** Folders of a run that may hold PEFT LoRA files, and folders that may hold a PRFL trainer checkpoint. */
const LORA_DIRS = ['lora', `${RUN_WEIGHTS_DIR}/lora`];
const PRFL_CHECKPOINT_DIRS = [CHECKPOINTS_DIR, `${CHECKPOINTS_DIR}/prfl`, 'prfl'];

/** The options of `prfl export`. */
export interface ExportCommandOptions {
  /** The layout: `reference` (the only one so far). */
  to: string;
  /** The folder to write (default RUN/export-reference); new or empty unless `force`. */
  out?: string;
  /** Replace `out` when it exists and is not empty. */
  force?: boolean;
}

/** One exported part: where it went (relative to DIR) and where it came from (relative to RUN). */
export interface ExportedPart {
  path: string;
  from: string;
  files: string[];
}

/** What `prfl export` wrote (the --json output); absolute paths for `run`, `out`, `readme` and `runFrom`. */
export interface ExportResult {
  to: ExportTarget;
  run: string;
  out: string;
  /** The labelled generations, or null when the run has none. */
  data: (ExportedPart & { clips: number; motionGood: number; adherent: number }) | null;
  transformer: ExportedPart | null;
  pavrm: ExportedPart | null;
  lora: ExportedPart | null;
  config: ExportedPart;
  readme: string;
  /** The folder the reference's scripts run from: every relative path in config.yaml and the data is relative to it. */
  runFrom: string;
  /** What the run did not have, or what could not be exported, one sentence each. */
  missing: string[];
}

/** One judged generation as generations.json holds it. */
interface Generation {
  prompt: string;
  seed: string;
  motionGood: 0 | 1;
  adherent: 0 | 1;
  /** The oracle's other fields, kept in the meta JSON under prfl_generation. */
  details: Record<string, number | boolean>;
}

/** A folder of PEFT LoRA files, or of a PRFL trainer checkpoint holding LoRA adapters. */
type LoraSource = { kind: 'peft' | 'checkpoint'; dir: string };

/** The parts of a run folder found on disk. */
interface RunParts {
  config: string | undefined;
  weights: string | undefined;
  generations: { tensors: string; videos: string } | undefined;
  lora: LoraSource | undefined;
  missing: string[];
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

/** "a, b, c and 4 more" of a folder's entries, or "an empty folder". */
function listing(dir: string): string {
  const entries = readdirSync(dir).sort();
  if (entries.length === 0) return 'an empty folder';
  const shown = entries.slice(0, 8).join(', ');
  return entries.length > 8 ? `${shown} and ${entries.length - 8} more` : shown;
}

/** Where a PEFT LoRA folder or a PRFL checkpoint with LoRA adapters is, if the run has one. */
function findLora(runDir: string): LoraSource | undefined {
  for (const d of LORA_DIRS) {
    const dir = path.join(runDir, d);
    if (isFile(path.join(dir, PEFT_ADAPTER_FILE)) || isFile(path.join(dir, REFERENCE_LORA_FILE))) {
      return { kind: 'peft', dir };
    }
  }
  for (const d of PRFL_CHECKPOINT_DIRS) {
    const dir = path.join(runDir, d);
    const file = path.join(dir, CHECKPOINT_FILE);
    if (!isFile(file)) continue;
    // The PAVRM trainer writes a checkpoint.json too; only PRFL's with adapters is one.
    let state: { format?: unknown; options?: { lora?: unknown } };
    try {
      state = JSON.parse(readFileSync(file, 'utf8')) as typeof state;
    } catch {
      continue; // not JSON: not a PRFL checkpoint (readCheckpointState would say why)
    }
    if (state?.format === CHECKPOINT_FORMAT && state.options?.lora != null) {
      return { kind: 'checkpoint', dir };
    }
  }
  return undefined;
}

/**
 * Finds what the run folder holds.
 * @throws UsageError when `runDir` is missing, a file, not a run folder, or holds nothing to export.
 */
function findRunParts(runDir: string, given: string): RunParts {
  if (!existsSync(runDir)) {
    throw new UsageError(
      `export: RUN ${given}: no such folder (${runDir}); expected a run folder of \`prfl train\`, \`prfl train-reward\` or \`prfl demo\``,
    );
  }
  if (!statSync(runDir).isDirectory()) {
    throw new UsageError(
      `export: RUN ${given} is a file; expected a run folder (with ${RESOLVED_CONFIG_FILE})`,
    );
  }
  const has = (p: string) => existsSync(path.join(runDir, p));
  const pairIn = (dir: string) =>
    has(path.join(dir, GENERATIONS_FILE)) || has(path.join(dir, GENERATIONS_JSON_FILE));
  const looksLikeRun =
    has(RESOLVED_CONFIG_FILE) ||
    has(METRICS_FILE) ||
    has(path.join(RUN_WEIGHTS_DIR, MANIFEST_FILE)) ||
    pairIn('.') ||
    pairIn(DEMO_REWARD_DIR);
  if (!looksLikeRun) {
    if (has(MANIFEST_FILE)) {
      throw new UsageError(
        `export: RUN ${given} is a weights folder (${MANIFEST_FILE}), not a run folder; give the run folder that holds it as ${RUN_WEIGHTS_DIR}/`,
      );
    }
    throw new UsageError(
      `export: RUN ${given} is not a run folder: expected ${RESOLVED_CONFIG_FILE}, ${RUN_WEIGHTS_DIR}/${MANIFEST_FILE} or ${GENERATIONS_FILE} + ${GENERATIONS_JSON_FILE}; found ${listing(runDir)}`,
    );
  }
  const missing: string[] = [];
  const config = has(RESOLVED_CONFIG_FILE) ? path.join(runDir, RESOLVED_CONFIG_FILE) : undefined;
  if (config === undefined) {
    missing.push(`${RESOLVED_CONFIG_FILE}: not in the run; config.yaml holds the defaults`);
  }

  let weights: string | undefined;
  const weightsDir = path.join(runDir, RUN_WEIGHTS_DIR);
  if (has(path.join(RUN_WEIGHTS_DIR, MANIFEST_FILE))) weights = weightsDir;
  else if (isDir(weightsDir)) {
    missing.push(
      `${RUN_WEIGHTS_DIR}/: has no ${MANIFEST_FILE} (found ${listing(weightsDir)}), so no transformer/ and pavrm/`,
    );
  } else missing.push(`${RUN_WEIGHTS_DIR}/: not in the run, so no transformer/ and pavrm/`);

  let generations: RunParts['generations'];
  for (const dir of ['.', DEMO_REWARD_DIR]) {
    const tensors = path.join(runDir, dir, GENERATIONS_FILE);
    const videos = path.join(runDir, dir, GENERATIONS_JSON_FILE);
    if (isFile(tensors) && isFile(videos)) {
      generations = { tensors, videos };
      break;
    }
    if (isFile(tensors) !== isFile(videos)) {
      const [present, absent] = isFile(tensors) ? [tensors, videos] : [videos, tensors];
      missing.push(
        `${path.relative(runDir, absent)}: not in the run beside ${path.relative(runDir, present)}, so no data/`,
      );
    }
  }
  if (generations === undefined && !missing.some((m) => m.endsWith('so no data/'))) {
    missing.push(
      `${GENERATIONS_FILE} + ${GENERATIONS_JSON_FILE} (or ${DEMO_REWARD_DIR}/ of a demo run): not in the run, so no data/`,
    );
  }
  if (weights === undefined && generations === undefined) {
    throw new UsageError(
      `export: nothing to export in ${given}: expected ${RUN_WEIGHTS_DIR}/${MANIFEST_FILE} (the run's models) or ${GENERATIONS_FILE} + ${GENERATIONS_JSON_FILE} (its labelled generations; ${DEMO_REWARD_DIR}/ in a demo run); found ${listing(runDir)}`,
    );
  }
  return { config, weights, generations, lora: findLora(runDir), missing };
}

/** Refuses an --out that would replace the run, a file, or a non-empty folder without --force. */
function checkOut(out: string, runDir: string, force: boolean, given: string): void {
  const rel = path.relative(out, runDir);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new UsageError(
      `export: --out ${given} is the run folder or holds it; expected a folder outside ${runDir} (default ${path.join(runDir, DEFAULT_EXPORT_DIR)})`,
    );
  }
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) {
    throw new UsageError(`export: --out ${given} is a file; expected a folder to write (new, or empty)`);
  }
  const entries = readdirSync(out);
  if (entries.length > 0 && !force) {
    throw new UsageError(
      `export: ${given} exists and is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}: ${listing(out)}); expected a new or empty folder, or pass --force to replace it`,
    );
  }
}

function parseGenerations(text: string, file: string): Generation[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CorruptFileError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(doc)) {
    throw new CorruptFileError(`${file}: expected an array of judged videos, got ${typeof doc}`);
  }
  return doc.map((v: unknown, i): Generation => {
    const o = v as Record<string, unknown>;
    const bad = (key: string, expected: string) =>
      new CorruptFileError(
        `${file}: entry ${i}: "${key}": expected ${expected}, got ${JSON.stringify(o?.[key]) ?? 'nothing'}`,
      );
    if (typeof o !== 'object' || o === null) {
      throw new CorruptFileError(`${file}: entry ${i}: expected an object, got ${JSON.stringify(v)}`);
    }
    if (typeof o.prompt !== 'string') throw bad('prompt', 'a string');
    if (typeof o.seed !== 'string' && typeof o.seed !== 'number') throw bad('seed', 'a string or number');
    if (o.motionGood !== 0 && o.motionGood !== 1) throw bad('motionGood', '0 or 1');
    if (o.adherent !== 0 && o.adherent !== 1) throw bad('adherent', '0 or 1');
    const details: Record<string, number | boolean> = {};
    for (const [k, snake] of [
      ['motionScore', 'motion_score'],
      ['adherenceScore', 'adherence_score'],
      ['colourOk', 'colour_ok'],
      ['shapeOk', 'shape_ok'],
      ['motionOk', 'motion_ok'],
      ['sizeOk', 'size_ok'],
    ] as const) {
      const x = o[k];
      if (typeof x === 'number' || typeof x === 'boolean') details[snake] = x;
    }
    return {
      prompt: o.prompt,
      seed: String(o.seed),
      motionGood: o.motionGood,
      adherent: o.adherent,
      details,
    };
  });
}

/** One float tensor of generations.safetensors as float32, with its shape checked against `rank` and `n`. */
async function readFloat(
  file: string,
  reader: Awaited<ReturnType<typeof openSafetensors>>,
  name: 'latents' | 'text',
  expected: string,
  n: number,
): Promise<{ shape: number[]; data: Float32Array }> {
  if (!reader.has(name)) {
    throw new CorruptFileError(
      `${file}: expected a tensor "${name}" ${expected}, found ${reader.names.map((x) => JSON.stringify(x)).join(', ') || 'no tensors'}`,
    );
  }
  const info = reader.info(name);
  const rank = name === 'latents' ? 5 : 3;
  if (info.shape.length !== rank || info.shape[0] !== n) {
    throw new CorruptFileError(
      `${file}: "${name}": expected ${expected} with N = ${n} (the entries of ${GENERATIONS_JSON_FILE}), found ${formatShape(info.shape)}`,
    );
  }
  if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
    throw new CorruptFileError(`${file}: "${name}": expected a float tensor, found ${info.dtype}`);
  }
  const decoded = decodeRaw(await reader.readRaw(name));
  const data = decoded instanceof Float32Array ? decoded : Float32Array.from(decoded as Float64Array);
  return { shape: [...info.shape], data };
}

/** A file name of the seed: letters, digits, _ . - only; `_<index>` added when that name is taken. */
function clipId(seed: string, index: number, taken: Set<string>): string {
  const base = seed
    .replace(/[^\w.-]+/g, '_')
    .replace(/^[_.]+|_+$/g, '')
    .slice(0, 80);
  let id = base === '' ? `generation_${index}` : base;
  if (taken.has(id)) id = `${id}_${index}`;
  taken.add(id);
  return id;
}

/** Writes the labelled generations in the reference layout under `dataDir`. */
async function exportData(
  ctx: CommandContext,
  files: { tensors: string; videos: string },
  dataDir: string,
): Promise<{ clips: number; motionGood: number; adherent: number; list: string; files: string[] }> {
  const videos = parseGenerations(await readFile(files.videos, 'utf8'), files.videos);
  const n = videos.length;
  if (n === 0) throw new CorruptFileError(`${files.videos}: expected judged videos, found an empty array`);
  const reader = await openSafetensors(files.tensors);
  let latents: { shape: number[]; data: Float32Array };
  let text: { shape: number[]; data: Float32Array };
  try {
    latents = await readFloat(files.tensors, reader, 'latents', "[N, F', H', W', C]", n);
    text = await readFloat(files.tensors, reader, 'text', '[N, L, D]', n);
  } finally {
    await reader.close();
  }
  const latentShape = latents.shape.slice(1);
  const textShape = text.shape.slice(1);
  const perLatent = latents.data.length / n;
  const perText = text.data.length / n;
  const taken = new Set<string>();
  ctx.progress.phase('clips', n);
  async function* clips(): AsyncGenerator<ReferenceClipInput> {
    for (const [i, v] of videos.entries()) {
      if (ctx.signal.aborted) throw new InterruptedError('export stopped; nothing was written');
      const states = { shape: textShape, data: text.data.subarray(i * perText, (i + 1) * perText) };
      yield {
        id: clipId(v.seed, i, taken),
        // One prompt per generation: it is both the short and the long caption, as the reference's
        // readers take one or the other.
        prompt: v.prompt,
        longPrompt: v.prompt,
        latent: { shape: latentShape, data: latents.data.subarray(i * perLatent, (i + 1) * perLatent) },
        text: states,
        longText: states,
        physics: v.motionGood,
        human: v.motionGood,
        textAlignment: v.adherent,
        extra: { prfl_generation: { index: i, seed: v.seed, ...v.details } },
      };
      ctx.progress.update(i + 1);
    }
  }
  const list = await writeReferenceLayout(dataDir, clips(), { listName: EXPORT_LIST_FILE });
  ctx.progress.end();
  return {
    clips: n,
    motionGood: videos.filter((v) => v.motionGood === 1).length,
    adherent: videos.filter((v) => v.adherent === 1).length,
    list,
    files: ['meta_v1/', 'latents/', EXPORT_LIST_FILE],
  };
}

/** Loads the run's embedded models; a user error names the weights folder. */
async function loadRunModels(weights: string, reward: boolean): Promise<EmbeddedModels> {
  try {
    return await loadEmbedded({ from: weights, reward });
  } catch (e) {
    if (isUserError(e))
      throw new UsageError(`export: cannot load the run's weights ${weights}: ${e.message}`);
    throw e;
  }
}

/** LoRA adapters on `dit` holding the values of `source`. The caller disposes them. */
async function loraFrom(dit: WanDiT, source: LoraSource): Promise<LoraAdapters> {
  if (source.kind === 'peft') return loadLora(dit, source.dir);
  const state = await readCheckpointState(source.dir);
  const file = path.join(source.dir, state.files.model);
  const reader = await openSafetensors(file);
  const content = reader.metadata?.content;
  await reader.close();
  if (content !== 'lora') {
    throw new CorruptFileError(
      `${file}: expected the LoRA adapters of the run (metadata content "lora", as ${CHECKPOINT_FILE} has options.lora), found content ${JSON.stringify(content ?? null)}`,
    );
  }
  const lora = new LoraAdapters(dit, state.options.lora as ConstructorParameters<typeof LoraAdapters>[1]);
  const saved = await loadSafetensors(file);
  try {
    const want = lora.namedVariables();
    const extra = Object.keys(saved).filter((k) => !want.has(k));
    const absent = [...want.keys()].filter((k) => !(k in saved));
    if (extra.length > 0 || absent.length > 0) {
      throw new CorruptFileError(
        `${file}: the adapters do not match options.lora of ${CHECKPOINT_FILE} on this DiT: ${absent.length} expected and missing (${absent.slice(0, 3).join(', ')}), ${extra.length} unexpected (${extra.slice(0, 3).join(', ')})`,
      );
    }
    for (const [name, v] of want) {
      const t = saved[name] as NonNullable<(typeof saved)[string]>;
      if (t.shape.join() !== v.shape.join()) {
        throw new CorruptFileError(
          `${file}: "${name}": expected ${formatShape(v.shape)} (tfjs layout), found ${formatShape(t.shape)}`,
        );
      }
      v.assign(t);
    }
    return lora;
  } catch (e) {
    lora.dispose();
    throw e;
  } finally {
    for (const t of Object.values(saved)) t.dispose();
  }
}

/** What exportWeights wrote. */
interface ExportedWeights {
  transformer: ExportedPart;
  pavrm: ExportedPart | null;
  lora: ExportedPart | null;
  /** The DiT's weights file in transformer/ ('' for the folder, when sharded). */
  initTransformer: string;
  /** The exported PAVRM's architecture. */
  reward: PavrmConfig | undefined;
  missing: string[];
}

/** Writes transformer/, pavrm/ and lora/ from the run's weights folder (and its LoRA adapters). */
async function exportWeights(
  ctx: CommandContext,
  parts: RunParts,
  tmp: string,
  fromRun: (p: string) => string,
  stop: () => void,
): Promise<ExportedWeights> {
  const weights = parts.weights as string;
  const missing: string[] = [];
  const hasPavrm = existsSync(path.join(weights, PAVRM_DIR, PAVRM_CONFIG_FILE));
  if (!hasPavrm) missing.push(`${RUN_WEIGHTS_DIR}/${PAVRM_DIR}/: not in the run's weights, so no pavrm/`);
  await ctx.backend();
  ctx.note(`export: ${fromRun(weights)}/ -> transformer/${hasPavrm ? ', pavrm/' : ''}`);
  const models = await loadRunModels(weights, hasPavrm);
  try {
    const saved = await saveWanDiT(models.dit, path.join(tmp, 'transformer'));
    const transformer: ExportedPart = {
      path: 'transformer/',
      from: `${fromRun(weights)}/${DIT_DIR}/`,
      files: [saved.configFile, ...(saved.indexFile ? [saved.indexFile] : []), ...saved.files],
    };
    // One weights file, or the folder when the DiT was sharded (with an index).
    const initTransformer = saved.indexFile === undefined ? (saved.files[0] as string) : '';
    stop();
    let pavrm: ExportedPart | null = null;
    let reward: PavrmConfig | undefined;
    if (models.reward !== undefined) {
      // Every backbone variable (the DiT's embeddings and first blocks), so the file stands alone.
      const manifest = await saveReward(models.reward, path.join(tmp, 'pavrm'), {
        backbone: 'all',
        backboneLayout: 'torch',
      });
      reward = manifest.config;
      pavrm = {
        path: 'pavrm/',
        from: `${fromRun(weights)}/${PAVRM_DIR}/`,
        files: [
          ...(manifest.files.transformer ? [manifest.files.transformer] : []),
          manifest.files.mlp,
          ...(manifest.files.queryAttention ? [manifest.files.queryAttention] : []),
          PAVRM_CONFIG_FILE,
        ],
      };
    }
    stop();
    let lora: ExportedPart | null = null;
    if (parts.lora !== undefined) {
      const adapters = await loraFrom(models.dit, parts.lora);
      try {
        const dir = path.join(tmp, 'lora');
        await saveLora(adapters, dir, { layout: 'peft' });
        await saveLora(adapters, dir, { layout: 'reference' });
      } finally {
        adapters.dispose();
      }
      lora = {
        path: 'lora/',
        from: `${fromRun(parts.lora.dir)}/`,
        files: [PEFT_ADAPTER_FILE, REFERENCE_LORA_FILE, PEFT_CONFIG_FILE],
      };
    }
    return { transformer, pavrm, lora, initTransformer, reward, missing };
  } finally {
    disposeEmbedded(models);
  }
}

/** The run's configuration with the reference's keys only, paths pointing at the exported files. */
function referenceConfig(config: ResolvedConfig, paths: Record<string, unknown>): Record<string, unknown> {
  const flat = config.flat();
  const root: Record<string, unknown> = {};
  for (const { key, reference } of CONFIG_SCHEMA) {
    if (!reference) continue;
    const value = Object.hasOwn(paths, key) ? paths[key] : flat[key];
    const parts = key.split('.');
    let node = root;
    for (const p of parts.slice(0, -1)) {
      if (node[p] === undefined) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1] as string] = Array.isArray(value) ? [...value] : (value ?? null);
  }
  return root;
}

/** Atomically puts `tmp` in place of `out` (an existing `out` is moved aside first, then removed). */
async function replaceFolder(tmp: string, out: string): Promise<void> {
  if (!existsSync(out)) {
    await rename(tmp, out);
    return;
  }
  const old = `${out}.old-${process.pid}`;
  await rm(old, { recursive: true, force: true });
  await rename(out, old);
  try {
    await rename(tmp, out);
  } catch (e) {
    await rename(old, out);
    throw e;
  }
  await rm(old, { recursive: true, force: true });
}

/**
 * Exports the run folder `run` into `o.out` (default RUN/export-reference) in the reference's layout.
 * @throws UsageError for a RUN that is not a run folder or holds nothing to export, an --out that exists
 *   and is not empty (without --force), or weights that do not load; InterruptedError on Ctrl-C.
 */
export async function exportRun(
  ctx: CommandContext,
  run: string,
  o: ExportCommandOptions,
): Promise<ExportResult> {
  if (!(EXPORT_TARGETS as readonly string[]).includes(o.to)) {
    throw new UsageError(
      `export: --to: expected one of ${EXPORT_TARGETS.join(', ')}, got ${JSON.stringify(o.to)}`,
    );
  }
  const runDir = ctx.resolve(run);
  const parts = findRunParts(runDir, run);
  const out = o.out !== undefined ? ctx.resolve(o.out) : path.join(runDir, DEFAULT_EXPORT_DIR);
  checkOut(out, runDir, o.force === true, o.out ?? path.join(run, DEFAULT_EXPORT_DIR));
  // The run's configuration, then --config files and --set (e.g. --set model.base_path=...).
  const layers: ConfigLayer[] = parts.config !== undefined ? [await readConfigFile(parts.config)] : [];
  for (const f of ctx.global.config) layers.push(await readConfigFile(ctx.resolve(f)));
  layers.push(setLayer(ctx.global.set));
  const config = mergeConfig(layers);
  const missing = [...parts.missing];
  const tmp = `${out}.tmp-${process.pid}`;
  const fromRun = (p: string) => path.relative(runDir, p) || '.';
  const stop = () => {
    if (ctx.signal.aborted) throw new InterruptedError('export stopped; nothing was written');
  };
  await mkdir(path.dirname(out), { recursive: true });
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    let data: ExportResult['data'] = null;
    if (parts.generations !== undefined) {
      ctx.note(`export: ${fromRun(parts.generations.tensors)} -> data/`);
      const d = await exportData(ctx, parts.generations, path.join(tmp, 'data'));
      data = {
        path: 'data/',
        from: fromRun(parts.generations.tensors),
        files: d.files,
        clips: d.clips,
        motionGood: d.motionGood,
        adherent: d.adherent,
      };
    }
    stop();
    const weights =
      parts.weights !== undefined ? await exportWeights(ctx, parts, tmp, fromRun, stop) : undefined;
    const { transformer = null, pavrm = null, lora = null } = weights ?? {};
    if (weights !== undefined) missing.push(...weights.missing);
    else if (parts.lora !== undefined) {
      missing.push(
        `LoRA adapters in ${fromRun(parts.lora.dir)}/: not exported, their layers come from ${RUN_WEIGHTS_DIR}/ (the DiT), which the run lacks`,
      );
    }
    if (parts.lora === undefined && config.get<boolean>('model.lora.use_lora')) {
      missing.push(
        `LoRA adapters: model.lora.use_lora is true but the run has none (looked for ${[...LORA_DIRS, ...PRFL_CHECKPOINT_DIRS].map((d) => `${d}/`).join(', ')}), so no lora/`,
      );
    }
    stop();

    // Paths in config.yaml are relative to the folder the reference runs from: data/ when there is data.
    const runFrom = data !== null ? path.join(tmp, 'data') : tmp;
    const rel = (...p: string[]) =>
      path
        .relative(runFrom, path.join(tmp, ...p))
        .split(path.sep)
        .join('/');
    const paths: Record<string, unknown> = {};
    if (data !== null) paths['dataset.meta_file_list'] = [rel('data', EXPORT_LIST_FILE)];
    if (weights?.initTransformer !== undefined) {
      paths['model.init_transformer_path'] = rel('transformer', weights.initTransformer);
    }
    if (pavrm !== null && weights?.reward !== undefined) {
      const has = (f: string) => pavrm.files.includes(f);
      paths['model.lrm_transformer_path'] = has(TRANSFORMER_FILE) ? rel('pavrm', TRANSFORMER_FILE) : null;
      paths['model.lrm_mlp_path'] = rel('pavrm', MLP_FILE);
      paths['model.lrm_query_attention_path'] = has(QUERY_ATTENTION_FILE)
        ? rel('pavrm', QUERY_ATTENTION_FILE)
        : null;
      // The exported PAVRM's own architecture, so the reference builds the model these files fit.
      const r = weights.reward;
      paths['lrm.feature_layer'] = r.blocks;
      paths['lrm.pool'] = Object.entries(POOL_AGGREGATION).find(([, a]) => a === r.aggregation)?.[0];
      if (r.hidden[0] !== undefined) paths['lrm.mlp_dim'] = r.hidden[0];
    }
    if (config.get('save.output_dir') === null) paths['save.output_dir'] = rel(OUTPUT_DIR);
    // What the user gives now (--config, --set) wins over what the export points at.
    const given = new Set(['--set', ...ctx.global.config.map((f) => ctx.resolve(f))]);
    for (const key of Object.keys(paths)) if (given.has(config.source(key))) delete paths[key];
    const header =
      `# ${runDir} in the PyTorch reference's key layout (prfl export --to reference).\n` +
      `# Relative paths are relative to ${data !== null ? 'data/' : 'this folder'}: run the reference's scripts from there (README.md).\n`;
    await writeTextAtomic(path.join(tmp, 'config.yaml'), header + toYaml(referenceConfig(config, paths)));
    const configPart: ExportedPart = {
      path: 'config.yaml',
      from: [
        parts.config !== undefined ? fromRun(parts.config) : 'the defaults',
        ...ctx.global.config,
        ...(ctx.global.set.length > 0 ? ['--set'] : []),
      ].join(' < '),
      files: ['config.yaml'],
    };
    const result: ExportResult = {
      to: 'reference',
      run: runDir,
      out,
      data,
      transformer,
      pavrm,
      lora,
      config: configPart,
      readme: path.join(out, 'README.md'),
      runFrom: data !== null ? path.join(out, 'data') : out,
      missing,
    };
    await writeTextAtomic(path.join(tmp, 'README.md'), exportReadme(result, config, paths, weights?.reward));
    stop();
    await replaceFolder(tmp, out);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (ctx.signal.aborted && !(e instanceof InterruptedError)) {
      throw new InterruptedError(`export stopped (${(e as Error).message}); nothing was written`);
    }
    throw e;
  }
}

/** README.md of the export: what each file is and how the reference's scripts take it. */
function exportReadme(
  r: ExportResult,
  config: ResolvedConfig,
  paths: Record<string, unknown>,
  reward: PavrmConfig | undefined,
): string {
  const from = r.data !== null ? 'data/' : 'this folder';
  const lines: string[] = [
    '# A prfl run in the PyTorch reference layout',
    '',
    `Exported by \`prfl export --to reference\` from \`${r.run}\`, for the scripts of HY-Video-PRFL`,
    '(https://github.com/Tencent-Hunyuan/HY-Video-PRFL). The reference resolves relative paths against the',
    `folder it runs in: every relative path in \`config.yaml\` and in the data is relative to ${from}.`,
    '',
  ];
  if (r.data !== null) {
    lines.push(
      '## data/',
      '',
      `${r.data.clips} labelled generations of the run (from \`${r.data.from}\`), as the reference's preprocessing`,
      '(scripts/preprocess/gen_wanx_latent.py) lays them out:',
      '',
      '- `meta_v1/<id>_meta_v1.json`: one meta JSON per video, with `source_id` (the id comes from the',
      "  seed of the video's noise), `short_caption` and `long_caption` (the prompt: a generation has one),",
      "  the labels, and the paths and shapes of its arrays; `prfl_generation` keeps the oracle's scores.",
      "- `latents/<id>.npy`: the normalised VAE latent, float32 [1, C, F', H', W'] (PyTorch layout;",
      '  `vae_latent_path`, `latent_shape`).',
      '- `latents/<id>_textshort.npy` and `<id>_textlong.npy`: the text states the video was generated',
      '  from, float32 [1, L, D] (the same states in both; `textshort_path`, `textlong_path`).',
      `- \`${EXPORT_LIST_FILE}\`: every meta JSON, one per line (\`dataset.meta_file_list\`).`,
      '',
      `Labels (the MovingShapes oracle's): \`physics_quality\` = \`human_quality\` = the motion label (${r.data.motionGood} of`,
      `${r.data.clips} good), so the reference's motion quality (physics AND human) is that label; \`text_alignment\` =`,
      `whether colour, shape and motion follow the prompt (${r.data.adherent} of ${r.data.clips}). \`blur_quality\` is not`,
      'judged and not written (the reference reads a missing label as 0).',
      '',
      'Not written: `video_path` (a run keeps latents, not videos), and `f1_black_path` / `imgclip_path`',
      '(the first-frame condition and the image tokens of image-to-video: the generations are text-to-video',
      "and the embedded models have no image encoder). The reference's training reader opens those two for",
      'every clip; make them with its preprocessing from decoded videos when its reader needs them.',
      '',
    );
  }
  if (r.transformer !== null) {
    lines.push(
      '## transformer/',
      '',
      `The run's DiT (from \`${r.transformer.from}\`) in Wan's layout: \`${WAN_CONFIG_FILE}\` and`,
      "`diffusion_pytorch_model.safetensors` (Wan's keys, PyTorch layouts, float32). It loads with",
      '`WanModel.from_pretrained("transformer")`; `config.yaml` passes the weights as',
      `\`model.init_transformer_path\` (\`${String(paths['model.init_transformer_path'] ?? config.get('model.init_transformer_path'))}\`). The latents and text states`,
      'of data/ go with this model (its `in_dim`, `text_dim`), not with the released Wan2.1 checkpoints.',
      '',
    );
  }
  if (r.pavrm !== null) {
    lines.push(
      '## pavrm/',
      '',
      `The PAVRM (from \`${r.pavrm.from}\`) in the reference's three parts, each a safetensors state dict`,
      '(`module.load_state_dict(safetensors.torch.load_file(path))`):',
      '',
      `- \`${TRANSFORMER_FILE}\`: its backbone, the DiT's embeddings and ${reward?.blocks === 1 ? 'first block' : `first ${reward?.blocks ?? 'K'} blocks`}`,
      '  (Wan keys, PyTorch layouts): `model.lrm_transformer_path`;',
      `- \`${MLP_FILE}\`: the MLP head (fc1, fc2, fc3): \`model.lrm_mlp_path\`;`,
      ...(r.pavrm.files.includes(QUERY_ATTENTION_FILE)
        ? [`- \`${QUERY_ATTENTION_FILE}\`: the query-attention pooling: \`model.lrm_query_attention_path\`;`]
        : []),
      `- \`${PAVRM_CONFIG_FILE}\`: prfl's own description (aggregation, widths), for \`prfl inspect\` and loadReward.`,
      '',
      "For the reference's PAVRM inference (scripts/pavrm/inference_pavrm.py), pass the same three files as",
      '`resume_transformer_path`, `resume_mlp_path` and `resume_query_attention_path`.',
      '',
    );
  }
  if (r.lora !== null) {
    lines.push(
      '## lora/',
      '',
      `The LoRA adapters the run trained (from \`${r.lora.from}\`), rank and alpha in \`${PEFT_CONFIG_FILE}\`:`,
      '',
      `- \`${PEFT_ADAPTER_FILE}\` + \`${PEFT_CONFIG_FILE}\`: PEFT's layout (\`PeftModel.from_pretrained(model, "lora")\`);`,
      `- \`${REFERENCE_LORA_FILE}\`: the same weights as the reference's checkpoints hold them: its`,
      '  `model.lora.resume_lora_path`, or `--lora_path` of scripts/prfl/inference_prfl.py.',
      '',
      'The adapters apply to the base DiT they were trained on; `config.yaml` leaves `resume_lora_path` unset,',
      'since transformer/ holds the weights the run ends with.',
      '',
    );
  }
  lines.push(
    '## config.yaml',
    '',
    `The run's configuration (from \`${r.config.from}\`) with the reference's keys only (model.*,`,
    'extra_model.scheduler.*, dataset.*, optimizer.*, train.*, eval.*, save.*, lrm.*); the paths point at',
    'the files above' +
      (config.get('save.output_dir') === null ? ', and `save.output_dir` at `output/`.' : '.') +
      (reward !== undefined && Object.hasOwn(paths, 'lrm.feature_layer')
        ? ` \`lrm.feature_layer\` (${reward.blocks}), \`lrm.pool\` (${String(paths['lrm.pool'])}) and \`lrm.mlp_dim\` (${String(paths['lrm.mlp_dim'])}) are the exported PAVRM's, so the reference builds the model its files fit.`
        : '') +
      ' It reads back with `prfl --config config.yaml` too.',
    '',
    '## Running the reference',
    '',
    '```sh',
    'export PYTHONPATH=/path/to/HY-Video-PRFL',
    ...(r.data !== null ? ['cd data   # from this folder'] : []),
    'torchrun --nproc_per_node=8 $PYTHONPATH/scripts/pavrm/train_pavrm.py --config ' +
      (r.data !== null ? '../config.yaml' : 'config.yaml') +
      '   # the PAVRM',
    'torchrun --nproc_per_node=8 $PYTHONPATH/scripts/prfl/train_prfl.py --config ' +
      (r.data !== null ? '../config.yaml' : 'config.yaml') +
      '     # PRFL',
    '```',
    '',
    'Set `model.base_path` to the base model folder the reference loads its VAE and text encoder from',
    "(or export again with `--set model.base_path=DIR`: --config and --set apply over the run's configuration).",
    '',
  );
  if (r.missing.length > 0) {
    lines.push('## Not in the run', '', ...r.missing.map((m) => `- ${m}`), '');
  }
  return `${lines.join('\n')}`;
}

/** The result for a terminal. */
export function formatExport(r: ExportResult): string {
  const rows: Array<[string, string]> = [];
  if (r.data !== null) {
    rows.push([
      `data/${EXPORT_LIST_FILE}`,
      `${r.data.clips} clips (${r.data.motionGood} good motion, ${r.data.adherent} follow the prompt), from ${r.data.from}`,
    ]);
  }
  if (r.transformer !== null)
    rows.push(['transformer/', `the DiT in Wan's layout, from ${r.transformer.from}`]);
  if (r.pavrm !== null) {
    rows.push(['pavrm/', `the PAVRM (${r.pavrm.files.join(', ')}), from ${r.pavrm.from}`]);
  }
  if (r.lora !== null)
    rows.push(['lora/', `LoRA adapters (PEFT and the reference's file), from ${r.lora.from}`]);
  rows.push(['config.yaml', `the reference's keys, from ${r.config.from}`]);
  rows.push(['README.md', 'what each file is and how the reference takes it']);
  const width = Math.max(...rows.map(([a]) => a.length));
  const lines = [
    `exported ${r.run} to ${r.out} (the PyTorch reference's layout; run its scripts from ${r.runFrom}):`,
    ...rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`),
  ];
  if (r.missing.length > 0) lines.push('not exported:', ...r.missing.map((m) => `  ${m}`));
  return `${lines.join('\n')}\n`;
}
