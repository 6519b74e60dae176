import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CorruptFileError } from '@prfl/tensor';
import { encodeNpy, MAX_NPY_HEADER_BYTES, parseNpy, readNpy, writeNpy } from '../src/index.js';

const arrays = path.resolve(import.meta.dirname, '../fixtures/reference/arrays');
const expected = JSON.parse(readFileSync(path.join(arrays, 'expected.json'), 'utf8')) as Record<
  string,
  { descr: string; shape: number[]; values: number[] }
>;
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-npy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function asNumbers(data: ArrayLike<number | bigint>): number[] {
  return Array.from(data as ArrayLike<number>, (v) => Number(v));
}

describe('.npy files written by NumPy', () => {
  it.each(Object.keys(expected))('%s', async (name) => {
    const e = expected[name] as { descr: string; shape: number[]; values: number[] };
    const arr = await readNpy(path.join(arrays, `${name}.npy`));
    expect(arr.shape).toEqual(e.shape);
    const values = asNumbers(arr.data);
    if (
      name === 'f2' ||
      name === 'f4' ||
      name === 'bigendian' ||
      name === 'fortran3d' ||
      name === 'scalar' ||
      name === 'v2'
    ) {
      // float16 and float32 values as float32.
      expect(values).toEqual(Array.from(new Float32Array(e.values)));
    } else {
      expect(values).toEqual(e.values);
    }
  });

  it('reads bool bytes other than 0/1 as NumPy does: any nonzero byte is True (1)', async () => {
    // b1_raw.npy holds the bytes 1, 154, 0, 255 (a NumPy view of raw bytes as bool).
    const arr = await readNpy(path.join(arrays, 'b1_raw.npy'));
    expect(arr.dtype).toBe('|b1');
    expect(Array.from(arr.data as Uint8Array)).toEqual([1, 1, 0, 1]);
    expect(Array.from(arr.data as Uint8Array)).toEqual(expected.b1_raw?.values);
  });

  it('keeps dtypes: float16 upcast to float32, int64 as BigInt64Array, bool as 0/1', async () => {
    expect((await readNpy(path.join(arrays, 'f2.npy'))).data).toBeInstanceOf(Float32Array);
    expect((await readNpy(path.join(arrays, 'f2.npy'))).dtype).toBe('<f2');
    expect((await readNpy(path.join(arrays, 'i8.npy'))).data).toBeInstanceOf(BigInt64Array);
    expect((await readNpy(path.join(arrays, 'b1.npy'))).dtype).toBe('|b1');
    expect((await readNpy(path.join(arrays, 'bigendian.npy'))).dtype).toBe('<f4');
  });
});

describe('encodeNpy', () => {
  it('round-trips every dtype and writes headers NumPy accepts (64-byte aligned, newline-terminated)', () => {
    const cases: Array<[ArrayBufferView, number[], Parameters<typeof encodeNpy>[1]]> = [
      [new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], {}],
      [new Float64Array([0.1, 0.2]), [2], {}],
      [new Int32Array([-1, 7]), [1, 2], {}],
      [new BigInt64Array([-5n, 2n ** 40n]), [2], {}],
      [new Uint8Array([0, 1, 1]), [3], { dtype: '|b1' }],
      [new Uint8Array([9, 255]), [2], {}],
      [new Float32Array([1, -0.5, 65504, 2 ** -24]), [4], { dtype: '<f2' }],
      [new Float32Array([7]), [], {}],
      [new Float32Array([1, 2]), [2], { version: 2 }],
    ];
    for (const [data, shape, options] of cases) {
      const bytes = encodeNpy({ shape, data }, options);
      const major = bytes[6] as number;
      const headerEnd =
        major === 1
          ? 10 + (bytes[8] as number) + 256 * (bytes[9] as number)
          : 12 + new DataView(bytes.buffer).getUint32(8, true);
      expect(headerEnd % 64).toBe(0);
      expect(bytes[headerEnd - 1]).toBe(0x0a);
      const back = parseNpy(bytes);
      expect(back.shape).toEqual(shape);
      expect(asNumbers(back.data)).toEqual(asNumbers(data as unknown as ArrayLike<number>));
    }
  });

  it('rounds float16 to nearest even', () => {
    const back = parseNpy(
      encodeNpy(
        { shape: [3], data: new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000]) },
        { dtype: '<f2' },
      ),
    );
    expect(Array.from(back.data as Float32Array)).toEqual([1, 1 + 2 ** -9, Infinity]);
  });

  it('writes files atomically and reads them back', async () => {
    const file = path.join(tmp, 'x.npy');
    await writeNpy(file, { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
    expect(Array.from((await readNpy(file)).data as Float32Array)).toEqual([1, 2, 3, 4]);
  });
});

describe('corrupt .npy files', () => {
  const good = encodeNpy({ shape: [2, 3], data: new Float32Array(6) });
  const write = (name: string, bytes: Uint8Array) => {
    const file = path.join(tmp, name);
    writeFileSync(file, bytes);
    return file;
  };
  it('names the file and what is wrong', async () => {
    await expect(readNpy(path.join(tmp, 'missing.npy'))).rejects.toThrow(/file not found: .*missing\.npy/);
    await expect(
      readNpy(write('magic.npy', new TextEncoder().encode('hello world, not numpy'))),
    ).rejects.toThrow(/magic\.npy: not a \.npy file/);
    await expect(readNpy(write('trunc.npy', good.subarray(0, good.length - 5)))).rejects.toThrow(
      /trunc\.npy: shape \[2, 3\] of <f4 needs 24 data bytes, the file has 19 \(truncated\)/,
    );
    await expect(readNpy(write('trail.npy', new Uint8Array([...good, 1, 2, 3, 4])))).rejects.toThrow(
      /trailing bytes/,
    );
    const version = good.slice();
    version[6] = 4;
    await expect(readNpy(write('version.npy', version))).rejects.toThrow(/unsupported \.npy version 4\.0/);
    const header = good.slice();
    header.set(new TextEncoder().encode("{'descr': '<c8'"), 10);
    await expect(readNpy(write('dtype.npy', header))).rejects.toThrow(/dtype\.npy: unsupported dtype "<c8"/);
    const shortHeader = good.slice(0, 40);
    await expect(readNpy(write('short.npy', shortHeader))).rejects.toThrow(/truncated/);
    const garbled = good.slice();
    garbled.set(new TextEncoder().encode('{{{{'), 10);
    await expect(readNpy(write('garbled.npy', garbled))).rejects.toThrow(
      /garbled\.npy: \.npy header is not a valid Python literal/,
    );
  });
});

/** A version 1.0 file with this header text (padded as NumPy pads) and `data`. */
function withHeader(dict: string, data = new Uint8Array(24), version = 1): Uint8Array {
  const lenBytes = version === 1 ? 2 : 4;
  const headerLen = Math.ceil((8 + lenBytes + dict.length + 1) / 64) * 64 - 8 - lenBytes;
  const out = new Uint8Array(8 + lenBytes + headerLen + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  out.set(new TextEncoder().encode(`${dict}${' '.repeat(headerLen - dict.length - 1)}\n`), 8 + lenBytes);
  out.set(data, 8 + lenBytes + headerLen);
  return out;
}

describe('hostile .npy headers', () => {
  const plain = "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)";
  const reject = (bytes: Uint8Array, re: RegExp) => {
    let error: unknown;
    try {
      parseNpy(bytes, 'h.npy');
    } catch (e) {
      error = e;
    }
    expect(error, re.source).toBeInstanceOf(CorruptFileError);
    expect((error as Error).message).toMatch(re);
    // Messages quote a short preview, never the whole header.
    expect((error as Error).message.length).toBeLessThan(400);
  };

  it('accepts exactly descr, fortran_order and shape, in a Map (no prototype keys)', () => {
    expect(parseNpy(withHeader(`{${plain}, }`)).shape).toEqual([2, 3]);
    reject(withHeader(`{'__proto__': {'descr': '<f4'}, ${plain}}`), /unknown key "__proto__"/);
    reject(withHeader(`{${plain}, 'extra': 1}`), /unknown key "extra"/);
    reject(withHeader(`{${plain}, 'descr': '<f4'}`), /duplicate key 'descr'/);
    reject(withHeader("{'descr': '<f4', 'shape': (2, 3)}"), /lacks 'fortran_order'/);
    reject(
      withHeader("{'constructor': 1, 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}"),
      /unknown key/,
    );
    reject(
      withHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}"),
      /structured dtypes/,
    );
  });

  it('refuses deep nesting, long headers, huge numbers and bad text without overflowing the stack', () => {
    reject(
      withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(5000)}`),
      /expected an integer/,
    );
    reject(withHeader(`${'{'.repeat(3000)}`), /expected a quoted string/);
    const long = `{${plain}, 'pad': '${'x'.repeat(MAX_NPY_HEADER_BYTES)}'}`;
    reject(withHeader(long, new Uint8Array(24), 2), /header of \d+ bytes is longer than the 10000 accepted/);
    // A version 2.0 length field claiming 4 GB.
    const huge = withHeader(`{${plain}}`, new Uint8Array(24), 2);
    new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
    reject(huge, /longer than the 10000 accepted/);
    reject(
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
      /too large/,
    );
    reject(
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
      /needs more than 2\^53 data bytes/,
    );
    reject(
      withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (${Array(65).fill(1).join(', ')})}`),
      /more than 64 dimensions/,
    );
    const latin = withHeader(`{${plain}}`);
    latin[12] = 0xe9;
    reject(latin, /non-ASCII byte 0xe9 at offset 2/);
    const v3 = withHeader(`{${plain}}`, new Uint8Array(24), 3);
    v3[14] = 0xff;
    reject(v3, /not valid UTF-8 \(byte 2: 0xff\)/);
    reject(withHeader("{'descr': '<f4\\x00', 'fortran_order': False, 'shape': (6,)}"), /escape sequence/);
    reject(
      withHeader("{'descr': '<f4', 'fortran_order': 'no', 'shape': (6,)}"),
      /'fortran_order' must be True or False/,
    );
  });
});
