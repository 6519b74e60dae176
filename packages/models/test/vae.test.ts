import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertNoLeak,
  backendsUnderTest,
  Generator,
  initBackend,
  InvalidArgumentError,
  shutdownBackend,
} from '@prfl/tensor';
import {
  klDivergence,
  latentShape,
  loadWanVAE,
  reconstructionLoss,
  serializeWanVAE,
  trainVAE,
  type VAETrainProgress,
  vaeTrainStep,
  WAN_VAE_PRESETS,
  WanVAE,
  wanVAEConfig,
  wanVAEParameterCount,
  wanVAEParamSpecs,
} from '../src/vae/index.js';

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

describe('VAE config', () => {
  it('has Wan2.1 compression: 81 frames -> 21 latent frames, 8x space, 16 channels', () => {
    const wan = wanVAEConfig('wan2.1');
    expect(latentShape(wan, 81, 480, 832)).toEqual([21, 60, 104, 16]);
    expect(wanVAEParameterCount(wan)).toBe(126_892_531);
    // Wan2.1_VAE.pth has 194 tensors; the temporal resamplers sit at these indices.
    const keys = wanVAEParamSpecs(wan).map((s) => s.name);
    expect(keys.length).toBe(194);
    expect(keys.filter((k) => k.includes('time_conv.weight'))).toEqual([
      'encoder.downsamples.5.time_conv.weight',
      'encoder.downsamples.8.time_conv.weight',
      'decoder.upsamples.3.time_conv.weight',
      'decoder.upsamples.7.time_conv.weight',
    ]);
    expect(latentShape(wanVAEConfig('tiny'), 17, 64, 64)).toEqual([5, 8, 8, 16]);
  });

  it('refuses frame counts that are not 1 + 4k and sizes that are not multiples of 8', () => {
    const c = wanVAEConfig('tiny');
    expect(() => latentShape(c, 16, 64, 64)).toThrow(/1 \+ 4k.*got 16; e\.g\. 17/);
    expect(() => latentShape(c, 17, 60, 64)).toThrow(/multiples of 8.*60x64/);
    expect(() => wanVAEConfig({ temporalDownsample: [true] })).toThrow(/temporalDownsample must hold 3/);
    expect(() => wanVAEConfig({ latentStd: [1, 2] })).toThrow(/latentStd must hold zDim = 16/);
    expect(() => wanVAEConfig('huge' as never)).toThrow(/unknown preset 'huge'/);
  });

  it('keeps Wan latent statistics in the wan2.1 preset', () => {
    expect(WAN_VAE_PRESETS['wan2.1'].latentMean[0]).toBe(-0.7571);
    expect(WAN_VAE_PRESETS['wan2.1'].latentStd[15]).toBe(1.916);
  });
});

describe.each(backendsUnderTest())('WanVAE on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  // The plain-JS cpu backend takes about 12 s for the full 17x64x64 clip on a quiet core; it checks the
  // same code path on a clip a quarter the size, and wasm runs the full size.
  const [frameCount, size, latentFrames] = backend === 'cpu' ? [9, 32, 3] : [17, 64, 5];
  it(`tiny: ${frameCount}x${size}x${size} RGB -> [${latentFrames}, ${size / 8}, ${size / 8}, 16] -> ${frameCount}x${size}x${size}x3`, async () => {
    const vae = new WanVAE('tiny', { seed: 1 });
    const video = new Generator(0).uniform<tf.Rank.R5>([1, frameCount, size, size, 3], -1, 1);
    const z = vae.encode(video);
    expect(z.shape).toEqual([1, latentFrames, size / 8, size / 8, 16]);
    const frames = vae.decode(z);
    expect(frames.shape).toEqual([1, frameCount, size, size, 3]);
    const v = await values(frames);
    expect(v.every((x) => Number.isFinite(x) && x >= -1 && x <= 1)).toBe(true);
    tf.dispose([video, z, frames]);
    vae.dispose();
  });

  describe('small network', () => {
    let vae: WanVAE;
    beforeAll(() => {
      vae = new WanVAE('test', { seed: 2 });
    });
    afterAll(() => vae.dispose());

    it('is causal: changing frame t changes no latent frame before the one holding t', async () => {
      const g = new Generator(5);
      const video = g.uniform<tf.Rank.R5>([1, 17, 16, 16, 3], -1, 1);
      // Frame 9 is in latent frame 3 (frames 9..12); latent frames 0..2 cover frames 0..8.
      const changed = tf.tidy((): tf.Tensor5D => {
        const mask = tf.reshape(tf.oneHot(tf.tensor1d([9], 'int32'), 17), [1, 17, 1, 1, 1]);
        return tf.add(video, tf.mul(mask, g.uniform([1, 17, 16, 16, 3], -1, 1))) as tf.Tensor5D;
      });
      const a = vae.encode(video);
      const b = vae.encode(changed);
      const early = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0, 0], [1, 3, -1, -1, -1]);
      const late = (t: tf.Tensor) => tf.slice(t, [0, 3, 0, 0, 0], [1, 2, -1, -1, -1]);
      expect(await values(early(a))).toEqual(await values(early(b)));
      const diffLate = await values(tf.abs(tf.sub(late(a), late(b))));
      expect(Math.max(...diffLate)).toBeGreaterThan(1e-4);

      // Decoder: latent frame 2 only reaches pixel frames 5.. (frame 0 <- latent 0, 1..4 <- latent 1).
      const z2 = tf.tidy((): tf.Tensor5D => {
        const mask = tf.reshape(tf.oneHot(tf.tensor1d([2], 'int32'), 5), [1, 5, 1, 1, 1]);
        return tf.add(a, tf.mul(mask, 3)) as tf.Tensor5D;
      });
      const x1 = vae.decode(a, { clamp: false });
      const x2 = vae.decode(z2, { clamp: false });
      const head = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 0, 0], [1, 5, -1, -1, -1]);
      expect(await values(head(x1))).toEqual(await values(head(x2)));
      expect(Math.max(...(await values(tf.abs(tf.sub(x1, x2)))))).toBeGreaterThan(1e-4);
      tf.dispose([video, changed, a, b, z2, x1, x2]);
    });

    it('encodes a single image (1 frame) to 1 latent frame and back', () => {
      const img = new Generator(1).uniform<tf.Rank.R5>([2, 1, 16, 8, 3], -1, 1);
      const z = vae.encode(img);
      expect(z.shape).toEqual([2, 1, 2, 1, 4]);
      const x = vae.decode(z);
      expect(x.shape).toEqual([2, 1, 16, 8, 3]);
      tf.dispose([img, z, x]);
    });

    it('samples the posterior with a Generator, reproducibly; normalises with the latent statistics', async () => {
      const video = new Generator(3).uniform<tf.Rank.R5>([1, 5, 16, 16, 3], -1, 1);
      const a = vae.encode(video, { generator: new Generator(7) });
      const b = vae.encode(video, { generator: new Generator(7) });
      const mean = vae.encode(video);
      expect(await values(a)).toEqual(await values(b));
      expect(await values(a)).not.toEqual(await values(mean));
      const other = new WanVAE('test', { seed: 2 });
      other.setLatentStats([1, 2, 3, 4], [2, 2, 4, 0.5]);
      const raw = await values(other.encode(video, { normalize: false }));
      const norm = await values(other.encode(video));
      const stats = other.config;
      norm.forEach((v, i) => {
        const c = i % 4;
        expect(v).toBeCloseTo((raw[i]! - stats.latentMean[c]!) / stats.latentStd[c]!, 4);
      });
      other.dispose();
      tf.dispose([video, a, b, mean]);
    });

    it('refuses bad inputs with clear errors', () => {
      const g = new Generator(0);
      const sixteen = g.uniform<tf.Rank.R5>([1, 16, 16, 16, 3]);
      expect(() => vae.encode(sixteen)).toThrow(InvalidArgumentError);
      expect(() => vae.encode(sixteen)).toThrow(/1 \+ 4k.*got 16/);
      const rgba = g.uniform<tf.Rank.R5>([1, 5, 16, 16, 4]);
      expect(() => vae.encode(rgba)).toThrow(/\[B, F, H, W, 3\].*\[1, 5, 16, 16, 4\]/);
      const odd = g.uniform<tf.Rank.R5>([1, 5, 12, 16, 3]);
      expect(() => vae.encode(odd)).toThrow(/multiples of 8/);
      const lat = g.uniform<tf.Rank.R5>([1, 2, 2, 2, 16]);
      expect(() => vae.decode(lat)).toThrow(/latent: expected \[B, F, H, W, 4\].*\[1, 2, 2, 2, 16\]/);
      // NaN/Inf refused at the door (one small device read), as the DiT and the reward do.
      const nanVideo = tf.fill([1, 5, 16, 16, 3], Number.NaN) as tf.Tensor5D;
      expect(() => vae.encode(nanVideo)).toThrow(/^video: expected finite values, got 3840 NaN and 0 Inf/);
      expect(() => vae.encodeMoments(nanVideo)).toThrow(/^video: expected finite values/);
      const infLatent = tf.fill([1, 2, 2, 2, 4], Number.POSITIVE_INFINITY) as tf.Tensor5D;
      expect(() => vae.decode(infLatent)).toThrow(/^latent: expected finite values, got 0 NaN and 32 Inf/);
      expect(() => vae.decodeRaw(infLatent)).toThrow(/^latent: expected finite values/);
      tf.dispose([sixteen, rgba, odd, lat, nanVideo, infLatent]);
    });

    it('leaks no tensors across encode/decode', async () => {
      const video = new Generator(3).uniform<tf.Rank.R5>([1, 5, 16, 16, 3], -1, 1);
      await assertNoLeak(
        () => tf.tidy(() => vae.decode(vae.encode(video, { generator: new Generator(1) }))),
        { label: 'vae' },
      );
      video.dispose();
    });

    it('round-trips through a safetensors checkpoint in Wan layout', async () => {
      const bytes = await serializeWanVAE(vae);
      const loaded = await loadWanVAE(bytes);
      expect(loaded.config).toEqual(vae.config);
      const video = new Generator(3).uniform<tf.Rank.R5>([1, 5, 16, 16, 3], -1, 1);
      expect(await values(loaded.encode(video))).toEqual(await values(vae.encode(video)));
      const sd = vae.stateDict();
      expect(sd.get('encoder.conv1.weight')?.shape).toEqual([4, 3, 3, 3, 3]);
      expect(sd.get('encoder.downsamples.0.residual.0.gamma')?.shape).toEqual([4, 1, 1, 1]);
      expect(sd.get('encoder.middle.1.to_qkv.weight')?.shape).toEqual([24, 8, 1, 1]);
      expect(sd.get('decoder.upsamples.2.resample.1.weight')?.shape).toEqual([4, 8, 3, 3]);
      expect(sd.get('decoder.upsamples.2.time_conv.weight')?.shape).toEqual([16, 8, 3, 1, 1]);
      tf.dispose([...sd.values(), video]);
      loaded.dispose();
      const other = new WanVAE({ ...vae.config, dim: 8 });
      const otherBytes = await serializeWanVAE(other);
      other.dispose();
      await expect(loadWanVAE(otherBytes, { config: vae.config })).rejects.toThrow(
        /encoder.conv1.weight has shape \[8, 3, 3, 3, 3\] in the checkpoint, expected \[4, 3, 3, 3, 3\]/,
      );
      await expect(
        loadWanVAE(otherBytes, { config: { ...vae.config, midAttention: false } }),
      ).rejects.toThrow(/unexpected keys \(10\): .*encoder.middle.1.norm.gamma/);
    });
  });

  it('KL and reconstruction terms match a hand computation', async () => {
    const mu = tf.tensor([0.5, -1, 0, 2]);
    const lv = tf.tensor([0, 0.5, -1, 0.2]);
    const kl = (await klDivergence(mu, lv).data())[0]!;
    const m = [0.5, -1, 0, 2];
    const l = [0, 0.5, -1, 0.2];
    const want = m.reduce((s, x, i) => s + 0.5 * (x * x + Math.exp(l[i]!) - 1 - l[i]!), 0) / 4;
    expect(kl).toBeCloseTo(want, 6);
    const a = tf.tensor([1, 2, 3]);
    const b = tf.tensor([1.5, 0, 3]);
    expect((await reconstructionLoss(a, b, 'l1').data())[0]).toBeCloseTo((0.5 + 2) / 3, 6);
    expect((await reconstructionLoss(a, b, 'mse').data())[0]).toBeCloseTo((0.25 + 4) / 3, 6);
    expect(() => reconstructionLoss(a, b, 'l3' as never)).toThrow(/'l1' or 'mse'/);
    tf.dispose([mu, lv, a, b]);
  });

  it('a few training steps reduce the loss; progress is reported; nothing leaks', async () => {
    const vae = new WanVAE('test', { seed: 4 });
    const g = new Generator(11);
    // A smooth clip is easy to fit: a moving gradient.
    const video = tf.tidy(() => {
      const t = tf.reshape(tf.linspace(0, 1, 5), [1, 5, 1, 1, 1]);
      const y = tf.reshape(tf.linspace(-1, 1, 8), [1, 1, 8, 1, 1]);
      const x = tf.reshape(tf.linspace(-1, 1, 8), [1, 1, 1, 8, 1]);
      const base = tf.sin(tf.add(tf.add(tf.mul(x, 2), tf.mul(t, 3)), tf.mul(y, 0.5)));
      return tf.mul(
        tf.concat([base, tf.mul(base, y), tf.cos(tf.add(tf.add(y, t), tf.mul(x, 0.3)))], 4),
        0.8,
      ) as tf.Tensor5D;
    });
    const seen: VAETrainProgress[] = [];
    const { history, optimizer } = await trainVAE(vae, {
      steps: 10,
      data: [video],
      optimizer: { lr: 1e-2 },
      beta: 1e-3,
      maxGradNorm: 1,
      onProgress: (p) => {
        seen.push(p);
      },
    });
    expect(seen.length).toBe(10);
    expect(seen.map((p) => p.step)).toEqual([...Array(10).keys()].map((i) => i + 1));
    expect(seen.every((p) => p.total === 10 && p.gradNorm !== undefined && p.elapsedMs > 0)).toBe(true);
    const first = history[0]!;
    const last = history[history.length - 1]!;
    expect(last.loss).toBeLessThan(0.7 * first.loss);
    expect(first.loss).toBeCloseTo(first.reconstruction + 1e-3 * first.kl, 5);
    await assertNoLeak(() => vaeTrainStep(vae, optimizer, video, { generator: g }), {
      label: 'vaeTrainStep',
      iterations: 2,
    });
    optimizer.dispose();
    video.dispose();
    vae.dispose();
  });
});
