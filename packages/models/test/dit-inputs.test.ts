/**
 * What the DiT accepts as timesteps (every form, the sigma guard and its opt-out) and its refusal of
 * NaN/Inf inputs, at every entry point: predictVelocity, features, embed, segments and a truncation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  shutdownBackend,
  type Timestep,
  timestep,
} from '@prfl/tensor';
import { WanDiT } from '../src/index.js';
import { maxDiff, randomize } from './fixtures.js';

const T: Timestep[] = [timestep(900), timestep(250)];
const SIGMA_LIKE = /timesteps: timesteps look like sigmas: got \[0\.5, 0\.5\].*allowSmallTimesteps: true/;

describe.each(backendsUnderTest())('WanDiT inputs on %s', (backend) => {
  let model: WanDiT;
  let x: tf.Tensor5D;
  let text: tf.Tensor3D;
  beforeAll(async () => {
    await initBackend({ backend });
    model = new WanDiT('tiny', { seed: 3 });
    randomize(model.namedVariables(), 'inputs');
    const g = new Generator('dit-inputs');
    x = g.normal([2, 1, 4, 4, 16]);
    text = g.normal([2, 5, 32]);
  });
  afterAll(() => {
    tf.dispose([x, text]);
    model.dispose();
    shutdownBackend();
  });

  it('takes timesteps as an array, a Float32Array, a tensor or one number, with the same result', async () => {
    const cond = { text };
    const want = model.predictVelocity(x, T, cond);
    const asTensor = tf.tensor1d([900, 250]);
    const variants = [
      model.predictVelocity(x, new Float32Array([900, 250]), cond),
      model.predictVelocity(x, new Int32Array([900, 250]), cond),
      model.predictVelocity(x, asTensor, cond),
    ];
    for (const v of variants) expect(await maxDiff(v, want)).toBe(0);
    const same = model.predictVelocity(x, [timestep(500), timestep(500)], cond);
    const broadcast = model.predictVelocity(x, timestep(500), cond);
    expect(await maxDiff(broadcast, same)).toBe(0);
    const f = model.features(x, new Float32Array([900, 250]), cond, 2);
    expect(await maxDiff(f, model.features(x, T, cond, 2))).toBe(0);
    tf.dispose([want, asTensor, ...variants, same, broadcast, f]);
  });

  it('refuses sigmas passed as timesteps at every entry point, unless allowSmallTimesteps', () => {
    const cond = { text };
    const sigmas = [0.5, 0.5] as Timestep[];
    expect(() => model.predictVelocity(x, sigmas, cond)).toThrow(SIGMA_LIKE);
    expect(() => model.predictVelocity(x, new Float32Array([0.5, 0.5]), cond)).toThrow(SIGMA_LIKE);
    expect(() => model.features(x, sigmas, cond, 1)).toThrow(SIGMA_LIKE);
    expect(() => model.embed(x, sigmas, cond)).toThrow(SIGMA_LIKE);
    expect(() => model.segments(x, sigmas, cond)).toThrow(SIGMA_LIKE);
    const backbone = model.truncate(2);
    expect(() => backbone.features(x, sigmas, cond)).toThrow(SIGMA_LIKE);
    tf.dispose(backbone.features(x, T, cond, 1)); // caches the backbone's RoPE tables for this grid
    const before = tf.memory().numTensors;
    const v = model.predictVelocity(x, sigmas, cond, { allowSmallTimesteps: true });
    const f = backbone.features(x, sigmas, cond, 2, { allowSmallTimesteps: true });
    const chain = model.segments(x, sigmas, cond, { allowSmallTimesteps: true });
    expect(v.shape).toEqual(x.shape);
    expect(f.shape).toEqual([2, 4, 64]);
    // A clean latent is timestep 0: all zeros is not mistaken for sigmas.
    const clean = model.predictVelocity(x, [timestep(0), timestep(0)], cond);
    tf.dispose([v, f, clean]);
    chain.dispose();
    expect(tf.memory().numTensors).toBe(before);
    backbone.dispose();
  });

  it('names the batch size and what arrived for timesteps of the wrong count or form', () => {
    const cond = { text };
    expect(() => model.predictVelocity(x, new Float32Array([900]), cond)).toThrow(
      /timesteps: expected 2 timesteps \(one per batch element\), got 1 \(a Float32Array\)/,
    );
    const t3 = tf.tensor1d([1, 2, 3]);
    expect(() => model.predictVelocity(x, t3 as tf.Tensor1D, cond)).toThrow(
      /expected 2 timesteps .*got 3 \(a float32 tensor \[3\]\)/,
    );
    t3.dispose();
    expect(() => model.predictVelocity(x, [900, 1200] as Timestep[], cond)).toThrow(
      /timesteps\[1\]: expected a timestep in \[0, 1000\], got 1200/,
    );
    expect(() => model.predictVelocity(x, 'soon' as unknown as Timestep, cond)).toThrow(
      /timesteps: expected 2 timesteps .* or one number for all; got a string \(soon\)/,
    );
  });

  it('refuses NaN/Inf in the latent and the conditioning, as the reward does; checkFinite: false lets them through', async () => {
    const bad = tf.tidy(() =>
      tf.where(tf.equal(tf.reshape(tf.range(0, x.size), x.shape), 7), tf.fill(x.shape, Number.NaN), x),
    ) as tf.Tensor5D;
    expect(() => model.predictVelocity(bad, T, { text })).toThrow(
      /^x: expected finite values, got 1 NaN and 0 Inf in a \[2, 1, 4, 4, 16\] tensor \(first at flat index 7: NaN\)/,
    );
    expect(() => model.features(bad, T, { text })).toThrow(/^x: expected finite values/);
    expect(() => model.segments(bad, T, { text })).toThrow(/^x: expected finite values/);
    const badText = tf.tidy(() => tf.div(text, tf.zerosLike(text))) as tf.Tensor3D;
    expect(() => model.predictVelocity(x, T, { text: badText })).toThrow(
      /^conditioning\.text: expected finite values/,
    );
    const backbone = model.truncate(1);
    expect(backbone.checkFinite).toBe('auto');
    expect(() => backbone.features(bad, T, { text })).toThrow(/^x: expected finite values/);
    // Off, the NaN flows through, which is what the check exists to prevent.
    const unchecked = new WanDiT('tiny', { seed: 3, checkFinite: false });
    randomize(unchecked.namedVariables(), 'inputs');
    const v = unchecked.predictVelocity(bad, T, { text });
    expect(Number.isNaN(Math.max(...(await v.data())))).toBe(true);
    const inherited = unchecked.truncate(1);
    const overridden = model.truncate(1, { checkFinite: false });
    expect(inherited.checkFinite).toBe(false);
    expect(overridden.checkFinite).toBe(false);
    tf.dispose([bad, badText, v]);
    for (const m of [backbone, inherited, overridden, unchecked]) m.dispose();
  });
});
