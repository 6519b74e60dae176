/**
 * JSONL manifests, one JSON object per line (blank lines allowed):
 *
 *   pointwise: {"id": "c1", "prompt": "...", "latent": "c1/latent", "text": "c1/text",
 *               "labels": {"physics_quality": 1, "human_quality": 0, "text_alignment": 1}, "split": "train"}
 *   pairwise:  {"prompt": "...", "win": "c1", "lose": "c7", "split": "train"}
 *
 * `latent`, `text` and `text_mask` are keys of the latent shard store, or paths ending in .npy relative
 * to the manifest (channels-last [F, H, W, C], or PyTorch [C, F, H, W] when "latent_layout": "cfhw").
 * `win` / `lose` name ids of the pointwise manifest. Labels take the reference's names and values
 * (0/1, "good"/"poor", null); motion_quality defaults to physics_quality AND human_quality.
 * Every error names the file and the line.
 */
import { CorruptFileError, InvalidArgumentError } from '@prfl/tensor';
import { SPLITS, type Split } from '../moving-shapes/split.js';
import { writeFileAtomic } from './files.js';
import { motionQualityOf, parseQualityLabel, type QualityLabel } from './labels.js';
import { node } from './node.js';

export interface PointwiseLabels {
  motion_quality: QualityLabel;
  physics_quality: QualityLabel;
  human_quality: QualityLabel;
  text_alignment: QualityLabel;
}

export interface PointwiseRecord {
  id: string;
  prompt: string;
  latent: string;
  /** 'fhwc' (default) or 'cfhw' for .npy latents in PyTorch layout. */
  latent_layout?: 'fhwc' | 'cfhw';
  text?: string;
  text_mask?: string;
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

const POINTWISE_KEYS = new Set([
  'id',
  'prompt',
  'latent',
  'latent_layout',
  'text',
  'text_mask',
  'labels',
  'split',
]);

/**
 * Streams the lines of a JSONL file as parsed values with their line numbers (1-based), without reading
 * the file whole. Blank lines are skipped.
 * @throws InvalidArgumentError for a missing file; CorruptFileError "file:line: ..." for bad JSON.
 */
export async function* readJsonlLines(path: string): AsyncGenerator<{ line: number; value: unknown }> {
  const { fsSync, readline } = await node();
  const stream = fsSync.createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(
      code === 'ENOENT'
        ? `JSONL manifest: file not found: ${path}`
        : `JSONL manifest: cannot read ${path} (${(e as Error).message})`,
    );
  }
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (!text.trim()) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new CorruptFileError(
          `${path}:${line}: not valid JSON (${(e as Error).message}): ${text.slice(0, 120)}`,
        );
      }
      yield { line, value };
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

function fail(where: string, why: string): never {
  throw new CorruptFileError(`${where}: ${why}`);
}

function str(o: Record<string, unknown>, key: string, where: string, required: true): string;
function str(o: Record<string, unknown>, key: string, where: string, required: false): string | undefined;
function str(o: Record<string, unknown>, key: string, where: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) fail(where, `missing "${key}"`);
    return undefined;
  }
  if (typeof v !== 'string' || (required && !v))
    fail(where, `"${key}" must be a non-empty string, got ${JSON.stringify(v)}`);
  return v as string;
}

function split(o: Record<string, unknown>, where: string): Split | undefined {
  const v = o.split;
  if (v === undefined || v === null) return undefined;
  if (!SPLITS.includes(v as Split))
    fail(where, `"split" must be one of ${SPLITS.join(', ')}, got ${JSON.stringify(v)}`);
  return v as Split;
}

/** Validates one pointwise line. `where` is "file:line". */
export function parsePointwiseRecord(value: unknown, where: string): PointwiseRecord {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    fail(where, `expected a JSON object, got ${JSON.stringify(value)?.slice(0, 80)}`);
  const o = value as Record<string, unknown>;
  const labelsIn = o.labels;
  if (!labelsIn || typeof labelsIn !== 'object' || Array.isArray(labelsIn)) {
    fail(
      where,
      `"labels" must be an object such as {"physics_quality": 1, "human_quality": 1}, got ${JSON.stringify(labelsIn)}`,
    );
  }
  const l = labelsIn as Record<string, unknown>;
  const physics = parseQualityLabel(l.physics_quality, `${where}: labels.physics_quality`);
  const human = parseQualityLabel(l.human_quality, `${where}: labels.human_quality`);
  const motion =
    'motion_quality' in l
      ? parseQualityLabel(l.motion_quality, `${where}: labels.motion_quality`)
      : motionQualityOf(physics, human);
  const layout = o.latent_layout;
  if (layout !== undefined && layout !== 'fhwc' && layout !== 'cfhw')
    fail(where, `"latent_layout" must be "fhwc" or "cfhw", got ${JSON.stringify(layout)}`);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!POINTWISE_KEYS.has(k)) extra[k] = v;
  const record: PointwiseRecord = {
    id: str(o, 'id', where, true),
    prompt: str(o, 'prompt', where, true),
    latent: str(o, 'latent', where, true),
    labels: {
      motion_quality: motion,
      physics_quality: physics,
      human_quality: human,
      text_alignment: parseQualityLabel(l.text_alignment, `${where}: labels.text_alignment`),
    },
  };
  if (layout) record.latent_layout = layout as 'fhwc' | 'cfhw';
  const text = str(o, 'text', where, false);
  if (text) record.text = text;
  const mask = str(o, 'text_mask', where, false);
  if (mask) record.text_mask = mask;
  const s = split(o, where);
  if (s) record.split = s;
  if (Object.keys(extra).length) record.extra = extra;
  return record;
}

/** Validates one pairwise line. */
export function parsePairwiseRecord(value: unknown, where: string): PairwiseRecord {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    fail(where, `expected a JSON object, got ${JSON.stringify(value)?.slice(0, 80)}`);
  const o = value as Record<string, unknown>;
  const record: PairwiseRecord = {
    prompt: str(o, 'prompt', where, true),
    win: str(o, 'win', where, true),
    lose: str(o, 'lose', where, true),
  };
  if (record.win === record.lose) fail(where, `"win" and "lose" are the same clip "${record.win}"`);
  const id = str(o, 'id', where, false);
  if (id) record.id = id;
  const s = split(o, where);
  if (s) record.split = s;
  return record;
}

/** Reads a pointwise manifest; ids must be unique (a duplicate names both lines). */
export async function readPointwiseManifest(path: string): Promise<PointwiseRecord[]> {
  const out: PointwiseRecord[] = [];
  const lines = new Map<string, number>();
  for await (const { line, value } of readJsonlLines(path)) {
    const r = parsePointwiseRecord(value, `${path}:${line}`);
    const prev = lines.get(r.id);
    if (prev !== undefined) fail(`${path}:${line}`, `id "${r.id}" already used on line ${prev}`);
    lines.set(r.id, line);
    out.push(r);
  }
  return out;
}

/** Reads a pairwise manifest. With `ids`, every win / lose must be one of them. */
export async function readPairwiseManifest(
  path: string,
  ids?: ReadonlySet<string>,
): Promise<PairwiseRecord[]> {
  const out: PairwiseRecord[] = [];
  for await (const { line, value } of readJsonlLines(path)) {
    const r = parsePairwiseRecord(value, `${path}:${line}`);
    if (ids) {
      for (const side of ['win', 'lose'] as const) {
        if (!ids.has(r[side]))
          fail(`${path}:${line}`, `"${side}": "${r[side]}" is not an id of the pointwise manifest`);
      }
    }
    out.push(r);
  }
  return out;
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
