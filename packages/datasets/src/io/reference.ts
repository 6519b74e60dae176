/**
 * The reference's data layout (HY-Video-PRFL, spec §8): one meta JSON per clip, holding paths to the
 * clip's arrays and its labels (e.g. "physics_quality": 1, "human_quality": 1), and a plain-text list
 * file with one meta path per line (the `meta_file_list` / `val_meta_file_list` of its configs).
 * Arrays are .npy; a video latent is PyTorch's [C, F, H, W] (or [1, C, F, H, W]) and becomes
 * channels-last [F, H, W, C] at load.
 *
 * The reference's README documents the label keys and the list files; the names of the path keys are
 * not published outside its preprocessing script, so the reader accepts the usual spellings
 * (`REFERENCE_KEYS`) and takes a custom key map; the writer uses the first of each.
 */
import { CorruptFileError, InvalidArgumentError } from '@prfl/tensor';
import { readFileNamed, readJsonFile, writeFileAtomic } from './files.js';
import { motionQualityOf, parseQualityLabel, type QualityLabel } from './labels.js';
import {
  channelsLastToTorchLatent,
  type FloatArray,
  textEmbeddingShape,
  torchLatentToChannelsLast,
} from './layout.js';
import { node } from './node.js';
import { npyToFloat32, readNpy, writeNpy } from './npy.js';

/** Candidate keys, first match wins; the first of each list is what the writer uses. */
export interface ReferenceKeys {
  latent: readonly string[];
  text: readonly string[];
  textMask: readonly string[];
  prompt: readonly string[];
  physics: readonly string[];
  human: readonly string[];
}

export const REFERENCE_KEYS: Readonly<ReferenceKeys> = {
  latent: ['latent_path', 'latents_path', 'vae_latent_path', 'video_latent_path', 'latent'],
  text: [
    'prompt_embed_path',
    'prompt_embeds_path',
    'text_embed_path',
    'text_emb_path',
    'prompt_emb_path',
    'context_path',
  ],
  textMask: ['prompt_attention_mask_path', 'prompt_mask_path', 'text_mask_path', 'attention_mask_path'],
  prompt: ['prompt', 'caption', 'text'],
  physics: ['physics_quality'],
  human: ['human_quality'],
};

/** One clip of the reference layout, with its paths resolved. */
export interface ReferenceClip {
  /** The meta file's name without `_meta_v1.json` / `.json`. */
  id: string;
  metaPath: string;
  prompt: string | undefined;
  latentPath: string;
  textPath: string | undefined;
  textMaskPath: string | undefined;
  labels: { physics: QualityLabel; human: QualityLabel; motionQuality: QualityLabel };
  /** The meta JSON as read. */
  meta: Record<string, unknown>;
}

export interface ReferenceReadOptions {
  /** Key overrides (merged over REFERENCE_KEYS). */
  keys?: Partial<ReferenceKeys>;
  /**
   * Folders a relative path is tried against, in order, after the folder of the file that names it
   * (the list for meta paths, the meta JSON for array paths). Default: [the current directory].
   */
  roots?: readonly string[];
}

function pickKey(meta: Record<string, unknown>, keys: readonly string[]): [string, unknown] | undefined {
  for (const k of keys) if (k in meta && meta[k] !== undefined) return [k, meta[k]];
  return undefined;
}

/** Resolves a path: absolute as is; relative against `base`, then each root; the first that exists wins. */
async function resolveExisting(
  p: string,
  base: string,
  roots: readonly string[],
  what: string,
): Promise<string> {
  const { fs, path } = await node();
  if (path.isAbsolute(p)) return p;
  const tried = [base, ...roots].map((r) => path.resolve(r, p));
  for (const t of tried) {
    try {
      await fs.access(t);
      return t;
    } catch {
      // try the next root
    }
  }
  throw new InvalidArgumentError(`${what}: file not found: ${p} (tried ${tried.join(', ')})`);
}

/**
 * Reads a list file: one meta path per line; blank lines and lines starting with # are skipped.
 * Relative paths are resolved against the list's folder, then `roots` (default: the current folder).
 */
export async function readMetaList(listPath: string, options: ReferenceReadOptions = {}): Promise<string[]> {
  const { path } = await node();
  const text = new TextDecoder().decode(await readFileNamed(listPath, 'meta list'));
  const base = path.dirname(path.resolve(listPath));
  const roots = options.roots ?? [process.cwd()];
  const out: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (!line || line.startsWith('#')) continue;
    out.push(await resolveExisting(line, base, roots, `${listPath}:${i + 1}`));
  }
  return out;
}

/** Reads one meta JSON. */
export async function readReferenceMeta(
  metaPath: string,
  options: ReferenceReadOptions = {},
): Promise<ReferenceClip> {
  const { path } = await node();
  const keys = { ...REFERENCE_KEYS, ...options.keys };
  const meta = await readJsonFile(metaPath, 'meta JSON');
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new CorruptFileError(
      `${metaPath}: a meta JSON must be an object, got ${Array.isArray(meta) ? 'an array' : typeof meta}`,
    );
  }
  const m = meta as Record<string, unknown>;
  const base = path.dirname(path.resolve(metaPath));
  const roots = options.roots ?? [process.cwd()];
  const pathOf = async (
    kind: 'latent' | 'text' | 'textMask',
    required: boolean,
  ): Promise<string | undefined> => {
    const hit = pickKey(m, keys[kind]);
    if (!hit) {
      if (required) {
        throw new CorruptFileError(
          `${metaPath}: no ${kind} path (looked for ${keys[kind].join(', ')}; pass options.keys to name yours)`,
        );
      }
      return undefined;
    }
    const [k, v] = hit;
    if (typeof v !== 'string' || !v)
      throw new CorruptFileError(`${metaPath}: "${k}" must be a path string, got ${JSON.stringify(v)}`);
    return resolveExisting(v, base, roots, `${metaPath}: "${k}"`);
  };
  const promptHit = pickKey(m, keys.prompt);
  const physicsHit = pickKey(m, keys.physics);
  const humanHit = pickKey(m, keys.human);
  const physics = parseQualityLabel(physicsHit?.[1], `${metaPath}: "${physicsHit?.[0] ?? keys.physics[0]}"`);
  const human = parseQualityLabel(humanHit?.[1], `${metaPath}: "${humanHit?.[0] ?? keys.human[0]}"`);
  const name = path.basename(metaPath);
  return {
    id: name.replace(/(_meta_v\d+)?\.json$/i, ''),
    metaPath: path.resolve(metaPath),
    prompt: typeof promptHit?.[1] === 'string' ? (promptHit[1] as string) : undefined,
    latentPath: (await pathOf('latent', true)) as string,
    textPath: await pathOf('text', false),
    textMaskPath: await pathOf('textMask', false),
    labels: { physics, human, motionQuality: motionQualityOf(physics, human) },
    meta: m,
  };
}

/** Reads every meta JSON of a list file. Clip ids must be unique (duplicates name both meta files). */
export async function readReferenceList(
  listPath: string,
  options: ReferenceReadOptions = {},
): Promise<ReferenceClip[]> {
  const metas = await readMetaList(listPath, options);
  const clips: ReferenceClip[] = [];
  const seen = new Map<string, string>();
  for (const m of metas) {
    const clip = await readReferenceMeta(m, options);
    const prev = seen.get(clip.id);
    if (prev)
      throw new CorruptFileError(
        `${listPath}: clip id "${clip.id}" appears twice (${prev} and ${clip.metaPath})`,
      );
    seen.set(clip.id, clip.metaPath);
    clips.push(clip);
  }
  return clips;
}

/** Reads a reference latent (.npy, [C, F, H, W] or [1, C, F, H, W], any float dtype) as channels-last float32. */
export async function readReferenceLatent(npyPath: string): Promise<FloatArray> {
  const arr = await readNpy(npyPath);
  return torchLatentToChannelsLast({ shape: arr.shape, data: npyToFloat32(arr, npyPath) }, npyPath);
}

/** Reads a reference text embedding (.npy, [L, D] or [1, L, D]) as float32 [L, D]. */
export async function readReferenceText(npyPath: string): Promise<FloatArray> {
  const arr = await readNpy(npyPath);
  return textEmbeddingShape({ shape: arr.shape, data: npyToFloat32(arr, npyPath) }, npyPath);
}

/** A clip to write in the reference layout; latent channels-last [F, H, W, C]. */
export interface ReferenceClipInput {
  id: string;
  prompt?: string;
  latent: FloatArray;
  text?: FloatArray;
  textMask?: FloatArray;
  physics: QualityLabel;
  human: QualityLabel;
  /** Extra keys for the meta JSON (e.g. text_alignment). */
  extra?: Record<string, unknown>;
}

export interface WriteReferenceOptions {
  /** Stored float dtype of the arrays (default '<f4'; the reference stores bf16/f16 tensors too). */
  dtype?: '<f4' | '<f2';
  /** Paths in meta JSONs: relative to the meta file (default) or absolute. */
  absolutePaths?: boolean;
}

/**
 * Writes clips in the reference layout under `dir`: `meta_v1/<id>_meta_v1.json`, `latents/<id>.npy`
 * ([C, F, H, W]), `text/<id>.npy`, and the list file `listName` (default `data.list`) with one meta path
 * per line, relative to the list. Returns the list's path.
 */
export async function writeReferenceLayout(
  dir: string,
  clips: Iterable<ReferenceClipInput> | AsyncIterable<ReferenceClipInput>,
  options: WriteReferenceOptions & { listName?: string } = {},
): Promise<string> {
  const { fs, path } = await node();
  const root = path.resolve(dir);
  for (const sub of ['meta_v1', 'latents', 'text']) await fs.mkdir(path.join(root, sub), { recursive: true });
  const dtype = options.dtype ?? '<f4';
  const lines: string[] = [];
  for await (const clip of clips) {
    if (!/^[\w.-]+$/.test(clip.id)) {
      throw new InvalidArgumentError(
        `writeReferenceLayout: clip id ${JSON.stringify(clip.id)} is not a safe file name (letters, digits, _ . -)`,
      );
    }
    const metaPath = path.join(root, 'meta_v1', `${clip.id}_meta_v1.json`);
    const ref = (p: string) => (options.absolutePaths ? p : path.relative(path.dirname(metaPath), p));
    const latentPath = path.join(root, 'latents', `${clip.id}.npy`);
    await writeNpy(latentPath, channelsLastToTorchLatent(clip.latent, `${clip.id} latent`), { dtype });
    const meta: Record<string, unknown> = {};
    if (clip.prompt !== undefined) meta[REFERENCE_KEYS.prompt[0] as string] = clip.prompt;
    meta[REFERENCE_KEYS.latent[0] as string] = ref(latentPath);
    if (clip.text) {
      const textPath = path.join(root, 'text', `${clip.id}.npy`);
      await writeNpy(textPath, clip.text, { dtype });
      meta[REFERENCE_KEYS.text[0] as string] = ref(textPath);
    }
    if (clip.textMask) {
      const maskPath = path.join(root, 'text', `${clip.id}_mask.npy`);
      await writeNpy(maskPath, clip.textMask);
      meta[REFERENCE_KEYS.textMask[0] as string] = ref(maskPath);
    }
    meta.physics_quality = clip.physics;
    meta.human_quality = clip.human;
    Object.assign(meta, clip.extra);
    await writeFileAtomic(metaPath, `${JSON.stringify(meta, null, 2)}\n`);
    lines.push(path.relative(root, metaPath).split(path.sep).join('/'));
  }
  const listPath = path.join(root, options.listName ?? 'data.list');
  await writeFileAtomic(listPath, `${lines.join('\n')}\n`);
  return listPath;
}
