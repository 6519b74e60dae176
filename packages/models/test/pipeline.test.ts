import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertNoLeak,
  backendsUnderTest,
  type Conditioning,
  Generator,
  initBackend,
  InvalidArgumentError,
  type LatentVideo,
  shutdownBackend,
  type Timestep,
  type VelocityModel,
} from '@prfl/tensor';
import { FlowMatchEulerScheduler, FlowUniPCScheduler } from '@prfl/schedulers';
import {
  classifierFreeGuidance,
  firstFrameMask,
  guidedVelocity,
  latentFrameMask,
  sampleLatents,
  type SamplingProgress,
  WanPipeline,
} from '../src/pipeline/index.js';
import { type PromptEncoder, TransformerTextEncoder, WordTokenizer } from '../src/text/index.js';
import { WanVAE } from '../src/vae/index.js';

interface Call {
  shape: number[];
  timesteps: number[];
  textFirst: number[];
  imageShape?: number[];
  tokensShape?: number[];
  maskShape?: number[];
}

/** A VelocityModel given as a function, recording what it was called with. */
class StubModel implements VelocityModel {
  readonly calls: Call[] = [];
  constructor(
    readonly latentChannels: number,
    private readonly f: (x: LatentVideo, t: readonly Timestep[], c: Conditioning) => tf.Tensor,
  ) {}
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return new Map();
  }
  predictVelocity(x: LatentVideo, timesteps: readonly Timestep[], c: Conditioning): LatentVideo {
    const textFirst = Array.from(
      tf.tidy(() => tf.reshape(tf.slice(c.text, [0, 0, 0], [-1, 1, 1]), [-1])).dataSync() as Float32Array,
    );
    this.calls.push({
      shape: [...x.shape],
      timesteps: [...timesteps],
      textFirst,
      ...(c.image ? { imageShape: [...c.image.latent.shape] } : {}),
      ...(c.image?.tokens ? { tokensShape: [...c.image.tokens.shape] } : {}),
      ...(c.textMask ? { maskShape: [...c.textMask.shape] } : {}),
    });
    return tf.tidy(() => this.f(x, timesteps, c)) as LatentVideo;
  }
}

/** A prompt encoder mapping each prompt to a constant embedding: its length + 1 (so '' gives 1). */
const lengthEncoder: PromptEncoder = {
  textLen: 3,
  textDim: 2,
  encode(prompts) {
    const vals = prompts.flatMap((p) => new Array<number>(6).fill(p.length + 1));
    return { text: tf.tensor3d(vals, [prompts.length, 3, 2]), mask: tf.ones([prompts.length, 3]) };
  },
};

describe('i2v mask construction (Wan image2video.py)', () => {
  it('repeats the first pixel-frame mask entry 4 times and groups by 4', () => {
    expect(latentFrameMask([1, 0, 0, 0, 0, 0, 0, 0, 0])).toEqual([
      [1, 1, 1, 1],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    // first and last frame given (Wan's flf2v layout)
    expect(latentFrameMask([1, 0, 0, 0, 1])).toEqual([
      [1, 1, 1, 1],
      [0, 0, 0, 1],
    ]);
    expect(() => latentFrameMask([1, 0, 0, 0])).toThrow(/1 \+ 4k frames, got 4/);
  });
});

describe.each(backendsUnderTest())('pipeline on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  const text = () => ({ text: tf.zeros([1, 3, 2]) as tf.Tensor3D });

  it('Euler with v = x - c matches the closed form c + (x0 - c) prod(1 + dsigma)', async () => {
    const c = new Generator('c').normal<tf.Rank.R5>([1, 2, 2, 2, 4]);
    const model = new StubModel(4, (x) => tf.sub(x, c));
    const scheduler = new FlowMatchEulerScheduler({ shift: 5 });
    const schedule = scheduler.schedule(10);
    const x0 = new Generator(1).normal<tf.Rank.R5>([1, 2, 2, 2, 4]);
    const cond = text();
    const { latents } = await sampleLatents({ model, scheduler, schedule, initial: x0, conditioning: cond });
    let factor = 1;
    for (let i = 0; i < 10; i++)
      factor *= 1 + ((schedule.sigmas[i + 1] as number) - (schedule.sigmas[i] as number));
    const want = tf.add(c, tf.mul(tf.sub(x0, c), factor));
    const err = (await tf.max(tf.abs(tf.sub(latents, want))).data())[0]!;
    expect(err).toBeLessThan(1e-5);
    expect(model.calls.map((k) => k.timesteps[0])).toEqual([...schedule.timesteps]);
    tf.dispose([c, x0, latents, want, cond.text]);
  });

  it("Wan's UniPC (40 steps, shift 5) follows v = x - c to the exact flow c + (x0 - c) exp(-sigma_0)", async () => {
    const c = new Generator('c').normal<tf.Rank.R5>([1, 2, 2, 2, 4]);
    const model = new StubModel(4, (x) => tf.sub(x, c));
    const pipeline = new WanPipeline({ model });
    const x0 = new Generator(9).normal<tf.Rank.R5>([1, 2, 2, 2, 4]);
    const cond = text();
    const { latents, schedule } = await pipeline.generate({
      conditioning: cond,
      guidanceScale: 1,
      latentShape: [2, 2, 2],
      noise: x0,
    });
    expect(schedule.numSteps).toBe(40);
    expect(schedule.timesteps.slice(0, 3)).toEqual([999, 994, 989]);
    const want = tf.add(c, tf.mul(tf.sub(x0, c), Math.exp(-(schedule.sigmas[0] as number))));
    const err = (await tf.max(tf.abs(tf.sub(latents, want))).data())[0]!;
    // A second-order multistep solver on a smooth flow: close, not exact (the last step is first order).
    expect(err).toBeLessThan(5e-3);
    tf.dispose([c, x0, latents, want, cond.text]);
  });

  it('UniPC is exact where the x0 prediction is constant: v = (x - c) / sigma gives c + (x0 - c) sigma_k / sigma_0', async () => {
    const c = new Generator('c').normal<tf.Rank.R5>([1, 2, 2, 2, 4]);
    const scheduler = new FlowUniPCScheduler();
    const schedule = scheduler.schedule(12, { shift: 5 });
    let call = 0;
    // The velocity of the straight path from c to the noise: x0_hat = x - sigma v = c at every step.
    const model = new StubModel(4, (x) => tf.div(tf.sub(x, c), schedule.sigmas[call++] as number));
    const x0 = new Generator(2).normal<tf.Rank.R5>([1, 2, 2, 2, 4]);
    const cond = text();
    const { latents, state } = await sampleLatents({
      model,
      scheduler,
      schedule,
      initial: x0,
      conditioning: cond,
      endIndex: 7,
      keepState: true,
    });
    const ratio = (schedule.sigmas[7] as number) / (schedule.sigmas[0] as number);
    const want = tf.add(c, tf.mul(tf.sub(x0, c), ratio));
    expect((await tf.max(tf.abs(tf.sub(latents, want))).data())[0]).toBeLessThan(2e-5);
    expect(state).toBeDefined();
    scheduler.disposeState(state!);
    // the rest of the way, from step 7: ends at c
    const rest = await sampleLatents({
      model,
      scheduler,
      schedule,
      initial: latents,
      conditioning: cond,
      startIndex: 7,
    });
    expect((await tf.max(tf.abs(tf.sub(rest.latents, c))).data())[0]).toBeLessThan(2e-5);
    expect(call).toBe(12);
    tf.dispose([c, x0, latents, want, rest.latents, cond.text]);
  });

  it('guidance: one batched forward of cond + uncond, v = v_u + g (v_c - v_u), negative prompt default ""', async () => {
    // v is each batch element's first text value, broadcast: cond prompt "ab" -> 3, negative "" -> 1.
    const model = new StubModel(4, (x, _t, c) =>
      tf.mul(tf.onesLike(x), tf.reshape(tf.slice(c.text, [0, 0, 0], [-1, 1, 1]), [-1, 1, 1, 1, 1])),
    );
    const pipeline = new WanPipeline({
      model,
      textEncoder: lengthEncoder,
      scheduler: new FlowMatchEulerScheduler(),
    });
    const x0 = tf.zeros([2, 1, 2, 2, 4]) as LatentVideo;
    const { latents } = await pipeline.generate({
      prompt: ['ab', 'abcd'],
      guidanceScale: 3,
      numSteps: 1,
      latentShape: [1, 2, 2],
      noise: x0,
    });
    expect(model.calls.length).toBe(1);
    expect(model.calls[0]!.shape).toEqual([4, 1, 2, 2, 4]);
    expect(model.calls[0]!.textFirst).toEqual([3, 5, 1, 1]);
    // Euler, one step from sigma 1 to 0: x1 = x0 - v; v = 1 + 3 (3 - 1) = 7 and 1 + 3 (5 - 1) = 13.
    const v = await latents.array();
    expect(v[0]![0]![0]![0]![0]).toBeCloseTo(-7, 5);
    expect(v[1]![0]![0]![0]![0]).toBeCloseTo(-13, 5);
    expect(await classifierFreeGuidance(tf.scalar(1), tf.scalar(3), 3).data()).toEqual(new Float32Array([7]));

    model.calls.length = 0;
    const neg = await pipeline.generate({
      prompt: 'ab',
      negativePrompt: 'xyz',
      guidanceScale: 2,
      numSteps: 1,
      latentShape: [1, 2, 2],
    });
    expect(model.calls[0]!.textFirst).toEqual([3, 4]);
    model.calls.length = 0;
    const single = await pipeline.generate({
      prompt: 'ab',
      guidanceScale: 1,
      numSteps: 2,
      latentShape: [1, 2, 2],
    });
    expect(model.calls.map((k) => k.shape[0])).toEqual([1, 1]);
    tf.dispose([x0, latents, neg.latents, single.latents]);
  });

  it("passes the text mask only with maskText (Wan's DiT attends over the zero padding)", async () => {
    const model = new StubModel(4, (x) => tf.mul(x, 0));
    const wanLike = new WanPipeline({
      model,
      textEncoder: lengthEncoder,
      scheduler: new FlowMatchEulerScheduler(),
    });
    const a = await wanLike.generate({ prompt: 'x', numSteps: 1, latentShape: [1, 1, 1] });
    expect(model.calls[0]!.maskShape).toBeUndefined();
    const masked = new WanPipeline({
      model,
      textEncoder: lengthEncoder,
      scheduler: new FlowMatchEulerScheduler(),
      maskText: true,
    });
    const b = await masked.generate({ prompt: 'x', numSteps: 1, latentShape: [1, 1, 1] });
    expect(model.calls[1]!.maskShape).toEqual([2, 3]);
    tf.dispose([a.latents, b.latents]);
  });

  it('image-to-video: 16 noisy + 4 mask + 16 latent = 36 channels, laid out as Wan does', async () => {
    const vae = new WanVAE(
      { dim: 4, zDim: 16, dimMult: [1, 2, 2, 2], numResBlocks: 1 },
      { seed: 3, base: 'tiny' },
    );
    let seen: tf.Tensor | undefined;
    const model = new StubModel(16, (x, _t, c) => {
      seen?.dispose();
      seen = tf.keep(tf.clone(c.image!.latent));
      return tf.mul(x, 0.5);
    });
    const pipeline = new WanPipeline({
      model,
      vae,
      textEncoder: lengthEncoder,
      scheduler: new FlowMatchEulerScheduler(),
    });
    const image = new Generator(4).uniform([1, 16, 16, 3], -1, 1);
    const tokens = tf.ones([1, 5, 7]) as tf.Tensor3D;
    const out = await pipeline.imageToVideo({
      prompt: 'a red circle',
      image,
      imageTokens: tokens,
      frames: 9,
      height: 16,
      width: 16,
      numSteps: 2,
      guidanceScale: 4,
      decode: false,
    });
    expect(out.latents.shape).toEqual([1, 3, 2, 2, 16]);
    const call = model.calls[0]!;
    expect(call.shape[4]! + call.imageShape![4]!).toBe(36);
    expect(call.imageShape).toEqual([2, 3, 2, 2, 20]);
    expect(call.tokensShape).toEqual([2, 5, 7]);
    // The condition: mask channels then the VAE latent of (first frame, 8 zero frames); same for both branches.
    const cond = seen as tf.Tensor;
    const mask = (await tf.slice(cond, [0, 0, 0, 0, 0], [1, -1, -1, -1, 4]).array()) as number[][][][][];
    expect(mask[0]!.map((f) => f[0]![0]!)).toEqual([
      [1, 1, 1, 1],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    const video = tf.concat(
      [tf.reshape(image, [1, 1, 16, 16, 3]), tf.zeros([1, 8, 16, 16, 3])],
      1,
    ) as tf.Tensor5D;
    const y = vae.encode(video);
    const got = tf.slice(cond, [0, 0, 0, 0, 4], [1, -1, -1, -1, -1]);
    expect((await tf.max(tf.abs(tf.sub(got, y))).data())[0]).toBeLessThan(1e-5);
    const other = tf.slice(cond, [1, 0, 0, 0, 0], [1, -1, -1, -1, -1]);
    expect(await other.data()).toEqual(await tf.slice(cond, [0, 0, 0, 0, 0], [1, -1, -1, -1, -1]).data());
    const fm = firstFrameMask(2, 3, 1, 1);
    expect(fm.shape).toEqual([2, 3, 1, 1, 4]);
    tf.dispose([out.latents, image, tokens, video, y, got, other, fm, cond]);
    vae.dispose();
  });

  it('reports progress after every step (step, total, sigma, timestep, elapsed, the latent)', async () => {
    const model = new StubModel(4, (x) => tf.mul(x, 0.1));
    const pipeline = new WanPipeline({ model, scheduler: new FlowMatchEulerScheduler({ shift: 3 }) });
    const seen: Array<Omit<SamplingProgress, 'latent'> & { shape: number[] }> = [];
    const cond = text();
    const { latents, schedule } = await pipeline.generate({
      conditioning: cond,
      guidanceScale: 1,
      numSteps: 5,
      latentShape: [1, 2, 2],
      onProgress: ({ latent, ...p }) => {
        seen.push({ ...p, shape: [...latent.shape] });
      },
    });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    expect(seen.every((p) => p.total === 5)).toBe(true);
    expect(seen.map((p) => p.sigma)).toEqual(schedule.sigmas.slice(1));
    expect(seen.map((p) => p.timestep)).toEqual(schedule.timesteps);
    expect(seen.every((p, i) => i === 0 || p.elapsedMs >= seen[i - 1]!.elapsedMs)).toBe(true);
    expect(seen[0]!.shape).toEqual([1, 1, 2, 2, 4]);
    tf.dispose([latents, cond.text]);
  });

  it('leaks no tensors across repeated sampling (text encoder, CFG, UniPC, VAE decode)', async () => {
    const tok = WordTokenizer.fromPrompts(['a red circle'], { textLen: 16 });
    const textEncoder = new TransformerTextEncoder({ tokenizer: tok });
    const vae = new WanVAE('test', { seed: 1 });
    const model = new StubModel(4, (x, _t, c) => tf.add(tf.mul(x, 0.3), tf.mean(c.text)));
    const pipeline = new WanPipeline({ model, vae, textEncoder });
    const run = async () => {
      const r = await pipeline.generate({
        prompt: 'a red circle',
        frames: 5,
        height: 8,
        width: 8,
        numSteps: 3,
        seed: 1,
      });
      expect(r.frames?.shape).toEqual([1, 5, 8, 8, 3]);
      return [r.latents, r.frames];
    };
    await assertNoLeak(run, { label: 'WanPipeline.generate', iterations: 2 });
    const a = await pipeline.generate({
      prompt: 'a red circle',
      latentShape: [1, 1, 1],
      numSteps: 3,
      seed: 5,
      decode: false,
    });
    const b = await pipeline.generate({
      prompt: 'a red circle',
      latentShape: [1, 1, 1],
      numSteps: 3,
      seed: 5,
      decode: false,
    });
    expect(await a.latents.data()).toEqual(await b.latents.data());
    tf.dispose([a.latents, b.latents]);
    textEncoder.dispose();
    vae.dispose();
  });

  it('refuses bad inputs with clear errors', async () => {
    const model = new StubModel(16, (x) => x);
    const pipeline = new WanPipeline({ model, textEncoder: lengthEncoder });
    const cond = text();
    await expect(pipeline.generate({ prompt: 'x', frames: 16, height: 64, width: 64 })).rejects.toThrow(
      /frame count must be 1 \+ 4k.*got 16/,
    );
    await expect(pipeline.generate({ prompt: 'x', frames: 17, height: 60, width: 64 })).rejects.toThrow(
      /multiples of 8/,
    );
    const vae4 = new WanVAE('test');
    expect(() => new WanPipeline({ model, vae: vae4 })).toThrow(
      /VAE's latents have 4 channels but the model reads 16/,
    );
    const withVae = new WanPipeline({
      model: new StubModel(4, (x) => x),
      vae: vae4,
      textEncoder: lengthEncoder,
    });
    await expect(withVae.generate({ prompt: 'x', frames: 16, height: 16, width: 16 })).rejects.toThrow(
      /1 \+ 4k.*got 16/,
    );
    const wrongNoise = tf.zeros([1, 1, 2, 2, 4]) as LatentVideo;
    await expect(
      pipeline.generate({ prompt: 'x', latentShape: [1, 2, 2], noise: wrongNoise }),
    ).rejects.toThrow(/noise: expected \[1, 1, 2, 2, 16\], got \[1, 1, 2, 2, 4\]/);
    await expect(
      sampleLatents({
        model,
        scheduler: new FlowMatchEulerScheduler(),
        schedule: new FlowMatchEulerScheduler().schedule(2),
        initial: wrongNoise,
        conditioning: cond,
      }),
    ).rejects.toThrow(/initial latents: expected \[B, F, H, W, 16\].*\[1, 1, 2, 2, 4\]/);
    await expect(
      pipeline.generate({ prompt: 'x', latentShape: [1, 2, 2], guidanceScale: -1 }),
    ).rejects.toThrow(/guidanceScale: expected a finite number in \[0/);
    await expect(
      pipeline.generate({ prompt: ['x', 'y'], negativePrompt: ['a', 'b', 'c'], latentShape: [1, 2, 2] }),
    ).rejects.toThrow(/negativePrompt: expected 1 or 2 prompts/);
    await expect(
      pipeline.generate({ prompt: 'x', latentShape: [1, 2, 2], image: tf.zeros([1, 16, 16, 3]) }),
    ).rejects.toThrow(/image condition needs the VAE/);
    await expect(
      pipeline.generate({
        prompt: 'x',
        latentShape: [1, 2, 2],
        imageCondition: tf.zeros([1, 2, 2, 2, 20]) as LatentVideo,
      }),
    ).rejects.toThrow(/image condition: expected \[1, 1, 2, 2, 4 \+ C\].*\[1, 2, 2, 2, 20\]/);
    await expect(
      new WanPipeline({ model }).generate({ prompt: 'x', latentShape: [1, 2, 2] }),
    ).rejects.toThrow(/prompts need a text encoder/);
    await expect(
      withVae.generate({ prompt: 'x', frames: 5, height: 16, width: 16, image: tf.zeros([1, 16, 16, 4]) }),
    ).rejects.toThrow(/image: expected the first frame \[B, H, W, 3\]/);
    expect(() => new WanPipeline({} as never)).toThrow(InvalidArgumentError);
    vae4.dispose();
    tf.dispose([wrongNoise, cond.text]);
  });

  it("checks the schedule's timesteps before the first step: sigmas in their place are refused", async () => {
    const model = new StubModel(4, (x) => tf.mul(x, 0));
    const scheduler = new FlowMatchEulerScheduler();
    const good = scheduler.schedule(3);
    // A schedule whose timesteps were left as sigmas (the model would read an almost clean latent).
    const sigmaTimesteps = { ...good, timesteps: good.sigmas.slice(1) as unknown as Timestep[] };
    const initial = tf.zeros([1, 1, 2, 2, 4]) as LatentVideo;
    const cond = text();
    await expect(
      sampleLatents({ model, scheduler, schedule: sigmaTimesteps, initial, conditioning: cond }),
    ).rejects.toThrow(/schedule\.timesteps: timesteps look like sigmas: got \[0\.6666\d*, 0\.3333\d*, 0\]/);
    expect(model.calls.length).toBe(0);
    const short = { ...good, timesteps: good.timesteps.slice(1) };
    await expect(
      sampleLatents({ model, scheduler, schedule: short, initial, conditioning: cond }),
    ).rejects.toThrow(/schedule\.timesteps: expected numSteps = 3 timesteps \(one per step\), got 2/);
    // guidedVelocity takes any form of timesteps and repeats them for the two branches.
    const batched = { text: tf.zeros([2, 3, 2]) as tf.Tensor3D };
    const v = guidedVelocity(model, initial, new Float32Array([500]), cond, batched, 2);
    expect(model.calls.at(-1)!.timesteps).toEqual([500, 500]);
    tf.dispose([initial, cond.text, batched.text, v]);
  });
});
