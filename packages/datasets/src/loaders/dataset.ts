/**
 * A preference dataset: an index of clips from either format (the reference's .list of meta JSONs, or
 * a JSONL manifest over a latent shard store), a split filter, and the two sources built from it
 * (pointwise for BCE, pairwise for Bradley-Terry). Also the conversions between the two formats.
 */
import { CorruptFileError, InvalidArgumentError } from '@prfl/tensor';
import {
  type PairwiseRecord,
  type PointwiseRecord,
  readPairwiseManifest,
  readPointwiseEntries,
  writeJsonl,
} from '../io/jsonl.js';
import type { FloatArray } from '../io/layout.js';
import { node } from '../io/node.js';
import {
  type ReferenceClip,
  type ReferenceClipInput,
  type ReferenceReadOptions,
  readReferenceList,
  type WriteReferenceOptions,
  writeReferenceLayout,
} from '../io/reference.js';
import { LatentShardStore, type OpenStoreOptions } from '../io/shard-store.js';
import type { Split } from '../moving-shapes/split.js';
import { ArrayLoader, type ArrayRef, type ClipItem, describeArray } from './clips.js';
import { assignSplit, type SplitFractions } from './order.js';
import {
  type LabelName,
  PairwiseSource,
  type PairingOptions,
  PointwiseSource,
  type SourceOptions,
} from './sources.js';

export interface SelectOptions {
  /** Keep clips of these splits. */
  split?: Split | readonly Split[];
  /** For clips without a stored split: fractions for `assignSplit` (default val 0.1, test 0.1). */
  fractions?: SplitFractions;
  /** Salt of the id hash of `assignSplit`. */
  salt?: string;
}

/** A clip's arrays as `loadClip` reads them (latents channels-last, text [L, D]). */
export interface LoadedClipArrays {
  item: ClipItem;
  latent: FloatArray;
  text?: FloatArray;
  textMask?: FloatArray;
  /** The embedding of the second (long) caption. */
  longText?: FloatArray;
  condition?: FloatArray;
  imageEmbeds?: FloatArray;
}

export class PreferenceDataset {
  constructor(
    readonly items: readonly ClipItem[],
    private readonly loader: ArrayLoader,
    /** Explicit pairs (a pairwise manifest), by clip id. */
    readonly pairs: ReadonlyArray<readonly [string, string]> = [],
    private readonly owned?: LatentShardStore,
    /** Bradley-Terry losers from a second list (the reference's meta_file_lose_list). */
    readonly losers: readonly ClipItem[] = [],
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** The split of a clip: stored, or derived from its id. */
  splitOf(item: ClipItem, options: SelectOptions = {}): Split {
    return item.split ?? assignSplit(item.id, options.fractions, options.salt);
  }

  /** The clips of some splits (and the explicit pairs whose both clips remain). */
  select(options: SelectOptions): PreferenceDataset {
    const wanted =
      options.split === undefined
        ? undefined
        : new Set<Split>(typeof options.split === 'string' ? [options.split] : options.split);
    const items = wanted ? this.items.filter((i) => wanted.has(this.splitOf(i, options))) : [...this.items];
    const ids = new Set(items.map((i) => i.id));
    return new PreferenceDataset(
      items,
      this.loader,
      this.pairs.filter(([w, l]) => ids.has(w) && ids.has(l)),
      this.owned,
      wanted ? this.losers.filter((i) => wanted.has(this.splitOf(i, options))) : [...this.losers],
    );
  }

  /** Pointwise batches of the clips that have a 0/1 `label` (others are skipped). */
  pointwise(options: SourceOptions & { label?: LabelName } = {}): PointwiseSource {
    const label = options.label ?? 'motionQuality';
    const labelled = this.items.filter((i) => i.labels[label] === 0 || i.labels[label] === 1);
    return new PointwiseSource(labelled, this.loader, label, options);
  }

  /** Number of clips without a 0/1 `label` (skipped by `pointwise`). */
  unlabelled(label: LabelName = 'motionQuality'): number {
    return this.items.filter((i) => i.labels[label] !== 0 && i.labels[label] !== 1).length;
  }

  /**
   * (win, lose) batches: explicit pairs, losers drawn from the lose list, or good x bad pairs drawn
   * every epoch. The default mode is 'explicit' with a pairwise manifest, 'lose-list' with a lose
   * list, else 'within-prompt'.
   */
  pairwise(options: SourceOptions & PairingOptions & { label?: LabelName } = {}): PairwiseSource {
    const mode =
      options.mode ?? (this.pairs.length ? 'explicit' : this.losers.length ? 'lose-list' : 'within-prompt');
    if (mode === 'lose-list') {
      if (!this.losers.length)
        throw new InvalidArgumentError(
          "pairwise: mode 'lose-list' needs a list of losers (options.loseList when opening)",
        );
      return new PairwiseSource(this.items, this.loader, { mode, losers: this.losers }, options);
    }
    if (mode === 'explicit') {
      if (!this.pairs.length)
        throw new InvalidArgumentError(
          "pairwise: mode 'explicit' needs a pairwise manifest (options.pairs when opening)",
        );
      const byId = new Map(this.items.map((i) => [i.id, i]));
      const pairs = this.pairs.map(([w, l]) => [byId.get(w) as ClipItem, byId.get(l) as ClipItem] as const);
      return new PairwiseSource(this.items, this.loader, { mode, pairs }, options);
    }
    return new PairwiseSource(
      this.items,
      this.loader,
      { mode, label: options.label ?? 'motionQuality', fallback: options.fallback },
      options,
    );
  }

  /** Reads one clip's arrays, every one it has (of the losers too). */
  async loadClip(id: string): Promise<LoadedClipArrays> {
    const item = this.items.find((i) => i.id === id) ?? this.losers.find((i) => i.id === id);
    if (!item)
      throw new InvalidArgumentError(`loadClip: no clip "${id}" in the dataset (${this.items.length} clips)`);
    const l = this.loader;
    const out: LoadedClipArrays = { item, latent: await l.load(item.latent, describeArray(item, 'latent')) };
    if (item.text) out.text = await l.loadText(item.text, describeArray(item, 'text embedding'));
    if (item.textMask) out.textMask = await l.load(item.textMask, describeArray(item, 'text mask'));
    if (item.long?.text)
      out.longText = await l.loadText(item.long.text, describeArray(item, 'long text embedding'));
    if (item.condition) out.condition = await l.load(item.condition, describeArray(item, 'condition latent'));
    if (item.imageEmbeds)
      out.imageEmbeds = await l.loadText(item.imageEmbeds, describeArray(item, 'image embeds'));
    return out;
  }

  /** Closes the latent store this dataset opened (if any). */
  async close(): Promise<void> {
    await this.owned?.close();
  }
}

/** A clip of the reference layout as a loader item (arrays as .npy refs in PyTorch layout). */
function referenceItem(c: ReferenceClip, split: Split | undefined): ClipItem {
  const item: ClipItem = {
    id: c.id,
    prompt: c.prompt ?? '',
    labels: {
      motionQuality: c.labels.motionQuality,
      physics: c.labels.physics,
      human: c.labels.human,
      textAlignment: c.labels.textAlignment,
      blurQuality: c.labels.blurQuality,
    },
    latent: { kind: 'npy', path: c.latentPath, layout: 'cfhw' },
    origin: c.listedAt ?? c.metaPath,
  };
  if (c.textPath) item.text = { kind: 'npy', path: c.textPath, layout: 'plain' };
  if (c.textMaskPath) item.textMask = { kind: 'npy', path: c.textMaskPath, layout: 'plain' };
  if (c.longTextPath) {
    item.long = { prompt: c.longPrompt ?? '', text: { kind: 'npy', path: c.longTextPath, layout: 'plain' } };
  }
  if (c.conditionPath) item.condition = { kind: 'npy', path: c.conditionPath, layout: 'cfhw' };
  if (c.imageEmbedsPath) item.imageEmbeds = { kind: 'npy', path: c.imageEmbedsPath, layout: 'plain' };
  if (split) item.split = split;
  return item;
}

export interface OpenReferenceOptions extends ReferenceReadOptions {
  /** Split written on every clip (default: none; `select` then derives it from the id). */
  split?: Split;
  /** List files of Bradley-Terry losers (the reference's meta_file_lose_list); `pairwise()` then draws from them. */
  loseList?: string | readonly string[];
}

/**
 * Opens the reference layout: one or several .list files of meta JSONs, concatenated (its
 * meta_file_list), and optionally the losers' lists. Splits come from `select` (or use one list per split).
 */
export async function openReferenceDataset(
  lists: string | readonly string[],
  options: OpenReferenceOptions = {},
): Promise<PreferenceDataset> {
  const items = (await readReferenceList(lists, options)).map((c) => referenceItem(c, options.split));
  const losers = options.loseList
    ? (await readReferenceList(options.loseList, options)).map((c) => referenceItem(c, options.split))
    : [];
  return new PreferenceDataset(items, new ArrayLoader(), [], undefined, losers);
}

export interface OpenJsonlOptions {
  /** The latent store the manifest's keys refer to: a folder (opened and owned by the dataset) or an open store. */
  store?: string | LatentShardStore;
  storeOptions?: OpenStoreOptions;
  /** A pairwise manifest over the same clips. */
  pairs?: string;
}

async function refOf(value: string, base: string, layout: 'fhwc' | 'cfhw' | 'plain'): Promise<ArrayRef> {
  if (!value.endsWith('.npy')) return { kind: 'store', key: value };
  const { path } = await node();
  return { kind: 'npy', path: path.resolve(base, value), layout };
}

/** Checks at open that a clip's array exists (a .npy file, or a key of the store), naming the line. */
async function checkRef(
  ref: ArrayRef,
  part: string,
  item: ClipItem,
  store: LatentShardStore | undefined,
): Promise<void> {
  const where = `${item.origin}: clip "${item.id}"`;
  if (ref.kind === 'store') {
    if (store && !store.has(ref.key)) {
      throw new CorruptFileError(
        `${where} refers to "${ref.key}" (${part}), which is not in the latent store ${store.dir}`,
      );
    }
    return;
  }
  const { fs } = await node();
  let isFile: boolean;
  try {
    isFile = (await fs.stat(ref.path)).isFile();
  } catch {
    throw new InvalidArgumentError(`${where}: ${part} file not found: ${ref.path}`);
  }
  if (!isFile)
    throw new InvalidArgumentError(`${where}: ${part}: expected a .npy file, got a folder: ${ref.path}`);
}

/**
 * Opens a pointwise JSONL manifest (and optionally its latent store and a pairwise manifest). Every
 * array a line names must exist: a missing .npy file or store key is an error naming the manifest,
 * the line and the clip.
 */
export async function openJsonlDataset(
  manifestPath: string,
  options: OpenJsonlOptions = {},
): Promise<PreferenceDataset> {
  const { path } = await node();
  const base = path.dirname(path.resolve(manifestPath));
  const entries = await readPointwiseEntries(manifestPath);
  let store: LatentShardStore | undefined;
  let owned: LatentShardStore | undefined;
  if (typeof options.store === 'string')
    owned = store = await LatentShardStore.open(options.store, options.storeOptions);
  else store = options.store;
  const items: ClipItem[] = [];
  try {
    for (const { line, record: r } of entries) {
      const layout = r.latent_layout ?? 'fhwc';
      const item: ClipItem = {
        id: r.id,
        prompt: r.prompt,
        labels: {
          motionQuality: r.labels.motion_quality,
          physics: r.labels.physics_quality,
          human: r.labels.human_quality,
          textAlignment: r.labels.text_alignment,
        },
        latent: await refOf(r.latent, base, layout),
        origin: `${manifestPath}:${line}`,
      };
      if (r.labels.blur_quality !== undefined) item.labels.blurQuality = r.labels.blur_quality;
      if (r.text) item.text = await refOf(r.text, base, 'plain');
      if (r.text_mask) item.textMask = await refOf(r.text_mask, base, 'plain');
      if (r.long_prompt !== undefined) {
        item.long = { prompt: r.long_prompt };
        if (r.long_text) item.long.text = await refOf(r.long_text, base, 'plain');
      }
      if (r.condition) item.condition = await refOf(r.condition, base, layout);
      if (r.image_embeds) item.imageEmbeds = await refOf(r.image_embeds, base, 'plain');
      if (r.split) item.split = r.split;
      const parts: Array<[ArrayRef | undefined, string]> = [
        [item.latent, 'latent'],
        [item.text, 'text embedding'],
        [item.textMask, 'text mask'],
        [item.long?.text, 'long text embedding'],
        [item.condition, 'condition latent'],
        [item.imageEmbeds, 'image embeds'],
      ];
      for (const [ref, part] of parts) if (ref) await checkRef(ref, part, item, store);
      items.push(item);
    }
  } catch (e) {
    await owned?.close();
    throw e;
  }
  let pairs: Array<readonly [string, string]> = [];
  if (options.pairs) {
    try {
      const recs: PairwiseRecord[] = await readPairwiseManifest(
        options.pairs,
        new Set(items.map((i) => i.id)),
      );
      pairs = recs.map((p) => [p.win, p.lose] as const);
    } catch (e) {
      await owned?.close();
      throw e;
    }
  }
  return new PreferenceDataset(items, new ArrayLoader(store), pairs, owned);
}

export interface ReferenceToJsonlOptions extends ReferenceReadOptions {
  /** Where the pointwise manifest goes. */
  manifest: string;
  /** The latent store folder (created if missing). */
  store: string;
  /** Clips per shard (default 64). */
  clipsPerShard?: number;
  floatStorage?: 'F32' | 'F16';
  /** Split written on every record (default: none; `select` then derives it from the id). */
  split?: Split;
}

/**
 * Converts the reference layout to ours: latents (and condition latents) become channels-last
 * [F, H, W, C] in the shard store under `<id>/latent`, `<id>/text`, `<id>/text_mask`, `<id>/long_text`,
 * `<id>/condition`, `<id>/image_embeds`; captions and labels go to a pointwise JSONL. Returns the number
 * of clips.
 */
export async function referenceToJsonl(
  lists: string | readonly string[],
  options: ReferenceToJsonlOptions,
): Promise<number> {
  const dataset = await openReferenceDataset(lists, options);
  const store = await LatentShardStore.open(options.store, { create: true });
  const per = options.clipsPerShard ?? 64;
  const records: PointwiseRecord[] = [];
  try {
    for (let i = 0; i < dataset.items.length; i += per) {
      const tensors: Record<string, FloatArray> = {};
      for (const item of dataset.items.slice(i, i + per)) {
        const clip = await dataset.loadClip(item.id);
        const record: PointwiseRecord = {
          id: item.id,
          prompt: item.prompt,
          latent: `${item.id}/latent`,
          labels: {
            motion_quality: item.labels.motionQuality,
            physics_quality: item.labels.physics,
            human_quality: item.labels.human,
            text_alignment: item.labels.textAlignment,
          },
        };
        if (item.labels.blurQuality !== undefined) record.labels.blur_quality = item.labels.blurQuality;
        if (item.long) record.long_prompt = item.long.prompt;
        const parts: Array<
          [FloatArray | undefined, 'text' | 'text_mask' | 'long_text' | 'condition' | 'image_embeds']
        > = [
          [clip.text, 'text'],
          [clip.textMask, 'text_mask'],
          [clip.longText, 'long_text'],
          [clip.condition, 'condition'],
          [clip.imageEmbeds, 'image_embeds'],
        ];
        tensors[record.latent] = clip.latent;
        for (const [array, key] of parts) {
          if (!array) continue;
          tensors[`${item.id}/${key}`] = array;
          record[key] = `${item.id}/${key}`;
        }
        if (options.split) record.split = options.split;
        records.push(record);
      }
      await store.append(tensors, { floatStorage: options.floatStorage });
    }
    await writeJsonl(options.manifest, records);
  } finally {
    await store.close();
  }
  return records.length;
}

/**
 * Converts ours to the reference layout under `outDir` (meta JSONs with the reference's keys, .npy
 * arrays in PyTorch layout with a leading batch dimension of 1, and `data.list`). Returns the list's path.
 *
 * The reference stores physics and human labels, not motion quality, and reads a missing label as 0:
 * an unknown physics or human label is written as 1 when motion quality is 1 (motion = physics AND
 * human), and left out otherwise.
 */
export async function jsonlToReference(
  manifestPath: string,
  outDir: string,
  options: OpenJsonlOptions & WriteReferenceOptions & { listName?: string } = {},
): Promise<string> {
  const dataset = await openJsonlDataset(manifestPath, options);
  try {
    async function* clips(): AsyncGenerator<ReferenceClipInput> {
      for (const item of dataset.items) {
        const c = await dataset.loadClip(item.id);
        const { labels } = item;
        const fromMotion = labels.motionQuality === 1 ? 1 : null;
        const clip: ReferenceClipInput = {
          id: item.id,
          prompt: item.prompt,
          latent: c.latent,
          physics: labels.physics ?? fromMotion,
          human: labels.human ?? fromMotion,
          textAlignment: labels.textAlignment,
          blurQuality: labels.blurQuality ?? null,
        };
        if (c.text) clip.text = c.text;
        if (c.textMask) clip.textMask = c.textMask;
        if (item.long) clip.longPrompt = item.long.prompt;
        if (c.longText) clip.longText = c.longText;
        if (c.condition) clip.condition = c.condition;
        if (c.imageEmbeds) clip.imageEmbeds = c.imageEmbeds;
        if (item.split) clip.extra = { split: item.split };
        yield clip;
      }
    }
    return await writeReferenceLayout(outDir, clips(), options);
  } finally {
    await dataset.close();
  }
}
