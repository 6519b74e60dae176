/**
 * MovingShapes clips -> a JSONL manifest over a latent shard store: every clip is rendered, encoded to a
 * latent by the caller's encoder (a VAE), and labelled with its ground truth or with the oracle's
 * judgement (the oracle plays the paper's annotators). Labels use the reference's names:
 * physics_quality = physical plausibility, human_quality = shape integrity (the world has no humans; it
 * is the same "the subject is intact" axis), motion_quality = both, text_alignment = prompt adherence.
 */
import { type PointwiseRecord, writeJsonl } from '../io/jsonl.js';
import type { FloatArray } from '../io/layout.js';
import { LatentShardStore } from '../io/shard-store.js';
import { judgeVideo } from '../moving-shapes/oracle/oracle.js';
import type { Video } from '../moving-shapes/video.js';
import { type ClipSpec, renderClip } from '../moving-shapes/world.js';

export interface WriteMovingShapesOptions {
  clips: Iterable<ClipSpec>;
  /** Pixel video ([F, H, W, 3] in [-1, 1]) -> channels-last latent [F', H', W', C], e.g. a VAE's encoder. */
  encode: (video: Video, spec: ClipSpec) => FloatArray | Promise<FloatArray>;
  /** Prompt -> text embedding [L, D]; stored once per distinct prompt. Without it, loaders need `encodeText`. */
  embedText?: (prompt: string) => FloatArray | Promise<FloatArray>;
  /** Pointwise manifest to write. */
  manifest: string;
  /** Latent store folder (created if missing) or an open store. */
  store: string | LatentShardStore;
  /** Clips per shard (default 64). */
  clipsPerShard?: number;
  floatStorage?: 'F32' | 'F16';
  /** 'ground-truth' (default) or 'oracle': labels judged from the rendered pixels. */
  labels?: 'ground-truth' | 'oracle';
  /** Keep the clip spec on each line under "movingshapes" (default true). */
  keepSpec?: boolean;
}

/** Writes the dataset; returns the records written. */
export async function writeMovingShapesDataset(
  options: WriteMovingShapesOptions,
): Promise<PointwiseRecord[]> {
  const store =
    typeof options.store === 'string'
      ? await LatentShardStore.open(options.store, { create: true })
      : options.store;
  const per = options.clipsPerShard ?? 64;
  const records: PointwiseRecord[] = [];
  const promptKeys = new Map<string, string>();
  let pending: Record<string, FloatArray> = {};
  let pendingClips = 0;
  const flush = async () => {
    if (pendingClips === 0 && Object.keys(pending).length === 0) return;
    await store.append(pending, { floatStorage: options.floatStorage });
    pending = {};
    pendingClips = 0;
  };
  try {
    for (const spec of options.clips) {
      const video = renderClip(spec);
      const latent = await options.encode(video, spec);
      const key = `${spec.id}/latent`;
      pending[key] = latent;
      let labels = {
        physics: spec.labels.physics as 0 | 1,
        integrity: spec.labels.integrity as 0 | 1,
        motionQuality: spec.labels.motionQuality as 0 | 1,
        textAlignment: spec.labels.textAlignment as 0 | 1,
      };
      if (options.labels === 'oracle') {
        const r = judgeVideo(video, spec.prompt);
        labels = {
          physics: r.motionQuality.physics.label,
          integrity: r.motionQuality.integrity.label,
          motionQuality: r.motionQuality.label,
          textAlignment: r.promptAdherence?.label ?? 0,
        };
      }
      const record: PointwiseRecord = {
        id: spec.id,
        prompt: spec.prompt,
        latent: key,
        labels: {
          motion_quality: labels.motionQuality,
          physics_quality: labels.physics,
          human_quality: labels.integrity,
          text_alignment: labels.textAlignment,
        },
        split: spec.split,
      };
      if (options.embedText) {
        let textKey = promptKeys.get(spec.prompt);
        if (!textKey) {
          textKey = `prompt/${spec.prompt}`;
          if (!store.has(textKey)) pending[textKey] = await options.embedText(spec.prompt);
          promptKeys.set(spec.prompt, textKey);
        }
        record.text = textKey;
      }
      if (options.keepSpec ?? true) record.extra = { movingshapes: spec };
      records.push(record);
      if (++pendingClips >= per) await flush();
    }
    await flush();
    await writeJsonl(options.manifest, records);
  } finally {
    if (typeof options.store === 'string') await store.close();
  }
  return records;
}
