import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { CorruptFileError } from '../src/errors.js';
import {
  type ByteSource,
  decodeRaw,
  dtypeByteSize,
  openSafetensors,
  SAFETENSORS_DTYPES,
} from '../src/safetensors/index.js';
import { parseStrictJson } from '../src/safetensors/json.js';

/** A safetensors file from a header text and data bytes; `length` overrides the stored header length. */
function file(header: string, data: Uint8Array | number = 0, length?: number | bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(length ?? json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

async function corrupt(bytes: Uint8Array, message: RegExp | string): Promise<void> {
  const err = await openSafetensors(bytes, { name: 'f.st' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CorruptFileError);
  if (typeof message === 'string') expect((err as Error).message).toBe(message);
  else expect((err as Error).message).toMatch(message);
}

const t = (dtype: string, shape: unknown, offsets: unknown): string =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

describe('safetensors header validation', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(() => shutdownBackend());

  it('accepts minimal, padded and lenient-but-valid headers', async () => {
    for (const header of ['{}', '{}      ', ' \n{ }\t', '{"__metadata__":null}', '{"__metadata__":{}}']) {
      const st = await openSafetensors(file(header));
      expect(st.names).toEqual([]);
    }
    // Unknown extra fields are ignored (as the official reader does); zero-sized tensors may share offsets.
    const st = await openSafetensors(
      file(
        `{"b":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4],"extra":1},"a":${t('I32', [], [0, 4])},"c":${t('U8', [0], [4, 4])}}`,
        new Uint8Array([1, 0, 0, 0]),
      ),
    );
    expect(st.names).toEqual(['a', 'b', 'c']);
    expect(st.metadata).toBeUndefined();
    const b = await st.readTensor('b');
    expect(b.shape).toEqual([0, 5]);
    b.dispose();
  });

  it('rejects impossible header lengths without reading or allocating them', async () => {
    await corrupt(
      new Uint8Array(5),
      'f.st: expected at least 8 bytes (the header length of a safetensors file), got a file of 5 bytes',
    );
    await corrupt(
      file('{}', 0, 100),
      'f.st: header length is 100 bytes but the file has only 2 bytes after the 8-byte length (truncated or corrupt)',
    );
    await corrupt(
      file('{}', 0, 2n ** 63n),
      /header length is 9223372036854775808 bytes, more than the limit of 100000000 bytes/,
    );
    await corrupt(file('{}', 0, 2n ** 64n - 1n), /header length is 18446744073709551615 bytes/);
    // A source claiming to be 1 TB with a 200 MB header: refused before any large read.
    const reads: number[] = [];
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, 200_000_000n, true);
    const huge: ByteSource = {
      size: 2 ** 40,
      read: async (offset, length) => {
        reads.push(length);
        return offset === 0 ? prefix.slice(0, length) : new Uint8Array(length);
      },
    };
    await expect(openSafetensors(huge)).rejects.toThrow(/more than the limit of 100000000 bytes/);
    await expect(openSafetensors(file('{}      '), { maxHeaderBytes: 4 })).rejects.toThrow(
      /more than the limit of 4 bytes/,
    );
    expect(reads).toEqual([8]);
  });

  it('rejects headers that are not UTF-8 JSON objects', async () => {
    const bad = file('{}');
    bad[9] = 0xff;
    await corrupt(bad, 'f.st: expected a UTF-8 JSON header, got bytes that are not valid UTF-8');
    await corrupt(file('{"a":'), /f\.st: header is not valid JSON: unexpected end of input at character 5/);
    await corrupt(file('{"a":1,}'), /expected a string key, got '}'/);
    await corrupt(file('{} x'), /unexpected 'x' after the JSON value/);
    await corrupt(file('{}\0\0\0\0\0\0'), /unexpected '\\u0000' after the JSON value/);
    await corrupt(file('[1,2]'), 'f.st: expected the header to be a JSON object, got an array of 2');
    await corrupt(file('"x"'), /got the string "x"/);
    await corrupt(file(`{"a":${'['.repeat(10000)}`), /nesting deeper than 64 levels/);
    await corrupt(
      file(`{"a":${t('F32', [1], [0, 4])},"a":${t('F32', [1], [4, 8])}}`, 8),
      /duplicate key "a" at character \d+/,
    );
  });

  it('rejects bad tensor entries, naming the tensor, the expectation and what arrived', async () => {
    const one = (entry: string, data = 4): Uint8Array => file(`{"w":${entry}}`, data);
    await corrupt(
      one('[]'),
      'f.st: expected tensor "w" to be an object {dtype, shape, data_offsets}, got an array of 0',
    );
    await corrupt(
      one(t('F17', [1], [0, 4])),
      /tensor "w" has dtype "F17", expected one of U64, I64, F64, F32/,
    );
    await corrupt(
      one('{"shape":[1],"data_offsets":[0,4]}'),
      'f.st: expected tensor "w" to have a string dtype, got nothing',
    );
    await corrupt(
      one(t('F32', 1, [0, 4])),
      'f.st: expected tensor "w" to have a shape array, got the number 1',
    );
    await corrupt(
      one(t('F32', [-1], [0, 4])),
      'f.st: expected tensor "w" shape[0] to be a non-negative integer, got the number -1',
    );
    await corrupt(
      one(t('F32', [1.0], [0, 4]).replace('[1]', '[1.0]')),
      /shape\[0\] to be a non-negative integer, got the number 1\.0/,
    );
    await corrupt(one(t('F32', [1], [0, 4]).replace('[1]', '[1e0]')), /got the number 1e0/);
    await corrupt(
      one(t('F32', ['1'], [0, 4])),
      /shape\[0\] to be a non-negative integer, got the string "1"/,
    );
    await corrupt(one(t('F32', [null], [0, 4])), /got null/);
    await corrupt(
      one(t('F32', [1], [0, 4]).replace('[1]', '[9007199254740993]')),
      'f.st: expected tensor "w" shape[0] to be at most 9007199254740991, got 9007199254740993',
    );
    await corrupt(
      one(t('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 4])),
      /shape \[1073741824, 1073741824, 1073741824\], whose size in bytes overflows/,
    );
    await corrupt(one(t('F64', [2 ** 50], [0, 4])), /whose size in bytes overflows/);
    await corrupt(
      one(t('F32', [1], [0])),
      'f.st: expected tensor "w" to have data_offsets [begin, end], got an array of 1',
    );
    await corrupt(one(t('F32', [1], [0, 4, 8])), /got an array of 3/);
    await corrupt(one(t('F32', [1], { begin: 0 })), /got an object/);
    await corrupt(
      one(t('F32', [1], [4, 0])),
      'f.st: tensor "w" has data_offsets [4, 0]: expected end >= begin',
    );
    await corrupt(
      one(t('F32', [1], [-4, 0])),
      /data_offsets\[0\] to be a non-negative integer, got the number -4/,
    );
    await corrupt(
      one(t('F32', [2, 3], [0, 20]), 20),
      'f.st: tensor "w" (F32, shape [2, 3]) needs 24 bytes, but its data_offsets [0, 20] span 20 bytes',
    );
  });

  it('requires the tensors to cover the data section exactly', async () => {
    await corrupt(
      file(`{"a":${t('F32', [1], [0, 4])},"b":${t('F32', [1], [2, 6])}}`, 8),
      'f.st: tensor "b" has data_offsets [2, 6], overlapping tensor "a" which ends at 4',
    );
    await corrupt(
      file(`{"a":${t('F32', [1], [0, 4])},"b":${t('F32', [1], [8, 12])}}`, 12),
      /tensor "b" starts at data offset 8, but the previous tensor ends at 4: bytes \[4, 8\) belong to no tensor/,
    );
    await corrupt(
      file(`{"a":${t('F32', [1], [0, 4])}}`, 3),
      'f.st: tensor "a" has data_offsets [0, 4], past the end of the data section (3 bytes; the file is truncated or the header is corrupt)',
    );
    await corrupt(
      file(`{"a":${t('F32', [1], [0, 4])}}`, 6),
      'f.st: the data section has 6 bytes but the tensors cover 4 bytes (2 trailing bytes belong to no tensor)',
    );
    await corrupt(file('{}', 1), /the data section has 1 bytes but the tensors cover 0 bytes/);
    await corrupt(
      file(`{"a":${t('F32', [1], [9007199254740000, 9007199254740004])}}`, 4),
      /tensor "a" starts at data offset 9007199254740000/,
    );
  });

  it('requires string -> string metadata', async () => {
    await corrupt(
      file('{"__metadata__":{"a":1}}'),
      'f.st: expected __metadata__["a"] to be a string, got the number 1',
    );
    await corrupt(
      file('{"__metadata__":["a"]}'),
      'f.st: expected __metadata__ to be an object of strings, got an array of 1',
    );
    await corrupt(file('{"__metadata__":{"a":"x","a":"y"}}'), /duplicate key "a"/);
    const st = await openSafetensors(
      file('{"__metadata__":{"__proto__":"p","k":"\\u00fc\\ud83d\\ude00\\n"}}'),
    );
    expect(Object.keys(st.metadata!)).toEqual(['__proto__', 'k']);
    expect(st.metadata!.k).toBe('ü😀\n');
    expect(Object.getPrototypeOf(st.metadata)).toBe(Object.prototype);
  });
});

describe('strict JSON parser', () => {
  it('parses JSON like JSON.parse, keeping number text and key order', () => {
    const v = parseStrictJson(
      ' {"b": [1, -2.5e3, 0.25, true, false, null], "a": "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041"} ',
    );
    expect(v).toBeInstanceOf(Map);
    const m = v as Map<string, unknown>;
    expect([...m.keys()]).toEqual(['b', 'a']);
    expect((m.get('b') as Array<{ text?: string }>).slice(0, 3).map((n) => n.text)).toEqual([
      '1',
      '-2.5e3',
      '0.25',
    ]);
    expect(m.get('a')).toBe('x"\\/\b\f\n\r\tA');
  });

  it('rejects what JSON.parse rejects, plus duplicate keys and lone surrogates', () => {
    for (const bad of [
      '',
      '{',
      '[1,]',
      '01',
      '1.',
      '-',
      '1e',
      '"a',
      '"\\x"',
      '"\\u12"',
      '"\t"',
      'nul',
      '{"a" 1}',
      '{"a":1 "b":2}',
    ]) {
      expect(() => JSON.parse(bad), bad).toThrow();
      expect(() => parseStrictJson(bad), bad).toThrow();
    }
    // JSON.parse accepts lone surrogates; UTF-8 (and the official reader) cannot represent them.
    for (const bad of ['"\\ud800"', '"\\udc00x"', '"\\ud800\\u0041"']) {
      expect(() => parseStrictJson(bad), bad).toThrow(/lone surrogate/);
    }
    expect(() => parseStrictJson('{"a":1,"a":2}')).toThrow(/duplicate key "a" at character 7/);
  });
});

describe('raw decoding of every dtype', () => {
  it('knows each dtype size', () => {
    expect(SAFETENSORS_DTYPES.map((d) => [d, dtypeByteSize(d)])).toEqual([
      ['U64', 8],
      ['I64', 8],
      ['F64', 8],
      ['F32', 4],
      ['U32', 4],
      ['I32', 4],
      ['BF16', 2],
      ['F16', 2],
      ['U16', 2],
      ['I16', 2],
      ['F8_E4M3', 1],
      ['F8_E5M2', 1],
      ['I8', 1],
      ['U8', 1],
      ['BOOL', 1],
    ]);
  });

  it('decodes float8 E4M3 (FN) and E5M2', () => {
    const e4m3 = decodeRaw({
      dtype: 'F8_E4M3',
      shape: [6],
      data: new Uint8Array([0x7e, 0x01, 0x38, 0xb8, 0x7f, 0x00]),
    });
    expect(Array.from(e4m3 as Float32Array)).toEqual([448, 2 ** -9, 1, -1, Number.NaN, 0]);
    const e5m2 = decodeRaw({
      dtype: 'F8_E5M2',
      shape: [5],
      data: new Uint8Array([0x7b, 0x7c, 0x3c, 0x01, 0xfe]),
    });
    expect(Array.from(e5m2 as Float32Array)).toEqual([
      57344,
      Number.POSITIVE_INFINITY,
      1,
      2 ** -16,
      Number.NaN,
    ]);
  });

  it('turns BOOL bytes into 0/1 and checks raw sizes', async () => {
    await initBackend({ backend: 'cpu' });
    expect(
      Array.from(decodeRaw({ dtype: 'BOOL', shape: [3], data: new Uint8Array([0, 2, 255]) }) as Uint8Array),
    ).toEqual([0, 1, 1]);
    expect(() => decodeRaw({ dtype: 'F32', shape: [2], data: new Uint8Array(4) })).toThrow(
      'decodeRaw: F32 shape [2] needs 8 bytes, got 4 bytes',
    );
    expect(tf.memory().numTensors).toBe(0);
    await shutdownBackend();
  });
});
