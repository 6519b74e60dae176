import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { InvalidArgumentError } from '../src/errors.js';
import {
  decodeRaw,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  openSafetensors,
  type SafetensorsDtype,
  saveSafetensors,
  saveShardedSafetensors,
  serializeSafetensors,
  type TensorInput,
} from '../src/safetensors/index.js';
import { backendsUnderTest } from '../src/testing/backends.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));
/** Files for the python cross-check: make-safetensors-fixtures.py --verify <this folder>. */
const PY_CHECK = fileURLToPath(new URL('../test-results/safetensors-ts/', import.meta.url));

interface ExpectedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  write: 'tf' | 'raw';
  raw_hex: string;
  source_bits?: number[];
  values?: Array<number | string>;
  values_f64?: string[];
}
interface ExpectedFile {
  metadata: Record<string, string> | null;
  tensors: Record<string, ExpectedTensor>;
}
const expected = JSON.parse(await readFile(`${FIXTURES}expected.json`, 'utf8')) as {
  files: Record<string, ExpectedFile>;
};

function f32FromBits(bits: readonly number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

/** Builds the inputs the python writer was given: tf tensors (with the stored dtype requested) or raw data. */
function inputsFor(spec: ExpectedFile): {
  tensors: Record<string, TensorInput>;
  dtypes: Record<string, SafetensorsDtype>;
} {
  const tensors: Record<string, TensorInput> = {};
  const dtypes: Record<string, SafetensorsDtype> = {};
  for (const [name, t] of Object.entries(spec.tensors)) {
    if (t.write === 'raw') {
      let data: ArrayBufferView;
      if (t.dtype === 'F64') data = Float64Array.from(t.values_f64!.map(Number));
      else if (t.dtype === 'I64') data = BigInt64Array.from(t.values!.map((v) => BigInt(v)));
      else if (t.dtype === 'U64') data = BigUint64Array.from(t.values!.map((v) => BigInt(v)));
      else if (t.dtype === 'U32') data = Uint32Array.from(t.values!.map(Number));
      else if (t.dtype === 'U16') data = Uint16Array.from(t.values!.map(Number));
      else if (t.dtype === 'I16') data = Int16Array.from(t.values!.map(Number));
      else if (t.dtype === 'I8') data = Int8Array.from(t.values!.map(Number));
      else data = Uint8Array.from(Buffer.from(t.raw_hex, 'hex'));
      tensors[name] = { dtype: t.dtype, shape: t.shape, data };
    } else if (t.source_bits) {
      tensors[name] = tf.tensor(f32FromBits(t.source_bits), t.shape, 'float32');
      dtypes[name] = t.dtype;
    } else if (t.dtype === 'BOOL') {
      tensors[name] = tf.tensor(Uint8Array.from(t.values!.map(Number)), t.shape, 'bool');
    } else {
      tensors[name] = tf.tensor(Int32Array.from(t.values!.map(Number)), t.shape, 'int32');
      dtypes[name] = t.dtype;
    }
  }
  return { tensors, dtypes };
}

function disposeAll(tensors: Record<string, TensorInput>): void {
  for (const t of Object.values(tensors)) if (t instanceof tf.Tensor) t.dispose();
}

const ascii = (s: string): number[] => Array.from(new TextEncoder().encode(s));
const u64le = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0, 0, 0, 0];

describe.each(backendsUnderTest())('serializeSafetensors on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  for (const file of Object.keys(expected.files)) {
    it(`writes ${file} byte-identical to the reference writer`, async () => {
      const spec = expected.files[file]!;
      const before = tf.memory().numTensors;
      const { tensors, dtypes } = inputsFor(spec);
      const bytes = await serializeSafetensors(tensors, { dtypes, metadata: spec.metadata ?? undefined });
      const want = new Uint8Array(await readFile(`${FIXTURES}${file}`));
      expect(Buffer.from(bytes).toString('hex')).toBe(Buffer.from(want).toString('hex'));
      // Insertion order does not matter: the layout is sorted.
      const reversed = Object.fromEntries(Object.entries(tensors).reverse());
      const again = await serializeSafetensors(reversed, { dtypes, metadata: spec.metadata ?? undefined });
      expect(Buffer.from(again).equals(Buffer.from(want))).toBe(true);
      disposeAll(tensors);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('matches the official crate test vectors (single tensor, empty, metadata only)', async () => {
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    const one = await serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data } });
    expect(Array.from(one)).toEqual([...u64le(64), ...ascii(header), ...new Uint8Array(data.buffer)]);
    // This JSON is 65 bytes: 7 spaces of padding keep the data 8-byte aligned.
    const aligned = await serializeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data } });
    expect(Array.from(aligned)).toEqual([
      ...u64le(72),
      ...ascii('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}'),
      ...ascii(' '.repeat(7)),
      ...new Uint8Array(data.buffer),
    ]);
    expect(Array.from(await serializeSafetensors({}))).toEqual([
      8,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...ascii('{}      '),
    ]);
    expect(Array.from(await serializeSafetensors({}, { metadata: { framework: 'pt' } }))).toEqual([
      ...u64le(40),
      ...ascii('{"__metadata__":{"framework":"pt"}}     '),
    ]);
  });

  it('stores float tensors as F32, F16, BF16 or F64 per file and per tensor, and reads them back', async () => {
    const x = tf.tensor([1.0009765625, -2.5, 65504, 1e-8, 3.3], [5]);
    const n = tf.tensor([1, -2, 300], [3], 'int32');
    const b = tf.tensor([true, false], [2], 'bool');
    const bytes = await serializeSafetensors(
      { x, y: x, n, b, n64: n, bu8: b },
      { dtype: 'F16', dtypes: { y: 'BF16', n64: 'I64', bu8: 'U8' } },
    );
    const st = await openSafetensors(bytes);
    expect(st.tensors.map((t) => [t.name, t.dtype])).toEqual([
      ['n64', 'I64'],
      ['n', 'I32'],
      ['y', 'BF16'],
      ['x', 'F16'],
      ['bu8', 'U8'],
      ['b', 'BOOL'],
    ]);
    const xs = await st.readTensor('x');
    expect(Array.from(await xs.data())).toEqual([1.0009765625, -2.5, 65504, 0, 3.30078125]);
    const ys = await st.readTensor('y');
    expect(Array.from(await ys.data())).toEqual([1, -2.5, 65536, 1.0011717677116394e-8, 3.296875]);
    const ns = await st.readTensor('n64');
    expect(ns.dtype).toBe('int32');
    expect(Array.from(await ns.data())).toEqual([1, -2, 300]);
    expect(Array.from(decodeRaw(await st.readRaw('n64')) as BigInt64Array)).toEqual([1n, -2n, 300n]);
    const bs = await st.readTensor('b');
    expect(bs.dtype).toBe('bool');
    expect(Array.from(await bs.data())).toEqual([1, 0]);
    tf.dispose([x, n, b, xs, ys, ns, bs]);
    const f64 = await serializeSafetensors({ x: tf.scalar(0.1) }, { dtype: 'F64' });
    const st64 = await openSafetensors(f64);
    expect(st64.info('x').dtype).toBe('F64');
    expect(Array.from(decodeRaw(await st64.readRaw('x')) as Float64Array)).toEqual([Math.fround(0.1)]);
  });

  it('rejects bad names, dtype requests, raw data and values that do not fit, naming the tensor', async () => {
    const before = tf.memory().numTensors;
    const f = tf.tensor([1, 2]);
    const i = tf.tensor([1, 256, -1], [3], 'int32');
    const bad = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
      await expect(p).rejects.toThrow(InvalidArgumentError);
      await expect(p).rejects.toThrow(re);
    };
    await bad(
      serializeSafetensors({ f }, { dtype: 'I32' as never }),
      /dtype: expected the stored dtype of float tensors/,
    );
    await bad(
      serializeSafetensors({ f }, { dtypes: { g: 'F16' } }),
      /dtypes: names tensor "g", which is not among/,
    );
    await bad(
      serializeSafetensors({ f }, { dtypes: { f: 'I32' } }),
      /dtypes\["f"\]: a float32 tensor can be stored as F32, F16, BF16, F64, got I32/,
    );
    await bad(serializeSafetensors({ f }, { dtypes: { f: 'X' as never } }), /dtypes\["f"\]: expected one of/);
    await bad(
      serializeSafetensors({ i }, { dtypes: { i: 'U8' } }),
      /tensor "i": element 1 is 256, which does not fit U8 \(0\.\.255\)/,
    );
    await bad(
      serializeSafetensors({ i }, { dtypes: { i: 'U64' } }),
      /element 2 is -1, which does not fit U64/,
    );
    await bad(serializeSafetensors({ __metadata__: f }), /reserved for the header's metadata/);
    await bad(serializeSafetensors({ 'a\uD800': f }), /lone surrogate/);
    await bad(
      serializeSafetensors({ f }, { metadata: { k: 1 as never } }),
      /metadata\["k"\]: expected a string, got number/,
    );
    await bad(
      serializeSafetensors({ r: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
      /tensor "r": F32 shape \[3\] needs 12 bytes \(3 elements\), got 8 bytes/,
    );
    await bad(
      serializeSafetensors({ r: { dtype: 'BF16', shape: [2], data: new Float32Array(1) } }),
      /expected data for BF16 to be a Uint8Array or Uint16Array, got Float32Array/,
    );
    await bad(
      serializeSafetensors({ r: { dtype: 'Q4' as never, shape: [1], data: new Uint8Array(1) } }),
      /expected dtype one of/,
    );
    await bad(
      serializeSafetensors({ r: { dtype: 'U8', shape: [-1], data: new Uint8Array(1) } }),
      /non-negative integers/,
    );
    await bad(
      serializeSafetensors(
        { r: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } },
        { dtypes: { r: 'I8' } },
      ),
      /a raw tensor is written in its own dtype U8/,
    );
    const str = tf.tensor(['a']);
    await bad(serializeSafetensors({ str }), /expected a float32, int32 or bool tensor, got dtype string/);
    str.dispose();
    const gone = tf.tensor([1]);
    gone.dispose();
    await bad(serializeSafetensors({ gone }), /tensor "gone": expected a live tensor, got a disposed one/);
    await bad(
      serializeSafetensors({ x: 3 as never }),
      /tensor "x": expected a tf.Tensor or \{dtype, shape, data\}/,
    );
    tf.dispose([f, i]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('accepts a Map and raw Uint8Array bytes for any dtype', async () => {
    const bits = new Uint16Array([0x3f80, 0xc000]);
    const bytes = await serializeSafetensors(
      new Map<string, TensorInput>([
        ['a', { dtype: 'BF16', shape: [2], data: bits }],
        ['b', { dtype: 'BF16', shape: [2], data: new Uint8Array(bits.buffer) }],
      ]),
    );
    const st = await openSafetensors(bytes);
    expect(Array.from(decodeRaw(await st.readRaw('a')) as Float32Array)).toEqual([1, -2]);
    expect(Array.from(decodeRaw(await st.readRaw('b')) as Float32Array)).toEqual([1, -2]);
  });
});

describe('float16 / bfloat16 rounding', () => {
  it('round-trips every float16 value and rounds halfway cases to even', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (f32BitsToF16Bits(f16BitsToF32Bits(h)) !== (isNan ? (h & 0x8000) | 0x7e00 : h)) wrong.push(h);
    }
    expect(wrong).toEqual([]);
    expect(f32BitsToF16Bits(0x3f801000)).toBe(0x3c00); // 1 + 2^-11: tie, even stays
    expect(f32BitsToF16Bits(0x3f803000)).toBe(0x3c02); // 1 + 3*2^-11: tie, odd rounds up
    expect(f32BitsToF16Bits(0x477ff000)).toBe(0x7c00); // 65520 -> inf
    expect(f32BitsToF16Bits(0x477fefff)).toBe(0x7bff); // just below -> 65504
    expect(f32BitsToF16Bits(0x33000000)).toBe(0x0000); // 2^-25: tie to even zero
    expect(f32BitsToF16Bits(0x33000001)).toBe(0x0001);
    expect(f32BitsToF16Bits(0x387fe000)).toBe(0x0400); // largest subnormal tie rounds up to smallest normal
  });

  it('bfloat16 keeps the upper half, rounding to nearest even', () => {
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80);
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82);
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80);
    expect(f32BitsToBf16Bits(0xff800000)).toBe(0xff80);
    expect(f32BitsToBf16Bits(0x7fc00000)).toBe(0x7fc0);
    expect(f32BitsToBf16Bits(0xffa00001)).toBe(0xffc0);
  });
});

describe('saveSafetensors', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    dir = await mkdtemp(join(tmpdir(), 'prfl-st-'));
  });
  afterAll(async () => {
    await shutdownBackend();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the same bytes as serializeSafetensors', async () => {
    const w = tf.randomNormal([16, 8]);
    const tensors = { w, step: tf.scalar(3, 'int32') };
    const path = join(dir, 'a.safetensors');
    const size = await saveSafetensors(path, tensors, { dtype: 'BF16', metadata: { step: '3' } });
    const file = new Uint8Array(await readFile(path));
    expect(size).toBe(file.length);
    expect(
      Buffer.from(file).equals(
        Buffer.from(await serializeSafetensors(tensors, { dtype: 'BF16', metadata: { step: '3' } })),
      ),
    ).toBe(true);
    tf.dispose(Object.values(tensors));
  });

  it('is atomic: a failure mid-write leaves the old file intact and no temporary file', async () => {
    const path = join(dir, 'b.safetensors');
    await writeFile(path, 'previous contents');
    const big = tf.tensor([1, 2, 999], [3], 'int32');
    // `a` (F32) is written first, then `z` fails its U8 range check half-way through the file.
    const a = tf.ones([1000]);
    await expect(saveSafetensors(path, { a, z: big }, { dtypes: { z: 'U8' } })).rejects.toThrow(
      /tensor "z": element 2 is 999/,
    );
    expect(await readFile(path, 'utf8')).toBe('previous contents');
    expect((await readdir(dir)).filter((f) => f.includes('b.safetensors'))).toEqual(['b.safetensors']);
    await expect(saveSafetensors(join(dir, 'no', 'such', 'dir', 'x.safetensors'), { a })).rejects.toThrow(
      /x\.safetensors: cannot create a file in .*no\/such\/dir/,
    );
    tf.dispose([a, big]);
  });
});

describe('files for the python cross-check', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(() => shutdownBackend());

  it(`writes ${PY_CHECK} (check with make-safetensors-fixtures.py --verify)`, async () => {
    await rm(PY_CHECK, { recursive: true, force: true });
    await mkdir(PY_CHECK, { recursive: true });
    // Deterministic pseudo-random float32 bit patterns over the whole range (NaNs, subnormals, infinities).
    let s = 12345;
    const next = (): number => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s;
    };
    const randomBits = Array.from({ length: 20000 }, next);
    const moderate = Array.from({ length: 4096 }, () => {
      const x = Math.fround(((next() / 2 ** 32) * 2 - 1) * 2 ** ((next() % 40) - 20));
      return new Uint32Array(new Float32Array([x]).buffer)[0]!;
    });
    const ints = Int32Array.from(
      { length: 64 },
      (_, i) => (i % 2 ? -1 : 1) * ((next() >>> 1) % (i < 32 ? 128 : 2 ** 31)),
    );
    const files: Record<
      string,
      { metadata: Record<string, string> | null; tensors: Record<string, unknown> }
    > = {};
    const tensors: Record<string, TensorInput> = {};
    const spec: Record<string, unknown> = {};
    const dtypes: Record<string, SafetensorsDtype> = {};
    for (const [name, bits, dtype] of [
      ['all_bits.f16', randomBits, 'F16'],
      ['all_bits.bf16', randomBits, 'BF16'],
      ['all_bits.f32', randomBits, 'F32'],
      ['all_bits.f64', randomBits, 'F64'],
      ['moderate.f16', moderate, 'F16'],
      ['moderate.bf16', moderate, 'BF16'],
    ] as const) {
      const shape = [bits.length / 16, 16];
      tensors[name] = tf.tensor(f32FromBits(bits), shape, 'float32');
      dtypes[name] = dtype;
      spec[name] = { dtype, shape, source_bits: bits };
    }
    for (const dtype of ['I32', 'I64', 'I16', 'I8'] as const) {
      const values = dtype === 'I32' || dtype === 'I64' ? ints : ints.subarray(0, 32);
      const name = `ints.${dtype.toLowerCase()}`;
      tensors[name] = tf.tensor(values, [values.length], 'int32');
      dtypes[name] = dtype;
      spec[name] = { dtype, shape: [values.length], values: Array.from(values) };
    }
    tensors.mask = tf.tensor([1, 0, 0, 1, 1], [5], 'bool');
    spec.mask = { dtype: 'BOOL', shape: [5], values: [1, 0, 0, 1, 1] };
    tensors['mask.u8'] = tf.tensor([1, 0, 1], [3], 'bool');
    dtypes['mask.u8'] = 'U8';
    spec['mask.u8'] = { dtype: 'U8', shape: [3], values: [1, 0, 1] };
    tensors.empty = tf.zeros([0, 4]);
    spec.empty = { dtype: 'F32', shape: [0, 4], source_bits: [] };
    const metadata = { format: 'pt', 'written by': '@prfl/tensor ✓' };
    await saveSafetensors(join(PY_CHECK, 'ts-written.safetensors'), tensors, { dtypes, metadata });
    files['ts-written.safetensors'] = { metadata, tensors: spec };

    // A sharded checkpoint (diffusers naming).
    const shardTensors: Record<string, TensorInput> = {};
    const shardSpec: Record<string, unknown> = {};
    for (let i = 0; i < 7; i++) {
      const bits = Array.from({ length: 256 }, () => moderate[next() % moderate.length]!);
      shardTensors[`blocks.${i}.weight`] = tf.tensor(f32FromBits(bits), [16, 16]);
      shardSpec[`blocks.${i}.weight`] = { dtype: 'BF16', shape: [16, 16], source_bits: bits };
    }
    const saved = await saveShardedSafetensors(join(PY_CHECK, 'sharded'), shardTensors, {
      dtype: 'BF16',
      maxShardBytes: 1100,
      prefix: 'diffusion_pytorch_model',
      metadata: { format: 'pt' },
    });
    expect(saved.files.length).toBe(4);
    const manifest = {
      files,
      sharded: { dir: 'sharded', index: saved.indexFile, tensors: shardSpec },
    };
    await writeFile(join(PY_CHECK, 'manifest.json'), JSON.stringify(manifest));
    disposeAll(tensors);
    disposeAll(shardTensors);
  });
});
