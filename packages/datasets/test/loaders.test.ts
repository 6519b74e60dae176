/**
 * Loaders on every backend under test (cpu, wasm): batches as tf tensors, determinism in (seed, epoch),
 * splits, Bradley-Terry pairing, streaming from the shard store, and errors for bad batches.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, initBackend, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assignSplit,
  disposeBatch,
  encodeNpy,
  epochOrder,
  LatentShardStore,
  openJsonlDataset,
  openReferenceDataset,
  type PreferenceDataset,
  sampleClips,
  writeJsonl,
  writeMovingShapesDataset,
} from '../src/index.js';

const pkg = path.resolve(import.meta.dirname, '..');
const fixtureList = path.join(pkg, 'fixtures/reference/data.list');
const loseList = path.join(pkg, 'fixtures/reference/lose.list');
/** The fixture's paths are relative to the package folder (the reference's are to its working folder). */
const roots = [pkg];
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-loaders-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny stand-in for a VAE encoder: 17 x 64 x 64 x 3 -> 5 x 8 x 8 x 4 by averaging blocks. */
function encode(video: { frames: number; height: number; width: number; data: Float32Array }) {
  const F = 1 + (video.frames - 1) / 4;
  const H = video.height / 8;
  const W = video.width / 8;
  const out = new Float32Array(F * H * W * 4);
  for (let f = 0; f < F; f++) {
    const src = f === 0 ? 0 : 4 * f;
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let di = 0; di < 8; di++)
            for (let dj = 0; dj < 8; dj++)
              s += video.data[
                ((src * video.height + i * 8 + di) * video.width + j * 8 + dj) * 3 + c
              ] as number;
          out[((f * H + i) * W + j) * 4 + c] = s / 64;
        }
  }
  return { shape: [F, H, W, 4], data: out };
}

let moving: PreferenceDataset;
beforeAll(async () => {
  const clips = sampleClips({ count: 24, seed: 'loader', alignmentDefectRate: 0.25 }).map((c, i) => ({
    ...c,
    split: i % 6 === 0 ? ('val' as const) : ('train' as const),
  }));
  await writeMovingShapesDataset({
    clips,
    encode,
    embedText: (prompt) => ({
      shape: [prompt.split(' ').length, 8],
      data: Float32Array.from({ length: prompt.split(' ').length * 8 }, (_, k) => k / 10),
    }),
    manifest: path.join(tmp, 'ms/manifest.jsonl'),
    store: path.join(tmp, 'ms/store'),
    clipsPerShard: 5,
  });
  moving = await openJsonlDataset(path.join(tmp, 'ms/manifest.jsonl'), { store: path.join(tmp, 'ms/store') });
});
afterAll(async () => {
  await moving?.close();
});

describe('order and splits', () => {
  it('depends only on (seed, epoch)', () => {
    expect(epochOrder(10, 3, 1)).toEqual(epochOrder(10, 3, 1));
    expect(epochOrder(10, 3, 1)).not.toEqual(epochOrder(10, 3, 2));
    expect(epochOrder(10, 4, 1)).not.toEqual(epochOrder(10, 3, 1));
    expect([...epochOrder(10, 3, 1)].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(epochOrder(4, 3, 1, false)).toEqual([0, 1, 2, 3]);
  });

  it('derives splits from ids in the given proportions', () => {
    const counts = { train: 0, val: 0, test: 0 };
    for (let i = 0; i < 5000; i++) counts[assignSplit(`clip-${i}`, { val: 0.1, test: 0.2 })]++;
    expect(counts.test / 5000).toBeCloseTo(0.2, 1);
    expect(counts.val / 5000).toBeCloseTo(0.1, 1);
    expect(assignSplit('x')).toBe(assignSplit('x'));
  });
});

describe.each(backendsUnderTest())('loaders on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('batches the reference fixture: channels-last latents, padded text with a mask, labels', async () => {
    const ds = await openReferenceDataset(fixtureList, { roots });
    expect(ds.unlabelled()).toBe(0); // a missing label counts as 0, as in the reference
    const source = ds.pointwise({ longCaptionRate: 0 });
    expect(source.size).toBe(5);
    const before = tf.memory().numTensors;
    const batches = [];
    for await (const b of source.batches({ batchSize: 3, seed: 1, epoch: 0, shuffle: false }))
      batches.push(b);
    expect(batches.map((b) => b.ids)).toEqual([
      ['clip_a', 'clip_b', 'clip_c'],
      ['clip_d', 'clip_e'],
    ]);
    const first = batches[0]!;
    expect(first.latents.shape).toEqual([3, 3, 4, 4, 4]);
    expect(first.conditioning.text.shape).toEqual([3, 6, 8]);
    expect(Array.from(await first.labels.data())).toEqual([1, 0, 1]);
    // clip_c's short caption has 4 tokens: padded, masked.
    expect(Array.from(await first.conditioning.textMask!.data()).slice(12)).toEqual([1, 1, 1, 1, 0, 0]);
    // Latent [c=1, f=2, h=3, w=1] of clip_a sits at [0, 2, 3, 1, 1].
    const lat = (await first.latents.array()) as number[][][][][];
    expect(lat[0]![2]![3]![1]![1]).toBe(((((1 * 3 + 2) * 4 + 3) * 4 + 1) % 256) / 16);
    expect(Array.from(await batches[1]!.labels.data())).toEqual([0, 0]);
    expect(batches[1]!.conditioning.textMask).toBeUndefined();
    for (const b of batches) disposeBatch(b);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("uses the long caption as often as the reference's reader does, the same way for a (seed, epoch)", async () => {
    const ds = await openReferenceDataset(fixtureList, { roots });
    const lengths = async (rate: number | undefined, seed: number, epoch: number) => {
      const out: number[] = [];
      const prompts: string[] = [];
      const src = ds.pointwise({
        longCaptionRate: rate,
        encodeText: (p) => {
          prompts.push(...p);
          return { text: tf.zeros([p.length, 1, 1]) as tf.Tensor3D };
        },
      });
      for await (const b of src.batches({ batchSize: 5, seed, epoch, shuffle: false })) disposeBatch(b);
      const long = new Set(ds.items.map((i) => i.long?.prompt));
      for (const p of prompts) out.push(long.has(p) ? 1 : 0);
      return out;
    };
    expect(await lengths(0, 1, 0)).toEqual([0, 0, 0, 0, 0]);
    expect(await lengths(1, 1, 0)).toEqual([1, 1, 1, 1, 1]);
    expect(await lengths(undefined, 4, 2)).toEqual(await lengths(undefined, 4, 2));
    // Stored embeddings follow the caption: the long ones are 7 or 9 tokens, the short ones 4 or 6.
    const src = ds.pointwise({ longCaptionRate: 1 });
    for await (const b of src.batches({ batchSize: 5, seed: 0, epoch: 0 })) {
      expect(b.conditioning.text.shape).toEqual([5, 9, 8]);
      disposeBatch(b);
    }
    // Over many (seed, epoch) draws the default rate is the reference's 70 %.
    let long = 0;
    let all = 0;
    for (let epoch = 0; epoch < 40; epoch++) {
      const got = await lengths(undefined, 9, epoch);
      long += got.reduce((a, b) => a + b, 0);
      all += got.length;
    }
    expect(long / all).toBeGreaterThan(0.6);
    expect(long / all).toBeLessThan(0.8);
    await expect(
      ds.pointwise({ longCaptionRate: 1.5 }).batches({ batchSize: 1, seed: 0, epoch: 0 }).next(),
    ).rejects.toThrow(/longCaptionRate: expected a number in \[0, 1\], got 1\.5/);
  });

  it('pairs every clip with a loser drawn from the lose list, as the reference does', async () => {
    const ds = await openReferenceDataset(fixtureList, { roots, loseList });
    expect(ds.losers.map((l) => l.id)).toEqual(['clip_b', 'clip_d', 'clip_e']);
    const pairs = ds.pairwise({ longCaptionRate: 0 });
    expect(pairs.size).toBe(5);
    const e0 = pairs.epochPairs(3, 0).map(([w, l]) => `${w.id}>${l.id}`);
    expect(pairs.epochPairs(3, 0).map(([w, l]) => `${w.id}>${l.id}`)).toEqual(e0);
    expect(e0.map((p) => p.split('>')[0]).sort()).toEqual(ds.items.map((i) => i.id));
    const losers = new Set<string>();
    for (let epoch = 0; epoch < 10; epoch++) for (const [, l] of pairs.epochPairs(3, epoch)) losers.add(l.id);
    expect([...losers].sort()).toEqual(['clip_b', 'clip_d', 'clip_e']);
    for await (const b of pairs.batches({ batchSize: 5, seed: 3, epoch: 0 })) {
      expect(b.win.shape).toEqual([5, 3, 4, 4, 4]);
      expect(b.lose.shape).toEqual([5, 3, 4, 4, 4]);
      disposeBatch(b);
    }
  });

  it('streams MovingShapes latents from the shard store, deterministic in (seed, epoch)', async () => {
    const train = moving.select({ split: 'train' });
    expect(train.size).toBe(20);
    const source = train.pointwise();
    const run = async (seed: number, epoch: number) => {
      const out: string[][] = [];
      for await (const b of source.batches({ batchSize: 8, seed, epoch, dropLast: true })) {
        expect(b.latents.shape).toEqual([8, 5, 8, 8, 4]);
        out.push([...b.ids]);
        disposeBatch(b);
      }
      return out;
    };
    const a = await run(7, 0);
    expect(a).toHaveLength(2);
    expect(await run(7, 0)).toEqual(a);
    expect(await run(7, 1)).not.toEqual(a);
    // Labels follow the ground truth written by writeMovingShapesDataset.
    const clip = await moving.loadClip(moving.items[1]!.id);
    expect(clip.latent.shape).toEqual([5, 8, 8, 4]);
  });

  it('pairs good x bad clips within a prompt, explicitly, or across prompts', async () => {
    // Same prompt, one good and one bad, from the reference fixture (clip_a good, clip_e bad).
    const ds = await openReferenceDataset(fixtureList, { roots });
    const within = ds.pairwise({ longCaptionRate: 0 });
    expect(within.size).toBe(2); // "a red circle moving left": a x e; "a blue square falling": c x b
    const seen: string[] = [];
    for await (const b of within.batches({ batchSize: 2, seed: 3, epoch: 0 })) {
      expect(b.win.shape).toEqual([2, 3, 4, 4, 4]);
      expect(b.loseConditioning).toBeUndefined();
      seen.push(...b.ids.map(([w, l]) => `${w}>${l}`));
      disposeBatch(b);
    }
    expect(seen.sort()).toEqual(['clip_a>clip_e', 'clip_c>clip_b']);

    const across = moving.pairwise({ mode: 'across' });
    const good = moving.items.filter((i) => i.labels.motionQuality === 1).length;
    expect(across.size).toBe(Math.max(good, moving.size - good));
    const e0 = across.epochPairs(1, 0).map(([w, l]) => `${w.id}>${l.id}`);
    expect(across.epochPairs(1, 0).map(([w, l]) => `${w.id}>${l.id}`)).toEqual(e0);
    expect(across.epochPairs(1, 1).map(([w, l]) => `${w.id}>${l.id}`)).not.toEqual(e0);
    for (const [w, l] of across.epochPairs(1, 0)) {
      expect(w.labels.motionQuality).toBe(1);
      expect(l.labels.motionQuality).toBe(0);
    }
    for await (const b of across.batches({ batchSize: 4, seed: 1, epoch: 0 })) {
      expect(b.loseConditioning?.text.shape[0]).toBe(4);
      disposeBatch(b);
      break;
    }

    const pairsFile = path.join(tmp, 'pairs.jsonl');
    const [x, y] = [moving.items[0]!, moving.items[1]!];
    await writeJsonl(pairsFile, [{ prompt: x.prompt, win: x.id, lose: y.id }]);
    const explicit = await openJsonlDataset(path.join(tmp, 'ms/manifest.jsonl'), {
      store: path.join(tmp, 'ms/store'),
      pairs: pairsFile,
    });
    const src = explicit.pairwise();
    expect(src.size).toBe(1);
    for await (const b of src.batches({ batchSize: 4, seed: 0, epoch: 0 })) {
      expect(b.ids).toEqual([[x.id, y.id]]);
      disposeBatch(b);
    }
    await explicit.close();
  });

  it('builds conditioning from prompts with encodeText when no embedding is stored', async () => {
    const manifest = path.join(tmp, 'noText.jsonl');
    await writeJsonl(
      manifest,
      moving.items.slice(0, 3).map((i) => ({
        id: i.id,
        prompt: i.prompt,
        latent: (i.latent as { key: string }).key,
        labels: { motion_quality: 1 },
      })),
    );
    const ds = await openJsonlDataset(manifest, { store: path.join(tmp, 'ms/store') });
    const without = ds.pointwise();
    await expect(without.batches({ batchSize: 2, seed: 0, epoch: 0 }).next()).rejects.toThrow(
      /has no stored text embedding; pass options\.encodeText/,
    );
    const withText = ds.pointwise({
      encodeText: (prompts) => ({ text: tf.ones([prompts.length, 3, 5]) as tf.Tensor3D }),
    });
    for await (const b of withText.batches({ batchSize: 2, seed: 0, epoch: 0 })) {
      expect(b.conditioning.text.shape[2]).toBe(5);
      disposeBatch(b);
    }
    await ds.close();
  });

  it('reports latents whose shapes differ within a batch, naming both clips', async () => {
    const dir = path.join(tmp, `mixed-${backend}`);
    const store = await LatentShardStore.open(path.join(dir, 'store'), { create: true });
    await store.append({
      a: { shape: [5, 8, 8, 4], data: new Float32Array(1280) },
      b: { shape: [5, 8, 8, 16], data: new Float32Array(5120) },
    });
    await store.close();
    await writeJsonl(path.join(dir, 'm.jsonl'), [
      { id: 'a', prompt: 'p', latent: 'a', labels: { motion_quality: 1 } },
      { id: 'b', prompt: 'p', latent: 'b', labels: { motion_quality: 0 } },
    ]);
    const ds = await openJsonlDataset(path.join(dir, 'm.jsonl'), { store: path.join(dir, 'store') });
    const src = ds.pointwise({ encodeText: (p) => ({ text: tf.zeros([p.length, 1, 1]) as tf.Tensor3D }) });
    const before = tf.memory().numTensors;
    await expect(src.batches({ batchSize: 2, seed: 0, epoch: 0, shuffle: false }).next()).rejects.toThrow(
      /shapes differ within a batch: clip "b" \(store key "b"\) is \[5, 8, 8, 16\] but clip "a" \(store key "a"\) is \[5, 8, 8, 4\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
    await ds.close();
  });

  it('names a missing array file and a store key that does not exist', async () => {
    const dir = path.join(tmp, `missing-${backend}`);
    mkdirSync(dir, { recursive: true });
    const npy = path.join(dir, 'a.npy');
    writeFileSync(npy, encodeNpy({ shape: [1, 1, 1, 1], data: new Float32Array(1) }));
    writeFileSync(
      path.join(dir, 'm.jsonl'),
      `\n${JSON.stringify({ id: 'clip-a', prompt: 'p', latent: 'a.npy', labels: { motion_quality: 1 } })}\n`,
    );
    const ds = await openJsonlDataset(path.join(dir, 'm.jsonl'));
    // Deleted after the dataset was opened: the batch's error names the clip, the manifest line and the file.
    rmSync(npy);
    await expect(
      ds
        .pointwise({ encodeText: (p) => ({ text: tf.zeros([p.length, 1, 1]) as tf.Tensor3D }) })
        .batches({ batchSize: 1, seed: 0, epoch: 0 })
        .next(),
    ).rejects.toThrow(/clip "clip-a" latent \(.*m\.jsonl:2\): \.npy array: file not found: .*a\.npy/);
    writeFileSync(
      path.join(dir, 'k.jsonl'),
      `${JSON.stringify({ id: 'a', prompt: 'p', latent: 'nokey', labels: { motion_quality: 1 } })}\n`,
    );
    await expect(
      openJsonlDataset(path.join(dir, 'k.jsonl'), { store: path.join(tmp, 'ms/store') }),
    ).rejects.toThrow(/k\.jsonl:1: clip "a" refers to "nokey" \(latent\), which is not in the latent store/);
    await expect(ds.pointwise().batches({ batchSize: 0, seed: 0, epoch: 0 }).next()).rejects.toThrow(
      /batchSize must be a positive integer, got 0/,
    );
  });
});
