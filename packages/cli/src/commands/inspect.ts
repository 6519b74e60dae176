/**
 * `prfl inspect <path>`: what a file or folder holds, without loading any tensor.
 *
 * Files: safetensors and PyTorch checkpoints (told apart by their first bytes), .npy arrays. Folders: a
 * Wan DiT (config.json + diffusion_pytorch_model*.safetensors), a PAVRM (pavrm.json), a trainer
 * checkpoint (checkpoint.json of @prfl/refl or @prfl/reward), the embedded weights (manifest.json of
 * @prfl/pretrained) or a run folder (config.resolved.yaml, metrics.jsonl).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseNpy } from '@prfl/datasets';
import { WAN_CONFIG_FILE, WAN_WEIGHTS_PREFIX } from '@prfl/models';
import { MANIFEST_FILE } from '@prfl/pretrained';
import { PAVRM_CONFIG_FILE } from '@prfl/reward';
import {
  CorruptFileError,
  formatBytes,
  isTorchCheckpoint,
  openWeights,
  type TensorReader,
  type TorchValue,
} from '@prfl/tensor';
import YAML from 'yaml';
import { UsageError } from '../errors.js';
import { METRICS_FILE, RESOLVED_CONFIG_FILE } from '../run-dir.js';
import { toYaml } from '../yaml-text.js';

/** The checkpoint.json of both trainers (the same name in @prfl/refl and @prfl/reward). */
export const TRAINER_CHECKPOINT_FILE = 'checkpoint.json';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  params: number;
  bytes: number;
}

export interface WeightsSummary {
  /** Tensor count, total elements and stored bytes. */
  tensorCount: number;
  totalParams: number;
  totalBytes: number;
}

export type InspectResult =
  | ({
      kind: 'safetensors';
      path: string;
      fileBytes: number;
      metadata: Record<string, string> | null;
      tensors: TensorSummary[];
    } & WeightsSummary)
  | ({
      kind: 'torch';
      path: string;
      fileBytes: number;
      archive: string;
      /** Top-level keys of the saved object when it is a dict. */
      topLevelKeys: string[] | null;
      tensors: TensorSummary[];
    } & WeightsSummary)
  | { kind: 'npy'; path: string; dtype: string; shape: number[]; min: number; max: number; mean: number }
  | ({ kind: 'wan-dit'; path: string; config: Record<string, unknown>; files: string[] } & WeightsSummary)
  | ({
      kind: 'pavrm';
      path: string;
      manifest: Record<string, unknown>;
      files: Record<string, WeightsSummary & { file: string }>;
    } & WeightsSummary)
  | {
      kind: 'checkpoint';
      path: string;
      format: string;
      step: number | null;
      epoch: number | null;
      state: Record<string, unknown>;
      files: Record<string, WeightsSummary & { file: string }>;
    }
  | {
      kind: 'embedded';
      path: string;
      manifest: Record<string, unknown>;
      models: Record<string, (WeightsSummary & { file: string }) | { file: string; missing: true }>;
    }
  | {
      kind: 'run';
      path: string;
      config: Record<string, unknown> | null;
      metricsLines: number;
      lastMetrics: Record<string, unknown> | null;
      lastEvent: Record<string, unknown> | null;
      entries: string[];
    };

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function summarize(reader: TensorReader): { tensors: TensorSummary[] } & WeightsSummary {
  const tensors = reader.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    params: product(t.shape),
    bytes: t.byteLength,
  }));
  return {
    tensors,
    tensorCount: tensors.length,
    totalParams: tensors.reduce((a, t) => a + t.params, 0),
    totalBytes: tensors.reduce((a, t) => a + t.bytes, 0),
  };
}

async function weightsFile(file: string): Promise<WeightsSummary & { file: string }> {
  const reader = await openWeights(file);
  try {
    const { tensorCount, totalParams, totalBytes } = summarize(reader);
    return { file: path.basename(file), tensorCount, totalParams, totalBytes };
  } finally {
    await reader.close();
  }
}

function readJson(file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CorruptFileError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CorruptFileError(`${file}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

function topLevelKeys(root: TorchValue): string[] | null {
  return root instanceof Map ? [...root.keys()].map((k) => String(k)) : null;
}

async function inspectFile(file: string): Promise<InspectResult> {
  const base = path.basename(file);
  if (
    [MANIFEST_FILE, TRAINER_CHECKPOINT_FILE, PAVRM_CONFIG_FILE, RESOLVED_CONFIG_FILE, METRICS_FILE].includes(
      base,
    )
  ) {
    return inspectFolder(path.dirname(file));
  }
  const fileBytes = statSync(file).size;
  if (file.toLowerCase().endsWith('.npy')) {
    const array = parseNpy(new Uint8Array(readFileSync(file)), file);
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    let sum = 0;
    const data = array.data as ArrayLike<number | bigint>;
    for (let i = 0; i < data.length; i++) {
      const x = Number(data[i]);
      if (x < min) min = x;
      if (x > max) max = x;
      sum += x;
    }
    const n = array.data.length;
    return {
      kind: 'npy',
      path: file,
      dtype: array.dtype,
      shape: array.shape,
      min,
      max,
      mean: n > 0 ? sum / n : 0,
    };
  }
  const reader = await openWeights(file);
  try {
    const summary = summarize(reader);
    if (isTorchCheckpoint(reader)) {
      return {
        kind: 'torch',
        path: file,
        fileBytes,
        archive: reader.archive,
        topLevelKeys: topLevelKeys(reader.root),
        ...summary,
      };
    }
    return {
      kind: 'safetensors',
      path: file,
      fileBytes,
      metadata: reader.metadata === undefined ? null : { ...reader.metadata },
      ...summary,
    };
  } finally {
    await reader.close();
  }
}

function addUp(parts: readonly WeightsSummary[]): WeightsSummary {
  return {
    tensorCount: parts.reduce((a, p) => a + p.tensorCount, 0),
    totalParams: parts.reduce((a, p) => a + p.totalParams, 0),
    totalBytes: parts.reduce((a, p) => a + p.totalBytes, 0),
  };
}

async function filesOf(
  dir: string,
  names: Record<string, unknown>,
): Promise<Record<string, WeightsSummary & { file: string }>> {
  const out: Record<string, WeightsSummary & { file: string }> = {};
  for (const [role, name] of Object.entries(names)) {
    if (typeof name !== 'string') continue;
    const file = path.join(dir, name);
    if (!existsSync(file)) throw new CorruptFileError(`${dir}: ${role} file ${name} is listed but missing`);
    out[role] = await weightsFile(file);
  }
  return out;
}

async function inspectFolder(dir: string): Promise<InspectResult> {
  const has = (name: string) => existsSync(path.join(dir, name));
  const entries = readdirSync(dir).sort();
  if (has(MANIFEST_FILE)) {
    const manifest = readJson(path.join(dir, MANIFEST_FILE));
    const models: Record<string, (WeightsSummary & { file: string }) | { file: string; missing: true }> = {};
    const parts: Array<[string, string]> = [
      ['vae', 'vae.safetensors'],
      ['textEncoder', 'text_encoder.safetensors'],
      ['dit', `dit/${WAN_WEIGHTS_PREFIX}.safetensors`],
    ];
    for (const [role, name] of parts) {
      const file = path.join(dir, name);
      models[role] = existsSync(file)
        ? { ...(await weightsFile(file)), file: name }
        : { file: name, missing: true };
    }
    const pavrmDir = path.join(dir, 'pavrm');
    if (existsSync(path.join(pavrmDir, PAVRM_CONFIG_FILE))) {
      const pavrm = await inspectFolder(pavrmDir);
      if (pavrm.kind === 'pavrm') {
        models['pavrm'] = {
          file: `pavrm/${PAVRM_CONFIG_FILE}`,
          tensorCount: pavrm.tensorCount,
          totalParams: pavrm.totalParams,
          totalBytes: pavrm.totalBytes,
        };
      }
    } else models['pavrm'] = { file: `pavrm/${PAVRM_CONFIG_FILE}`, missing: true };
    return { kind: 'embedded', path: dir, manifest, models };
  }
  if (has(TRAINER_CHECKPOINT_FILE)) {
    const state = readJson(path.join(dir, TRAINER_CHECKPOINT_FILE));
    const files = await filesOf(dir, (state['files'] ?? {}) as Record<string, unknown>);
    const { files: _files, options: _options, random: _random, noise: _noise, ...rest } = state;
    return {
      kind: 'checkpoint',
      path: dir,
      format: String(state['format'] ?? 'unknown'),
      step: typeof state['step'] === 'number' ? state['step'] : null,
      epoch: typeof state['epoch'] === 'number' ? state['epoch'] : null,
      state: rest,
      files,
    };
  }
  if (has(PAVRM_CONFIG_FILE)) {
    const manifest = readJson(path.join(dir, PAVRM_CONFIG_FILE));
    const files = await filesOf(dir, (manifest['files'] ?? {}) as Record<string, unknown>);
    const { backbone, ...shown } = manifest;
    const b = backbone as { variables?: unknown; layout?: unknown; names?: unknown[] } | undefined;
    return {
      kind: 'pavrm',
      path: dir,
      manifest: {
        ...shown,
        ...(b !== undefined
          ? { backbone: { variables: b.variables, layout: b.layout, names: b.names?.length ?? 0 } }
          : {}),
      },
      files,
      ...addUp(Object.values(files)),
    };
  }
  const shards = entries.filter((e) => e.startsWith(WAN_WEIGHTS_PREFIX) && e.endsWith('.safetensors'));
  if (has(WAN_CONFIG_FILE) && shards.length > 0) {
    const summaries = [];
    for (const s of shards) summaries.push(await weightsFile(path.join(dir, s)));
    return {
      kind: 'wan-dit',
      path: dir,
      config: readJson(path.join(dir, WAN_CONFIG_FILE)),
      files: shards,
      ...addUp(summaries),
    };
  }
  if (has(RESOLVED_CONFIG_FILE) || has(METRICS_FILE)) {
    let config: Record<string, unknown> | null = null;
    if (has(RESOLVED_CONFIG_FILE)) {
      try {
        config = YAML.parse(readFileSync(path.join(dir, RESOLVED_CONFIG_FILE), 'utf8')) as Record<
          string,
          unknown
        >;
      } catch (e) {
        throw new CorruptFileError(
          `${path.join(dir, RESOLVED_CONFIG_FILE)}: not valid YAML (${(e as Error).message})`,
        );
      }
    }
    let lines: Record<string, unknown>[] = [];
    if (has(METRICS_FILE)) {
      const text = readFileSync(path.join(dir, METRICS_FILE), 'utf8');
      lines = text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return []; // A line cut by a crash: skipped.
          }
        });
    }
    const lastMetrics = [...lines].reverse().find((l) => l['event'] === undefined) ?? null;
    const lastEvent = [...lines].reverse().find((l) => l['event'] !== undefined) ?? null;
    return { kind: 'run', path: dir, config, metricsLines: lines.length, lastMetrics, lastEvent, entries };
  }
  throw new UsageError(
    `${dir}: not a folder prfl knows; expected a Wan DiT folder (${WAN_CONFIG_FILE} + ${WAN_WEIGHTS_PREFIX}*.safetensors), ` +
      `a PAVRM folder (${PAVRM_CONFIG_FILE}), a trainer checkpoint (${TRAINER_CHECKPOINT_FILE}), embedded weights (${MANIFEST_FILE}) ` +
      `or a run folder (${RESOLVED_CONFIG_FILE}, ${METRICS_FILE})`,
  );
}

/** Inspects a file or folder. */
export async function inspectPath(target: string): Promise<InspectResult> {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(target);
  } catch {
    throw new UsageError(`${target}: no such file or folder`);
  }
  return stat.isDirectory() ? inspectFolder(target) : inspectFile(target);
}

// ---- human-readable output ----

const count = (n: number) => n.toLocaleString('en-US');

function tensorTable(tensors: readonly TensorSummary[], limit: number): string[] {
  const shown = tensors.slice(0, limit);
  const nameWidth = Math.min(72, Math.max(4, ...shown.map((t) => t.name.length)));
  const lines = shown.map(
    (t) =>
      `  ${t.name.padEnd(nameWidth)}  ${t.dtype.padEnd(4)}  ${`[${t.shape.join(', ')}]`.padEnd(22)}  ${count(t.params).padStart(12)}`,
  );
  if (tensors.length > limit)
    lines.push(`  ... and ${tensors.length - limit} more (--all shows every tensor)`);
  return lines;
}

function totals(s: WeightsSummary): string {
  return `${count(s.tensorCount)} tensors, ${count(s.totalParams)} parameters, ${formatBytes(s.totalBytes)}`;
}

function filesTable(files: Record<string, WeightsSummary & { file: string }>): string[] {
  return Object.entries(files).map(([role, f]) => `  ${role.padEnd(14)} ${f.file}: ${totals(f)}`);
}

function yamlBlock(value: unknown, indent = '  '): string[] {
  return toYaml(value)
    .trimEnd()
    .split('\n')
    .map((l) => `${indent}${l}`);
}

/** The result as text for a terminal. */
export function formatInspect(r: InspectResult, options: { all?: boolean } = {}): string {
  const limit = options.all ? Number.POSITIVE_INFINITY : 40;
  const out: string[] = [];
  switch (r.kind) {
    case 'safetensors':
    case 'torch': {
      out.push(
        `${r.path}: ${r.kind === 'torch' ? `PyTorch checkpoint (archive ${r.archive})` : 'safetensors'}, ${formatBytes(r.fileBytes)}`,
      );
      out.push(`  ${totals(r)}`);
      if (r.kind === 'safetensors' && r.metadata !== null) {
        out.push('metadata:');
        for (const [k, v] of Object.entries(r.metadata)) {
          out.push(`  ${k}: ${v.length > 200 ? `${v.slice(0, 200)}... (${v.length} characters)` : v}`);
        }
      }
      // The saved object's keys, when it is more than a flat state dict ({ state_dict, epoch, ... }).
      const flat =
        r.kind === 'torch' && r.topLevelKeys?.join('\n') === r.tensors.map((t) => t.name).join('\n');
      if (r.kind === 'torch' && r.topLevelKeys !== null && !flat) {
        out.push(`top-level keys: ${r.topLevelKeys.join(', ')}`);
      }
      out.push('tensors:', ...tensorTable(r.tensors, limit));
      break;
    }
    case 'npy':
      out.push(
        `${r.path}: .npy array ${r.dtype} [${r.shape.join(', ')}], min ${r.min.toPrecision(4)}, max ${r.max.toPrecision(4)}, mean ${r.mean.toPrecision(4)}`,
      );
      break;
    case 'wan-dit':
      out.push(
        `${r.path}: Wan DiT folder (${r.files.join(', ')})`,
        `  ${totals(r)}`,
        'config:',
        ...yamlBlock(r.config),
      );
      break;
    case 'pavrm':
      out.push(
        `${r.path}: PAVRM folder`,
        `  ${totals(r)}`,
        ...filesTable(r.files),
        'pavrm.json:',
        ...yamlBlock(r.manifest),
      );
      break;
    case 'checkpoint':
      out.push(
        `${r.path}: trainer checkpoint (${r.format}), step ${r.step ?? '?'}, epoch ${r.epoch ?? '?'}`,
        ...filesTable(r.files),
        'state:',
        ...yamlBlock(r.state),
      );
      break;
    case 'embedded': {
      out.push(`${r.path}: embedded weights (${String(r.manifest['format'])})`);
      for (const [role, m] of Object.entries(r.models)) {
        out.push(`  ${role.padEnd(12)} ${'missing' in m ? `${m.file}: MISSING` : `${m.file}: ${totals(m)}`}`);
      }
      const { format: _f, ...rest } = r.manifest;
      out.push('manifest:', ...yamlBlock(rest));
      break;
    }
    case 'run':
      out.push(`${r.path}: run folder (${r.entries.join(', ')})`);
      out.push(`  ${r.metricsLines} metrics lines`);
      if (r.lastMetrics !== null) out.push('last metrics:', ...yamlBlock(r.lastMetrics));
      if (r.lastEvent !== null) out.push('last event:', ...yamlBlock(r.lastEvent));
      if (r.config !== null) out.push('config:', ...yamlBlock(r.config));
      break;
  }
  return `${out.join('\n')}\n`;
}
