/**
 * One rule for partial configs: missing fields come from a named base (`base` option), by default
 * 'wan2.1' for the DiT and the VAE (Wan's own defaults) and 'tiny' for the text encoder (a stand-in with
 * no Wan counterpart). Every entry point of a family (the config function, the constructor,
 * fromStateDict, the loaders, config JSON) must give the same config for the same partial and base.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, openSafetensors, shutdownBackend } from '@prfl/tensor';
import {
  loadTextEncoder,
  loadWanDiTFrom,
  loadWanDiTFromBytes,
  loadWanVAE,
  serializeTextEncoder,
  serializeWanDiT,
  serializeWanVAE,
  TEXT_ENCODER_PRESETS,
  textEncoderSizes,
  TransformerTextEncoder,
  WAN_DIT_DEFAULTS,
  WAN_DIT_PRESETS,
  WAN_VAE_PRESETS,
  WanDiT,
  type WanDiTConfig,
  wanDiTConfig,
  wanDiTConfigFromJson,
  WanVAE,
  type WanVAEConfig,
  wanVAEConfig,
  wanVAEConfigFromJson,
  WordTokenizer,
} from '../src/index.js';

describe('partial configs: one rule, every entry point agrees', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(() => shutdownBackend());

  it("DiT: a partial config is completed from 'wan2.1' (WanModel's defaults) unless a base is named", async () => {
    expect(WAN_DIT_PRESETS['wan2.1']).toEqual(WAN_DIT_DEFAULTS);
    // Small enough to build: every field that sizes a weight is given; the rest comes from the base.
    const partial: Partial<WanDiTConfig> = { dim: 48, numHeads: 4, numLayers: 1, ffnDim: 96, textDim: 32 };
    const want = { ...WAN_DIT_DEFAULTS, ...partial };
    expect(wanDiTConfig(partial)).toEqual(want);
    expect(want.freqDim).toBe(256);
    expect(want.textLen).toBe(512);
    const model = new WanDiT(partial);
    expect(model.config).toEqual(want);
    const { config: json, weights } = await serializeWanDiT(model);
    const state = model.stateDict();
    const fromState = WanDiT.fromStateDict(partial, state);
    const reader = await openSafetensors(weights);
    const fromReader = await loadWanDiTFrom(partial, reader);
    await reader.close();
    // config.json with only the partial's keys: the missing ones from the same base.
    const snake = { dim: 48, num_heads: 4, num_layers: 1, ffn_dim: 96, text_dim: 32 };
    expect(wanDiTConfigFromJson(snake)).toEqual(want);
    const fromBytes = await loadWanDiTFromBytes(snake, weights);
    for (const m of [fromState, fromReader, fromBytes]) expect(m.config).toEqual(want);
    expect(JSON.parse(json).freq_dim).toBe(256);
    for (const m of [model, fromState, fromReader, fromBytes]) m.dispose();
    tf.dispose([...state.values()]);
  });

  it('DiT: the same `base` is honoured by every entry point', async () => {
    const partial: Partial<WanDiTConfig> = { numLayers: 1 };
    const want = { ...WAN_DIT_PRESETS.tiny, numLayers: 1 };
    expect(wanDiTConfig(partial, 'tiny')).toEqual(want);
    const model = new WanDiT(partial, { base: 'tiny' });
    expect(model.config).toEqual(want);
    const { weights } = await serializeWanDiT(model);
    const state = model.stateDict();
    const fromState = WanDiT.fromStateDict(partial, state, { base: 'tiny' });
    const reader = await openSafetensors(weights);
    const fromReader = await loadWanDiTFrom(partial, reader, { base: 'tiny' });
    await reader.close();
    const fromBytes = await loadWanDiTFromBytes({ num_layers: 1 }, weights, { base: 'tiny' });
    for (const m of [fromState, fromReader, fromBytes]) expect(m.config).toEqual(want);
    // A full config as the base works too (e.g. a config read elsewhere).
    expect(wanDiTConfig({ numLayers: 2 }, model.config).numLayers).toBe(2);
    expect(() => wanDiTConfig({}, 'huge' as 'tiny')).toThrow(/unknown preset 'huge'/);
    for (const m of [model, fromState, fromReader, fromBytes]) m.dispose();
    tf.dispose([...state.values()]);
  });

  it("VAE: the constructor, fromStateDict, loadWanVAE and config JSON all complete from 'wan2.1' (or the given base)", async () => {
    // Before: `new WanVAE({ dim: 4 })` and fromStateDict filled from 'tiny', loadWanVAE from 'wan2.1'.
    const partial: Partial<WanVAEConfig> = { dim: 4, zDim: 4, dimMult: [1, 2, 2, 2], numResBlocks: 1 };
    const want = wanVAEConfig(partial);
    expect(want.temporalDownsample).toEqual([false, true, true]);
    // zDim changed without statistics: identity normalisation, whatever the base.
    expect(want.latentMean).toEqual([0, 0, 0, 0]);
    expect(wanVAEConfig({ dim: 4 })).toEqual({ ...WAN_VAE_PRESETS['wan2.1'], dim: 4 });
    const vae = new WanVAE(partial);
    expect(vae.config).toEqual(want);
    const state = vae.stateDict();
    const fromState = WanVAE.fromStateDict(partial, state);
    const bytes = await serializeWanVAE(vae);
    const loaded = await loadWanVAE(bytes, { config: partial });
    const fromJson = wanVAEConfigFromJson({ dim: 4, z_dim: 4, dim_mult: [1, 2, 2, 2], num_res_blocks: 1 });
    const loadedJson = await loadWanVAE(bytes, {
      config: { dim: 4, z_dim: 4, dim_mult: [1, 2, 2, 2], num_res_blocks: 1 },
    });
    for (const c of [fromState.config, loaded.config, fromJson, loadedJson.config]) expect(c).toEqual(want);

    // With a named base: 'test' differs from 'wan2.1' in zDim (4) and in nothing this partial sets.
    const onTest = { dimMult: [1, 2, 2, 2] };
    const wantTest = { ...WAN_VAE_PRESETS.test, dimMult: [1, 2, 2, 2] };
    const vaeTest = new WanVAE(onTest, { base: 'test' });
    expect(vaeTest.config).toEqual(wantTest);
    const stateTest = vaeTest.stateDict();
    const fromStateTest = WanVAE.fromStateDict(onTest, stateTest, { base: 'test' });
    const loadedTest = await loadWanVAE(await serializeWanVAE(vaeTest), { config: onTest, base: 'test' });
    expect(fromStateTest.config).toEqual(wantTest);
    expect(loadedTest.config).toEqual(wantTest);

    // No silent default any more: the architecture is always named.
    expect(() => new (WanVAE as unknown as new () => WanVAE)()).toThrow(
      /WanVAE: config is required: a preset name \(wan2\.1, tiny, test\) or a partial config/,
    );
    for (const m of [vae, fromState, loaded, loadedJson, vaeTest, fromStateTest, loadedTest]) m.dispose();
    tf.dispose([...state.values(), ...stateTest.values()]);
  });

  it("text encoder: a partial config is completed from 'tiny' (or the given base); its checkpoint agrees", async () => {
    const tokenizer = WordTokenizer.fromPrompts(['a red circle'], { textLen: 8 });
    const { textLen: _t, ...tiny } = TEXT_ENCODER_PRESETS.tiny;
    const { textLen: _s, ...small } = TEXT_ENCODER_PRESETS.small;
    expect(textEncoderSizes({ numLayers: 1 })).toEqual({ ...tiny, numLayers: 1 });
    expect(textEncoderSizes({ numLayers: 1 }, 'small')).toEqual({ ...small, numLayers: 1 });
    const enc = new TransformerTextEncoder({ tokenizer, config: { numLayers: 1 } });
    expect(enc.config).toEqual({ ...tiny, numLayers: 1, vocabSize: tokenizer.vocabSize, textLen: 8 });
    const onSmall = new TransformerTextEncoder({ tokenizer, config: { numLayers: 1 }, base: 'small' });
    expect(onSmall.config).toEqual({ ...small, numLayers: 1, vocabSize: tokenizer.vocabSize, textLen: 8 });
    const loaded = await loadTextEncoder(await serializeTextEncoder(onSmall));
    expect(loaded.config).toEqual(onSmall.config);
    expect(() => new TransformerTextEncoder({ tokenizer, config: {}, base: 'huge' as 'tiny' })).toThrow(
      /unknown preset 'huge'; expected one of tiny, small/,
    );
    for (const m of [enc, onSmall, loaded]) m.dispose();
  });
});
