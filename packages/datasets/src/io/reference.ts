/**
 * The reference's data layout (HY-Video-PRFL), with the key names its preprocessing script writes and
 * its dataset reads:
 *
 * - one meta JSON per clip, `meta_v1/<source_id>_meta_v1.json`: the clip's input entry (source_id,
 *   short_caption, long_caption, video_path, labels) plus the paths and shapes of its arrays:
 *   vae_latent_path, f1_black_path (first-frame condition latent), imgclip_path (image tokens),
 *   latent_shape, textshort_path, text_states_short_shape, textlong_path, text_states_long_shape;
 * - float32 .npy arrays, each with a leading batch dimension of 1: latents [1, C, F, H, W] (PyTorch
 *   layout; channels-last [F, H, W, C] at load), text states [1, L, D], image tokens [1, S, D];
 * - .list files, one meta path per line; a run concatenates several (its meta_file_list), and
 *   Bradley-Terry losers come from a second set (meta_file_lose_list).
 *
 * Its reader looks keys up in a fixed order (REFERENCE_KEYS), and so do we. Labels are 0/1 or
 * "good"/"poor"; a missing label counts as 0, as in the reference. Paths in its files are relative to
 * the folder it runs in; we resolve a relative path against the file that names it, then the list's
 * folder, then `roots` (default: the current folder).
 *
 * Metas and lists are untrusted input: bounded in size and depth, strict UTF-8, errors naming the file
 * (the list and line, the clip id) and quoting only a short preview.
 */
import { CorruptFileError, InvalidArgumentError, PrflError } from '@prfl/tensor';
import { defineEntry, isJsonObject, own, parseBoundedJson } from './bounded-json.js';
import { readFileNamed, writeFileAtomic } from './files.js';
import { motionQualityOf, parseQualityLabel, type QualityLabel } from './labels.js';
import {
  channelsLastToTorchLatent,
  type FloatArray,
  textEmbeddingShape,
  torchLatentToChannelsLast,
} from './layout.js';
import { splitLines } from './lines.js';
import { node } from './node.js';
import { npyToFloat32, readNpy, writeNpy } from './npy.js';
import { previewValue, truncateText } from './preview.js';
import { decodeUtf8 } from './utf8.js';

/** Largest meta JSON accepted (the reference's are about 2 KB). */
export const MAX_META_JSON_BYTES = 16 * 1024 * 1024;
/** Longest line of a .list file accepted (a path). */
export const MAX_LIST_LINE_BYTES = 64 * 1024;

/**
 * The keys the reference's reader looks up, in its order (first present wins):
 * latent, then text (textshort_path with short_caption, textlong_path with long_caption; without
 * textshort_path, text_en_path with prompt), the first-frame condition, the image tokens, the labels.
 * `textMask` is ours (the reference has no masks; its reader ignores the key).
 */
export const REFERENCE_KEYS = {
  latent: ['video_vae_latent_path', 'vae_latent_path', 'latents_path'],
  shortText: ['textshort_path'],
  longText: ['textlong_path'],
  text: ['text_en_path'],
  textMask: ['text_mask_path'],
  condition: ['f1_black_path', 'latents_condition_path'],
  imageEmbeds: ['imgclip_path'],
  labels: ['text_alignment', 'blur_quality', 'physics_quality', 'human_quality'],
} as const;

export type ReferenceKeys = typeof REFERENCE_KEYS;

/**
 * Names earlier prfl versions wrote and read before they followed the reference. The reference never
 * reads them, so a meta using one (without the reference's key for the same array) is refused with
 * the names to use instead: [old key, what to write instead, the reference keys that supersede it].
 */
const TEXT_INSTEAD =
  'textshort_path + textlong_path with short_caption + long_caption (or text_en_path with prompt)';
const OLD_KEYS: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['latent_path', 'vae_latent_path', REFERENCE_KEYS.latent],
  ['video_latent_path', 'vae_latent_path', REFERENCE_KEYS.latent],
  ...[
    'prompt_embed_path',
    'prompt_embeds_path',
    'text_embed_path',
    'text_emb_path',
    'prompt_emb_path',
    'context_path',
  ].map((k) => [k, TEXT_INSTEAD, [...REFERENCE_KEYS.shortText, ...REFERENCE_KEYS.text]] as const),
  ...['prompt_attention_mask_path', 'prompt_mask_path', 'attention_mask_path'].map(
    (k) => [k, 'text_mask_path', REFERENCE_KEYS.textMask] as const,
  ),
];

/** The reference's labels; every one is 0 or 1 (missing counts as 0). */
export interface ReferenceLabels {
  physics: QualityLabel;
  human: QualityLabel;
  /** physics AND human. */
  motionQuality: QualityLabel;
  textAlignment: QualityLabel;
  blurQuality: QualityLabel;
}

/** A path as a meta JSON gives it, with the key it came from. */
export interface MetaPath {
  key: string;
  path: string;
}

/** What a meta JSON says, paths not yet resolved (`parseReferenceMeta`). */
export interface ReferenceMetaFields {
  /** source_id, or the meta file's name without `_meta_v1.json` / `.json`. */
  id: string;
  /** short_caption (with textshort_path), else prompt. */
  prompt: string | undefined;
  /** long_caption (with textlong_path). */
  longPrompt: string | undefined;
  latent: MetaPath;
  text: MetaPath | undefined;
  longText: MetaPath | undefined;
  textMask: MetaPath | undefined;
  condition: MetaPath | undefined;
  imageEmbeds: MetaPath | undefined;
  labels: ReferenceLabels;
  /** The meta JSON as read. */
  meta: Record<string, unknown>;
}

/** One clip of the reference layout, with its paths resolved. */
export interface ReferenceClip {
  id: string;
  metaPath: string;
  /** "list:line" where the clip was listed, when read through a list. */
  listedAt?: string;
  prompt: string | undefined;
  longPrompt: string | undefined;
  latentPath: string;
  textPath: string | undefined;
  longTextPath: string | undefined;
  textMaskPath: string | undefined;
  conditionPath: string | undefined;
  imageEmbedsPath: string | undefined;
  labels: ReferenceLabels;
  meta: Record<string, unknown>;
}

export interface ReferenceReadOptions {
  /**
   * Folders a relative path is tried against, in order, after the folder of the file that names it
   * and (for a meta read through a list) the list's folder. Default: [the current directory], where
   * the reference resolves them.
   */
  roots?: readonly string[];
}

function fail(where: string, why: string): never {
  throw new CorruptFileError(`${where}: ${why}`);
}

/** The first of `keys` the meta has (own, not null), as a path string. */
function pathAt(m: Record<string, unknown>, keys: readonly string[], where: string): MetaPath | undefined {
  for (const key of keys) {
    const v = own(m, key);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || !v) fail(where, `"${key}" must be a path string, got ${previewValue(v)}`);
    if ((v as string).includes('\0')) fail(where, `"${key}" holds a NUL character: ${previewValue(v)}`);
    return { key, path: v as string };
  }
  return undefined;
}

function caption(m: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = own(m, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(where, `"${key}" must be a string, got ${previewValue(v)}`);
  return v as string;
}

/** A label the reference's way: 0/1 or "good"/"poor"; missing or null counts as 0. */
function referenceLabel(m: Record<string, unknown>, key: string, where: string): 0 | 1 {
  return parseQualityLabel(own(m, key), `${where}: "${key}"`) ?? 0;
}

/**
 * Validates a parsed meta JSON (no file access). `metaPath` names it in errors and gives the id when
 * there is no source_id.
 * @throws CorruptFileError naming the meta and the key.
 */
export function parseReferenceMetaValue(value: unknown, metaPath: string): ReferenceMetaFields {
  if (!isJsonObject(value)) fail(metaPath, `a meta JSON must be an object, got ${previewValue(value)}`);
  const m = value as Record<string, unknown>;
  const sourceId = own(m, 'source_id');
  if (sourceId !== undefined && (typeof sourceId !== 'string' || !sourceId))
    fail(metaPath, `"source_id" must be a non-empty string, got ${previewValue(sourceId)}`);
  const base = metaPath.split(/[\\/]/).pop() ?? metaPath;
  const id = (sourceId as string | undefined) ?? base.replace(/(_meta_v\d+)?\.json$/i, '');
  const where = `${metaPath} (clip ${previewValue(id, 60)})`;
  for (const [old, instead, newer] of OLD_KEYS) {
    if (Object.hasOwn(m, old) && !newer.some((k) => Object.hasOwn(m, k))) {
      fail(
        where,
        `"${old}" is not a key of the reference's layout (earlier prfl versions wrote it); expected ${instead}. Rewrite the layout with writeReferenceLayout, or rename the key`,
      );
    }
  }
  const latent = pathAt(m, REFERENCE_KEYS.latent, where);
  if (!latent) {
    fail(where, `no latent path: expected one of ${REFERENCE_KEYS.latent.map((k) => `"${k}"`).join(', ')}`);
  }
  const short = pathAt(m, REFERENCE_KEYS.shortText, where);
  const text = short ?? pathAt(m, REFERENCE_KEYS.text, where);
  // The long caption is an alternative to the short one; without textshort_path the reference reads text_en_path.
  const longText = short ? pathAt(m, REFERENCE_KEYS.longText, where) : undefined;
  const labels = {
    physics: referenceLabel(m, 'physics_quality', where),
    human: referenceLabel(m, 'human_quality', where),
    textAlignment: referenceLabel(m, 'text_alignment', where),
    blurQuality: referenceLabel(m, 'blur_quality', where),
  };
  return {
    id,
    prompt: short ? caption(m, 'short_caption', where) : caption(m, 'prompt', where),
    longPrompt: longText ? caption(m, 'long_caption', where) : undefined,
    latent: latent as MetaPath,
    text,
    longText,
    textMask: pathAt(m, REFERENCE_KEYS.textMask, where),
    condition: pathAt(m, REFERENCE_KEYS.condition, where),
    imageEmbeds: pathAt(m, REFERENCE_KEYS.imageEmbeds, where),
    labels: { ...labels, motionQuality: motionQualityOf(labels.physics, labels.human) },
    meta: m,
  };
}

/** Parses the bytes of a meta JSON (strict UTF-8, bounded size and depth) and validates it. */
export function parseReferenceMeta(bytes: Uint8Array, metaPath: string): ReferenceMetaFields {
  if (bytes.length > MAX_META_JSON_BYTES) {
    fail(metaPath, `meta JSON of ${bytes.length} bytes is larger than the ${MAX_META_JSON_BYTES} accepted`);
  }
  const text = decodeUtf8(bytes, `${metaPath}: meta JSON`);
  return parseReferenceMetaValue(parseBoundedJson(text, `${metaPath}: meta JSON`), metaPath);
}

/**
 * Parses a .list file: one meta path per line, surrounding white space ignored; blank lines and lines
 * starting with # are skipped (the reference would fail on them). Paths stay as written.
 */
export function parseMetaList(bytes: Uint8Array, listPath: string): Array<{ line: number; path: string }> {
  const out: Array<{ line: number; path: string }> = [];
  for (const { line, bytes: b } of splitLines(bytes, listPath, MAX_LIST_LINE_BYTES)) {
    const text = decodeUtf8(b, `${listPath}:${line}`).trim();
    if (!text || text.startsWith('#')) continue;
    if (text.includes('\0'))
      fail(`${listPath}:${line}`, `a path with a NUL character: ${previewValue(text)}`);
    out.push({ line, path: text });
  }
  return out;
}

/**
 * Resolves a path: absolute as is; relative against each of `bases`, the first that exists wins. It
 * must be a file.
 * @throws InvalidArgumentError naming `what` for a missing path or a folder.
 */
async function resolveFile(p: string, bases: readonly string[], what: string): Promise<string> {
  const { fs, path } = await node();
  const tried = path.isAbsolute(p) ? [p] : [...new Set(bases.map((r) => path.resolve(r, p)))];
  for (const t of tried) {
    let stat: import('node:fs').Stats;
    try {
      stat = await fs.stat(t);
    } catch {
      continue; // missing (or unreadable) here: try the next folder
    }
    if (!stat.isFile()) throw new InvalidArgumentError(`${what}: expected a file, got a folder: ${t}`);
    return t;
  }
  throw new InvalidArgumentError(
    `${what}: file not found: ${truncateText(p, 300)} (tried ${tried.map((t) => truncateText(t, 300)).join(', ')})`,
  );
}

/** A meta path listed in a .list file. */
interface ListedMeta {
  path: string;
  listedAt: string;
  listDir: string;
}

function asList(lists: string | readonly string[], what: string): readonly string[] {
  const all = typeof lists === 'string' ? [lists] : lists;
  if (!Array.isArray(all) || all.length === 0 || all.some((l) => typeof l !== 'string' || !l)) {
    throw new InvalidArgumentError(
      `${what}: expected a list file path or an array of them, got ${previewValue(lists)}`,
    );
  }
  return all;
}

async function listedMetas(
  lists: string | readonly string[],
  options: ReferenceReadOptions,
): Promise<ListedMeta[]> {
  const { path } = await node();
  const roots = options.roots ?? [process.cwd()];
  const out: ListedMeta[] = [];
  for (const list of asList(lists, 'meta list')) {
    const listDir = path.dirname(path.resolve(list));
    const bytes = await readFileNamed(list, 'meta list', 1024 * 1024 * 1024);
    for (const { line, path: p } of parseMetaList(bytes, list)) {
      const where = `${list}:${line}`;
      out.push({ path: await resolveFile(p, [listDir, ...roots], where), listedAt: where, listDir });
    }
  }
  return out;
}

/**
 * Reads list files (one or several, concatenated in order): the meta paths, resolved against the
 * list's folder, then `roots` (default: the current folder).
 * @throws InvalidArgumentError "list:line: ..." for a path that is missing or a folder.
 */
export async function readMetaList(
  lists: string | readonly string[],
  options: ReferenceReadOptions = {},
): Promise<string[]> {
  return (await listedMetas(lists, options)).map((m) => m.path);
}

async function readMetaAt(
  metaPath: string,
  extraBases: readonly string[],
  options: ReferenceReadOptions,
): Promise<ReferenceClip> {
  const { path } = await node();
  const f = parseReferenceMeta(await readFileNamed(metaPath, 'meta JSON', MAX_META_JSON_BYTES), metaPath);
  const bases = [path.dirname(path.resolve(metaPath)), ...extraBases, ...(options.roots ?? [process.cwd()])];
  const where = `${metaPath} (clip ${previewValue(f.id, 60)})`;
  const resolve = (p: MetaPath | undefined) =>
    p ? resolveFile(p.path, bases, `${where}: "${p.key}"`) : Promise.resolve(undefined);
  return {
    id: f.id,
    metaPath: path.resolve(metaPath),
    prompt: f.prompt,
    longPrompt: f.longPrompt,
    latentPath: (await resolve(f.latent)) as string,
    textPath: await resolve(f.text),
    longTextPath: await resolve(f.longText),
    textMaskPath: await resolve(f.textMask),
    conditionPath: await resolve(f.condition),
    imageEmbedsPath: await resolve(f.imageEmbeds),
    labels: f.labels,
    meta: f.meta,
  };
}

/** Reads one meta JSON and resolves its paths (each must exist). */
export async function readReferenceMeta(
  metaPath: string,
  options: ReferenceReadOptions = {},
): Promise<ReferenceClip> {
  return readMetaAt(metaPath, [], options);
}

/** Prefixes an error of ours with where it happened, keeping its class. */
function within(e: unknown, where: string): unknown {
  if (!(e instanceof PrflError)) return e;
  const Ctor = e.constructor as new (message: string) => PrflError;
  return new Ctor(`${where}: ${e.message}`);
}

/**
 * Reads every meta JSON of one or several list files. A meta listed more than once (the reference's
 * sample lists repeat theirs) is read once; two different metas with one id are an error naming both.
 * Errors about a meta name the list and line that listed it.
 */
export async function readReferenceList(
  lists: string | readonly string[],
  options: ReferenceReadOptions = {},
): Promise<ReferenceClip[]> {
  const clips: ReferenceClip[] = [];
  const seenPaths = new Set<string>();
  const seenIds = new Map<string, ReferenceClip>();
  for (const m of await listedMetas(lists, options)) {
    if (seenPaths.has(m.path)) continue;
    seenPaths.add(m.path);
    let clip: ReferenceClip;
    try {
      clip = await readMetaAt(m.path, [m.listDir], options);
    } catch (e) {
      throw within(e, m.listedAt);
    }
    clip.listedAt = m.listedAt;
    const prev = seenIds.get(clip.id);
    if (prev) {
      throw new CorruptFileError(
        `${m.listedAt}: clip id ${previewValue(clip.id, 60)} appears twice (${prev.metaPath}, listed at ${prev.listedAt}, and ${clip.metaPath})`,
      );
    }
    seenIds.set(clip.id, clip);
    clips.push(clip);
  }
  return clips;
}

/** Reads a reference latent (.npy, [1, C, F, H, W] or [C, F, H, W], any float dtype) as channels-last float32. */
export async function readReferenceLatent(npyPath: string): Promise<FloatArray> {
  const arr = await readNpy(npyPath);
  return torchLatentToChannelsLast({ shape: arr.shape, data: npyToFloat32(arr, npyPath) }, npyPath);
}

/** Reads reference text states or image tokens (.npy, [1, L, D] or [L, D]) as float32 [L, D]. */
export async function readReferenceText(npyPath: string): Promise<FloatArray> {
  const arr = await readNpy(npyPath);
  return textEmbeddingShape({ shape: arr.shape, data: npyToFloat32(arr, npyPath) }, npyPath);
}

/** A clip to write in the reference layout. Latents are channels-last [F, H, W, C]. */
export interface ReferenceClipInput {
  /** The source_id; also names the files. */
  id: string;
  /** The caption of `text`: short_caption, or prompt when there is no long caption. */
  prompt?: string;
  /** long_caption, the caption of `longText`. */
  longPrompt?: string;
  latent: FloatArray;
  /** Text states [L, D] of `prompt`. */
  text?: FloatArray;
  /** Text states [L, D] of `longPrompt`. */
  longText?: FloatArray;
  /** [L] mask of `text` (ours; the reference has none). */
  textMask?: FloatArray;
  /** First-frame condition latent [F, H, W, C] (the reference's f1_black). */
  condition?: FloatArray;
  /** Image tokens [S, D] (the reference's imgclip). */
  imageEmbeds?: FloatArray;
  videoPath?: string;
  physics: QualityLabel;
  human: QualityLabel;
  textAlignment?: QualityLabel;
  blurQuality?: QualityLabel;
  /** More keys for the meta JSON (the reference keeps its input entry's keys); ours win on a clash. */
  extra?: Record<string, unknown>;
}

export interface WriteReferenceOptions {
  /** Stored float dtype of the arrays (default '<f4', what the reference writes). */
  dtype?: '<f4' | '<f2';
  /**
   * Paths in meta JSONs and list lines: relative to the output folder (default; the reference reads
   * them when run from that folder, we from anywhere) or absolute (the reference reads them from
   * anywhere, but the folder cannot move).
   */
  absolutePaths?: boolean;
}

/** [L, D] -> [1, L, D], the reference's stored form. */
function withBatch(a: FloatArray): FloatArray {
  return { shape: [1, ...a.shape], data: a.data };
}

/**
 * Writes clips in the reference layout under `dir`, named as its preprocessing names them:
 * `meta_v1/<id>_meta_v1.json`, and in `latents/`: `<id>.npy` ([1, C, F, H, W]), `<id>_f1_black.npy`,
 * `<id>_img_clip.npy` ([1, S, D]), `<id>_textshort.npy` and `<id>_textlong.npy` ([1, L, D]) - or, for a
 * clip with one caption, `<id>_text.npy` under text_en_path with prompt. Then the list `listName`
 * (default `data.list`) with one meta path per line. Returns the list's path.
 *
 * The reference's training reader also needs f1_black_path and imgclip_path for text-to-video clips;
 * give `condition` and `imageEmbeds` when the data goes back to it.
 */
export async function writeReferenceLayout(
  dir: string,
  clips: Iterable<ReferenceClipInput> | AsyncIterable<ReferenceClipInput>,
  options: WriteReferenceOptions & { listName?: string } = {},
): Promise<string> {
  const { fs, path } = await node();
  const root = path.resolve(dir);
  for (const sub of ['meta_v1', 'latents']) await fs.mkdir(path.join(root, sub), { recursive: true });
  const dtype = options.dtype ?? '<f4';
  const ref = (p: string) => (options.absolutePaths ? p : path.relative(root, p).split(path.sep).join('/'));
  const lines: string[] = [];
  for await (const clip of clips) {
    if (typeof clip.id !== 'string' || !/^[\w.-]+$/.test(clip.id)) {
      throw new InvalidArgumentError(
        `writeReferenceLayout: clip id ${previewValue(clip.id)} is not a safe file name (letters, digits, _ . -)`,
      );
    }
    if (clip.longText && !clip.text) {
      throw new InvalidArgumentError(
        `writeReferenceLayout: clip "${clip.id}" has longText but no text (the reference pairs a long caption with a short one)`,
      );
    }
    const file = (suffix: string) => path.join(root, 'latents', `${clip.id}${suffix}.npy`);
    const meta: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(clip.extra ?? {})) defineEntry(meta, k, v);
    meta.source_id = clip.id;
    const twoCaptions = !!clip.longText;
    if (clip.longPrompt !== undefined) meta.long_caption = clip.longPrompt;
    if (clip.prompt !== undefined) meta[twoCaptions ? 'short_caption' : 'prompt'] = clip.prompt;
    if (clip.videoPath !== undefined) meta.video_path = clip.videoPath;
    const labels: Array<[string, QualityLabel | undefined]> = [
      ['text_alignment', clip.textAlignment],
      ['blur_quality', clip.blurQuality],
      ['physics_quality', clip.physics],
      ['human_quality', clip.human],
    ];
    // An unknown label is left out: the reference reads a missing label as 0, as it would read null.
    for (const [k, v] of labels) if (v === 0 || v === 1) meta[k] = v;

    const latent = withBatch(channelsLastToTorchLatent(clip.latent, `${clip.id} latent`));
    await writeNpy(file(''), latent, { dtype });
    meta.vae_latent_path = ref(file(''));
    if (clip.condition) {
      await writeNpy(
        file('_f1_black'),
        withBatch(channelsLastToTorchLatent(clip.condition, `${clip.id} condition`)),
        {
          dtype,
        },
      );
      meta.f1_black_path = ref(file('_f1_black'));
    }
    if (clip.imageEmbeds) {
      const tokens = withBatch(textEmbeddingShape(clip.imageEmbeds, `${clip.id} image embeds`));
      await writeNpy(file('_img_clip'), tokens, { dtype });
      meta.imgclip_path = ref(file('_img_clip'));
    }
    meta.latent_shape = latent.shape;
    if (clip.text) {
      const text = withBatch(textEmbeddingShape(clip.text, `${clip.id} text`));
      if (twoCaptions) {
        const long = withBatch(textEmbeddingShape(clip.longText as FloatArray, `${clip.id} long text`));
        await writeNpy(file('_textshort'), text, { dtype });
        await writeNpy(file('_textlong'), long, { dtype });
        meta.textshort_path = ref(file('_textshort'));
        meta.text_states_short_shape = text.shape;
        meta.textlong_path = ref(file('_textlong'));
        meta.text_states_long_shape = long.shape;
      } else {
        await writeNpy(file('_text'), text, { dtype });
        meta.text_en_path = ref(file('_text'));
      }
    }
    if (clip.textMask) {
      await writeNpy(
        file('_text_mask'),
        withBatch({ shape: [clip.textMask.data.length], data: clip.textMask.data }),
      );
      meta.text_mask_path = ref(file('_text_mask'));
    }
    const metaPath = path.join(root, 'meta_v1', `${clip.id}_meta_v1.json`);
    await writeFileAtomic(metaPath, `${JSON.stringify(meta, null, 4)}\n`);
    lines.push(ref(metaPath));
  }
  const listPath = path.join(root, options.listName ?? 'data.list');
  await writeFileAtomic(listPath, lines.length ? `${lines.join('\n')}\n` : '');
  return listPath;
}
