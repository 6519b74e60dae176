/**
 * Labelled videos in the PyTorch reference's data layout (HY-Video-PRFL: .list files of meta JSONs with
 * float32 .npy arrays, see @prfl/datasets' io/reference.ts), read into the tensors the training
 * commands use: channels-last latents [N, F', H', W', C], text states [N, L, D] padded with zeros to one
 * length, the prompts, and the two labels of a judged video (motion quality = physics AND human,
 * prompt adherence = text_alignment). This is what `prfl export --to reference` writes, and what the
 * reference's preprocessing writes.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type ReferenceClip,
  type ReferenceReadOptions,
  readReferenceLatent,
  readReferenceList,
  readReferenceText,
} from '@prfl/datasets';
import { formatShape, type LatentVideo } from '@prfl/tensor';
import { UsageError } from './errors.js';

/** What the reader checks the arrays against (the models' sizes); unchecked when left out. */
export interface ReferenceDataExpectation {
  /** Channels-last latent of one clip [F', H', W', C]; a null entry accepts any size on that axis. */
  latentShape?: ReadonlyArray<number | null>;
  /** Width D of the text states. */
  textDim?: number;
  /** Pad every clip's text states to this many tokens (default: the longest clip's); longer is an error. */
  textLength?: number;
}

/** The clips of the lists, in list order. The caller disposes `latents` and `text`. */
export interface ReferenceData {
  /** Normalised latents, channels-last [N, F', H', W', C]. */
  latents: LatentVideo;
  /** Text states of each clip's short caption [N, L, D], zero-padded to one length L. */
  text: tf.Tensor3D;
  /** Each clip's short caption (or `prompt`); '' when the meta has none. */
  prompts: string[];
  /** Motion quality: physics_quality AND human_quality (a missing label counts as 0, as in the reference). */
  motionGood: (0 | 1)[];
  /** text_alignment. */
  adherent: (0 | 1)[];
  /** Each clip's source_id. */
  ids: string[];
}

/** "meta (clip "id")", as the datasets readers name a clip. */
function clipName(clip: ReferenceClip): string {
  return `${clip.listedAt !== undefined ? `${clip.listedAt}: ` : ''}${clip.metaPath} (clip ${JSON.stringify(clip.id)})`;
}

function checkExpectation(expect: ReferenceDataExpectation): void {
  const s = expect.latentShape;
  if (s !== undefined && (s.length !== 4 || s.some((d) => d !== null && !(Number.isInteger(d) && d > 0)))) {
    throw new UsageError(
      `readReferenceData: latentShape must be [F', H', W', C] (positive integers, null for any), got ${JSON.stringify(s)}`,
    );
  }
  for (const k of ['textDim', 'textLength'] as const) {
    const v = expect[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new UsageError(`readReferenceData: ${k} must be a positive integer, got ${String(v)}`);
    }
  }
}

/** "[2, 4, 4, 4]" with "any" for the free axes. */
function formatExpected(shape: ReadonlyArray<number | null>): string {
  return `[${shape.map((d) => (d === null ? 'any' : String(d))).join(', ')}]`;
}

/**
 * Reads every clip of `lists` (one or several .list files, concatenated in order; a meta listed twice
 * is read once). Relative paths resolve as @prfl/datasets resolves them: against the file naming them,
 * then the list's folder, then `options.roots` (default the current folder).
 *
 * @throws UsageError naming the meta JSON (and the list line) of a clip whose latent or text states do
 *   not have the expected shape, with the shape expected and the shape found; a clip without text
 *   states; lists without clips. Errors of @prfl/datasets (a missing file, a malformed meta or .npy)
 *   name the file too.
 */
export async function readReferenceData(
  lists: readonly string[],
  expect: ReferenceDataExpectation = {},
  options: ReferenceReadOptions = {},
): Promise<ReferenceData> {
  if (!Array.isArray(lists) || lists.length === 0) {
    throw new UsageError('readReferenceData: expected one or more .list files (one meta JSON path per line)');
  }
  checkExpectation(expect);
  const clips = await readReferenceList(lists, options);
  if (clips.length === 0) {
    throw new UsageError(`${lists.join(', ')}: no clips listed; expected one meta JSON path per line`);
  }
  const n = clips.length;
  let shape: number[] | undefined;
  let shapeFrom = '';
  let latentData: Float32Array | undefined;
  const texts: Array<{ tokens: number; data: Float32Array }> = [];
  let dim = expect.textDim;
  let dimFrom = expect.textDim !== undefined ? 'the model’s' : '';
  const prompts: string[] = [];
  const motionGood: (0 | 1)[] = [];
  const adherent: (0 | 1)[] = [];
  const ids: string[] = [];
  for (const [i, clip] of clips.entries()) {
    const latent = await readReferenceLatent(clip.latentPath);
    const want = shape ?? expect.latentShape;
    if (
      want !== undefined &&
      (want.length !== 4 || want.some((d, a) => d !== null && d !== latent.shape[a]))
    ) {
      throw new UsageError(
        `${clipName(clip)}: latent ${clip.latentPath}: expected [F', H', W', C] = ${formatExpected(want)} (${shape === undefined ? 'the model’s' : shapeFrom}), found ${formatShape(latent.shape)} (stored as [1, C, F', H', W'] = [1, ${latent.shape[3]}, ${latent.shape.slice(0, 3).join(', ')}])`,
      );
    }
    if (shape === undefined) {
      shape = latent.shape;
      shapeFrom = `the first clip’s, ${JSON.stringify(clip.id)}`;
      latentData = new Float32Array(n * latent.data.length);
    }
    (latentData as Float32Array).set(latent.data, i * latent.data.length);

    if (clip.textPath === undefined) {
      throw new UsageError(
        `${clipName(clip)}: no text states; expected textshort_path (with short_caption) or text_en_path (with prompt)`,
      );
    }
    const text = await readReferenceText(clip.textPath);
    const [tokens, width] = text.shape as [number, number];
    if (dim !== undefined && width !== dim) {
      throw new UsageError(
        `${clipName(clip)}: text states ${clip.textPath}: expected [L, D] with D = ${dim} (${dimFrom}), found ${formatShape(text.shape)}`,
      );
    }
    if (dim === undefined) {
      dim = width;
      dimFrom = `the first clip’s, ${JSON.stringify(clip.id)}`;
    }
    if (expect.textLength !== undefined && tokens > expect.textLength) {
      throw new UsageError(
        `${clipName(clip)}: text states ${clip.textPath}: expected at most ${expect.textLength} tokens (the model’s text length), found ${formatShape(text.shape)}`,
      );
    }
    texts.push({ tokens, data: text.data });
    prompts.push(clip.prompt ?? '');
    motionGood.push(clip.labels.motionQuality === 1 ? 1 : 0);
    adherent.push(clip.labels.textAlignment === 1 ? 1 : 0);
    ids.push(clip.id);
  }
  const length = expect.textLength ?? Math.max(...texts.map((t) => t.tokens));
  const d = dim as number;
  const textData = new Float32Array(n * length * d);
  // Zero padding after each clip's tokens: what the embedded text encoder emits at padding positions.
  for (const [i, t] of texts.entries()) textData.set(t.data, i * length * d);
  const [f, h, w, c] = shape as [number, number, number, number];
  const latents = tf.tensor5d(latentData as Float32Array, [n, f, h, w, c]) as LatentVideo;
  const text = tf.tensor3d(textData, [n, length, d]);
  return { latents, text, prompts, motionGood, adherent, ids };
}
