import { describe, expect, it } from 'vitest';
import {
  I2V_TEXT_LEN,
  WAN_DIT_PRESETS,
  wanDiTConfig,
  wanDiTConfigFromJson,
  wanDiTConfigToJson,
  wanDiTParameterCount,
  wanDiTParamSpecs,
} from '../src/index.js';

describe('Wan DiT config', () => {
  it('presets are valid; the released configs are constructible as configs (nothing allocated)', () => {
    for (const [name, preset] of Object.entries(WAN_DIT_PRESETS)) {
      expect(wanDiTConfig(name as keyof typeof WAN_DIT_PRESETS)).toEqual(preset);
    }
    // Parameter counts of the released checkpoints (Hugging Face lists 1.42B, 14.3B and 16.4B).
    expect(wanDiTParameterCount(wanDiTConfig('wan2.1-t2v-1.3b'))).toBe(1_418_996_800);
    expect(wanDiTParameterCount(wanDiTConfig('wan2.1-t2v-14b'))).toBe(14_288_491_584);
    expect(wanDiTParameterCount(wanDiTConfig('wan2.1-i2v-14b'))).toBe(16_394_878_784);
    const specs = wanDiTParamSpecs(wanDiTConfig('wan2.1-i2v-14b'));
    expect(specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0)).toBe(16_394_878_784);
    expect(specs.find((s) => s.name === 'patch_embedding.weight')?.torchShape).toEqual([5120, 36, 1, 2, 2]);
    expect(specs.find((s) => s.name === 'blocks.39.cross_attn.k_img.weight')?.torchShape).toEqual([
      5120, 5120,
    ]);
    expect(specs.find((s) => s.name === 'img_emb.proj.1.weight')?.torchShape).toEqual([1280, 1280]);
    expect(specs.find((s) => s.name === 'head.head.weight')?.torchShape).toEqual([64, 5120]);
  });

  it('reads the config.json of the released 1.3B checkpoint (keys Wan leaves out take its defaults)', () => {
    const released = {
      _class_name: 'WanModel',
      _diffusers_version: '0.30.0',
      dim: 1536,
      eps: 1e-6,
      ffn_dim: 8960,
      freq_dim: 256,
      in_dim: 16,
      model_type: 't2v',
      num_heads: 12,
      num_layers: 30,
      out_dim: 16,
      text_len: 512,
    };
    expect(wanDiTConfigFromJson(released)).toEqual(WAN_DIT_PRESETS['wan2.1-t2v-1.3b']);
  });

  it('round-trips through config.json', () => {
    for (const name of ['tiny', 'tiny-i2v', 'wan2.1-i2v-14b'] as const) {
      const c = wanDiTConfig(name);
      const json = JSON.parse(JSON.stringify(wanDiTConfigToJson(c)));
      expect(json._class_name).toBe('WanModel');
      expect(wanDiTConfigFromJson(json)).toEqual(c);
    }
    expect(wanDiTConfigToJson(wanDiTConfig('wan2.1-i2v-14b')).image_dim).toBeUndefined();
    expect(wanDiTConfigToJson(wanDiTConfig('tiny-i2v')).image_dim).toBe(32);
  });

  it('rejects configs that cannot build a Wan DiT, naming the field', () => {
    expect(() => wanDiTConfig({ dim: 64, numHeads: 5 })).toThrow(
      /dim \(64\) must be divisible by numHeads \(5\)/,
    );
    expect(() => wanDiTConfig({ dim: 36, numHeads: 4 })).toThrow(
      /head dim dim\/numHeads = 9 must be even and >= 6/,
    );
    expect(() => wanDiTConfig({ dim: 16, numHeads: 4 })).toThrow(/head dim dim\/numHeads = 4 .*RoPE/);
    expect(() => wanDiTConfig({ modelType: 'flf2v' as 't2v' })).toThrow(/modelType must be 't2v' or 'i2v'/);
    expect(() => wanDiTConfig({ windowSize: [4, 4] })).toThrow(/only global attention/);
    expect(() => wanDiTConfig({ patchSize: [1, 0, 2] })).toThrow(/patchSize\[1\] must be an integer >= 1/);
    expect(() => wanDiTConfig({ freqDim: 255 })).toThrow(/freqDim must be even/);
    expect(() => wanDiTConfig({ eps: 0 })).toThrow(/eps must be a positive number/);
    expect(() => wanDiTConfig('huge' as 'tiny')).toThrow(/unknown preset 'huge'/);
    expect(() => wanDiTConfigFromJson({ _class_name: 'WanVAE' })).toThrow(/_class_name must be 'WanModel'/);
  });

  it('refuses an i2v text length other than 512, saying why (Wan splits the i2v context at 512 text tokens)', () => {
    // Wan2.1's WanI2VCrossAttention: image_context_length = context.shape[1] - T5_CONTEXT_TOKEN_NUMBER (512).
    expect(I2V_TEXT_LEN).toBe(512);
    const why =
      /an i2v model needs textLen 512, got 16\. Wan2\.1's i2v cross-attention takes the first \(context length - 512\) context tokens as image tokens/;
    expect(() => wanDiTConfig({ ...wanDiTConfig('tiny'), modelType: 'i2v', inDim: 36 })).toThrow(why);
    expect(() => wanDiTConfig({ modelType: 'i2v', inDim: 36, textLen: 16 })).toThrow(why);
    expect(() =>
      wanDiTConfigFromJson({ ...wanDiTConfigToJson(wanDiTConfig('tiny-i2v')), text_len: 1024 }),
    ).toThrow(/needs textLen 512, got 1024/);
    // Every i2v preset pads text to 512 (tiny-i2v too); t2v models may use any length.
    for (const [name, preset] of Object.entries(WAN_DIT_PRESETS)) {
      if (preset.modelType === 'i2v') expect(preset.textLen, name).toBe(512);
    }
    expect(wanDiTConfig({ modelType: 'i2v', inDim: 36 }).textLen).toBe(512);
    expect(wanDiTConfig('tiny').textLen).toBe(16);
  });
});
