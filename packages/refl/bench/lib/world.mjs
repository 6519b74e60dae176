// The two benchmark settings as models and one batch, built the same way in every cell so that every
// method runs on the same generator, batch and reward weights:
//   tiny  the MovingShapes world: tiny WanDiT, tiny WanVAE, 17 x 64 x 64 video -> latents [5, 8, 8, 16]
//   mid   @prfl/models' `mid` DiT (dim 384, 8 layers) with a VAE of Wan2.1's real width ('wan2.1' preset,
//         random weights, 127M parameters); 64 x 64 frames, 17 or more of them
// PAVRM reads a frozen copy of the generator's first two blocks (WanDiT.truncate copies). RGB ReFL's
// pixel reward is @prfl/reward's PixelVideoReward behind ConvPathPixelReward (see that file).
import * as tf from '@tensorflow/tfjs-core';
import { Generator } from '@prfl/tensor';
import { latentShape, WanDiT, WanVAE, wanDiTConfig, wanVAEConfig } from '@prfl/models';
import { Pavrm, PixelVideoReward } from '@prfl/reward';
import { ConvPathPixelReward } from './conv-path-pixel-reward.mjs';

export const SETTINGS = {
  tiny: { dit: 'tiny', vae: 'tiny', rewardBlocks: 2, pavrmHidden: [64, 32], height: 64, width: 64 },
  mid: { dit: 'mid', vae: 'wan2.1', rewardBlocks: 2, pavrmHidden: [1024, 512], height: 64, width: 64 },
};

function setting(name) {
  const s = SETTINGS[name];
  if (s === undefined) {
    throw new Error(`setting: expected one of ${Object.keys(SETTINGS).join(', ')}, got '${name}'`);
  }
  return s;
}

/** The latent [F', H', W', C] of `frames` 64 x 64 frames under the setting's VAE. */
export function settingLatent(name, frames) {
  const s = setting(name);
  return latentShape(wanVAEConfig(s.vae), frames, s.height, s.width);
}

/** The setting's VAE alone (frozen, seeded), for decoder-only measurements. */
export function buildDecoder(name) {
  return new WanVAE(setting(name).vae, { seed: 4, trainable: false });
}

/**
 * Everything a training-step cell needs. `decoder: false` skips the VAE (PRFL never decodes), which
 * also keeps its 0.5 GB of weights out of PRFL's heap on the mid setting.
 */
export function buildWorld(name, frames, { decoder = true } = {}) {
  const s = setting(name);
  const config = wanDiTConfig(s.dit);
  const generator = new WanDiT(config, { seed: 1 });
  // Wan's init zeroes the output head, which would zero every gradient below it: give it weights so
  // the backward pass does the real work (as packages/models/bench/dit.mjs does).
  const head = generator.namedVariables().get('head.head.weight');
  head.assign(tf.tidy(() => new Generator('bench/head').normal(head.shape, 0, 0.02)));
  const backbone = generator.truncate(s.rewardBlocks);
  const pavrm = new Pavrm(backbone, { hidden: s.pavrmHidden, seed: 3 });
  const vae = decoder ? buildDecoder(name) : null;
  const pixelInner = new PixelVideoReward({}, { seed: 5 });
  const pixelReward = new ConvPathPixelReward(pixelInner);
  const latent = settingLatent(name, frames);
  const g = new Generator(`bench/batch/${name}/${frames}`);
  const batch = {
    latents: g.normal([1, ...latent]),
    conditioning: { text: g.normal([1, config.textLen, config.textDim]) },
  };
  const nullConditioning = { text: tf.zeros([1, config.textLen, config.textDim]) };
  const parameters = (vars) => [...vars.values()].reduce((n, v) => n + v.size, 0);
  const world = {
    setting: name,
    generator,
    pavrm,
    vae,
    pixelReward,
    batch,
    nullConditioning,
    describe: () => ({
      setting: name,
      frames,
      latent,
      dit: s.dit,
      vae: s.vae,
      parameters: {
        generator: parameters(generator.namedVariables()),
        pavrmHead: parameters(pavrm.headVariables()),
        pavrmBackboneBlocks: s.rewardBlocks,
        vae: world.vae ? world.vae.parameterCount() : null,
        pixelReward: parameters(pixelInner.namedVariables()),
      },
    }),
    dispose() {
      generator.dispose();
      pavrm.dispose();
      backbone.dispose();
      world.vae?.dispose();
      pixelInner.dispose();
      tf.dispose([batch.latents, batch.conditioning.text, nullConditioning.text]);
    },
  };
  return world;
}

/** Builds the world's VAE when it was made without one (`decoder: false`). */
export function attachDecoder(world) {
  world.vae ??= buildDecoder(world.setting);
  return world.vae;
}
