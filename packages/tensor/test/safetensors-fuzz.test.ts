import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { CorruptFileError, InvalidArgumentError } from '../src/errors.js';
import {
  type ByteSource,
  decodeRaw,
  openSafetensors,
  SAFETENSORS_DTYPES,
  serializeSafetensors,
} from '../src/safetensors/index.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));
const ITERATIONS = 20000;

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(20240611);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

function headerOf(bytes: Uint8Array): { n: number; json: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
}

/** Reassembles a file from header text (with `#RAW:...#` placeholders for raw JSON) and a data section. */
function assemble(text: string, data: Uint8Array, pad: boolean, lengthDelta: number): Uint8Array {
  const raw = text.replace(/"#RAW:([^#]*)#"/g, '$1');
  let json = new TextEncoder().encode(raw);
  if (pad && json.length % 8 !== 0) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, json.length + lengthDelta)), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const WEIRD_NUMBERS = [
  -1,
  1.5,
  '3',
  null,
  true,
  [],
  {},
  0,
  1,
  2 ** 31,
  2 ** 32,
  '#RAW:9007199254740993#',
  '#RAW:1e300#',
  '#RAW:-0#',
  '#RAW:18446744073709551616#',
  '#RAW:99999999999999999999999999999999#',
  2 ** 53 - 1,
];
const WEIRD_DTYPES = [...SAFETENSORS_DTYPES, 'F17', 'f32', '', 1, null, 'C64', 'F8_E8M0', 'F4', 'U8 '];

/** One JSON-level edit of a valid file's header. */
function jsonEdit(bytes: Uint8Array): [string, Uint8Array] {
  const { n, json } = headerOf(bytes);
  const data = bytes.subarray(8 + n);
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  const name = names.length > 0 ? pick(names) : undefined;
  const entry = name === undefined ? undefined : (json[name] as Record<string, unknown>);
  let kind = 'json';
  const choice = int(12);
  if (entry && choice === 0) {
    kind = 'json:shape-value';
    const shape = entry.shape as unknown[];
    if (shape.length > 0) shape[int(shape.length)] = pick(WEIRD_NUMBERS);
    else shape.push(pick(WEIRD_NUMBERS));
  } else if (entry && choice === 1) {
    kind = 'json:shape-rank';
    const shape = entry.shape as unknown[];
    if (random() < 0.5) shape.push(pick([0, 1, 2, 2 ** 40, 2 ** 52]));
    else shape.pop();
  } else if (entry && choice === 2) {
    kind = 'json:offsets';
    const [b, e] = entry.data_offsets as [number, number];
    entry.data_offsets = pick([
      [b, e + 1 + int(8)],
      [e, b],
      [b],
      [b, e, 0],
      [-1, e],
      [2 ** 60, 2 ** 60 + 4],
      ['#RAW:9007199254740993#', '#RAW:9007199254740997#'],
      [String(b), e],
      [b - 1, e - 1],
      [pick(WEIRD_NUMBERS), pick(WEIRD_NUMBERS)],
      { begin: b },
      null,
    ]);
  } else if (entry && choice === 3) {
    kind = 'json:dtype';
    entry.dtype = pick(WEIRD_DTYPES);
  } else if (entry && choice === 4) {
    kind = 'json:drop-key';
    delete entry[pick(['dtype', 'shape', 'data_offsets'])];
  } else if (name !== undefined && entry && choice === 5 && names.length > 1) {
    kind = 'json:swap-offsets';
    const other = json[pick(names)] as Record<string, unknown>;
    const tmp = entry.data_offsets;
    entry.data_offsets = other.data_offsets;
    other.data_offsets = tmp;
  } else if (choice === 6) {
    kind = 'json:metadata';
    json.__metadata__ = pick([1, 'x', [], { a: 1 }, { a: { b: 'c' } }, null, { a: 'b', c: '\u0000' }]);
  } else if (name !== undefined && choice === 7) {
    kind = 'json:duplicate-key';
    const text = JSON.stringify(json);
    const dup = `${JSON.stringify(name)}:${JSON.stringify(json[name])},`;
    return [kind, assemble(`{${dup}${text.slice(1)}`, data, random() < 0.5, 0)];
  } else if (choice === 8) {
    kind = 'json:replace-root';
    return [
      kind,
      assemble(JSON.stringify(pick([[], 'x', 1, null, [json], { a: [[[[[]]]]] }])), data, true, 0),
    ];
  } else if (name !== undefined && choice === 9) {
    kind = 'json:rename';
    json[pick(['__metadata__', '', 'x'.repeat(300), '\u00e9', name.toUpperCase()])] = json[name];
    delete json[name];
  } else if (choice === 10) {
    kind = 'json:add-tensor';
    json[`extra${int(10)}`] = {
      dtype: pick(WEIRD_DTYPES),
      shape: [int(4)],
      data_offsets: [int(data.length + 8), int(data.length + 8)],
    };
  } else {
    kind = 'json:deep';
    const depth = 1 + int(200);
    json.deep = `#RAW:${'['.repeat(depth)}${']'.repeat(depth)}#`;
  }
  const delta = random() < 0.8 ? 0 : pick([-1, 1, -8, 8]);
  return [kind, assemble(JSON.stringify(json), data, random() < 0.7, delta)];
}

function byteMutation(bytes: Uint8Array): [string, Uint8Array] {
  const out = bytes.slice();
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  switch (int(6)) {
    case 0: {
      const flips = 1 + int(8);
      for (let i = 0; i < flips; i++) {
        const at = int(out.length);
        out[at] = (out[at] as number) ^ (1 << int(8));
      }
      return ['bitflip', out];
    }
    case 1: {
      const flips = 1 + int(4);
      for (let i = 0; i < flips; i++)
        out[8 + int(n)] = pick(
          [...'{}[]",:0123456789-e. \\u'].map((c) => c.charCodeAt(0)).concat([int(256)]),
        );
      return ['header-byte', out];
    }
    case 2: {
      const view = new DataView(out.buffer);
      const value = pick([
        BigInt(int(out.length * 2)),
        BigInt(Math.max(0, n + int(33) - 16)),
        0n,
        2n ** 32n + BigInt(n),
        2n ** 63n,
        2n ** 64n - 1n,
        100_000_001n,
        BigInt(out.length - 8),
      ]);
      view.setBigUint64(0, value, true);
      return ['header-length', out];
    }
    case 3:
      return ['truncate', bytes.slice(0, int(bytes.length))];
    case 4: {
      const extra = new Uint8Array(1 + int(16)).map(() => int(256));
      const joined = new Uint8Array(bytes.length + extra.length);
      joined.set(bytes);
      joined.set(extra, bytes.length);
      return ['append', joined];
    }
    default: {
      const garbage = new Uint8Array(int(64)).map(() => int(256));
      if (garbage.length >= 8 && random() < 0.5)
        new DataView(garbage.buffer).setBigUint64(0, BigInt(int(garbage.length)), true);
      return ['garbage', garbage];
    }
  }
}

interface Outcome {
  loaded: number;
  corrupt: number;
  int32Range: number;
}

/** Opens and fully loads `bytes`; every failure must be a CorruptFileError (or a verified int32 overflow). */
async function exercise(bytes: Uint8Array, outcome: Outcome): Promise<void> {
  let largestRead = 0;
  const source: ByteSource = {
    size: bytes.length,
    read(offset, length) {
      largestRead = Math.max(largestRead, length);
      if (offset < 0 || length < 0 || offset + length > bytes.length)
        throw new Error(`out-of-bounds read ${offset}+${length}`);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
  try {
    const st = await openSafetensors(source, { name: 'fuzz' });
    for (const name of st.names) {
      const raw = await st.readRaw(name);
      const decoded = decodeRaw(raw);
      expect(decoded.length).toBeLessThanOrEqual(bytes.length);
      try {
        const t = await st.readTensor(name);
        expect(t.size).toBeLessThanOrEqual(bytes.length);
        t.dispose();
      } catch (e) {
        // The one non-corruption failure: integers tfjs cannot hold. Check the claim against the raw values.
        if (!(e instanceof InvalidArgumentError) || !/outside the int32 range/.test(e.message)) throw e;
        const big = Array.from(decoded as ArrayLike<number | bigint>).some(
          (v) => BigInt(v) > 2147483647n || BigInt(v) < -2147483648n,
        );
        expect(big).toBe(true);
        outcome.int32Range++;
      }
    }
    await st.close();
    outcome.loaded++;
  } catch (e) {
    if (!(e instanceof CorruptFileError)) throw e;
    outcome.corrupt++;
  }
  expect(largestRead).toBeLessThanOrEqual(bytes.length);
}

describe('safetensors fuzz', () => {
  let seeds: Uint8Array[];
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    seeds = await Promise.all(
      ['f32', 'bf16', 'mixed', 'extra'].map(
        async (f) => new Uint8Array(await readFile(`${FIXTURES}${f}.safetensors`)),
      ),
    );
    const made = tf.tidy(() => ({
      a: tf.ones([3, 2]),
      b: tf.tensor([1, 2], [2], 'int32'),
      c: tf.tensor([true], [1], 'bool'),
    }));
    seeds.push(
      await serializeSafetensors(
        {
          ...made,
          e4: { dtype: 'F8_E4M3', shape: [4], data: new Uint8Array([1, 2, 0x7f, 0xff]) },
          e5: { dtype: 'F8_E5M2', shape: [2], data: new Uint8Array([0x7c, 0x7e]) },
          u16: { dtype: 'U16', shape: [2], data: new Uint16Array([1, 65535]) },
          i64: { dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
        },
        { dtypes: { a: 'BF16', b: 'I64' }, metadata: { k: 'v' } },
      ),
    );
    tf.dispose(Object.values(made));
  });
  afterAll(() => shutdownBackend());

  it(`survives ${ITERATIONS} mutated, truncated and hostile files with only CorruptFileError`, async () => {
    const before = tf.memory().numTensors;
    const outcome: Outcome = { loaded: 0, corrupt: 0, int32Range: 0 };
    const kinds = new Map<string, Outcome>();
    let slowest = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = pick(seeds);
      const [kind, bytes] = random() < 0.5 ? byteMutation(seed) : jsonEdit(seed);
      const perKind = kinds.get(kind) ?? { loaded: 0, corrupt: 0, int32Range: 0 };
      kinds.set(kind, perKind);
      const started = performance.now();
      try {
        await exercise(bytes, perKind);
      } catch (e) {
        throw new Error(
          `iteration ${i} (${kind}): ${(e as Error).name}: ${(e as Error).message}\nheader: ${new TextDecoder().decode(bytes.subarray(8, 400))}`,
        );
      }
      slowest = Math.max(slowest, performance.now() - started);
    }
    for (const o of kinds.values()) {
      outcome.loaded += o.loaded;
      outcome.corrupt += o.corrupt;
      outcome.int32Range += o.int32Range;
    }
    // Both outcomes occur, most mutations are caught, and no single file takes long.
    expect(outcome.loaded).toBeGreaterThan(100);
    expect(outcome.corrupt).toBeGreaterThan(ITERATIONS / 2);
    expect(slowest).toBeLessThan(2000);
    expect(tf.memory().numTensors).toBe(before);
    console.log(
      `fuzz: ${ITERATIONS} files, ${outcome.loaded} loaded, ${outcome.corrupt} CorruptFileError, ${outcome.int32Range} int32 overflows; slowest ${slowest.toFixed(1)} ms\n${[
        ...kinds,
      ]
        .sort()
        .map(([k, o]) => `  ${k}: ${o.loaded} loaded, ${o.corrupt} corrupt`)
        .join('\n')}`,
    );
  });
});
