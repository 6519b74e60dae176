/**
 * The whole-clip VAE against scripts/make-vae-fixtures.py: a PyTorch transcription of Wan2.1's VAE that
 * runs Wan's chunked, cached algorithm (first frame alone, then chunks of 4; the decoder frame by frame).
 * Values and the gradients of the training loss for every parameter, on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, initBackend, shutdownBackend } from '@prfl/tensor';
import { vaeLoss, vaeParamToTorch, WanVAE, wanVAEConfigFromJson } from '../src/vae/index.js';
import { compare, loadVAEFixture, type VAEFixture } from './vae-helpers.js';

describe.each(backendsUnderTest())('WanVAE vs the chunked PyTorch reference on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  describe.each(['tiny', 'attn-b2'])('fixture %s', (name) => {
    let fx: VAEFixture;
    let vae: WanVAE;
    beforeAll(async () => {
      fx = await loadVAEFixture(name);
      vae = WanVAE.fromStateDict(wanVAEConfigFromJson(fx.config), fx.weights);
    });
    afterAll(() => {
      vae.dispose();
      fx.dispose();
    });

    it('encodes to the same posterior and normalised latent', async () => {
      const video = fx.io.video as tf.Tensor5D;
      const [b, f, h, w] = video.shape;
      expect(vae.latentShape(f, h, w)).toEqual((fx.io.mean as tf.Tensor).shape.slice(1));
      const { mean, logvar } = vae.encodeMoments(video);
      for (const [got, want] of [
        [mean, fx.io.mean],
        [logvar, fx.io.logvar],
      ] as const) {
        const { maxDiff, scale } = await compare(got, want as tf.Tensor);
        expect(maxDiff).toBeLessThan(2e-5 * Math.max(1, scale));
      }
      const latent = vae.encode(video);
      expect(latent.shape[0]).toBe(b);
      const c = await compare(latent, fx.io.latent as tf.Tensor);
      expect(c.maxDiff).toBeLessThan(2e-5 * Math.max(1, c.scale));
      tf.dispose([mean, logvar, latent]);
    });

    it('decodes to the same frames (raw, and from the normalised latent)', async () => {
      const raw = vae.decodeRaw(fx.io.mean as tf.Tensor5D);
      const c1 = await compare(raw, fx.io.recon as tf.Tensor);
      expect(c1.maxDiff).toBeLessThan(2e-5 * Math.max(1, c1.scale));
      const viaNorm = vae.decode(fx.io.latent as tf.Tensor5D, { clamp: false });
      const c2 = await compare(viaNorm, fx.io.recon as tf.Tensor);
      expect(c2.maxDiff).toBeLessThan(5e-5 * Math.max(1, c2.scale));
      const clamped = vae.decode(fx.io.latent as tf.Tensor5D);
      expect(Math.max(...(await tf.abs(clamped).data()))).toBeLessThanOrEqual(1);
      tf.dispose([raw, viaNorm, clamped]);
    });

    it('gives the same training loss and gradients for every parameter', async () => {
      const beta = (await (fx.io.beta as tf.Tensor).data())[0] as number;
      const opts = { beta, reconstruction: 'mse' as const, noise: fx.io.noise as tf.Tensor };
      const names = new Map([...vae.namedVariables()].map(([k, v]) => [v.name, k]));
      const { value, grads } = tf.variableGrads(
        () => vaeLoss(vae, fx.io.video as tf.Tensor5D, opts).loss,
        vae.trainableVariables(),
      );
      const want = (await (fx.io.loss as tf.Tensor).data())[0] as number;
      expect((await value.data())[0]).toBeCloseTo(want, 5);
      const specs = new Map(vae.paramSpecs().map((s) => [s.name, s]));
      let worst = { key: '', ratio: 0 };
      for (const [varName, g] of Object.entries(grads)) {
        const key = names.get(varName) as string;
        const torchGrad = vaeParamToTorch(specs.get(key)!, g);
        const { maxDiff, scale } = await compare(torchGrad, fx.grads[key] as tf.Tensor);
        // bf16-stored reference: 2^-8 relative, per gradient tensor.
        const ratio = maxDiff / Math.max(scale, 1e-6);
        if (ratio > worst.ratio) worst = { key, ratio };
        torchGrad.dispose();
      }
      expect(Object.keys(grads).length).toBe(Object.keys(fx.grads).length);
      expect(worst.ratio, `worst gradient: ${worst.key}`).toBeLessThan(1.2e-2);
      tf.dispose([value, ...Object.values(grads)]);
    });
  });
});
