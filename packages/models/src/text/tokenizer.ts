/**
 * A deterministic word-level tokenizer for the embedded world's prompts ("a red circle bouncing left to
 * right"): lowercase, split on anything that is not a letter, look each word up in a fixed vocabulary,
 * end with [EOS], pad with [PAD] to `textLen`. Unknown words become [UNK]. The vocabulary is a word list
 * given in, or learned from prompts (sorted alphabetically, so the prompt order does not matter).
 *
 * Like umT5 in Wan, every prompt ends in an end token, so even the empty (negative) prompt has one real
 * position and attention over it is never empty.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@prfl/tensor';

export const PAD_TOKEN = '[PAD]';
export const UNK_TOKEN = '[UNK]';
export const EOS_TOKEN = '[EOS]';
/** Ids of the special tokens: [PAD] = 0, [UNK] = 1, [EOS] = 2; words follow from 3. */
export const SPECIAL_TOKENS: readonly string[] = Object.freeze([PAD_TOKEN, UNK_TOKEN, EOS_TOKEN]);
export const PAD_ID = 0;
export const UNK_ID = 1;
export const EOS_ID = 2;

/** One tokenized prompt. */
export interface TokenizedPrompt {
  /** `textLen` ids: the words, [EOS], then [PAD]. */
  ids: number[];
  /** `textLen` entries, 1 for real tokens (words and [EOS]), 0 for padding. */
  mask: number[];
  /** Real tokens (words kept + 1 for [EOS]). */
  length: number;
  /** Words that did not fit in textLen - 1 and were dropped. */
  truncated: number;
  /** Words not in the vocabulary (mapped to [UNK]), in order. */
  unknown: string[];
}

/** A batch as tensors: ids int32 [B, textLen], mask float32 [B, textLen]. The caller disposes them. */
export interface TokenizedBatch {
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
}

/** Lowercases and splits on non-letters (any script's letters count; digits and punctuation split). */
export function splitWords(text: string): string[] {
  if (typeof text !== 'string') {
    throw new InvalidArgumentError(`prompt: expected a string, got ${text === null ? 'null' : typeof text}`);
  }
  return text
    .toLowerCase()
    .split(/[^\p{L}]+/u)
    .filter((w) => w.length > 0);
}

export interface WordTokenizerOptions {
  /** The words of the vocabulary, in id order (after the special tokens); duplicates are an error. */
  words: readonly string[];
  /** Length every prompt is padded or truncated to (Wan: 512; the tiny world: 16). */
  textLen: number;
}

/** The word-level tokenizer. */
export class WordTokenizer {
  readonly textLen: number;
  /** Every token in id order: the special tokens, then the words. */
  readonly vocabulary: readonly string[];
  private readonly index: ReadonlyMap<string, number>;

  constructor(options: WordTokenizerOptions) {
    const { words, textLen } = options;
    if (!Number.isInteger(textLen) || textLen < 1) {
      throw new InvalidArgumentError(
        `WordTokenizer: textLen must be a positive integer, got ${String(textLen)}`,
      );
    }
    if (!Array.isArray(words))
      throw new InvalidArgumentError('WordTokenizer: words must be an array of strings');
    const index = new Map<string, number>(SPECIAL_TOKENS.map((t, i) => [t, i]));
    words.forEach((w, i) => {
      if (typeof w !== 'string' || splitWords(w).length !== 1 || splitWords(w)[0] !== w) {
        throw new InvalidArgumentError(
          `WordTokenizer: words[${i}] = ${JSON.stringify(w)} is not a lowercase word of letters (what splitWords produces)`,
        );
      }
      if (index.has(w))
        throw new InvalidArgumentError(`WordTokenizer: words[${i}] = ${JSON.stringify(w)} appears twice`);
      index.set(w, index.size);
    });
    this.textLen = textLen;
    this.index = index;
    this.vocabulary = Object.freeze([...SPECIAL_TOKENS, ...words]);
  }

  /**
   * A tokenizer whose vocabulary is every word of `prompts` (optionally only those seen `minCount` times),
   * sorted alphabetically: the same set of prompts in any order gives the same ids.
   */
  static fromPrompts(
    prompts: Iterable<string>,
    options: { textLen: number; minCount?: number },
  ): WordTokenizer {
    const counts = new Map<string, number>();
    for (const p of prompts) for (const w of splitWords(p)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const min = options.minCount ?? 1;
    const words = [...counts].filter(([, n]) => n >= min).map(([w]) => w);
    words.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return new WordTokenizer({ words, textLen: options.textLen });
  }

  /** Number of tokens (special tokens included). */
  get vocabSize(): number {
    return this.vocabulary.length;
  }

  /** The words (no special tokens), in id order. */
  get words(): string[] {
    return this.vocabulary.slice(SPECIAL_TOKENS.length);
  }

  /** The id of a token, or [UNK]'s. */
  idOf(token: string): number {
    return this.index.get(token) ?? UNK_ID;
  }

  /** Tokenizes one prompt: words (truncated to textLen - 1), [EOS], padding. */
  tokenize(prompt: string): TokenizedPrompt {
    const words = splitWords(prompt);
    const kept = words.slice(0, this.textLen - 1);
    const ids = kept.map((w) => this.idOf(w));
    const unknown = kept.filter((w) => !this.index.has(w));
    ids.push(EOS_ID);
    const length = ids.length;
    while (ids.length < this.textLen) ids.push(PAD_ID);
    const mask = ids.map((_, i) => (i < length ? 1 : 0));
    return { ids, mask, length, truncated: words.length - kept.length, unknown };
  }

  /** The words of ids (specials and padding dropped; [UNK] kept), joined by spaces. */
  decode(ids: readonly number[]): string {
    return ids
      .filter((id) => id !== PAD_ID && id !== EOS_ID)
      .map((id) => this.vocabulary[id] ?? UNK_TOKEN)
      .join(' ');
  }

  /** A batch of prompts as tensors. */
  tokenizeBatch(prompts: readonly string[]): TokenizedBatch {
    if (!Array.isArray(prompts) || prompts.length === 0) {
      throw new InvalidArgumentError('tokenizeBatch: expected a non-empty array of prompts');
    }
    const rows = prompts.map((p) => this.tokenize(p));
    const ids = tf.tensor2d(
      rows.flatMap((r) => r.ids),
      [rows.length, this.textLen],
      'int32',
    );
    const mask = tf.tensor2d(
      rows.flatMap((r) => r.mask),
      [rows.length, this.textLen],
      'float32',
    );
    return { ids, mask };
  }

  /** The vocabulary and textLen as JSON (for checkpoints). */
  toJSON(): { words: string[]; textLen: number } {
    return { words: this.words, textLen: this.textLen };
  }
}
