/**
 * The two formats: the reference layout made by NumPy (scripts/make-reference-fixture.py), our JSONL
 * manifests with their line-numbered errors, and the conversions both ways.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  jsonlToReference,
  motionQualityOf,
  openJsonlDataset,
  openReferenceDataset,
  parseQualityLabel,
  readMetaList,
  readPointwiseManifest,
  readReferenceLatent,
  readReferenceList,
  readReferenceMeta,
  referenceToJsonl,
} from '../src/index.js';

const fixture = path.resolve(import.meta.dirname, '../fixtures/reference');
const list = path.join(fixture, 'data.list');
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-formats-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The fixture's latent value at [c, f, h, w] (see the script). */
const latentValue = (c: number, f: number, h: number, w: number) =>
  ((((c * 5 + f) * 8 + h) * 8 + w) % 256) / 16;

describe('quality labels', () => {
  it('reads 0/1, good/poor and null; motion quality = physics AND human', () => {
    expect(
      [1, 0, 'good', 'poor', 'Bad', true, null, undefined, ''].map((v) => parseQualityLabel(v, 'x')),
    ).toEqual([1, 0, 1, 0, 0, 1, null, null, null]);
    expect(() => parseQualityLabel(0.5, 'meta.json: "physics_quality"')).toThrow(
      /meta\.json: "physics_quality": expected a quality label 0, 1, "good", "poor" or null, got 0\.5/,
    );
    expect(motionQualityOf(1, 1)).toBe(1);
    expect(motionQualityOf(1, 0)).toBe(0);
    expect(motionQualityOf(0, null)).toBe(0);
    expect(motionQualityOf(1, null)).toBe(null);
  });
});

describe('reference layout (made by NumPy)', () => {
  it('reads the list (skipping comments and blank lines) and every meta JSON', async () => {
    const metas = await readMetaList(list);
    expect(metas.map((m) => path.basename(m))).toEqual(
      ['a', 'b', 'c', 'd', 'e'].map((x) => `clip_${x}_meta_v1.json`),
    );
    const clips = await readReferenceList(list);
    expect(clips.map((c) => c.id)).toEqual(['clip_a', 'clip_b', 'clip_c', 'clip_d', 'clip_e']);
    expect(clips.map((c) => c.labels.motionQuality)).toEqual([1, 0, 1, null, 0]);
    expect(clips[1]?.labels).toEqual({ physics: 0, human: 1, motionQuality: 0 });
    expect(clips[0]?.prompt).toBe('a red circle moving left');
    expect(clips[0]?.latentPath).toBe(path.join(fixture, 'latents/clip_a.npy'));
  });

  it('converts PyTorch [C, F, H, W] latents of every stored form to channels-last [F, H, W, C]', async () => {
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      const lat = await readReferenceLatent(path.join(fixture, `latents/clip_${id}.npy`));
      expect(lat.shape, id).toEqual([5, 8, 8, 4]);
      for (const [f, h, w, c] of [
        [0, 0, 0, 0],
        [4, 7, 7, 3],
        [2, 3, 5, 1],
        [1, 6, 2, 2],
      ] as const) {
        expect(lat.data[((f * 8 + h) * 8 + w) * 4 + c], `${id} ${f},${h},${w},${c}`).toBe(
          latentValue(c, f, h, w),
        );
      }
    }
  });

  it('accepts custom keys and reports a meta without a latent path by the keys it tried', async () => {
    const dir = path.join(tmp, 'keys');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'x.json'),
      JSON.stringify({ vae: path.join(fixture, 'latents/clip_a.npy'), physics_quality: 1 }),
    );
    await expect(readReferenceMeta(path.join(dir, 'x.json'))).rejects.toThrow(
      /no latent path \(looked for latent_path, latents_path/,
    );
    const clip = await readReferenceMeta(path.join(dir, 'x.json'), { keys: { latent: ['vae'] } });
    expect(clip.labels).toEqual({ physics: 1, human: null, motionQuality: null });
  });

  it('names missing files: the list, a meta, an array', async () => {
    await expect(readMetaList(path.join(tmp, 'none.list'))).rejects.toThrow(
      /meta list: file not found: .*none\.list/,
    );
    const dir = path.join(tmp, 'missing');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'data.list'), 'meta/a.json\n');
    await expect(readMetaList(path.join(dir, 'data.list'))).rejects.toThrow(
      /data\.list:1: file not found: meta\/a\.json \(tried /,
    );
    writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ latent_path: 'nowhere.npy' }));
    await expect(readReferenceMeta(path.join(dir, 'a.json'))).rejects.toThrow(
      /a\.json: "latent_path": file not found: nowhere\.npy/,
    );
    writeFileSync(path.join(dir, 'bad.json'), '{"latent_path": ');
    await expect(readReferenceMeta(path.join(dir, 'bad.json'))).rejects.toThrow(
      /bad\.json: meta JSON is not valid JSON/,
    );
  });
});

describe('JSONL manifests', () => {
  const write = (name: string, lines: string[]) => {
    const file = path.join(tmp, name);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  };
  const ok = (id: string) =>
    JSON.stringify({
      id,
      prompt: 'p',
      latent: `${id}/latent`,
      labels: { physics_quality: 1, human_quality: 'good' },
    });

  it('reads records, derives motion_quality and keeps unknown keys', async () => {
    const file = write('ok.jsonl', [
      ok('a'),
      '',
      JSON.stringify({
        id: 'b',
        prompt: 'p',
        latent: 'b.npy',
        labels: { motion_quality: 0 },
        split: 'val',
        note: 7,
      }),
    ]);
    const recs = await readPointwiseManifest(file);
    expect(recs[0]?.labels).toEqual({
      motion_quality: 1,
      physics_quality: 1,
      human_quality: 1,
      text_alignment: null,
    });
    expect(recs[1]?.split).toBe('val');
    expect(recs[1]?.extra).toEqual({ note: 7 });
  });

  it('reports a malformed line with its file and line number', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[ok('a'), '{"id": "b", "prompt": '], /bad1\.jsonl:2: not valid JSON/],
      [
        [ok('a'), ok('b'), JSON.stringify({ id: 'c', prompt: 'p', labels: {} })],
        /bad2\.jsonl:3: missing "latent"/,
      ],
      [
        [JSON.stringify({ id: 'a', prompt: 'p', latent: 'x', labels: { physics_quality: 2 } })],
        /bad3\.jsonl:1: labels\.physics_quality: expected a quality label/,
      ],
      [[ok('a'), '', ok('a')], /bad4\.jsonl:3: id "a" already used on line 1/],
      [
        [JSON.stringify({ id: 'a', prompt: 'p', latent: 'x', labels: {}, split: 'dev' })],
        /bad5\.jsonl:1: "split" must be one of train, val, test, got "dev"/,
      ],
      [['[1, 2]'], /bad6\.jsonl:1: "labels" must be an object|bad6\.jsonl:1: expected a JSON object/],
    ];
    for (const [i, [lines, re]] of cases.entries()) {
      await expect(readPointwiseManifest(write(`bad${i + 1}.jsonl`, lines))).rejects.toThrow(re);
    }
    await expect(readPointwiseManifest(path.join(tmp, 'absent.jsonl'))).rejects.toThrow(
      /JSONL manifest: file not found: .*absent\.jsonl/,
    );
  });
});

describe('conversions', () => {
  it('reference -> JSONL + shard store -> reference keeps latents, text and labels', async () => {
    const manifest = path.join(tmp, 'conv/manifest.jsonl');
    const store = path.join(tmp, 'conv/store');
    mkdirSync(path.dirname(manifest), { recursive: true });
    const n = await referenceToJsonl(list, { manifest, store, clipsPerShard: 2 });
    expect(n).toBe(5);
    const ours = await openJsonlDataset(manifest, { store });
    const ref = await openReferenceDataset(list);
    for (const item of ref.items) {
      const a = await ref.loadClip(item.id);
      const b = await ours.loadClip(item.id);
      expect(b.latent.shape).toEqual(a.latent.shape);
      expect(Array.from(b.latent.data)).toEqual(Array.from(a.latent.data));
      expect(Array.from(b.text?.data ?? [])).toEqual(Array.from(a.text?.data ?? []));
      expect(b.item.labels).toEqual(a.item.labels);
    }
    await ours.close();

    const back = await jsonlToReference(manifest, path.join(tmp, 'conv/ref'), { store });
    const again = await openReferenceDataset(back);
    expect(again.items.map((i) => i.id)).toEqual(ref.items.map((i) => i.id));
    for (const item of again.items) {
      const a = await ref.loadClip(item.id);
      const b = await again.loadClip(item.id);
      expect(Array.from(b.latent.data)).toEqual(Array.from(a.latent.data));
      expect(b.item.labels.motionQuality).toBe(a.item.labels.motionQuality);
    }
    const meta = JSON.parse(readFileSync(path.join(tmp, 'conv/ref/meta_v1/clip_b_meta_v1.json'), 'utf8'));
    expect(meta).toMatchObject({
      latent_path: '../latents/clip_b.npy',
      physics_quality: 0,
      human_quality: 1,
    });
  });
});
