/**
 * Precomputed text embeddings instead of a text encoder: the umT5 states the PRFL reference's
 * preprocessing saves per clip (.npy, [L, D] or [1, L, D], float32 or float16), or a safetensors file,
 * padded with zeros or truncated to `textLen` as Wan's DiT does with its context. The mask is read from a
 * mask file when there is one; otherwise a row is real when it holds any non-zero value (Wan's states are
 * cut to the prompt's length, so stored rows are real and zero rows are padding).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, nodeImport, openSafetensors, type SafetensorsInput } from '@prfl/tensor';
import type { PromptEmbeddings, PromptEncoder } from './encoder.js';
import { type NpyArray, parseNpy, readNpyFile } from './npy.js';

/** Where one prompt's embeddings are: a .npy or .safetensors path (Node), or the file's bytes. */
export type EmbeddingSource = string | Uint8Array;

export interface PrecomputedEntry {
  embeddings: EmbeddingSource;
  /** Optional mask ([L] or [1, L], 1 = real token) in the same formats. */
  mask?: EmbeddingSource;
}

export interface PrecomputedTextEncoderOptions {
  /** Sequence length to pad / truncate to (Wan: 512). */
  textLen: number;
  /** Expected width D (umT5-XXL: 4096); checked when given, else taken from the first file read. */
  textDim?: number;
  /** Prompt -> its embedding file(s). */
  entries?:
    | ReadonlyMap<string, EmbeddingSource | PrecomputedEntry>
    | Readonly<Record<string, EmbeddingSource | PrecomputedEntry>>;
  /** Tensor name inside safetensors files (default: the only tensor, or `context` / `prompt_embeds`). */
  tensorName?: string;
}

function isSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[8] === 0x7b; // 8-byte length, then the JSON header's '{'
}

async function readSource(src: EmbeddingSource, what: string, tensorName?: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  let name = what;
  if (typeof src === 'string') {
    name = src;
    if (src.endsWith('.npy')) return readNpyFile(src);
    const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
    try {
      bytes = new Uint8Array(await fs.readFile(src));
    } catch (e) {
      throw new InvalidArgumentError(`${src}: cannot read (${(e as Error).message})`);
    }
  } else if (src instanceof Uint8Array) bytes = src;
  else throw new InvalidArgumentError(`${what}: expected a file path or the file's bytes, got ${typeof src}`);
  if (!isSafetensors(bytes)) return parseNpy(bytes, name);
  const file = await openSafetensors(bytes as SafetensorsInput, { name });
  try {
    let key = tensorName;
    if (key === undefined) {
      if (file.names.length === 1) key = file.names[0];
      else key = ['context', 'prompt_embeds', 'text', 'mask'].find((k) => file.has(k));
    }
    if (key === undefined) {
      throw new InvalidArgumentError(
        `${name}: holds ${file.names.length} tensors (${file.names.join(', ')}); pass tensorName`,
      );
    }
    const t = await file.readTensor(key);
    try {
      return { descr: 'safetensors', shape: [...t.shape], data: Float32Array.from(await t.data()) };
    } finally {
      t.dispose();
    }
  } finally {
    await file.close();
  }
}

/** [L, D] rows of an embedding array ([L, D] or [1, L, D]). */
function asRows(a: NpyArray, what: string): { l: number; d: number } {
  const s = a.shape;
  if (s.length === 2) return { l: s[0] as number, d: s[1] as number };
  if (s.length === 3 && s[0] === 1) return { l: s[1] as number, d: s[2] as number };
  throw new InvalidArgumentError(
    `${what}: expected text embeddings [L, D] or [1, L, D], got [${s.join(', ')}]`,
  );
}

/**
 * One prompt's precomputed embeddings as conditioning: text [1, textLen, D] (zero-padded or truncated)
 * and mask [1, textLen].
 */
export async function loadPrecomputedText(
  source: EmbeddingSource | PrecomputedEntry,
  options: { textLen: number; textDim?: number; tensorName?: string },
): Promise<PromptEmbeddings> {
  const { textLen } = options;
  if (!Number.isInteger(textLen) || textLen < 1) {
    throw new InvalidArgumentError(
      `loadPrecomputedText: textLen must be a positive integer, got ${String(textLen)}`,
    );
  }
  const entry: PrecomputedEntry =
    typeof source === 'string' || source instanceof Uint8Array ? { embeddings: source } : source;
  const what = typeof entry.embeddings === 'string' ? entry.embeddings : 'text embeddings';
  const arr = await readSource(entry.embeddings, what, options.tensorName);
  const { l, d } = asRows(arr, what);
  if (options.textDim !== undefined && d !== options.textDim) {
    throw new InvalidArgumentError(`${what}: embeddings are ${d} wide, expected textDim ${options.textDim}`);
  }
  const keep = Math.min(l, textLen);
  const text = new Float32Array(textLen * d);
  text.set(arr.data.subarray(0, keep * d));
  const mask = new Float32Array(textLen);
  if (entry.mask !== undefined) {
    const mwhat = typeof entry.mask === 'string' ? entry.mask : 'mask';
    const m = await readSource(entry.mask, mwhat);
    const ml =
      m.shape.length === 1 ? m.shape[0] : m.shape.length === 2 && m.shape[0] === 1 ? m.shape[1] : undefined;
    if (ml !== l) {
      throw new InvalidArgumentError(
        `${mwhat}: expected a mask [${l}] or [1, ${l}] for ${l} embedding rows, got [${m.shape.join(', ')}]`,
      );
    }
    for (let i = 0; i < keep; i++) mask[i] = (m.data[i] as number) !== 0 ? 1 : 0;
    // Zero the rows the mask excludes, as Wan's cut-and-pad context would have them.
    for (let i = 0; i < keep; i++) if (mask[i] === 0) text.fill(0, i * d, (i + 1) * d);
  } else {
    for (let i = 0; i < keep; i++) {
      let any = false;
      for (let j = 0; j < d && !any; j++) any = text[i * d + j] !== 0;
      mask[i] = any ? 1 : 0;
    }
  }
  return { text: tf.tensor3d(text, [1, textLen, d]), mask: tf.tensor2d(mask, [1, textLen]) };
}

/** A PromptEncoder that looks each prompt up in a table of precomputed embedding files. */
export class PrecomputedTextEncoder implements PromptEncoder {
  readonly textLen: number;
  private dim: number | undefined;
  private readonly entries = new Map<string, EmbeddingSource | PrecomputedEntry>();
  private readonly tensorName: string | undefined;

  constructor(options: PrecomputedTextEncoderOptions) {
    if (!Number.isInteger(options.textLen) || options.textLen < 1) {
      throw new InvalidArgumentError(
        `PrecomputedTextEncoder: textLen must be a positive integer, got ${String(options.textLen)}`,
      );
    }
    this.textLen = options.textLen;
    this.dim = options.textDim;
    this.tensorName = options.tensorName;
    const e = options.entries;
    if (e !== undefined)
      for (const [k, v] of e instanceof Map ? e : Object.entries(e)) this.entries.set(k, v);
  }

  /** D; known once given or once a file has been read. */
  get textDim(): number {
    if (this.dim === undefined) {
      throw new InvalidArgumentError(
        'PrecomputedTextEncoder: textDim is unknown until a file is read; pass options.textDim',
      );
    }
    return this.dim;
  }

  /** Adds or replaces a prompt's embedding file(s). */
  set(prompt: string, source: EmbeddingSource | PrecomputedEntry): void {
    this.entries.set(prompt, source);
  }

  /** The prompts it knows. */
  prompts(): string[] {
    return [...this.entries.keys()];
  }

  async encode(prompts: readonly string[]): Promise<PromptEmbeddings> {
    if (!Array.isArray(prompts) || prompts.length === 0) {
      throw new InvalidArgumentError('PrecomputedTextEncoder.encode: expected a non-empty array of prompts');
    }
    const parts: PromptEmbeddings[] = [];
    try {
      for (const p of prompts) {
        const src = this.entries.get(p);
        if (src === undefined) {
          const known = this.prompts();
          throw new InvalidArgumentError(
            `PrecomputedTextEncoder: no embeddings for the prompt ${JSON.stringify(p)} (${known.length} known${known.length ? `, e.g. ${JSON.stringify(known[0])}` : ''})`,
          );
        }
        const e = await loadPrecomputedText(src, {
          textLen: this.textLen,
          ...(this.dim !== undefined ? { textDim: this.dim } : {}),
          ...(this.tensorName !== undefined ? { tensorName: this.tensorName } : {}),
        });
        this.dim ??= e.text.shape[2];
        parts.push(e);
      }
      return {
        text: tf.concat(
          parts.map((e) => e.text),
          0,
        ) as tf.Tensor3D,
        mask: tf.concat(
          parts.map((e) => e.mask),
          0,
        ) as tf.Tensor2D,
      };
    } finally {
      for (const e of parts) tf.dispose([e.text, e.mask]);
    }
  }
}
