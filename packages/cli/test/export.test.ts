/**
 * `prfl export --to reference RUN` on run folders made by hand (tiny random models, a few generations,
 * LoRA adapters in a PRFL checkpoint), and `readReferenceData` on what it writes: the files, the meta
 * JSONs, the arrays and labels bit for bit, the DiT, the PAVRM and the adapters loaded back, the config
 * in the reference's keys, and the refusals (exit 2, one line naming what was expected and found).
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readReferenceMeta } from '@prfl/datasets';
import { loadWanDiT } from '@prfl/models';
import { disposeEmbedded, loadEmbedded } from '@prfl/pretrained';
import { CHECKPOINT_FORMAT, LoraAdapters, loadLora } from '@prfl/refl';
import { loadReward } from '@prfl/reward';
import { saveSafetensors } from '@prfl/tensor';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, type CliIo, memorySink, resolveConfig, run } from '../src/index.js';
import { readReferenceData } from '../src/reference-data.js';
import { saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('export');
afterAll(tmp.remove);

/** The generations: N videos of the tiny models' sizes (VAE 'test': 4 latent channels; text 16 x 32). */
const N = 3;
const LATENT = [2, 4, 4, 4];
const TEXT = [16, 32];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const latents = Float32Array.from({ length: N * size(LATENT) }, (_, i) => Math.sin(i * 1.7) * 3.1);
const text = Float32Array.from({ length: N * size(TEXT) }, (_, i) => Math.cos(i * 0.37) / 7);
const videos = [0, 1, 2].map((i) => ({
  prompt: [
    'a large red circle moving left',
    'a large blue square moving up',
    'a large green cross moving right',
  ][i],
  seed: `7/reward-generations-${i}`,
  motionGood: [1, 0, 1][i],
  adherent: [0, 1, 1][i],
  colourOk: true,
  shapeOk: i !== 0,
  motionOk: true,
  sizeOk: true,
  motionScore: 0.25 * (i + 1),
  adherenceScore: 0.5,
}));

async function writeGenerations(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await saveSafetensors(path.join(dir, 'generations.safetensors'), {
    latents: { dtype: 'F32', shape: [N, ...LATENT], data: latents },
    text: { dtype: 'F32', shape: [N, ...TEXT], data: text },
  });
  writeFileSync(path.join(dir, 'generations.json'), JSON.stringify(videos));
}

const runA = path.join(tmp.dir, 'run-a');
/** The adapters written into run A's checkpoint, by stable name. */
const loraValues = new Map<string, Float32Array>();

beforeAll(async () => {
  await saveTinyModels(path.join(runA, 'weights'));
  await writeGenerations(runA);
  const config = await resolveConfig({ set: ['optimizer.learning_rate=2e-5', 'lrm.pool=mean'] });
  writeFileSync(path.join(runA, 'config.resolved.yaml'), config.toYaml());
  writeFileSync(path.join(runA, 'metrics.jsonl'), '');
  // A PRFL checkpoint with LoRA adapters (B away from zero), as @prfl/refl's saveCheckpoint writes it.
  const dit = await loadWanDiT(path.join(runA, 'weights', 'dit'));
  const options = { rank: 2, alpha: 4, targetModules: ['q', 'v'], blocks: null, useRslora: false, seed: 5 };
  const lora = new LoraAdapters(dit, options);
  for (const [name, v] of lora.namedVariables()) {
    if (name.endsWith('.lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', 9));
    loraValues.set(name, v.dataSync() as Float32Array);
  }
  const ckpt = path.join(runA, 'checkpoints');
  mkdirSync(ckpt, { recursive: true });
  await saveSafetensors(path.join(ckpt, 'model-00000004.safetensors'), lora.namedVariables(), {
    metadata: { format: CHECKPOINT_FORMAT, layout: 'tfjs', content: 'lora' },
  });
  writeFileSync(
    path.join(ckpt, 'checkpoint.json'),
    JSON.stringify({
      format: CHECKPOINT_FORMAT,
      version: 1,
      step: 4,
      updates: 4,
      skippedSteps: 0,
      skippedUpdates: 0,
      epoch: 0,
      batchInEpoch: 4,
      seed: 1,
      files: {
        model: 'model-00000004.safetensors',
        optimizer: 'optimizer-00000004.safetensors',
        window: 'window-00000004.safetensors',
      },
      options: { lora: options },
    }),
  );
  lora.dispose();
  dit.dispose();
});

function io(): CliIo & { out: ReturnType<typeof memorySink>; err: ReturnType<typeof memorySink> } {
  const out = memorySink();
  const err = memorySink();
  return {
    stdout: out,
    stderr: err,
    out,
    err,
    cwd: tmp.dir,
    signals: new EventEmitter() as never,
    exit: () => {},
    now: () => new Date(2026, 0, 2, 3, 4, 5),
  };
}

async function prfl(args: string[]) {
  const x = io();
  const code = await run(args, x);
  return { code, stdout: x.out.text(), stderr: x.err.text() };
}

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('prfl export --to reference', () => {
  const out = path.join(runA, 'export-reference');
  let result: Record<string, unknown>;

  beforeAll(async () => {
    const r = await prfl(['export', '--to', 'reference', 'run-a', '--json', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    result = JSON.parse(r.stdout);
  });

  it('writes every part of the run, and nothing half-written beside it', () => {
    expect(result.out).toBe(out);
    expect(result.missing).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(
      ['README.md', 'config.yaml', 'data', 'lora', 'pavrm', 'transformer'].sort(),
    );
    expect(readdirSync(path.join(out, 'data')).sort()).toEqual(['latents', 'meta_v1', 'train.list']);
    expect(readdirSync(path.join(out, 'transformer')).sort()).toEqual([
      'config.json',
      'diffusion_pytorch_model.safetensors',
    ]);
    expect(readdirSync(path.join(out, 'pavrm')).sort()).toEqual(
      ['mlp.safetensors', 'pavrm.json', 'query_attention.safetensors', 'transformer.safetensors'].sort(),
    );
    expect(readdirSync(path.join(out, 'lora')).sort()).toEqual(
      [
        'adapter_config.json',
        'adapter_model.safetensors',
        'pytorch_lora_transformers_weights.safetensors',
      ].sort(),
    );
    expect(readdirSync(runA).filter((f) => /\.(tmp|old)-\d+$/.test(f))).toEqual([]);
    const readme = readFileSync(path.join(out, 'README.md'), 'utf8');
    for (const s of ['## data/', '## transformer/', '## pavrm/', '## lora/', 'lrm_mlp_path', 'cd data']) {
      expect(readme).toContain(s);
    }
  });

  it('writes meta JSONs with the reference keys and the labels of generations.json', async () => {
    const list = readFileSync(path.join(out, 'data', 'train.list'), 'utf8')
      .trim()
      .split('\n');
    expect(list).toHaveLength(N);
    for (const [i, line] of list.entries()) {
      const metaPath = path.join(out, 'data', line);
      // Paths are relative to data/, where the reference runs (its working folder).
      const clip = await readReferenceMeta(metaPath, { roots: [path.join(out, 'data')] });
      expect(clip.id).toBe(`7_reward-generations-${i}`);
      expect(clip.prompt).toBe(videos[i]?.prompt);
      expect(clip.labels).toMatchObject({
        physics: videos[i]?.motionGood,
        human: videos[i]?.motionGood,
        motionQuality: videos[i]?.motionGood,
        textAlignment: videos[i]?.adherent,
      });
      const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      for (const k of [
        'source_id',
        'short_caption',
        'long_caption',
        'vae_latent_path',
        'latent_shape',
        'textshort_path',
        'text_states_short_shape',
        'textlong_path',
        'text_states_long_shape',
      ]) {
        expect(meta, k).toHaveProperty(k);
      }
      expect(meta.latent_shape).toEqual([1, 4, 2, 4, 4]);
      expect(meta.text_states_short_shape).toEqual([1, ...TEXT]);
      expect(meta.prfl_generation).toMatchObject({ index: i, seed: videos[i]?.seed, shape_ok: i !== 0 });
    }
  });

  it('round-trips latents and text bit for bit through readReferenceData, with the labels', async () => {
    const list = path.join(out, 'data', 'train.list');
    const d = await readReferenceData([list], { latentShape: LATENT, textDim: 32 });
    try {
      expect(d.latents.shape).toEqual([N, ...LATENT]);
      expect(d.text.shape).toEqual([N, ...TEXT]);
      expect(bytesOf(d.latents.dataSync() as Float32Array).equals(bytesOf(latents))).toBe(true);
      expect(bytesOf(d.text.dataSync() as Float32Array).equals(bytesOf(text))).toBe(true);
      expect(d.prompts).toEqual(videos.map((v) => v.prompt));
      expect(d.motionGood).toEqual([1, 0, 1]);
      expect(d.adherent).toEqual([0, 1, 1]);
      expect(d.ids).toEqual([0, 1, 2].map((i) => `7_reward-generations-${i}`));
    } finally {
      tf.dispose([d.latents, d.text]);
    }
    // Padding to a longer text length: zeros after each clip's tokens.
    const padded = await readReferenceData([list], { textLength: 20 });
    expect(padded.text.shape).toEqual([N, 20, 32]);
    const p = padded.text.arraySync() as number[][][];
    expect(p[1]?.[16]?.every((v) => v === 0)).toBe(true);
    expect(p[1]?.[15]?.[0]).toBe(text[(16 + 15) * 32]);
    tf.dispose([padded.latents, padded.text]);
    // Errors name the meta, the shape expected and the shape found.
    await expect(readReferenceData([list], { latentShape: [2, 4, 4, 16] })).rejects.toThrow(
      /meta_v1\/7_reward-generations-0_meta_v1\.json \(clip "7_reward-generations-0"\): latent .*: expected \[F', H', W', C\] = \[2, 4, 4, 16\] \(the model’s\), found \[2, 4, 4, 4\]/,
    );
    await expect(
      readReferenceData([list], { latentShape: [null, null, null, 4], textDim: 64 }),
    ).rejects.toThrow(
      /text states .*_textshort\.npy: expected \[L, D\] with D = 64 \(the model’s\), found \[16, 32\]/,
    );
    await expect(readReferenceData([list], { textLength: 8 })).rejects.toThrow(
      /expected at most 8 tokens .*found \[16, 32\]/,
    );
  });

  it("writes the run's DiT in Wan's layout, the PAVRM in the reference's parts and the LoRA adapters", async () => {
    const dit = await loadWanDiT(path.join(out, 'transformer'));
    const original = await loadEmbedded({ from: path.join(runA, 'weights') });
    try {
      expect(dit.config).toEqual(original.dit.config);
      const a = dit.stateDict();
      const b = original.dit.stateDict();
      expect([...a.keys()]).toEqual([...b.keys()]);
      for (const [k, t] of a) expect(t.dataSync(), k).toEqual((b.get(k) as tf.Tensor).dataSync());
      tf.dispose([...a.values(), ...b.values()]);

      const reward = await loadReward(path.join(out, 'pavrm'), dit.truncate(original.manifest.rewardBlocks));
      const want = (original.reward as NonNullable<typeof original.reward>).namedVariables();
      const got = reward.namedVariables();
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [k, v] of want) expect(got.get(k)?.dataSync(), k).toEqual(v.dataSync());
      reward.dispose();

      const lora = await loadLora(dit, path.join(out, 'lora'));
      expect(lora.rank).toBe(2);
      expect(lora.alpha).toBe(4);
      expect([...lora.namedVariables().keys()].sort()).toEqual([...loraValues.keys()].sort());
      for (const [k, v] of lora.namedVariables()) expect(v.dataSync(), k).toEqual(loraValues.get(k));
      lora.dispose();
    } finally {
      dit.dispose();
      disposeEmbedded(original);
    }
  });

  it("writes config.yaml with the run's reference keys, pointing at the exported files", async () => {
    const file = path.join(out, 'config.yaml');
    const doc = YAML.parse(readFileSync(file, 'utf8'));
    expect(doc.prfl).toBeUndefined();
    for (const k of CONFIG_SCHEMA.filter((x) => x.reference)) {
      const value = k.key
        .split('.')
        .reduce((o: Record<string, unknown> | undefined, p) => o?.[p] as never, doc);
      expect(value, k.key).not.toBeUndefined();
    }
    expect(doc.optimizer.learning_rate).toBe(2e-5);
    // The exported PAVRM's architecture wins over the run's lrm.* (its files fit only that model).
    expect(doc.lrm).toMatchObject({ feature_layer: 1, pool: 'q_attn', mlp_dim: 8 });
    expect(doc.dataset.meta_file_list).toEqual(['train.list']);
    expect(doc.model.init_transformer_path).toBe('../transformer/diffusion_pytorch_model.safetensors');
    expect(doc.model.lrm_transformer_path).toBe('../pavrm/transformer.safetensors');
    expect(doc.model.lrm_mlp_path).toBe('../pavrm/mlp.safetensors');
    expect(doc.model.lrm_query_attention_path).toBe('../pavrm/query_attention.safetensors');
    expect(doc.save.output_dir).toBe('../output');
    // Relative to data/, where the reference runs; and prfl reads the file back.
    for (const p of [
      doc.model.init_transformer_path,
      doc.model.lrm_mlp_path,
      doc.dataset.meta_file_list[0],
    ]) {
      expect(readdirSync(path.dirname(path.resolve(out, 'data', p)))).toContain(path.basename(p));
    }
    const back = await resolveConfig({ files: [file] });
    expect(back.get('optimizer.learning_rate')).toBe(2e-5);
  });

  it('refuses a non-empty --out unless --force, and leaves it as it was', async () => {
    const before = readFileSync(path.join(out, 'config.yaml'), 'utf8');
    writeFileSync(path.join(out, 'mine.txt'), 'keep');
    const r = await prfl(['export', '--to', 'reference', runA]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^prfl: export: .*export-reference exists and is not empty \(7 entries: .*mine\.txt.*\); expected a new or empty folder, or pass --force to replace it\n$/,
    );
    expect(readFileSync(path.join(out, 'mine.txt'), 'utf8')).toBe('keep');
    expect(readFileSync(path.join(out, 'config.yaml'), 'utf8')).toBe(before);
    const forced = await prfl(['export', '--to', 'reference', runA, '--force', '--quiet']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^exported .*run-a to .*export-reference/);
    expect(readdirSync(out)).not.toContain('mine.txt');
    expect(readdirSync(runA).filter((f) => /\.(tmp|old)-\d+$/.test(f))).toEqual([]);
  });
});

describe('prfl export: partial runs and bad input', () => {
  it('exports what a demo run folder has (reward/generations.*) and says what it lacks', async () => {
    const demo = path.join(tmp.dir, 'demo-run');
    await writeGenerations(path.join(demo, 'reward'));
    const outDir = path.join(tmp.dir, 'demo-export');
    const r = await prfl([
      'export',
      '--to',
      'reference',
      demo,
      '--out',
      outDir,
      '--set',
      'model.base_path=/models/wan',
      '--set',
      'save.output_dir=/scratch/out',
      '--json',
      '--quiet',
    ]);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.data).toMatchObject({
      clips: 3,
      motionGood: 2,
      adherent: 2,
      from: 'reward/generations.safetensors',
    });
    expect(res.transformer).toBeNull();
    expect(res.pavrm).toBeNull();
    expect(res.missing.join('\n')).toMatch(
      /config\.resolved\.yaml: not in the run; config\.yaml holds the defaults/,
    );
    expect(res.missing.join('\n')).toMatch(/weights\/: not in the run, so no transformer\/ and pavrm\//);
    expect(readdirSync(outDir).sort()).toEqual(['README.md', 'config.yaml', 'data']);
    expect(readFileSync(path.join(outDir, 'README.md'), 'utf8')).toContain('## Not in the run');
    const doc = YAML.parse(readFileSync(path.join(outDir, 'config.yaml'), 'utf8'));
    expect(doc.model.init_transformer_path).toBeNull();
    // --set applies over the run's configuration (here the defaults).
    expect(doc.model.base_path).toBe('/models/wan');
    expect(doc.save.output_dir).toBe('/scratch/out');
    expect(res.config.from).toBe('the defaults < --set');
    const d = await readReferenceData([path.join(outDir, 'data', 'train.list')]);
    expect(bytesOf(d.latents.dataSync() as Float32Array).equals(bytesOf(latents))).toBe(true);
    tf.dispose([d.latents, d.text]);
  });

  it('fails with exit code 2 and one line naming what was expected and what was found', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['nowhere'], /RUN nowhere: no such folder \(.*nowhere\); expected a run folder of `prfl train`/],
      [['run-a/weights'], /RUN run-a\/weights is a weights folder \(manifest\.json\), not a run folder/],
      [['run-a/generations.json'], /RUN run-a\/generations\.json is a file; expected a run folder/],
    ];
    mkdirSync(path.join(tmp.dir, 'other'));
    writeFileSync(path.join(tmp.dir, 'other', 'notes.txt'), '');
    cases.push([
      ['other'],
      /RUN other is not a run folder: expected config\.resolved\.yaml, weights\/manifest\.json or generations\.safetensors \+ generations\.json; found notes\.txt/,
    ]);
    mkdirSync(path.join(tmp.dir, 'config-only'));
    writeFileSync(path.join(tmp.dir, 'config-only', 'config.resolved.yaml'), 'train:\n  seed: 3\n');
    cases.push([
      ['config-only'],
      /nothing to export in config-only: expected weights\/manifest\.json \(the run's models\) or generations\.safetensors \+ generations\.json .*; found config\.resolved\.yaml/,
    ]);
    mkdirSync(path.join(tmp.dir, 'bad-json'));
    writeFileSync(
      path.join(tmp.dir, 'bad-json', 'generations.json'),
      JSON.stringify([{ prompt: 'x', seed: 's' }]),
    );
    writeFileSync(path.join(tmp.dir, 'bad-json', 'generations.safetensors'), '');
    cases.push([['bad-json'], /generations\.json: entry 0: "motionGood": expected 0 or 1, got nothing/]);
    cases.push([['run-a', '--out', 'run-a/..'], /--out run-a\/\.\. is the run folder or holds it/]);
    for (const [args, message] of cases) {
      const r = await prfl(['export', '--to', 'reference', ...args, '--quiet']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    // A failed export leaves nothing behind: no DIR, no DIR.tmp-<pid>.
    expect(readdirSync(path.join(tmp.dir, 'bad-json')).sort()).toEqual([
      'generations.json',
      'generations.safetensors',
    ]);
    expect(readdirSync(tmp.dir).filter((f) => /\.tmp-\d+$/.test(f))).toEqual([]);
    const to = await prfl(['export', '--to', 'pytorch', 'run-a']);
    expect(to.code).toBe(2);
    expect(to.stderr).toMatch(/'pytorch' is invalid\. Allowed choices are reference/);
    const none = await prfl(['export', 'run-a']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--to <layout>' not specified/);
  });
});
