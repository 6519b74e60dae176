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
  readPointwiseManifest,
  writeJsonl,
} from '../io/jsonl.js';
import type { FloatArray } from '../io/layout.js';
import { node } from '../io/node.js';
import {
  type ReferenceReadOptions,
  readReferenceList,
  type WriteReferenceOptions,
  writeReferenceLayout,
} from '../io/reference.js';
import { LatentShardStore, type OpenStoreOptions } from '../io/shard-store.js';
import type { Split } from '../moving-shapes/split.js';
import { ArrayLoader, type ArrayRef, type ClipItem } from './clips.js';
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

export class PreferenceDataset {
  constructor(
    readonly items: readonly ClipItem[],
    private readonly loader: ArrayLoader,
    /** Explicit pairs (a pairwise manifest), by clip id. */
    readonly pairs: ReadonlyArray<readonly [string, string]> = [],
    private readonly owned?: LatentShardStore,
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

  /** (win, lose) batches: explicit pairs, or good x bad pairs drawn every epoch. */
  pairwise(options: SourceOptions & PairingOptions & { label?: LabelName } = {}): PairwiseSource {
    const mode = options.mode ?? (this.pairs.length ? 'explicit' : 'within-prompt');
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

  /** Reads one clip's arrays (latent channels-last; text [L, D] when stored). */
  async loadClip(
    id: string,
  ): Promise<{ item: ClipItem; latent: FloatArray; text?: FloatArray; textMask?: FloatArray }> {
    const item = this.items.find((i) => i.id === id);
    if (!item)
      throw new InvalidArgumentError(`loadClip: no clip "${id}" in the dataset (${this.items.length} clips)`);
    const what = `clip "${id}"`;
    return {
      item,
      latent: await this.loader.load(item.latent, `${what} latent`),
      text: item.text ? await this.loader.loadText(item.text, `${what} text embedding`) : undefined,
      textMask: item.textMask ? await this.loader.load(item.textMask, `${what} text mask`) : undefined,
    };
  }

  /** Closes the latent store this dataset opened (if any). */
  async close(): Promise<void> {
    await this.owned?.close();
  }
}

/** Opens the reference layout: a .list of meta JSONs. Splits come from `select` (or use one list per split). */
export async function openReferenceDataset(
  listPath: string,
  options: ReferenceReadOptions & { split?: Split } = {},
): Promise<PreferenceDataset> {
  const clips = await readReferenceList(listPath, options);
  const items: ClipItem[] = clips.map((c) => {
    const item: ClipItem = {
      id: c.id,
      prompt: c.prompt ?? '',
      labels: {
        motionQuality: c.labels.motionQuality,
        physics: c.labels.physics,
        human: c.labels.human,
        textAlignment: null,
      },
      latent: { kind: 'npy', path: c.latentPath, layout: 'cfhw' },
    };
    if (c.textPath) item.text = { kind: 'npy', path: c.textPath, layout: 'plain' };
    if (c.textMaskPath) item.textMask = { kind: 'npy', path: c.textMaskPath, layout: 'plain' };
    if (options.split) item.split = options.split;
    return item;
  });
  return new PreferenceDataset(items, new ArrayLoader());
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

/** Opens a pointwise JSONL manifest (and optionally its latent store and a pairwise manifest). */
export async function openJsonlDataset(
  manifestPath: string,
  options: OpenJsonlOptions = {},
): Promise<PreferenceDataset> {
  const { path } = await node();
  const base = path.dirname(path.resolve(manifestPath));
  const records = await readPointwiseManifest(manifestPath);
  let store: LatentShardStore | undefined;
  let owned: LatentShardStore | undefined;
  if (typeof options.store === 'string')
    owned = store = await LatentShardStore.open(options.store, options.storeOptions);
  else store = options.store;
  const items: ClipItem[] = [];
  for (const r of records) {
    const item: ClipItem = {
      id: r.id,
      prompt: r.prompt,
      labels: {
        motionQuality: r.labels.motion_quality,
        physics: r.labels.physics_quality,
        human: r.labels.human_quality,
        textAlignment: r.labels.text_alignment,
      },
      latent: await refOf(r.latent, base, r.latent_layout ?? 'fhwc'),
    };
    if (r.text) item.text = await refOf(r.text, base, 'plain');
    if (r.text_mask) item.textMask = await refOf(r.text_mask, base, 'plain');
    if (r.split) item.split = r.split;
    for (const ref of [item.latent, item.text, item.textMask]) {
      if (ref?.kind === 'store' && store && !store.has(ref.key)) {
        throw new CorruptFileError(
          `${manifestPath}: clip "${r.id}" refers to "${ref.key}", which is not in the latent store ${store.dir}`,
        );
      }
    }
    items.push(item);
  }
  let pairs: Array<readonly [string, string]> = [];
  if (options.pairs) {
    const recs: PairwiseRecord[] = await readPairwiseManifest(options.pairs, new Set(items.map((i) => i.id)));
    pairs = recs.map((p) => [p.win, p.lose] as const);
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
 * Converts the reference layout to ours: latents become channels-last [F, H, W, C] in the shard store
 * (keys `<id>/latent`, `<id>/text`, `<id>/text_mask`), labels go to a pointwise JSONL. Returns the number of clips.
 */
export async function referenceToJsonl(listPath: string, options: ReferenceToJsonlOptions): Promise<number> {
  const dataset = await openReferenceDataset(listPath, options);
  const store = await LatentShardStore.open(options.store, { create: true });
  const per = options.clipsPerShard ?? 64;
  const records: PointwiseRecord[] = [];
  try {
    for (let i = 0; i < dataset.items.length; i += per) {
      const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
      for (const item of dataset.items.slice(i, i + per)) {
        const clip = await dataset.loadClip(item.id);
        tensors[`${item.id}/latent`] = clip.latent;
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
        if (clip.text) {
          tensors[`${item.id}/text`] = clip.text;
          record.text = `${item.id}/text`;
        }
        if (clip.textMask) {
          tensors[`${item.id}/text_mask`] = clip.textMask;
          record.text_mask = `${item.id}/text_mask`;
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
 * Converts ours to the reference layout under `outDir` (meta JSONs, .npy arrays in PyTorch layout, and
 * `data.list`). Returns the list's path.
 */
export async function jsonlToReference(
  manifestPath: string,
  outDir: string,
  options: OpenJsonlOptions & WriteReferenceOptions & { listName?: string } = {},
): Promise<string> {
  const dataset = await openJsonlDataset(manifestPath, options);
  try {
    async function* clips() {
      for (const item of dataset.items) {
        const c = await dataset.loadClip(item.id);
        yield {
          id: item.id,
          prompt: item.prompt,
          latent: c.latent,
          text: c.text,
          textMask: c.textMask,
          physics: item.labels.physics,
          human: item.labels.human,
          extra: {
            ...(item.labels.textAlignment !== null ? { text_alignment: item.labels.textAlignment } : {}),
            ...(item.split ? { split: item.split } : {}),
          },
        };
      }
    }
    return await writeReferenceLayout(outDir, clips(), options);
  } finally {
    await dataset.close();
  }
}
