import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { CorruptFileError, InvalidArgumentError } from '../src/errors.js';
import {
  type ByteSource,
  blobSource,
  bytesSource,
  decodeRaw,
  loadedDtype,
  loadSafetensors,
  openSafetensors,
  rawToTensor,
  type SafetensorsDtype,
} from '../src/safetensors/index.js';
import { backendsUnderTest } from '../src/testing/backends.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));

interface ExpectedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  write: 'tf' | 'raw';
  raw_hex: string;
  source_bits?: number[];
  values_bits?: number[];
  values?: Array<number | string>;
  values_f64?: string[];
}
interface ExpectedFile {
  metadata: Record<string, string> | null;
  order: string[];
  size: number;
  tensors: Record<string, ExpectedTensor>;
}
interface Expected {
  files: Record<string, ExpectedFile>;
}

const expected = JSON.parse(await readFile(`${FIXTURES}expected.json`, 'utf8')) as Expected;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function f32Bits(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

/** Whether every expected integer fits int32 (what tfjs can hold). */
function fitsInt32(t: ExpectedTensor): boolean {
  return (t.values ?? []).every((v) => {
    const n = BigInt(v);
    return n >= BigInt(INT32_MIN) && n <= BigInt(INT32_MAX);
  });
}

describe.each(backendsUnderTest())('safetensors fixtures on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  for (const [file, spec] of Object.entries(expected.files)) {
    it(`reads ${file} exactly (written by PyTorch)`, async () => {
      const before = tf.memory().numTensors;
      const st = await openSafetensors(`${FIXTURES}${file}`);
      try {
        expect(st.names).toEqual(spec.order);
        expect(st.metadata).toEqual(spec.metadata ?? undefined);
        expect(st.source.size).toBe(spec.size);
        for (const [name, want] of Object.entries(spec.tensors)) {
          const info = st.info(name);
          expect(info.dtype).toBe(want.dtype);
          expect(info.shape).toEqual(want.shape);
          const raw = await st.readRaw(name);
          expect(hex(raw.data)).toBe(want.raw_hex);
          const decoded = decodeRaw(raw);
          if (want.values_bits) {
            expect(decoded).toBeInstanceOf(want.dtype === 'F64' ? Float64Array : Float32Array);
            if (want.dtype !== 'F64') expect(f32Bits(decoded as Float32Array)).toEqual(want.values_bits);
            else expect(Array.from(decoded as Float64Array)).toEqual(want.values_f64?.map(Number));
          } else {
            const got = Array.from(decoded as ArrayLike<number | bigint>, (v) => String(v));
            expect(got).toEqual(want.values?.map(String));
          }
          const shouldLoad = want.values === undefined || fitsInt32(want);
          if (!shouldLoad) {
            await expect(st.readTensor(name)).rejects.toThrow(InvalidArgumentError);
            await expect(st.readTensor(name)).rejects.toThrow(
              new RegExp(`tensor "${name}" \\(${want.dtype}\\): element \\d+ is \\d+`),
            );
            continue;
          }
          const t = await st.readTensor(name);
          expect(t.dtype).toBe(loadedDtype(want.dtype));
          expect(t.shape).toEqual(want.shape);
          const data = await t.data();
          if (want.values_bits) expect(f32Bits(data as Float32Array)).toEqual(want.values_bits);
          else expect(Array.from(data as ArrayLike<number>)).toEqual(want.values?.map(Number));
          t.dispose();
        }
      } finally {
        await st.close();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('loads all or selected tensors with loadSafetensors and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const all = await loadSafetensors(`${FIXTURES}f32.safetensors`);
    expect(Object.keys(all).sort()).toEqual([...expected.files['f32.safetensors']!.order].sort());
    const some = await loadSafetensors(`${FIXTURES}bf16.safetensors`, { names: ['ties', 'weight', 'ties'] });
    expect(Object.keys(some)).toEqual(['ties', 'weight']);
    expect(f32Bits((await some.ties!.data()) as Float32Array)).toEqual(
      expected.files['bf16.safetensors']!.tensors.ties!.values_bits,
    );
    for (const t of [...Object.values(all), ...Object.values(some)]) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('disposes what it loaded when a later tensor fails (I64 out of int32 range)', async () => {
    const before = tf.memory().numTensors;
    await expect(
      loadSafetensors(`${FIXTURES}mixed.safetensors`, { names: ['f16', 'i64', 'i64_big'] }),
    ).rejects.toThrow(/tensor "i64_big" \(I64\): element 0 is 2147483648, outside the int32 range/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rawToTensor converts raw tensors the same way', async () => {
    const t = rawToTensor({ dtype: 'BF16', shape: [2], data: new Uint8Array([0x80, 0x3f, 0x00, 0xc0]) });
    expect(Array.from(await t.data())).toEqual([1.0, -2.0]);
    t.dispose();
  });
});

describe('safetensors sources', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(() => shutdownBackend());

  const file = `${FIXTURES}bf16.safetensors`;
  const want = expected.files['bf16.safetensors']!.tensors.weight!;

  async function checkWeight(source: Parameters<typeof openSafetensors>[0]): Promise<void> {
    const st = await openSafetensors(source);
    const t = await st.readTensor('weight');
    expect(f32Bits((await t.data()) as Float32Array)).toEqual(want.values_bits);
    t.dispose();
    expect(st.metadata).toEqual({ format: 'pt' });
    await st.close();
  }

  it('reads from a path, a Uint8Array, an ArrayBuffer, a Blob, a File and a fetch Response', async () => {
    const bytes = new Uint8Array(await readFile(file));
    await checkWeight(file);
    await checkWeight(bytes);
    await checkWeight(bytes.slice().buffer);
    await checkWeight(new Blob([bytes]));
    await checkWeight(new File([bytes], 'weights.safetensors'));
    await checkWeight(new Response(bytes));
    await checkWeight(blobSource(new Blob([bytes]), 'named'));
  });

  it('reads only the header on open and only the requested byte range per tensor', async () => {
    const bytes = new Uint8Array(await readFile(`${FIXTURES}f32.safetensors`));
    const reads: Array<[number, number]> = [];
    const inner = bytesSource(bytes, 'counted');
    let closed = 0;
    const source: ByteSource = {
      size: inner.size,
      name: 'counted',
      read(offset, length) {
        reads.push([offset, length]);
        return inner.read(offset, length);
      },
      async close() {
        closed++;
      },
    };
    const st = await openSafetensors(source);
    const headerLength = st.header.headerByteLength;
    expect(reads).toEqual([
      [0, 8],
      [8, headerLength],
    ]);
    const info = st.info('conv3d.weight');
    const t = await st.readTensor('conv3d.weight');
    t.dispose();
    expect(reads[2]).toEqual([8 + headerLength + info.dataOffsets[0], info.byteLength]);
    expect(reads.length).toBe(3);
    await st.close();
    await st.close();
    expect(closed).toBe(1);
    await expect(st.readRaw('weight')).rejects.toThrow(/after close/);
  });

  it('names the file and lists close names for an unknown tensor', async () => {
    const st = await openSafetensors(`${FIXTURES}f32.safetensors`);
    const message = await st.readTensor('conv3d.weigth').then(
      () => '',
      (e: Error) => {
        expect(e).toBeInstanceOf(InvalidArgumentError);
        return e.message;
      },
    );
    expect(message).toContain(
      'f32.safetensors: no tensor named "conv3d.weigth" (10 available, e.g. "conv3d.weight"',
    );
    expect(() => st.info('nope')).toThrow(InvalidArgumentError);
    expect(st.has('bias')).toBe(true);
    expect(st.has('nope')).toBe(false);
    await st.close();
    await expect(loadSafetensors(`${FIXTURES}f32.safetensors`, { names: ['bias', 'nope'] })).rejects.toThrow(
      /no tensor named "nope"/,
    );
  });

  it('rejects missing files, non-ok responses and unsupported inputs clearly', async () => {
    await expect(openSafetensors(`${FIXTURES}missing.safetensors`)).rejects.toThrow(
      /missing\.safetensors: cannot open the file/,
    );
    await expect(openSafetensors(FIXTURES)).rejects.toThrow(InvalidArgumentError);
    await expect(
      openSafetensors(new Response('nope', { status: 404, statusText: 'Not Found' })),
    ).rejects.toThrow(/expected a successful response, got HTTP 404 Not Found/);
    await expect(openSafetensors(42 as never)).rejects.toThrow(/expected a file path, Uint8Array/);
  });

  it('reports a file that is shorter than its source claims as corrupt', async () => {
    const bytes = new Uint8Array(await readFile(`${FIXTURES}f32.safetensors`));
    const lying: ByteSource = {
      size: bytes.length,
      read: async (offset, length) => bytes.subarray(offset, Math.min(offset + length, bytes.length - 10)),
    };
    const st = await openSafetensors(lying, { name: 'lying' });
    await expect(st.readRaw('weight')).rejects.toThrow(CorruptFileError);
    await expect(st.readRaw('weight')).rejects.toThrow(/lying: expected 48 bytes at offset \d+, got 38/);
  });
});
