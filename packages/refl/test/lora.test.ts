/**
 * LoRA adapters on the Wan DiT through its Linear-layer hook: identical to the base at init, PEFT's
 * target-module rule, merge, and PEFT-named files: our own round trip and a file written by PyTorch
 * (scripts/make-lora-fixture.py) giving PyTorch's velocity.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  CorruptFileError,
  Generator,
  InvalidArgumentError,
  initBackend,
  type LatentVideo,
  loadSafetensors,
  maxAbsDiff,
  saveSafetensors,
  shutdownBackend,
  type Timestep,
} from '@prfl/tensor';
import { WanDiT, wanDiTConfigFromJson } from '@prfl/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LoraAdapters,
  loadLora,
  loadLoraWeights,
  loraStateDict,
  PEFT_ADAPTER_FILE,
  PEFT_CONFIG_FILE,
  REFERENCE_LORA_FILE,
  saveLora,
} from '../src/index.js';
import { randomWanDiT } from './lora-helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEFT_FIXTURE = path.join(HERE, '..', 'fixtures', 'lora', 'peft-tiny-t2v');
const DIT_FIXTURE = path.join(HERE, '..', '..', 'models', 'fixtures', 'dit', 'tiny-t2v');

describe.each(backendsUnderTest())('LoRA on %s', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    shutdownBackend();
  });
  const tmp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'prfl-refl-lora-'));
    dirs.push(d);
    return d;
  };

  const inputs = () => {
    const g = new Generator(7);
    return {
      x: g.normal([1, 2, 4, 4, 16]) as LatentVideo,
      ts: [600 as Timestep],
      cond: { text: g.normal([1, 4, 32]) as tf.Tensor3D },
    };
  };
  const velocity = (model: WanDiT, inp: ReturnType<typeof inputs>) => {
    const v = model.predictVelocity(inp.x, inp.ts, inp.cond);
    const out = v.dataSync() as Float32Array;
    v.dispose();
    return out;
  };
  /** Random B (and A), so the adapters change the output. */
  const randomize = (lora: LoraAdapters, seed: number) => {
    const g = new Generator(seed);
    for (const [name, v] of lora.namedVariables()) {
      const value = g.derive(name).normal(v.shape, 0, 0.2);
      v.assign(value);
      value.dispose();
    }
  };
  const disposeInputs = (inp: ReturnType<typeof inputs>) => tf.dispose([inp.x, inp.cond.text]);
  const relErr = (a: Float32Array, b: Float32Array) =>
    maxAbsDiff(a, b) / Math.max(1e-12, ...Array.from(b, Math.abs));

  it('starts out computing exactly the base model (B = 0), on the reference targets by PEFT’s rule', () => {
    const model = randomWanDiT(1);
    const inp = inputs();
    const base = velocity(model, inp);
    const lora = new LoraAdapters(model, { rank: 8 });
    // ['q', 'k', 'v', 'o'] matches self- and cross-attention (names ending in '.q', ...), 4 blocks.
    expect(lora.modules).toHaveLength(4 * 8);
    expect(lora.modules.slice(0, 8)).toEqual([
      'blocks.0.self_attn.q',
      'blocks.0.self_attn.k',
      'blocks.0.self_attn.v',
      'blocks.0.self_attn.o',
      'blocks.0.cross_attn.q',
      'blocks.0.cross_attn.k',
      'blocks.0.cross_attn.v',
      'blocks.0.cross_attn.o',
    ]);
    expect(lora.scaling).toBe(1); // alpha defaults to rank, as the reference
    const a = lora.namedVariables().get('blocks.0.self_attn.q.lora_A.weight') as tf.Variable;
    expect(a.shape).toEqual([64, 8]);
    const bound = 1 / Math.sqrt(64);
    expect(Array.from(a.dataSync()).every((x) => Math.abs(x) <= bound)).toBe(true);
    expect(Array.from(a.dataSync()).some((x) => x !== 0)).toBe(true);
    expect(lora.namedVariables().get('blocks.0.self_attn.q.lora_B.weight')?.shape).toEqual([8, 64]);
    expect(Array.from(velocity(model, inp))).toEqual(Array.from(base));
    lora.dispose();
    disposeInputs(inp);
    model.dispose();
  });

  it('selects layers like PEFT: suffixes, full names, regex strings, a block range; errors name what matched nothing', () => {
    const model = randomWanDiT(1);
    const modules = (options: ConstructorParameters<typeof LoraAdapters>[1]) => {
      const lora = new LoraAdapters(model, options);
      const m = lora.modules;
      lora.dispose();
      return m;
    };
    expect(modules({ rank: 2, targetModules: ['self_attn.q', 'ffn.0', 'ffn.2'], blocks: [1, 2] })).toEqual([
      'blocks.1.self_attn.q',
      'blocks.1.ffn.0',
      'blocks.1.ffn.2',
      'blocks.2.self_attn.q',
      'blocks.2.ffn.0',
      'blocks.2.ffn.2',
    ]);
    expect(modules({ rank: 2, targetModules: 'blocks\\.3\\.cross_attn\\.(q|o)' })).toEqual([
      'blocks.3.cross_attn.q',
      'blocks.3.cross_attn.o',
    ]);
    // A regex must match the whole name (re.fullmatch): 'q' alone matches nothing.
    expect(() => modules({ targetModules: 'q' })).toThrow(/matches none of the model's \d+ Linear layers/);
    expect(() => modules({ targetModules: ['qkv'] })).toThrow(InvalidArgumentError);
    expect(() => modules({ rank: 0 })).toThrow(/lora.rank: expected a positive integer, got 0/);
    expect(() => modules({ blocks: [3, 1] })).toThrow(/lora.blocks: expected \[lo, hi\]/);
    expect(() => modules({ rank: 2, alpha: -1 })).toThrow(/lora.alpha/);
    expect(() => modules({ rnak: 2 } as never)).toThrow(/unknown key\(s\) rnak/);
    // Nothing is left attached or allocated by a failed construction.
    const before = tf.memory().numTensors;
    expect(() => modules({ targetModules: ['nothing'] })).toThrow();
    expect(tf.memory().numTensors).toBe(before);
    expect(
      () => new LoraAdapters({ namedVariables: () => new Map() } as unknown as WanDiT, { rank: 2 }),
    ).toThrow(/setLinearAdapter/);
    model.dispose();
  });

  it('detach restores the base output bit for bit; merge folds W + (alpha / r) A B in and matches the adapted output', () => {
    const model = randomWanDiT(1);
    const inp = inputs();
    const base = velocity(model, inp);
    const weightsBefore = new Map(
      [...model.namedVariables()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]),
    );
    const lora = new LoraAdapters(model, { rank: 4, alpha: 8, targetModules: ['q', 'k', 'v', 'o', 'ffn.0'] });
    expect(lora.scaling).toBe(2);
    randomize(lora, 3);
    const adapted = velocity(model, inp);
    expect(relErr(adapted, base)).toBeGreaterThan(0.05);
    // The base weights are never touched by training through the hook.
    for (const [n, v] of model.namedVariables()) expect(v.dataSync(), n).toEqual(weightsBefore.get(n));
    lora.detach();
    expect(Array.from(velocity(model, inp))).toEqual(Array.from(base));
    lora.attach();
    expect(Array.from(velocity(model, inp))).toEqual(Array.from(adapted));

    const merged = lora.mergedWeights();
    const ad = lora.adapterOf('blocks.2.ffn.0');
    const expected = tf.tidy(() =>
      tf.add(ad?.weight as tf.Tensor, tf.mul(tf.matMul(ad?.a as tf.Tensor, ad?.b as tf.Tensor), 2)),
    );
    expect(maxAbsDiff(merged.get('blocks.2.ffn.0.weight')?.dataSync() ?? [], expected.dataSync())).toBe(0);
    tf.dispose([expected, ...merged.values()]);
    lora.merge();
    expect(lora.attached).toBe(false);
    const afterMerge = velocity(model, inp);
    const err = relErr(afterMerge, adapted);
    console.log(`[${backend}] merged vs adapted velocity: max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    lora.dispose();
    disposeInputs(inp);
    model.dispose();
  });

  it('loads a PEFT-named file written by PyTorch and gives PyTorch’s velocity; its merge gives PyTorch’s merged weights', async () => {
    const config = wanDiTConfigFromJson(
      JSON.parse(readFileSync(path.join(DIT_FIXTURE, 'config.json'), 'utf8')) as Record<string, unknown>,
    );
    const weights = await loadSafetensors(path.join(DIT_FIXTURE, 'diffusion_pytorch_model.safetensors'));
    const model = WanDiT.fromStateDict(config, weights);
    tf.dispose(Object.values(weights));
    const expected = await loadSafetensors(path.join(PEFT_FIXTURE, 'expected.safetensors'));
    const ts = Array.from(expected.timesteps?.dataSync() ?? []) as Timestep[];
    const run = () => {
      const v = model.predictVelocity(expected.x as LatentVideo, ts, { text: expected.text as tf.Tensor3D });
      const out = v.dataSync() as Float32Array;
      v.dispose();
      return out;
    };
    const lora = await loadLora(model, PEFT_FIXTURE);
    expect(lora.rank).toBe(4);
    expect(lora.alpha).toBe(8);
    expect(lora.modules).toHaveLength(36);
    const torchV = expected.velocity?.dataSync() as Float32Array;
    const errors: Record<string, number> = { velocity: maxAbsDiff(run(), torchV) };
    const merged = lora.mergedWeights();
    for (const key of Object.keys(expected).filter((k) => k.startsWith('merged.'))) {
      const ours = merged.get(key.slice('merged.'.length)) as tf.Tensor;
      const theirs = tf.transpose(expected[key] as tf.Tensor); // PyTorch [out, in] -> ours [in, out]
      errors[key] = maxAbsDiff(ours.dataSync(), theirs.dataSync());
      theirs.dispose();
    }
    tf.dispose([...merged.values()]);
    lora.merge();
    errors.velocityMerged = maxAbsDiff(run(), expected.velocity_merged?.dataSync() as Float32Array);
    console.log(`[${backend}] PEFT fixture, max |ours - torch|:`, errors);
    for (const [k, e] of Object.entries(errors)) expect(e, k).toBeLessThan(2e-5);
    lora.dispose();
    tf.dispose(Object.values(expected));
    model.dispose();
  });

  it('saves under PEFT’s names and layouts (atomic files, adapter_config.json) and loads back exactly', async () => {
    const model = randomWanDiT(1);
    const inp = inputs();
    const lora = new LoraAdapters(model, { rank: 4, alpha: 16, targetModules: ['q', 'o'], blocks: [1, 2] });
    randomize(lora, 5);
    const adapted = velocity(model, inp);
    const dir = tmp();
    const names = lora.modules;
    const { weights, config } = await saveLora(lora, dir);
    expect(path.basename(weights)).toBe(REFERENCE_LORA_FILE);
    expect(readdirSync(dir).sort()).toEqual([PEFT_CONFIG_FILE, REFERENCE_LORA_FILE].sort());
    const saved = await loadSafetensors(weights);
    expect(Object.keys(saved)).toContain('base_model.model.blocks.1.self_attn.q.lora_A.weight');
    expect(Object.keys(saved)).toHaveLength(2 * 2 * 4);
    // PyTorch layout: lora_A [r, in], lora_B [out, r], the transposes of what we hold.
    const a = saved['base_model.model.blocks.2.cross_attn.o.lora_A.weight'] as tf.Tensor;
    const b = saved['base_model.model.blocks.2.cross_attn.o.lora_B.weight'] as tf.Tensor;
    expect(a.shape).toEqual([4, 64]);
    expect(b.shape).toEqual([64, 4]);
    const own = lora.adapterOf('blocks.2.cross_attn.o');
    const at = tf.transpose(own?.a as tf.Tensor);
    expect(Array.from(a.dataSync())).toEqual(Array.from(at.dataSync()));
    at.dispose();
    tf.dispose(Object.values(saved));
    const cfg = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 16, use_rslora: false, bias: 'none' });
    // A block range is written as the adapted modules' full names (PEFT's layers_to_transform cannot
    // see Wan's top-level blocks.<i>).
    expect(cfg.target_modules).toEqual(lora.modules);
    lora.dispose();
    expect(Array.from(velocity(model, inp))).not.toEqual(Array.from(adapted));

    const loaded = await loadLora(model, dir);
    expect(loaded.modules).toEqual(names);
    expect(Array.from(velocity(model, inp))).toEqual(Array.from(adapted));
    loaded.dispose();

    // 'peft' and 'diffusers' layouts, bf16 storage; loading into existing adapters.
    const again = new LoraAdapters(model, { rank: 4, alpha: 16, targetModules: ['q', 'o'], blocks: [1, 2] });
    randomize(again, 5);
    const peftDir = tmp();
    await saveLora(again, peftDir, { layout: 'peft', dtype: 'BF16' });
    expect(readdirSync(peftDir)).toContain(PEFT_ADAPTER_FILE);
    const diffusersDir = tmp();
    await saveLora(again, diffusersDir, { layout: 'diffusers' });
    const d = await loadSafetensors(path.join(diffusersDir, 'pytorch_lora_weights.safetensors'));
    expect(Object.keys(d).every((k) => k.startsWith('transformer.blocks.'))).toBe(true);
    tf.dispose(Object.values(d));
    again.dispose();
    const fresh = new LoraAdapters(model, { rank: 4, alpha: 16, targetModules: ['q', 'o'], blocks: [1, 2] });
    await loadLoraWeights(fresh, diffusersDir);
    expect(Array.from(velocity(model, inp))).toEqual(Array.from(adapted));
    await loadLoraWeights(fresh, peftDir);
    expect(relErr(velocity(model, inp), adapted)).toBeLessThan(2e-2); // bf16 rounding of A and B
    fresh.dispose();
    disposeInputs(inp);
    model.dispose();
  });

  it('refuses files that do not fit: other modules or rank, no config without alpha, variants, foreign keys', async () => {
    const model = randomWanDiT(1);
    const lora = new LoraAdapters(model, { rank: 4, targetModules: ['q'] });
    const dir = tmp();
    await saveLora(lora, dir);
    const other = new LoraAdapters(model, { rank: 4, targetModules: ['k'] });
    await expect(loadLoraWeights(other, dir)).rejects.toThrow(
      /do not match the model's .*missing blocks\.0\.self_attn\.k.*unexpected blocks\.0\.cross_attn\.q/,
    );
    other.dispose();
    const wrongRank = new LoraAdapters(model, { rank: 2, targetModules: ['q'] });
    await expect(loadLoraWeights(wrongRank, dir)).rejects.toThrow(/r 4, lora_alpha 4.*rank 2/);
    wrongRank.dispose();
    lora.dispose();

    // The reference's own checkpoints have no adapter_config.json: alpha must come from the caller.
    const bare = tmp();
    writeFileSync(path.join(bare, REFERENCE_LORA_FILE), readFileSync(path.join(dir, REFERENCE_LORA_FILE)));
    await expect(loadLora(model, bare)).rejects.toThrow(/alpha: .* has no adapter_config.json/);
    const fromBare = await loadLora(model, bare, { alpha: 4 });
    expect(fromBare.scaling).toBe(1);
    fromBare.dispose();
    // Keys that still hold the adapter name (a raw PeftModel state_dict) and no prefix are read too.
    const raw = tmp();
    const withName = await loadSafetensors(path.join(dir, REFERENCE_LORA_FILE));
    const renamed = Object.fromEntries(
      Object.entries(withName).map(([k, t]) => [
        k.replace('base_model.model.', '').replace('.weight', '.default.weight'),
        t,
      ]),
    );
    await saveSafetensors(path.join(raw, PEFT_ADAPTER_FILE), renamed);
    const fromRaw = await loadLora(model, raw, { alpha: 4 });
    expect(fromRaw.modules).toHaveLength(4 * 2);
    fromRaw.dispose();

    const dora = tmp();
    writeFileSync(path.join(dora, REFERENCE_LORA_FILE), readFileSync(path.join(dir, REFERENCE_LORA_FILE)));
    writeFileSync(path.join(dora, PEFT_CONFIG_FILE), JSON.stringify({ r: 4, lora_alpha: 4, use_dora: true }));
    await expect(loadLora(model, dora)).rejects.toThrow(CorruptFileError);
    await expect(loadLora(model, dora)).rejects.toThrow(/use_dora: true \(DoRA\).*not supported/);
    const foreign = tmp();
    await saveSafetensors(path.join(foreign, PEFT_ADAPTER_FILE), {
      ...withName,
      'base_model.model.blocks.0.self_attn.q.lora_B.bias': tf.zeros([64]),
    });
    await expect(loadLora(model, foreign, { alpha: 4 })).rejects.toThrow(/lora_B.bias' is not a LoRA weight/);
    await expect(loadLora(model, tmp())).rejects.toThrow(/expected a LoRA weights file in the folder/);
    tf.dispose(Object.values(withName));
    model.dispose();
  });

  it('the state dict is PEFT’s get_peft_model_state_dict: prefix, [r, in] and [out, r]', () => {
    const model = randomWanDiT(1);
    const lora = new LoraAdapters(model, { rank: 3, targetModules: ['ffn.2'], blocks: [0, 0] });
    const state = loraStateDict(lora);
    expect([...state.keys()]).toEqual([
      'base_model.model.blocks.0.ffn.2.lora_A.weight',
      'base_model.model.blocks.0.ffn.2.lora_B.weight',
    ]);
    expect(state.get('base_model.model.blocks.0.ffn.2.lora_A.weight')?.shape).toEqual([3, 128]);
    expect(state.get('base_model.model.blocks.0.ffn.2.lora_B.weight')?.shape).toEqual([64, 3]);
    tf.dispose([...state.values()]);
    lora.dispose();
    model.dispose();
  });
});
