/**
 * JSONL manifests, one JSON object per line (blank lines allowed):
 *
 *   pointwise: {"id": "c1", "prompt": "...", "latent": "c1/latent", "text": "c1/text",
 *               "labels": {"physics_quality": 1, "human_quality": 0, "text_alignment": 1}, "split": "train"}
 *   pairwise:  {"prompt": "...", "win": "c1", "lose": "c7", "split": "train"}
 *
 * `latent`, `text`, `text_mask`, `long_text`, `condition` and `image_embeds` are keys of the latent
 * shard store, or paths ending in .npy relative to the manifest (latents channels-last [F, H, W, C], or
 * PyTorch [C, F, H, W] / [1, C, F, H, W] when "latent_layout": "cfhw"; `condition` follows
 * `latent_layout`). `long_prompt` / `long_text` are a second caption and its embedding (the reference's
 * long caption). `win` / `lose` name ids of the pointwise manifest. Labels take the reference's names
 * and values (0/1, "good"/"poor", null); motion_quality defaults to physics_quality AND human_quality.
 *
 * Lines are untrusted input: each is at most MAX_JSONL_LINE_BYTES, strict UTF-8 and at most
 * MAX_JSON_DEPTH deep before it is parsed, and every error names the file and the line.
 */
import { CorruptFileError } from '@prfl/tensor';
import { SPLITS, type Split } from '../moving-shapes/split.js';
import { defineEntry, isJsonObject, own, parseBoundedJson } from './bounded-json.js';
import { writeFileAtomic } from './files.js';
import { motionQualityOf, parseQualityLabel, type QualityLabel } from './labels.js';
import { type RawLine, readFileLines, splitLines } from './lines.js';
import { previewValue } from './preview.js';
import { decodeUtf8 } from './utf8.js';

/** Longest manifest line accepted (a MovingShapes line with its clip spec is about 2 KB). */
export const MAX_JSONL_LINE_BYTES = 16 * 1024 * 1024;

export interface PointwiseLabels {
  motion_quality: QualityLabel;
  physics_quality: QualityLabel;
  human_quality: QualityLabel;
  text_alignment: QualityLabel;
  /** The reference's fourth label (absent when the line has none). */
  blur_quality?: QualityLabel;
}

export interface PointwiseRecord {
  id: string;
  prompt: string;
  latent: string;
  /** 'fhwc' (default) or 'cfhw' for .npy latents (and conditions) in PyTorch layout. */
  latent_layout?: 'fhwc' | 'cfhw';
  text?: string;
  text_mask?: string;
  /** A second, longer caption and its embedding (the reference keeps a short and a long one). */
  long_prompt?: string;
  long_text?: string;
  /** Image-to-video: the first-frame condition latent (the reference's f1_black). */
  condition?: string;
  /** Image-to-video: the image encoder's tokens [S, D] (the reference's imgclip). */
  image_embeds?: string;
  labels: PointwiseLabels;
  split?: Split;
  /** Anything else on the line, kept (e.g. the MovingShapes clip spec). */
  extra?: Record<string, unknown>;
}

export interface PairwiseRecord {
  id?: string;
  prompt: string;
  win: string;
  lose: string;
  split?: Split;
}

/** A record with the line it came from. */
export interface PointwiseEntry {
  line: number;
  record: PointwiseRecord;
}

const POINTWISE_KEYS = new Set([
  'id',
  'prompt',
  'latent',
  'latent_layout',
  'text',
  'text_mask',
  'long_prompt',
  'long_text',
  'condition',
  'image_embeds',
  'labels',
  'split',
]);

/** Decodes and parses one line (strict UTF-8, bounded depth); undefined for a blank line. */
export function parseJsonlLine(bytes: Uint8Array, where: string): unknown {
  const text = decodeUtf8(bytes, where);
  if (!text.trim()) return undefined;
  return parseBoundedJson(text, where);
}

function* parsedLines(lines: Iterable<RawLine>, file: string): Generator<{ line: number; value: unknown }> {
  for (const { line, bytes } of lines) {
    const value = parseJsonlLine(bytes, `${file}:${line}`);
    if (value !== undefined) yield { line, value };
  }
}

/**
 * Streams the lines of a JSONL file as parsed values with their line numbers (1-based), without reading
 * the file whole. Blank lines are skipped.
 * @throws InvalidArgumentError for a missing file; CorruptFileError "file:line: ..." for a line that is
 *   too long, not UTF-8, too deep or not JSON.
 */
export async function* readJsonlLines(path: string): AsyncGenerator<{ line: number; value: unknown }> {
  for await (const raw of readFileLines(path, 'JSONL manifest', MAX_JSONL_LINE_BYTES)) {
    yield* parsedLines([raw], path);
  }
}

/** The parsed lines of an in-memory JSONL file (`file` names it in errors). */
export function parseJsonlLines(bytes: Uint8Array, file: string): Array<{ line: number; value: unknown }> {
  return [...parsedLines(splitLines(bytes, file, MAX_JSONL_LINE_BYTES), file)];
}

function fail(where: string, why: string): never {
  throw new CorruptFileError(`${where}: ${why}`);
}

function str(o: Record<string, unknown>, key: string, where: string, required: true): string;
function str(o: Record<string, unknown>, key: string, where: string, required: false): string | undefined;
function str(o: Record<string, unknown>, key: string, where: string, required: boolean): string | undefined {
  const v = own(o, key);
  if (v === undefined || v === null) {
    if (required) fail(where, `missing "${key}"`);
    return undefined;
  }
  if (typeof v !== 'string' || (required && !v))
    fail(where, `"${key}" must be a non-empty string, got ${previewValue(v)}`);
  return v as string;
}

function split(o: Record<string, unknown>, where: string): Split | undefined {
  const v = own(o, 'split');
  if (v === undefined || v === null) return undefined;
  if (!SPLITS.includes(v as Split))
    fail(where, `"split" must be one of ${SPLITS.join(', ')}, got ${previewValue(v)}`);
  return v as Split;
}

/** Validates one pointwise line. `where` is "file:line". */
export function parsePointwiseRecord(value: unknown, where: string): PointwiseRecord {
  if (!isJsonObject(value)) fail(where, `expected a JSON object, got ${previewValue(value)}`);
  const o = value as Record<string, unknown>;
  const labelsIn = own(o, 'labels');
  if (!isJsonObject(labelsIn)) {
    fail(
      where,
      `"labels" must be an object such as {"physics_quality": 1, "human_quality": 1}, got ${previewValue(labelsIn)}`,
    );
  }
  const l = labelsIn as Record<string, unknown>;
  const label = (name: string) => parseQualityLabel(own(l, name), `${where}: labels.${name}`);
  const physics = label('physics_quality');
  const human = label('human_quality');
  const motion = Object.hasOwn(l, 'motion_quality')
    ? label('motion_quality')
    : motionQualityOf(physics, human);
  const layout = own(o, 'latent_layout');
  if (layout !== undefined && layout !== 'fhwc' && layout !== 'cfhw')
    fail(where, `"latent_layout" must be "fhwc" or "cfhw", got ${previewValue(layout)}`);
  const extra: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (!POINTWISE_KEYS.has(k)) defineEntry(extra, k, o[k]);
  const record: PointwiseRecord = {
    id: str(o, 'id', where, true),
    prompt: str(o, 'prompt', where, true),
    latent: str(o, 'latent', where, true),
    labels: {
      motion_quality: motion,
      physics_quality: physics,
      human_quality: human,
      text_alignment: label('text_alignment'),
    },
  };
  if (Object.hasOwn(l, 'blur_quality')) record.labels.blur_quality = label('blur_quality');
  if (layout) record.latent_layout = layout as 'fhwc' | 'cfhw';
  for (const key of ['text', 'text_mask', 'long_prompt', 'long_text', 'condition', 'image_embeds'] as const) {
    const v = str(o, key, where, false);
    if (v) record[key] = v;
  }
  if (record.long_text && !record.long_prompt) fail(where, '"long_text" needs its caption in "long_prompt"');
  const s = split(o, where);
  if (s) record.split = s;
  if (Object.keys(extra).length) record.extra = extra;
  return record;
}

/** Validates one pairwise line. */
export function parsePairwiseRecord(value: unknown, where: string): PairwiseRecord {
  if (!isJsonObject(value)) fail(where, `expected a JSON object, got ${previewValue(value)}`);
  const o = value as Record<string, unknown>;
  const record: PairwiseRecord = {
    prompt: str(o, 'prompt', where, true),
    win: str(o, 'win', where, true),
    lose: str(o, 'lose', where, true),
  };
  if (record.win === record.lose)
    fail(where, `"win" and "lose" are the same clip ${previewValue(record.win)}`);
  const id = str(o, 'id', where, false);
  if (id) record.id = id;
  const s = split(o, where);
  if (s) record.split = s;
  return record;
}

/** Collects pointwise records, refusing a duplicate id (naming both lines). */
class PointwiseCollector {
  readonly entries: PointwiseEntry[] = [];
  private readonly lines = new Map<string, number>();
  constructor(private readonly file: string) {}
  add(line: number, value: unknown): void {
    const record = parsePointwiseRecord(value, `${this.file}:${line}`);
    const prev = this.lines.get(record.id);
    if (prev !== undefined)
      fail(`${this.file}:${line}`, `id ${previewValue(record.id)} already used on line ${prev}`);
    this.lines.set(record.id, line);
    this.entries.push({ line, record });
  }
}

/** Reads a pointwise manifest with the line of each record; ids must be unique (a duplicate names both lines). */
export async function readPointwiseEntries(path: string): Promise<PointwiseEntry[]> {
  const c = new PointwiseCollector(path);
  for await (const { line, value } of readJsonlLines(path)) c.add(line, value);
  return c.entries;
}

/** Reads a pointwise manifest; ids must be unique (a duplicate names both lines). */
export async function readPointwiseManifest(path: string): Promise<PointwiseRecord[]> {
  return (await readPointwiseEntries(path)).map((e) => e.record);
}

/** Parses an in-memory pointwise manifest (`file` names it in errors). */
export function parsePointwiseManifest(bytes: Uint8Array, file: string): PointwiseEntry[] {
  const c = new PointwiseCollector(file);
  for (const { line, value } of parseJsonlLines(bytes, file)) c.add(line, value);
  return c.entries;
}

function checkPair(r: PairwiseRecord, where: string, ids: ReadonlySet<string> | undefined): void {
  if (!ids) return;
  for (const side of ['win', 'lose'] as const) {
    if (!ids.has(r[side]))
      fail(where, `"${side}": ${previewValue(r[side])} is not an id of the pointwise manifest`);
  }
}

/** Reads a pairwise manifest. With `ids`, every win / lose must be one of them. */
export async function readPairwiseManifest(
  path: string,
  ids?: ReadonlySet<string>,
): Promise<PairwiseRecord[]> {
  const out: PairwiseRecord[] = [];
  for await (const { line, value } of readJsonlLines(path)) {
    const r = parsePairwiseRecord(value, `${path}:${line}`);
    checkPair(r, `${path}:${line}`, ids);
    out.push(r);
  }
  return out;
}

/** Parses an in-memory pairwise manifest. With `ids`, every win / lose must be one of them. */
export function parsePairwiseManifest(
  bytes: Uint8Array,
  file: string,
  ids?: ReadonlySet<string>,
): PairwiseRecord[] {
  return parseJsonlLines(bytes, file).map(({ line, value }) => {
    const r = parsePairwiseRecord(value, `${file}:${line}`);
    checkPair(r, `${file}:${line}`, ids);
    return r;
  });
}

/** Writes records as JSONL, atomically. Pointwise records are written flat (their `extra` merged in). */
export async function writeJsonl(
  path: string,
  records: Iterable<PointwiseRecord | PairwiseRecord | Record<string, unknown>>,
): Promise<void> {
  const lines: string[] = [];
  for (const r of records) {
    const { extra, ...rest } = r as PointwiseRecord;
    lines.push(JSON.stringify(extra ? { ...rest, ...extra } : rest));
  }
  await writeFileAtomic(path, lines.length ? `${lines.join('\n')}\n` : '');
}
