import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertNoLeak,
  backendsUnderTest,
  CorruptFileError,
  initBackend,
  InvalidArgumentError,
  serializeSafetensors,
  shutdownBackend,
} from '@prfl/tensor';
import {
  EOS_ID,
  loadPrecomputedText,
  loadTextEncoder,
  PAD_ID,
  parseNpy,
  PrecomputedTextEncoder,
  readNpyFile,
  serializeTextEncoder,
  splitWords,
  TransformerTextEncoder,
  UNK_ID,
  WordTokenizer,
} from '../src/text/index.js';

const TEXT_FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'text');
const fx = (name: string) => path.join(TEXT_FIXTURES, name);

const PROMPTS = [
  'a red circle bouncing left to right',
  'A blue square moving up, then down!',
  'two green triangles orbiting',
];

describe('WordTokenizer', () => {
  it('lowercases and splits on non-letters', () => {
    expect(splitWords('A Red-circle, 2x  bouncing!é')).toEqual(['a', 'red', 'circle', 'x', 'bouncing', 'é']);
    expect(splitWords('')).toEqual([]);
    expect(() => splitWords(3 as never)).toThrow(/prompt: expected a string/);
  });

  it('learns a sorted vocabulary, independent of prompt order, and tokenizes deterministically', () => {
    const a = WordTokenizer.fromPrompts(PROMPTS, { textLen: 8 });
    const b = WordTokenizer.fromPrompts([...PROMPTS].reverse(), { textLen: 8 });
    expect(a.vocabulary).toEqual(b.vocabulary);
    expect(a.vocabulary.slice(0, 3)).toEqual(['[PAD]', '[UNK]', '[EOS]']);
    expect(a.words).toEqual([...a.words].sort());
    const t = a.tokenize('A red circle bouncing');
    expect(t.ids).toEqual([
      a.idOf('a'),
      a.idOf('red'),
      a.idOf('circle'),
      a.idOf('bouncing'),
      EOS_ID,
      PAD_ID,
      PAD_ID,
      PAD_ID,
    ]);
    expect(t.mask).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(t.length).toBe(5);
    expect(a.decode(t.ids)).toBe('a red circle bouncing');
    expect(a.tokenize('A red circle bouncing')).toEqual(t);
  });

  it('maps unknown words to [UNK], truncates to textLen - 1 words plus [EOS], and keeps [EOS] for the empty prompt', () => {
    const tok = new WordTokenizer({ words: ['red', 'circle'], textLen: 4 });
    const t = tok.tokenize('purple circle spinning fast now');
    expect(t.ids).toEqual([UNK_ID, tok.idOf('circle'), UNK_ID, EOS_ID]);
    expect(t.unknown).toEqual(['purple', 'spinning']);
    expect(t.truncated).toBe(2);
    const empty = tok.tokenize('');
    expect(empty.ids).toEqual([EOS_ID, PAD_ID, PAD_ID, PAD_ID]);
    expect(empty.mask).toEqual([1, 0, 0, 0]);
    expect(() => new WordTokenizer({ words: ['red', 'red'], textLen: 4 })).toThrow(/appears twice/);
    expect(() => new WordTokenizer({ words: ['Red'], textLen: 4 })).toThrow(/not a lowercase word/);
    expect(() => new WordTokenizer({ words: [], textLen: 0 })).toThrow(/textLen must be a positive integer/);
  });
});

describe('.npy reader', () => {
  it('reads float32, float16, float64 (format 2.0) and masks written by NumPy', async () => {
    const f4 = await readNpyFile(fx('emb_f4.npy'));
    expect(f4.descr).toBe('<f4');
    expect(f4.shape).toEqual([1, 5, 8]);
    expect(f4.data[0]).toBe(-3);
    expect(f4.data[23]).toBe(23 * 0.25 - 3);
    const f2 = await readNpyFile(fx('emb_f2.npy'));
    expect(f2.shape).toEqual([3, 8]);
    expect(Array.from(f2.data.slice(0, 3))).toEqual([-1.5, -1.375, -1.25]);
    const f8 = await readNpyFile(fx('emb_f8_v2.npy'));
    expect(Array.from(f8.data)).toEqual([0, 1.5, 3, 4.5, 6, 7.5, 9, 10.5]);
    expect(Array.from((await readNpyFile(fx('mask_b1.npy'))).data)).toEqual([1, 1, 0, 1, 0]);
    expect(Array.from((await readNpyFile(fx('mask_i8.npy'))).data)).toEqual([1, 1, 1, 0, 0]);
  });

  it('refuses what it cannot read, saying why', async () => {
    await expect(readNpyFile(fx('fortran.npy'))).rejects.toThrow(/Fortran-order arrays are not supported/);
    await expect(readNpyFile(fx('big_endian.npy'))).rejects.toThrow(/unsupported .npy dtype '>f4'/);
    await expect(readNpyFile(fx('missing.npy'))).rejects.toThrow(/missing.npy: cannot read/);
    const bytes = new Uint8Array(readFileSync(fx('emb_f4.npy')));
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 4), 'cut.npy')).toThrow(CorruptFileError);
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 4), 'cut.npy')).toThrow(
      /truncated .npy data.*needs 160 bytes, the file has 156/,
    );
    expect(() => parseNpy(new TextEncoder().encode('hello world!'), 'x.npy')).toThrow(/not a .npy file/);
    const v9 = bytes.slice();
    v9[6] = 9;
    expect(() => parseNpy(v9, 'v9.npy')).toThrow(/unsupported .npy format version 9/);
  });
});

describe.each(backendsUnderTest())('text encoders on %s', (backend) => {
  let tok: WordTokenizer;
  let enc: TransformerTextEncoder;
  beforeAll(async () => {
    await initBackend({ backend });
    tok = WordTokenizer.fromPrompts(PROMPTS, { textLen: 16 });
    enc = new TransformerTextEncoder({ tokenizer: tok, config: 'tiny', seed: 1 });
  });
  afterAll(() => {
    enc.dispose();
    shutdownBackend();
  });

  it('encodes prompts to [B, textLen, dim] with the mask; padding rows are zero', async () => {
    expect(enc.textLen).toBe(16);
    expect(enc.textDim).toBe(32);
    const { text, mask } = enc.encode(['a red circle', '', 'unknown words here']);
    expect(text.shape).toEqual([3, 16, 32]);
    expect(mask.shape).toEqual([3, 16]);
    const m = await mask.array();
    expect(m[0]!.slice(0, 5)).toEqual([1, 1, 1, 1, 0]);
    expect(m[1]!.slice(0, 2)).toEqual([1, 0]);
    const rows = (await text.array()) as number[][][];
    rows.forEach((r, b) => {
      r.forEach((row, i) => {
        const zero = row.every((v) => v === 0);
        expect(zero).toBe(m[b]![i] === 0);
      });
    });
    tf.dispose([text, mask]);
  });

  it('depends only on the real tokens (padding and batch mates do not leak in)', async () => {
    const one = enc.encode(['a blue square moving']);
    const two = enc.encode(['a blue square moving', 'two green triangles orbiting up then down']);
    const a = await tf.slice(one.text, [0, 0, 0], [1, 5, 32]).data();
    const b = await tf.slice(two.text, [0, 0, 0], [1, 5, 32]).data();
    a.forEach((v, i) => {
      expect(v).toBeCloseTo(b[i] as number, 5);
    });
    tf.dispose([one.text, one.mask, two.text, two.mask]);
  });

  it('has gradients for every parameter and leaks nothing', async () => {
    const { ids, mask } = tok.tokenizeBatch(PROMPTS);
    const { grads, value } = tf.variableGrads(
      () => tf.sum(tf.square(enc.forward(ids, mask))) as tf.Scalar,
      enc.trainableVariables(),
    );
    expect(Object.keys(grads).length).toBe(enc.paramSpecs().length);
    tf.dispose([value, ...Object.values(grads)]);
    await assertNoLeak(() => enc.encode(PROMPTS), { label: 'text encoder' });
    tf.dispose([ids, mask]);
  });

  it('round-trips through a checkpoint with its vocabulary', async () => {
    const loaded = await loadTextEncoder(await serializeTextEncoder(enc));
    expect(loaded.tokenizer.vocabulary).toEqual(tok.vocabulary);
    const a = enc.encode(['a red circle']);
    const b = loaded.encode(['a red circle']);
    expect(Array.from(await a.text.data())).toEqual(Array.from(await b.text.data()));
    tf.dispose([a.text, a.mask, b.text, b.mask]);
    loaded.dispose();
  });

  it('PrecomputedTextEncoder pads, truncates and masks stored umT5-style states', async () => {
    const p = await loadPrecomputedText(fx('emb_f4.npy'), { textLen: 7 });
    expect(p.text.shape).toEqual([1, 7, 8]);
    // rows 3 and 4 are zero in the file: padding
    expect(Array.from(await p.mask.data())).toEqual([1, 1, 1, 0, 0, 0, 0]);
    const t = await p.text.data();
    expect(t[0]).toBe(-3);
    expect(t[8 * 5]).toBe(0);
    const cut = await loadPrecomputedText(
      { embeddings: fx('emb_f4.npy'), mask: fx('mask_b1.npy') },
      { textLen: 2 },
    );
    expect(cut.text.shape).toEqual([1, 2, 8]);
    expect(Array.from(await cut.mask.data())).toEqual([1, 1]);
    const masked = await loadPrecomputedText(
      { embeddings: fx('emb_f4.npy'), mask: fx('mask_b1.npy') },
      { textLen: 5 },
    );
    expect(Array.from(await masked.mask.data())).toEqual([1, 1, 0, 1, 0]);
    expect(Array.from((await masked.text.data()).slice(16, 24))).toEqual(new Array(8).fill(0));

    const st = await serializeSafetensors({ context: tf.ones([2, 8]) });
    const encP = new PrecomputedTextEncoder({
      textLen: 4,
      entries: { 'a red circle': fx('emb_f2.npy'), '': st },
    });
    const out = await encP.encode(['a red circle', '']);
    expect(out.text.shape).toEqual([2, 4, 8]);
    expect(encP.textDim).toBe(8);
    expect(Array.from(await out.mask.data())).toEqual([1, 1, 1, 0, 1, 1, 0, 0]);
    await expect(encP.encode(['nope'])).rejects.toThrow(/no embeddings for the prompt "nope" \(2 known/);
    await expect(loadPrecomputedText(fx('emb_f4.npy'), { textLen: 4, textDim: 16 })).rejects.toThrow(
      /8 wide, expected textDim 16/,
    );
    await expect(loadPrecomputedText(fx('mask_i8.npy'), { textLen: 4 })).rejects.toThrow(
      InvalidArgumentError,
    );
    tf.dispose([p.text, p.mask, cut.text, cut.mask, masked.text, masked.mask, out.text, out.mask]);
  });
});
