/**
 * A text encoder and a DiT as one VelocityModel, so that the two train together with @prfl/refl's SFT
 * trainer (text dropout, accumulation, clipping, checkpoints that resume exactly) as Wan's umT5 and DiT
 * never do but a generator learned from scratch must.
 *
 * The conditioning it reads carries *tokens*, not embeddings: `text` is the one-hot encoding of the
 * token ids [B, L, vocabulary] (`tokenConditioning`), which the text encoder turns into embeddings
 * [B, L, D] inside the forward pass, so its weights get gradients. The null conditioning of text dropout
 * is the one-hot of the empty prompt, so the encoder learns the unconditional embedding too. Once trained,
 * the two parts are used apart: the pipeline calls `textEncoder.encode(prompts)` and the DiT, which is
 * exactly what `predictVelocity` computes (the DiT gets no text mask; padding embeddings are zero).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TransformerTextEncoder, WanDiT } from '@prfl/models';
import {
  type Conditioning,
  formatShape,
  InvalidArgumentError,
  type LatentVideo,
  type TimestepOptions,
  type TimestepsLike,
  type VelocityModel,
} from '@prfl/tensor';

/** Prefixes of the two models' variables in `namedVariables` (and so in checkpoints). */
export const TEXT_PREFIX = 'text_encoder.';
export const DIT_PREFIX = 'dit.';

export class PromptedGenerator implements VelocityModel {
  readonly textEncoder: TransformerTextEncoder;
  readonly dit: WanDiT;
  readonly #vars: ReadonlyMap<string, tf.Variable>;

  constructor(textEncoder: TransformerTextEncoder, dit: WanDiT) {
    if (textEncoder.textDim !== dit.config.textDim || textEncoder.textLen !== dit.config.textLen) {
      throw new InvalidArgumentError(
        `PromptedGenerator: the text encoder makes [${textEncoder.textLen}, ${textEncoder.textDim}] embeddings, the DiT reads [${dit.config.textLen}, ${dit.config.textDim}]`,
      );
    }
    this.textEncoder = textEncoder;
    this.dit = dit;
    const vars = new Map<string, tf.Variable>();
    for (const [k, v] of textEncoder.namedVariables()) vars.set(TEXT_PREFIX + k, v);
    for (const [k, v] of dit.namedVariables()) vars.set(DIT_PREFIX + k, v);
    this.#vars = vars;
  }

  get latentChannels(): number {
    return this.dit.latentChannels;
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.#vars;
  }

  /** v for x at timesteps, with `conditioning.text` the one-hot tokens [B, L, vocabulary]. */
  predictVelocity(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options?: TimestepOptions,
  ): LatentVideo {
    const { textLen, vocabSize } = this.textEncoder.config;
    const t = conditioning?.text;
    if (!(t instanceof tf.Tensor) || t.rank !== 3 || t.shape[1] !== textLen || t.shape[2] !== vocabSize) {
      throw new InvalidArgumentError(
        `PromptedGenerator: conditioning.text must be one-hot tokens [B, ${textLen}, ${vocabSize}] (tokenConditioning), got ${t instanceof tf.Tensor ? formatShape(t.shape) : String(t)}`,
      );
    }
    return tf.tidy(() => {
      const ids = tf.cast(tf.argMax(t, 2), 'int32') as tf.Tensor2D;
      const mask = tf.cast(tf.notEqual(ids, 0), 'float32') as tf.Tensor2D;
      const text = this.textEncoder.forward(ids, mask);
      return this.dit.predictVelocity(x, timesteps, { text }, options);
    });
  }
}

/** The conditioning `PromptedGenerator` reads: one-hot token ids [B, L, vocabulary]. The caller disposes it. */
export function tokenConditioning(
  textEncoder: TransformerTextEncoder,
  prompts: readonly string[],
): Conditioning {
  const { ids, mask } = textEncoder.tokenizer.tokenizeBatch(prompts);
  mask.dispose();
  const text = tf.tidy(() => tf.cast(tf.oneHot(ids, textEncoder.config.vocabSize), 'float32')) as tf.Tensor3D;
  ids.dispose();
  return { text };
}
