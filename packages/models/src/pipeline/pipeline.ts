/**
 * Text-to-video and image-to-video generation, as Wan2.1's generate() does it: prompts -> text
 * embeddings (and the negative prompt's, for classifier-free guidance), seeded noise of the latent's
 * shape, the denoising loop (sample.ts) with any Scheduler (default Wan's flow UniPC, 40 steps, shift 5),
 * then optionally the VAE decode. Image-to-video adds the first-frame condition (image-condition.ts) and
 * optional CLIP-like image tokens.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertFiniteInRange,
  type Conditioning,
  formatShape,
  Generator,
  InvalidArgumentError,
  type LatentVideo,
  type Schedule,
  type Scheduler,
  type VelocityModel,
} from '@prfl/tensor';
import { FlowUniPCScheduler } from '@prfl/schedulers';
import type { PromptEmbeddings, PromptEncoder } from '../text/encoder.js';
import { temporalCompression } from '../vae/config.js';
import type { WanVAE } from '../vae/model.js';
import { imageToVideoCondition } from './image-condition.js';
import { type SamplingProgress, sampleLatents } from './sample.js';

/** Wan2.1's compression, used for pixel sizes when the pipeline has no VAE. */
const WAN_TEMPORAL = 4;
const WAN_SPATIAL = 8;

export interface WanPipelineOptions {
  /** The generator: any VelocityModel (WanDiT, a stub, your own). */
  model: VelocityModel;
  /** Turns prompts into text conditioning (TransformerTextEncoder, PrecomputedTextEncoder, ...). */
  textEncoder?: PromptEncoder;
  /** Decodes latents to frames and encodes the i2v first frame. */
  vae?: WanVAE;
  /** Default: Wan's FlowUniPCScheduler (order 2, bh2), scheduled with `scheduleOptions` { shift: 5 }. */
  scheduler?: Scheduler;
  /** Options of scheduler.schedule(n, options); default { shift: 5 } for the default scheduler. */
  scheduleOptions?: object;
  /**
   * Pass the text encoder's mask to the model as `textMask` (default false). Wan's DiT attends over the
   * zero-padded text positions too, and its checkpoints were trained that way; the mask (which WanDiT
   * supports as an extension) hides them. Train and sample a model the same way.
   */
  maskText?: boolean;
}

export interface GenerateOptions {
  /** One prompt per video (a string is one video); or pass `conditioning`. */
  prompt?: string | readonly string[];
  /** Precomputed conditioning instead of prompts (text [B, L, D], optional mask, image). Not disposed. */
  conditioning?: Conditioning;
  /** The negative prompt(s) of the unconditional branch (default ''). */
  negativePrompt?: string | readonly string[];
  /** Precomputed unconditional conditioning instead of negative prompts. Not disposed. */
  negativeConditioning?: Conditioning;
  /** Classifier-free guidance scale g (default 5, Wan's; 1 = no guidance, one forward per step). */
  guidanceScale?: number;
  /** Sampling steps (default 40). */
  numSteps?: number;
  /** Video size in pixels: frames = 1 + 4k, height and width multiples of 8 ... */
  frames?: number;
  height?: number;
  width?: number;
  /** ... or the latent size [F', H', W'] directly. */
  latentShape?: readonly [number, number, number];
  /** Seed of the initial noise (default 0), or a generator. */
  seed?: number | string;
  generator?: Generator;
  /** Initial noise [B, F', H', W', C] instead of drawing it (not disposed). */
  noise?: LatentVideo;
  /** Decode the latents with the VAE (default: when the pipeline has one). */
  decode?: boolean;
  /** Image-to-video: the first frame [B, H, W, 3] or [B, 1, H, W, 3] in [-1, 1] (needs the VAE). Not disposed. */
  image?: tf.Tensor;
  /** Image-to-video with a precomputed condition [B, F', H', W', 4 + C] (mask + latent). Not disposed. */
  imageCondition?: LatentVideo;
  /** CLIP-like image tokens [B, Limg, Dimg] for models with an image embedding. Not disposed. */
  imageTokens?: tf.Tensor3D;
  onProgress?: (p: SamplingProgress) => void | Promise<void>;
}

/** What generate returns; the caller disposes latents and frames. */
export interface GenerationResult {
  /** The sample at sigma = 0, normalised latents [B, F', H', W', C]. */
  latents: LatentVideo;
  /** Decoded frames [B, F, H, W, 3] in [-1, 1], when decoded. */
  frames?: tf.Tensor5D;
  schedule: Schedule;
}

function asList(v: string | readonly string[], what: string): string[] {
  const list = typeof v === 'string' ? [v] : [...v];
  if (list.length === 0 || list.some((p) => typeof p !== 'string')) {
    throw new InvalidArgumentError(`${what}: expected a string or a non-empty array of strings`);
  }
  return list;
}

/** The text-to-video / image-to-video pipeline. */
export class WanPipeline {
  readonly model: VelocityModel;
  readonly textEncoder: PromptEncoder | undefined;
  readonly vae: WanVAE | undefined;
  readonly scheduler: Scheduler;
  readonly scheduleOptions: object | undefined;
  readonly maskText: boolean;

  constructor(options: WanPipelineOptions) {
    if (options?.model === undefined || typeof options.model.predictVelocity !== 'function') {
      throw new InvalidArgumentError('WanPipeline: options.model must be a VelocityModel (predictVelocity)');
    }
    this.model = options.model;
    this.textEncoder = options.textEncoder;
    this.vae = options.vae;
    if (this.vae !== undefined && this.vae.latentChannels !== this.model.latentChannels) {
      throw new InvalidArgumentError(
        `WanPipeline: the VAE's latents have ${this.vae.latentChannels} channels but the model reads ${this.model.latentChannels}`,
      );
    }
    this.scheduler = options.scheduler ?? new FlowUniPCScheduler();
    this.scheduleOptions =
      options.scheduleOptions ?? (options.scheduler === undefined ? { shift: 5 } : undefined);
    this.maskText = options.maskText ?? false;
  }

  /** Text-to-video. */
  textToVideo(options: Omit<GenerateOptions, 'image' | 'imageCondition'>): Promise<GenerationResult> {
    return this.generate(options);
  }

  /** Image-to-video: `image` (or `imageCondition`) is required. */
  imageToVideo(
    options: GenerateOptions & ({ image: tf.Tensor } | { imageCondition: LatentVideo }),
  ): Promise<GenerationResult> {
    if (options.image === undefined && options.imageCondition === undefined) {
      throw new InvalidArgumentError(
        'imageToVideo: pass options.image (the first frame) or options.imageCondition',
      );
    }
    return this.generate(options);
  }

  /** The latent shape [F', H', W'] of a request (validating pixel sizes). */
  latentShapeOf(
    options: Pick<GenerateOptions, 'frames' | 'height' | 'width' | 'latentShape'>,
  ): [number, number, number] {
    if (options.latentShape !== undefined) {
      const s = options.latentShape;
      if (!Array.isArray(s) || s.length !== 3 || s.some((d) => !Number.isInteger(d) || d < 1)) {
        throw new InvalidArgumentError(
          `latentShape: expected three positive integers [F', H', W'], got ${JSON.stringify(s)}`,
        );
      }
      return [s[0], s[1], s[2]];
    }
    const { frames, height, width } = options;
    if (frames === undefined || height === undefined || width === undefined) {
      throw new InvalidArgumentError('generate: give frames, height and width (pixels) or latentShape');
    }
    if (this.vae !== undefined) {
      const [f, h, w] = this.vae.latentShape(frames, height, width);
      return [f, h, w];
    }
    if (!Number.isInteger(frames) || frames < 1 || (frames - 1) % WAN_TEMPORAL !== 0) {
      throw new InvalidArgumentError(
        `frames: the frame count must be 1 + ${WAN_TEMPORAL}k (the VAE encodes the first frame alone, then chunks of ${WAN_TEMPORAL}), got ${frames}`,
      );
    }
    if (
      !Number.isInteger(height) ||
      !Number.isInteger(width) ||
      height % WAN_SPATIAL !== 0 ||
      width % WAN_SPATIAL !== 0
    ) {
      throw new InvalidArgumentError(
        `height and width must be multiples of ${WAN_SPATIAL}, got ${height}x${width}`,
      );
    }
    return [1 + (frames - 1) / WAN_TEMPORAL, height / WAN_SPATIAL, width / WAN_SPATIAL];
  }

  private async embed(prompts: string[]): Promise<PromptEmbeddings> {
    if (this.textEncoder === undefined) {
      throw new InvalidArgumentError(
        'generate: prompts need a text encoder (WanPipelineOptions.textEncoder); or pass conditioning',
      );
    }
    return this.textEncoder.encode(prompts);
  }

  /** Generates videos (text-to-video, or image-to-video with `image` / `imageCondition`). */
  async generate(options: GenerateOptions): Promise<GenerationResult> {
    const scale = options.guidanceScale ?? 5;
    assertFiniteInRange('guidanceScale', scale, 0);
    const numSteps = options.numSteps ?? 40;
    if (!Number.isInteger(numSteps) || numSteps < 1) {
      throw new InvalidArgumentError(`numSteps: expected a positive integer, got ${String(numSteps)}`);
    }
    const decode = options.decode ?? this.vae !== undefined;
    if (decode && this.vae === undefined)
      throw new InvalidArgumentError('generate: decode needs a VAE (WanPipelineOptions.vae)');
    const [lf, lh, lw] = this.latentShapeOf(options);
    const owned: tf.Tensor[] = [];
    try {
      // Conditional branch.
      let cond: Conditioning;
      if (options.conditioning !== undefined) {
        cond = { ...options.conditioning };
      } else {
        if (options.prompt === undefined)
          throw new InvalidArgumentError('generate: pass prompt or conditioning');
        const e = await this.embed(asList(options.prompt, 'prompt'));
        owned.push(e.text, e.mask);
        cond = this.maskText ? { text: e.text, textMask: e.mask } : { text: e.text };
      }
      const b = cond.text.shape[0];
      // Unconditional branch, for guidance.
      let uncond: Conditioning | undefined;
      if (scale !== 1) {
        if (options.negativeConditioning !== undefined) uncond = { ...options.negativeConditioning };
        else if (options.conditioning !== undefined && this.textEncoder === undefined) {
          throw new InvalidArgumentError(
            `guidanceScale ${scale} needs negativeConditioning (or a text encoder for negativePrompt); use guidanceScale 1 for no guidance`,
          );
        } else {
          let negatives = asList(options.negativePrompt ?? '', 'negativePrompt');
          if (negatives.length === 1 && b > 1) negatives = new Array<string>(b).fill(negatives[0] as string);
          if (negatives.length !== b) {
            throw new InvalidArgumentError(
              `negativePrompt: expected 1 or ${b} prompts (one per video), got ${negatives.length}`,
            );
          }
          const e = await this.embed(negatives);
          owned.push(e.text, e.mask);
          uncond = this.maskText ? { text: e.text, textMask: e.mask } : { text: e.text };
        }
      }
      // Image condition (i2v).
      let imageLatent = options.imageCondition;
      if (options.image !== undefined) {
        if (this.vae === undefined)
          throw new InvalidArgumentError(
            'generate: an image condition needs the VAE (WanPipelineOptions.vae)',
          );
        const frames = 1 + (lf - 1) * temporalCompression(this.vae.config);
        imageLatent = imageToVideoCondition(this.vae, options.image, options.frames ?? frames);
        owned.push(imageLatent);
      }
      if (imageLatent !== undefined) {
        if (
          imageLatent.rank !== 5 ||
          imageLatent.shape[0] !== b ||
          imageLatent.shape[1] !== lf ||
          imageLatent.shape[2] !== lh ||
          imageLatent.shape[3] !== lw
        ) {
          throw new InvalidArgumentError(
            `image condition: expected [${b}, ${lf}, ${lh}, ${lw}, 4 + C] for this video, got ${formatShape(imageLatent.shape)}`,
          );
        }
        const image = {
          latent: imageLatent,
          ...(options.imageTokens !== undefined ? { tokens: options.imageTokens } : {}),
        };
        cond = { ...cond, image };
        if (uncond !== undefined) uncond = { ...uncond, image };
      } else if (options.imageTokens !== undefined) {
        throw new InvalidArgumentError('imageTokens: only with an image condition (image or imageCondition)');
      }
      // Initial noise.
      const c = this.model.latentChannels;
      let noise = options.noise;
      if (noise !== undefined) {
        const want = [b, lf, lh, lw, c];
        if (noise.shape.join() !== want.join()) {
          throw new InvalidArgumentError(
            `noise: expected ${formatShape(want)}, got ${formatShape(noise.shape)}`,
          );
        }
      } else {
        const gen = options.generator ?? new Generator(options.seed ?? 0);
        noise = gen.normal<tf.Rank.R5>([b, lf, lh, lw, c]);
        owned.push(noise);
      }
      const schedule = this.scheduler.schedule(numSteps, this.scheduleOptions);
      const stepGenerator = (options.generator ?? new Generator(options.seed ?? 0)).derive('scheduler-noise');
      const { latents } = await sampleLatents({
        model: this.model,
        scheduler: this.scheduler,
        schedule,
        initial: noise,
        conditioning: cond,
        ...(uncond !== undefined ? { negative: uncond } : {}),
        guidanceScale: scale,
        generator: stepGenerator,
        ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
      });
      if (!decode) return { latents, schedule };
      try {
        return { latents, frames: (this.vae as WanVAE).decode(latents), schedule };
      } catch (e) {
        latents.dispose();
        throw e;
      }
    } finally {
      tf.dispose(owned);
    }
  }
}
