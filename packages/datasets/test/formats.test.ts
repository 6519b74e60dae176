/**
 * The two formats: the reference layout as its preprocessing writes it (made by NumPy,
 * scripts/make-reference-fixture.py), read, written back, and accepted by a stand-in for the
 * reference's reader; our JSONL manifests with their line-numbered errors; conversions both ways.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CorruptFileError, InvalidArgumentError } from '@prfl/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import {
  jsonlToReference,
  motionQualityOf,
  type NpyArray,
  openJsonlDataset,
  openReferenceDataset,
  parseQualityLabel,
  readMetaList,
  readNpy,
  readPointwiseManifest,
  readReferenceLatent,
  readReferenceList,
  readReferenceMeta,
  referenceToJsonl,
  writeReferenceLayout,
} from '../src/index.js';

/** The fixture's paths are relative to the package folder, as the reference's are to its working folder. */
const pkg = path.resolve(import.meta.dirname, '..');
const fixture = path.join(pkg, 'fixtures/reference');
const list = path.join(fixture, 'data.list');
const roots = [pkg];
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-formats-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const [C, F, H, W, D] = [4, 3, 4, 4, 8];
/** The fixture's latent value at [c, f, h, w] (see the script). */
const latentValue = (c: number, f: number, h: number, w: number) =>
  ((((c * F + f) * H + h) * W + w) % 256) / 16;

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

/**
 * What the reference's training readers do with a meta JSON (its dataset's key lookups, in order),
 * written here without Python: the test of "the reference accepts what we write". Paths resolve
 * against `cwd`; np.load(p)[0] strips the batch dimension, which must be 1.
 */
async function referenceReader(metaFile: string, cwd: string) {
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Record<string, unknown>;
  const has = (k: string) => Object.hasOwn(meta, k);
  const get = (k: string): unknown => {
    if (!has(k)) throw new Error(`KeyError: '${k}' in ${metaFile}`);
    return meta[k];
  };
  const load0 = async (p: unknown): Promise<NpyArray> => {
    const a = await readNpy(path.resolve(cwd, p as string));
    expect(a.shape[0], `${p as string}: leading batch dimension`).toBe(1);
    expect(a.dtype, `${p as string}`).toBe('<f4');
    return { ...a, shape: a.shape.slice(1) };
  };
  // video
  const latentsPath = has('video_vae_latent_path')
    ? meta.video_vae_latent_path
    : has('vae_latent_path')
      ? meta.vae_latent_path
      : get('latents_path');
  // text states (the PRFL reader: both captions, long 70 % of the time; else text_en_path with prompt)
  const texts =
    has('textshort_path') && has('textlong_path')
      ? [
          [get('textshort_path'), get('short_caption')],
          [get('textlong_path'), get('long_caption')],
        ]
      : [[get('text_en_path'), get('prompt')]];
  const condition = has('f1_black_path') ? meta.f1_black_path : get('latents_condition_path');
  const imageEmbeds = await readNpy(path.resolve(cwd, get('imgclip_path') as string));
  // labels (the reward model's reader): missing counts as 0, "good" 1, "poor" / None 0
  const label = (k: string) => {
    const v = has(k) ? meta[k] : 0;
    return v === 'good' ? 1 : v === 'poor' || v === null ? 0 : v;
  };
  return {
    latents: await load0(latentsPath),
    texts: await Promise.all(texts.map(async ([p, prompt]) => ({ states: await load0(p), prompt }))),
    condition: await load0(condition),
    imageEmbeds: {
      ...imageEmbeds,
      shape: [imageEmbeds.shape[0]! * imageEmbeds.shape[1]!, imageEmbeds.shape[2]!],
    },
    labels: ['text_alignment', 'blur_quality', 'physics_quality', 'human_quality'].map(label),
  };
}

describe('reference layout (as its preprocessing writes it, made by NumPy)', () => {
  it('reads the list and every meta JSON with the reference key names', async () => {
    const metas = await readMetaList(list, { roots });
    expect(metas.map((m) => path.relative(fixture, m))).toEqual(
      ['a', 'b', 'c', 'd', 'e'].map((x) => `meta_v1/clip_${x}_meta_v1.json`),
    );
    const clips = await readReferenceList(list, { roots });
    expect(clips.map((c) => c.id)).toEqual(['clip_a', 'clip_b', 'clip_c', 'clip_d', 'clip_e']);
    const a = clips[0]!;
    expect(a.prompt).toBe('a red circle moving left');
    expect(a.longPrompt).toBe('a small red circle glides from the right edge to the left edge');
    expect(a.latentPath).toBe(path.join(fixture, 'latents/clip_a.npy'));
    expect(a.textPath).toBe(path.join(fixture, 'latents/clip_a_textshort.npy'));
    expect(a.longTextPath).toBe(path.join(fixture, 'latents/clip_a_textlong.npy'));
    expect(a.conditionPath).toBe(path.join(fixture, 'latents/clip_a_f1_black.npy'));
    expect(a.imageEmbedsPath).toBe(path.join(fixture, 'latents/clip_a_img_clip.npy'));
    expect(a.listedAt).toBe(`${list}:1`);
    // UTF-8 captions (the reference writes with ensure_ascii=False).
    expect(clips[2]!.longPrompt).toContain('café');
    // Labels: 0/1 and good/poor; a missing label counts as 0, as in the reference.
    expect(clips.map((c) => c.labels.motionQuality)).toEqual([1, 0, 1, 0, 0]);
    expect(clips[1]!.labels).toEqual({
      physics: 0,
      human: 1,
      motionQuality: 0,
      textAlignment: 1,
      blurQuality: 0,
    });
    expect(clips[2]!.labels).toEqual({
      physics: 1,
      human: 1,
      motionQuality: 1,
      textAlignment: 0,
      blurQuality: 1,
    });
    expect(clips[3]!.labels).toEqual({
      physics: 0,
      human: 0,
      motionQuality: 0,
      textAlignment: 0,
      blurQuality: 0,
    });
  });

  it('converts [1, C, F, H, W] latents, and every other stored form, to channels-last [F, H, W, C]', async () => {
    const files = [
      'latents/clip_a.npy',
      'arrays/latent_f2_v2.npy',
      'arrays/latent_cfhw_fortran_v3.npy',
      'arrays/latent_bigendian.npy',
      'arrays/latent_f8.npy',
    ];
    for (const file of files) {
      const lat = await readReferenceLatent(path.join(fixture, file));
      expect(lat.shape, file).toEqual([F, H, W, C]);
      for (let q = 0; q < F * H * W * C; q += 7) {
        const [f, h, w, c] = [
          Math.floor(q / (H * W * C)),
          Math.floor(q / (W * C)) % H,
          Math.floor(q / C) % W,
          q % C,
        ];
        expect(lat.data[q], `${file} ${f},${h},${w},${c}`).toBe(latentValue(c, f, h, w));
      }
    }
  });

  it('loads every array of a clip: text states [L, D], long text, condition latent, image tokens', async () => {
    const ds = await openReferenceDataset(list, { roots });
    const c = await ds.loadClip('clip_c');
    expect(c.text?.shape).toEqual([4, D]);
    expect(c.text?.data[9]).toBe(9 / 32 - 1);
    expect(c.longText?.shape).toEqual([7, D]);
    expect(c.longText?.data[9]).toBe(9 / 32 + 0.5);
    expect(c.condition?.shape).toEqual([F, H, W, C]);
    // f1_black: the first latent frame, then zeros.
    expect(c.condition?.data[3]).toBe(latentValue(3, 0, 0, 0));
    expect(c.condition?.data[H * W * C + 3]).toBe(0);
    expect(c.imageEmbeds?.shape).toEqual([3, 8]);
    expect(c.imageEmbeds?.data[1]).toBe(1 / 8 + 2);
    expect(c.item.long?.prompt).toContain('café');
    expect(c.item.origin).toBe(`${list}:3`);
  });

  it('concatenates several lists, reads a meta listed twice once, skips blank and # lines', async () => {
    const dir = path.join(tmp, 'lists');
    mkdirSync(dir, { recursive: true });
    const line = (x: string) => `fixtures/reference/meta_v1/clip_${x}_meta_v1.json`;
    writeFileSync(path.join(dir, 'one.list'), `${line('a')}\n${line('b')}\r\n${line('a')}\n`);
    writeFileSync(path.join(dir, 'two.list'), `# comment\n\n  ${line('c')}  \n${line('b')}`);
    const clips = await readReferenceList([path.join(dir, 'one.list'), path.join(dir, 'two.list')], {
      roots,
    });
    expect(clips.map((c) => c.id)).toEqual(['clip_a', 'clip_b', 'clip_c']);
    expect(clips[2]!.listedAt).toBe(`${path.join(dir, 'two.list')}:3`);
    // Two different metas with one id are an error naming both.
    mkdirSync(path.join(dir, 'other'), { recursive: true });
    writeFileSync(
      path.join(dir, 'other/clip_a_meta_v1.json'),
      readFileSync(path.join(fixture, 'meta_v1/clip_a_meta_v1.json')),
    );
    writeFileSync(path.join(dir, 'dup.list'), `${line('a')}\nother/clip_a_meta_v1.json\n`);
    await expect(readReferenceList(path.join(dir, 'dup.list'), { roots })).rejects.toThrow(
      /dup\.list:2: clip id "clip_a" appears twice \(.*clip_a_meta_v1\.json, listed at .*dup\.list:1, and .*other/,
    );
  });

  it('round-trips through our writer, and the reference reader accepts what we write', async () => {
    const ds = await openReferenceDataset(list, { roots });
    const out = path.join(tmp, 'written');
    const written = await writeReferenceLayout(
      out,
      (async function* () {
        for (const item of ds.items) {
          const c = await ds.loadClip(item.id);
          yield {
            id: item.id,
            prompt: item.prompt,
            longPrompt: item.long?.prompt,
            latent: c.latent,
            text: c.text,
            longText: c.longText,
            condition: c.condition,
            imageEmbeds: c.imageEmbeds,
            videoPath: c.item.id,
            physics: item.labels.physics,
            human: item.labels.human,
            textAlignment: item.labels.textAlignment,
            blurQuality: item.labels.blurQuality,
          };
        }
      })(),
    );
    const again = await openReferenceDataset(written);
    expect(again.items.map((i) => i.id)).toEqual(ds.items.map((i) => i.id));
    for (const item of ds.items) {
      const a = await ds.loadClip(item.id);
      const b = await again.loadClip(item.id);
      const { origin: _o1, ...ia } = a.item;
      const { origin: _o2, ...ib } = b.item;
      expect({ ...ib, latent: 0, text: 0, long: ib.long?.prompt, condition: 0, imageEmbeds: 0 }).toEqual({
        ...ia,
        latent: 0,
        text: 0,
        long: ia.long?.prompt,
        condition: 0,
        imageEmbeds: 0,
      });
      for (const k of ['latent', 'text', 'longText', 'condition', 'imageEmbeds'] as const) {
        expect(b[k]?.shape, `${item.id} ${k}`).toEqual(a[k]?.shape);
        expect(Array.from(b[k]?.data ?? []), `${item.id} ${k}`).toEqual(Array.from(a[k]?.data ?? []));
      }
    }
    // The meta JSON has the reference's keys, as its preprocessing writes them.
    const meta = JSON.parse(readFileSync(path.join(out, 'meta_v1/clip_b_meta_v1.json'), 'utf8'));
    expect(Object.keys(meta)).toEqual([
      'source_id',
      'long_caption',
      'short_caption',
      'video_path',
      'text_alignment',
      'blur_quality',
      'physics_quality',
      'human_quality',
      'vae_latent_path',
      'f1_black_path',
      'imgclip_path',
      'latent_shape',
      'textshort_path',
      'text_states_short_shape',
      'textlong_path',
      'text_states_long_shape',
    ]);
    expect(meta).toMatchObject({
      vae_latent_path: 'latents/clip_b.npy',
      f1_black_path: 'latents/clip_b_f1_black.npy',
      imgclip_path: 'latents/clip_b_img_clip.npy',
      latent_shape: [1, C, F, H, W],
      textshort_path: 'latents/clip_b_textshort.npy',
      text_states_short_shape: [1, 6, D],
      physics_quality: 0,
      human_quality: 1,
    });
    // The reference, run in the output folder, reads every clip: arrays with their batch dimension of 1.
    for (const metaLine of readFileSync(written, 'utf8').trim().split('\n')) {
      const got = await referenceReader(path.join(out, metaLine), out);
      expect(got.latents.shape).toEqual([C, F, H, W]);
      expect(got.condition.shape).toEqual([C, F, H, W]);
      expect(got.texts.map((t) => t.states.shape[1])).toEqual([D, D]);
      expect(typeof got.texts[1]!.prompt).toBe('string');
      expect(got.imageEmbeds.shape).toEqual([3, 8]);
      expect(got.labels.every((l) => l === 0 || l === 1)).toBe(true);
    }
    // So does the reference run from anywhere with absolute paths; a clip with one caption uses text_en_path.
    const abs = path.join(tmp, 'written-abs');
    const c = await ds.loadClip('clip_d');
    await writeReferenceLayout(
      abs,
      [
        {
          id: 'one',
          prompt: 'p',
          latent: c.latent,
          text: c.text,
          condition: c.condition,
          imageEmbeds: c.imageEmbeds,
          physics: 1,
          human: null,
        },
      ],
      { absolutePaths: true },
    );
    const one = await referenceReader(path.join(abs, 'meta_v1/one_meta_v1.json'), '/');
    expect(one.texts).toHaveLength(1);
    expect(one.texts[0]!.prompt).toBe('p');
    expect(one.labels).toEqual([0, 0, 1, 0]);
    const back = await readReferenceMeta(path.join(abs, 'meta_v1/one_meta_v1.json'));
    expect(back.prompt).toBe('p');
    expect(back.longTextPath).toBeUndefined();
    expect(back.labels.human).toBe(0);
  });

  it('refuses the key names earlier prfl versions wrote, naming the ones expected', async () => {
    const dir = path.join(tmp, 'old');
    mkdirSync(dir, { recursive: true });
    const latent = path.join(fixture, 'latents/clip_a.npy');
    writeFileSync(path.join(dir, 'x.json'), JSON.stringify({ latent_path: latent, physics_quality: 1 }));
    await expect(readReferenceMeta(path.join(dir, 'x.json'))).rejects.toThrow(
      /x\.json \(clip "x"\): "latent_path" is not a key of the reference's layout .*expected vae_latent_path/,
    );
    writeFileSync(
      path.join(dir, 'y.json'),
      JSON.stringify({ vae_latent_path: latent, prompt_embed_path: latent }),
    );
    await expect(readReferenceMeta(path.join(dir, 'y.json'))).rejects.toThrow(
      /"prompt_embed_path" is not a key of the reference's layout .*expected textshort_path \+ textlong_path/,
    );
    writeFileSync(path.join(dir, 'z.json'), JSON.stringify({ physics_quality: 1 }));
    await expect(readReferenceMeta(path.join(dir, 'z.json'))).rejects.toThrow(
      /z\.json \(clip "z"\): no latent path: expected one of "video_vae_latent_path", "vae_latent_path", "latents_path"/,
    );
    // The reference's order: video_vae_latent_path before vae_latent_path.
    writeFileSync(
      path.join(dir, 'order_meta_v1.json'),
      JSON.stringify({ vae_latent_path: 'nowhere.npy', video_vae_latent_path: latent, source_id: 's' }),
    );
    const clip = await readReferenceMeta(path.join(dir, 'order_meta_v1.json'));
    expect(clip.latentPath).toBe(latent);
    expect(clip.id).toBe('s');
  });

  it('names the file, the list line and the clip in errors', async () => {
    await expect(readMetaList(path.join(tmp, 'none.list'))).rejects.toThrow(
      /meta list: file not found: .*none\.list/,
    );
    const dir = path.join(tmp, 'missing');
    mkdirSync(path.join(dir, 'folder.json'), { recursive: true });
    writeFileSync(path.join(dir, 'data.list'), '\nmeta/a.json\n');
    await expect(readMetaList(path.join(dir, 'data.list'))).rejects.toThrow(
      /data\.list:2: file not found: meta\/a\.json \(tried /,
    );
    // A line naming a folder.
    writeFileSync(path.join(dir, 'folder.list'), 'folder.json\n');
    await expect(readReferenceList(path.join(dir, 'folder.list'))).rejects.toThrow(
      /folder\.list:1: expected a file, got a folder: .*folder\.json/,
    );
    // A missing latent file: the list and line, the meta, the clip id, the key.
    writeFileSync(
      path.join(dir, 'a_meta_v1.json'),
      JSON.stringify({ source_id: 'clip-7', vae_latent_path: 'nowhere.npy' }),
    );
    writeFileSync(path.join(dir, 'a.list'), '# one clip\na_meta_v1.json\n');
    const missing = readReferenceList(path.join(dir, 'a.list'));
    await expect(missing).rejects.toThrow(
      /a\.list:2: .*a_meta_v1\.json \(clip "clip-7"\): "vae_latent_path": file not found: nowhere\.npy/,
    );
    await expect(missing).rejects.toBeInstanceOf(InvalidArgumentError);
    writeFileSync(path.join(dir, 'bad.json'), '{"vae_latent_path": ');
    await expect(readReferenceMeta(path.join(dir, 'bad.json'))).rejects.toThrow(
      /bad\.json: meta JSON: not valid JSON/,
    );
  });

  it('refuses invalid UTF-8, deep nesting and huge values with short messages', async () => {
    const dir = path.join(tmp, 'hostile');
    mkdirSync(dir, { recursive: true });
    const bad = (name: string, bytes: Uint8Array | string) => {
      writeFileSync(path.join(dir, name), bytes);
      return path.join(dir, name);
    };
    const latent = path.join(fixture, 'latents/clip_a.npy');
    const utf8 = Buffer.concat([
      Buffer.from(`{"vae_latent_path": "${latent}", "short_caption": "caf`),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    await expect(readReferenceMeta(bad('u_meta_v1.json', utf8))).rejects.toThrow(
      /u_meta_v1\.json: meta JSON: not valid UTF-8 \(byte \d+: 0xc3\)/,
    );
    const deep = `{"vae_latent_path": "${latent}", "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const error = await readReferenceMeta(bad('deep.json', deep)).catch((e: Error) => e);
    expect(error).toBeInstanceOf(CorruptFileError);
    expect((error as Error).message).toMatch(/deep\.json: meta JSON: JSON nested deeper than 64 levels/);
    expect((error as Error).message.length).toBeLessThan(300);
    const huge = await readReferenceMeta(
      bad('huge.json', JSON.stringify({ vae_latent_path: latent, physics_quality: 'x'.repeat(1_000_000) })),
    ).catch((e: Error) => e);
    expect((huge as Error).message).toMatch(/"physics_quality": expected a quality label .* got "xxx.*…"$/);
    expect((huge as Error).message.length).toBeLessThan(400);
    const listBytes = Buffer.concat([
      Buffer.from('fixtures/reference/meta_v1/clip_a_meta_v1.json\nmeta/'),
      Buffer.from([0xff]),
      Buffer.from('.json\n'),
    ]);
    await expect(readMetaList(bad('u.list', listBytes), { roots })).rejects.toThrow(
      /u\.list:2: not valid UTF-8 \(byte 5: 0xff\)/,
    );
    // A list with no line breaks: refused at the line limit, not read whole.
    await expect(readMetaList(bad('long.list', 'x'.repeat(200_000)))).rejects.toThrow(
      /long\.list:1: line longer than 65536 bytes/,
    );
    // __proto__ in a meta is just an unknown key: no prototype is changed.
    const proto = await readReferenceMeta(
      bad('p_meta_v1.json', `{"__proto__": {"vae_latent_path": "x"}, "vae_latent_path": "${latent}"}`),
    );
    expect(proto.latentPath).toBe(latent);
    expect(Object.getPrototypeOf(proto.meta)).toBe(Object.prototype);
  });
});

describe('JSONL manifests', () => {
  const write = (name: string, lines: Array<string | Uint8Array>) => {
    const file = path.join(tmp, name);
    writeFileSync(file, Buffer.concat(lines.flatMap((l) => [Buffer.from(l), Buffer.from('\n')])));
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
        long_prompt: 'a longer p',
        labels: { motion_quality: 0, blur_quality: 'good' },
        split: 'val',
        note: 7,
      }),
      '{"id": "c", "prompt": "p", "latent": "c", "labels": {}, "__proto__": {"polluted": 1}}',
    ]);
    const recs = await readPointwiseManifest(file);
    expect(recs[0]?.labels).toEqual({
      motion_quality: 1,
      physics_quality: 1,
      human_quality: 1,
      text_alignment: null,
    });
    expect(recs[1]?.split).toBe('val');
    expect(recs[1]?.long_prompt).toBe('a longer p');
    expect(recs[1]?.labels.blur_quality).toBe(1);
    expect(recs[1]?.extra).toEqual({ note: 7 });
    // "__proto__" is kept as an ordinary key; no prototype changes.
    const extra = recs[2]?.extra as Record<string, unknown>;
    expect(Object.getPrototypeOf(extra)).toBe(Object.prototype);
    expect(Object.keys(extra)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports a malformed line with its file and line number', async () => {
    const cases: Array<[Array<string | Uint8Array>, RegExp]> = [
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
      [['[1, 2]'], /bad6\.jsonl:1: expected a JSON object, got \[1, 2\]/],
      [
        [ok('a'), new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])],
        /bad7\.jsonl:2: not valid UTF-8 \(byte 2: 0xed\)/,
      ],
      [
        [ok('a'), ok('b'), `${'['.repeat(200_000)}${']'.repeat(200_000)}`],
        /bad8\.jsonl:3: JSON nested deeper than 64 levels/,
      ],
      [[`{"id": "${'x'.repeat(17 * 1024 * 1024)}"}`], /bad9\.jsonl:1: line longer than 16777216 bytes/],
    ];
    for (const [i, [lines, re]] of cases.entries()) {
      const error = await readPointwiseManifest(write(`bad${i + 1}.jsonl`, lines)).catch((e: Error) => e);
      expect(error, re.source).toBeInstanceOf(CorruptFileError);
      expect((error as Error).message).toMatch(re);
      expect((error as Error).message.length, re.source).toBeLessThan(400);
    }
    await expect(readPointwiseManifest(path.join(tmp, 'absent.jsonl'))).rejects.toThrow(
      /JSONL manifest: file not found: .*absent\.jsonl/,
    );
    await expect(readPointwiseManifest(tmp)).rejects.toThrow(/JSONL manifest: expected a file, got a folder/);
  });

  it('names the manifest, the line and the clip when an array is missing', async () => {
    const dir = path.join(tmp, 'jsonl-missing');
    mkdirSync(dir, { recursive: true });
    const file = write('jsonl-missing/m.jsonl', [
      JSON.stringify({ id: 'a', prompt: 'p', latent: path.join(fixture, 'arrays/f4.npy'), labels: {} }),
      JSON.stringify({ id: 'clip-b', prompt: 'p', latent: 'gone.npy', labels: {} }),
    ]);
    await expect(openJsonlDataset(file)).rejects.toThrow(
      /m\.jsonl:2: clip "clip-b": latent file not found: .*gone\.npy/,
    );
  });
});

describe('conversions', () => {
  it('reference -> JSONL + shard store -> reference keeps every array, both captions and the labels', async () => {
    const manifest = path.join(tmp, 'conv/manifest.jsonl');
    const store = path.join(tmp, 'conv/store');
    mkdirSync(path.dirname(manifest), { recursive: true });
    const n = await referenceToJsonl(list, { manifest, store, clipsPerShard: 2, roots });
    expect(n).toBe(5);
    const ours = await openJsonlDataset(manifest, { store });
    const ref = await openReferenceDataset(list, { roots });
    const back = await jsonlToReference(manifest, path.join(tmp, 'conv/ref'), { store });
    const again = await openReferenceDataset(back);
    expect(again.items.map((i) => i.id)).toEqual(ref.items.map((i) => i.id));
    for (const item of ref.items) {
      const a = await ref.loadClip(item.id);
      for (const other of [ours, again]) {
        const b = await other.loadClip(item.id);
        for (const k of ['latent', 'text', 'longText', 'condition', 'imageEmbeds'] as const) {
          expect(b[k]?.shape, `${item.id} ${k}`).toEqual(a[k]?.shape);
          expect(Array.from(b[k]?.data ?? []), `${item.id} ${k}`).toEqual(Array.from(a[k]?.data ?? []));
        }
        expect(b.item.labels).toEqual(a.item.labels);
        expect(b.item.prompt).toBe(a.item.prompt);
        expect(b.item.long?.prompt).toBe(a.item.long?.prompt);
      }
    }
    await ours.close();
  });

  it('writes motion quality the reference can read back when physics and human are unknown', async () => {
    const dir = path.join(tmp, 'motion-only');
    const storeDir = path.join(dir, 'store');
    const a = await readReferenceLatent(path.join(fixture, 'latents/clip_a.npy'));
    const { LatentShardStore } = await import('../src/index.js');
    const store = await LatentShardStore.open(storeDir, { create: true });
    await store.append({ a, b: a });
    await store.close();
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'm.jsonl'),
      `${JSON.stringify({ id: 'a', prompt: 'p', latent: 'a', labels: { motion_quality: 1 } })}\n${JSON.stringify({ id: 'b', prompt: 'p', latent: 'b', labels: { motion_quality: 0 } })}\n`,
    );
    const listPath = await jsonlToReference(path.join(dir, 'm.jsonl'), path.join(dir, 'ref'), {
      store: storeDir,
    });
    const clips = await readReferenceList(listPath);
    expect(clips.map((c) => c.labels.motionQuality)).toEqual([1, 0]);
  });
});
