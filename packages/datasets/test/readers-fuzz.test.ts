/**
 * Fuzzing every reader of untrusted files: .npy, JSONL manifests, reference meta JSONs, .list files and
 * the shard store's manifest. Each case is a valid file mutated (bit flips, truncation, splices, tokens,
 * deep nesting, huge numbers, long strings, invalid UTF-8, __proto__ keys); it must either parse to a
 * valid result or throw one of our errors (PrflError) with a short message - never a RangeError from a
 * stack overflow or a TypeError from deep inside. Seeded, so a failure names a case that replays.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrflError } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The io modules directly, not the package index: the fuzz needs no renderer, oracle or loaders, and
// importing less keeps this file quick to start.
import { parsePairwiseManifest, parsePointwiseManifest, readPointwiseManifest } from '../src/io/jsonl.js';
import { encodeNpy, type NpyArray, parseNpy } from '../src/io/npy.js';
import { parseMetaList, parseReferenceMeta, readMetaList } from '../src/io/reference.js';
import { LatentShardStore, MANIFEST_NAME, parseStoreManifest } from '../src/io/shard-store.js';
import { LineSplitter, splitLines } from '../src/io/lines.js';

const fixture = path.resolve(import.meta.dirname, '../fixtures/reference');
const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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

class Mutator {
  private readonly random: () => number;
  constructor(seed: number) {
    this.random = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  /** Text fragments that stress a JSON / Python-literal reader. */
  hostileText(): string {
    const deep = 1 + this.int(this.chance(0.3) ? 200_000 : 300);
    return this.pick([
      `${'['.repeat(deep)}${']'.repeat(deep)}`,
      `${'{"a":'.repeat(deep)}1${'}'.repeat(deep)}`,
      `${'('.repeat(deep)}`,
      '[',
      '{',
      '"',
      '\\',
      ':',
      ',',
      '"__proto__": {"polluted": 1}, ',
      '{"__proto__": {"polluted": 1}}',
      '"constructor": {"prototype": {"polluted": 1}}, ',
      "'__proto__': {'descr': '<f4'}, ",
      "'descr': '<f4', ",
      "'shape': (99999999999999999999,), ",
      '1e999',
      '-1e-999',
      '9'.repeat(1 + this.int(400)),
      '-0',
      'NaN',
      'null',
      'true',
      '"good"',
      '"poor"',
      `"${'x'.repeat(1 + this.int(this.chance(0.1) ? 300_000 : 2000))}"`,
      '"\\ud800"',
      '"\\u0000"',
      '\u0000',
      '\r\n',
      '\n',
      '\t',
      '\u2028',
      '#',
      '../../etc/passwd',
      '/dev/null',
    ]);
  }

  /** One byte-level edit of `bytes`. */
  mutate(bytes: Uint8Array, others: readonly Uint8Array[]): [string, Uint8Array] {
    const at = this.int(bytes.length + 1);
    const splice = (insert: Uint8Array, remove = 0): Uint8Array => {
      const out = new Uint8Array(bytes.length + insert.length - Math.min(remove, bytes.length - at));
      out.set(bytes.subarray(0, at));
      out.set(insert, at);
      out.set(bytes.subarray(Math.min(bytes.length, at + remove)), at + insert.length);
      return out;
    };
    switch (this.int(9)) {
      case 0: {
        const out = bytes.slice();
        for (let k = 1 + this.int(8); k > 0 && out.length; k--) {
          const i = this.int(out.length);
          out[i] = (out[i] as number) ^ (1 << this.int(8));
        }
        return ['bitflip', out];
      }
      case 1:
        return ['truncate', bytes.slice(0, this.int(bytes.length + 1))];
      case 2: {
        const other = this.pick(others);
        const from = this.int(other.length + 1);
        return ['splice', splice(other.subarray(from, from + this.int(200)), this.int(40))];
      }
      case 3:
        return ['token', splice(new TextEncoder().encode(this.hostileText()), this.int(8))];
      case 4:
        return [
          'invalid-utf8',
          splice(
            new Uint8Array(
              this.pick([
                [0xff],
                [0xc0, 0xaf],
                [0xed, 0xa0, 0x80],
                [0xe2, 0x82],
                [0xf4, 0x90, 0x80, 0x80],
                [0x80],
              ]),
            ),
          ),
        ];
      case 5: {
        // Replace a JSON / Python value: find a ':' and overwrite what follows.
        const text = new TextDecoder().decode(bytes);
        const colons = [...text.matchAll(/:\s*/g)];
        if (!colons.length) return ['token', splice(new TextEncoder().encode(this.hostileText()))];
        const m = this.pick(colons);
        const start = (m.index as number) + m[0].length;
        const end = text.slice(start).search(/[,}\n]/);
        const edited = `${text.slice(0, start)}${this.hostileText()}${text.slice(end < 0 ? text.length : start + end)}`;
        return ['value', new TextEncoder().encode(edited)];
      }
      case 6: {
        // Line-level: duplicate, drop or swap lines; CRLF; no final newline.
        const lines = new TextDecoder().decode(bytes).split('\n');
        const i = this.int(lines.length);
        const j = this.int(lines.length);
        const op = this.int(4);
        if (op === 0) lines.splice(i, 0, lines[j] as string);
        else if (op === 1) lines.splice(i, 1);
        else if (op === 2) [lines[i], lines[j]] = [lines[j] as string, lines[i] as string];
        return ['lines', new TextEncoder().encode(lines.join(op === 3 ? '\r\n' : '\n').replace(/\n$/, ''))];
      }
      case 7: {
        const garbage = new Uint8Array(this.int(300)).map(() => this.int(256));
        return ['garbage', this.chance(0.5) ? garbage : splice(garbage)];
      }
      default:
        return ['append', splice(new TextEncoder().encode(this.hostileText()), 0)];
    }
  }
}

/** Runs `cases` mutations of the seeds through `read`; every failure must be a PrflError with a short message. */
function fuzz(
  name: string,
  seed: number,
  cases: number,
  seeds: readonly Uint8Array[],
  read: (bytes: Uint8Array, m: Mutator) => void,
  mutate?: (m: Mutator, bytes: Uint8Array) => [string, Uint8Array] | undefined,
): { parsed: number; refused: number; kinds: Map<string, number> } {
  const m = new Mutator(seed);
  let parsed = 0;
  let refused = 0;
  const kinds = new Map<string, number>();
  for (let i = 0; i < cases; i++) {
    const base = m.pick(seeds);
    const [kind, bytes] = mutate?.(m, base) ?? m.mutate(base, seeds);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    try {
      read(bytes, m);
      parsed++;
    } catch (e) {
      const ok = e instanceof PrflError && e.message.length < 2000;
      if (!ok) {
        const preview = new TextDecoder().decode(bytes.subarray(0, 300));
        throw new Error(
          `${name} case ${i} (${kind}): ${(e as Error).name}: ${(e as Error).message.slice(0, 500)}\ninput: ${JSON.stringify(preview)}`,
        );
      }
      refused++;
    }
  }
  // Nothing reached Object.prototype through a "__proto__" key.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
  console.log(
    `fuzz ${name}: ${cases} cases, ${parsed} parsed, ${refused} refused (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})`,
  );
  return { parsed, refused, kinds };
}

const isLabel = (v: unknown) => v === 0 || v === 1 || v === null;
const enc = (s: string) => new TextEncoder().encode(s);

describe('readers under fuzzing', () => {
  let metaSeeds: Uint8Array[];
  let listSeeds: Uint8Array[];
  let storeSeeds: Uint8Array[];
  let storeDir: string;
  beforeAll(async () => {
    const metaDir = path.join(fixture, 'meta_v1');
    metaSeeds = readdirSync(metaDir).map((f) => new Uint8Array(readFileSync(path.join(metaDir, f))));
    listSeeds = [
      new Uint8Array(readFileSync(path.join(fixture, 'data.list'))),
      new Uint8Array(readFileSync(path.join(fixture, 'lose.list'))),
      enc('# comment\n\n  meta_v1/a_meta_v1.json  \r\n/abs/b_meta_v1.json'),
    ];
    storeDir = path.join(tmp, 'store');
    const store = await LatentShardStore.open(storeDir, { create: true });
    await store.append({ 'a/latent': { shape: [2, 2], data: new Float32Array(4) } });
    await store.append({
      'b/latent': { shape: [3], data: new Float32Array(3) },
      'b/text': { shape: [1], data: new Int32Array(1) },
    });
    await store.close();
    storeSeeds = [
      new Uint8Array(readFileSync(path.join(storeDir, MANIFEST_NAME))),
      enc('{"format":"prfl-latent-shards","version":1,"shards":[]}'),
    ];
  });

  it('.npy: 4000 mutated files', () => {
    const arraysDir = path.join(fixture, 'arrays');
    const seeds: Uint8Array[] = readdirSync(arraysDir)
      .filter((f) => f.endsWith('.npy'))
      .map((f) => new Uint8Array(readFileSync(path.join(arraysDir, f))));
    seeds.push(encodeNpy({ shape: [2, 2], data: new Uint8Array([0, 1, 1, 0]) }, { dtype: '|b1' }));
    seeds.push(encodeNpy({ shape: [3], data: new Float32Array([1, 2, 3]) }, { version: 2 }));
    const npyEdit = (m: Mutator, bytes: Uint8Array): [string, Uint8Array] | undefined => {
      if (m.chance(0.2)) {
        // Flips in the data section only: the file stays valid, the values (bools too) change.
        const start = bytes[6] === 1 ? 10 + (bytes[8] as number) + 256 * (bytes[9] as number) : bytes.length;
        if (start >= bytes.length) return undefined;
        const out = bytes.slice();
        for (let k = 1 + m.int(4); k > 0; k--) {
          const i = start + m.int(out.length - start);
          out[i] = (out[i] as number) ^ (1 << m.int(8));
        }
        return ['data-bitflip', out];
      }
      if (!m.chance(0.5)) return undefined;
      // A header rewritten as a hostile dict, with a consistent length field (version 1, 2 or 3).
      const parts = [
        `'descr': ${m.pick(["'<f4'", "'|b1'", "'<c8'", "[('a', '<f4')]", '1', `'${'f'.repeat(m.int(20000))}'`])}`,
        `'fortran_order': ${m.pick(['False', 'True', '0', "'no'"])}`,
        `'shape': ${m.pick([
          '(2, 2)',
          '(4,)',
          '()',
          '(0, 99999999999)',
          '(-1,)',
          '(2**31,)',
          '[2, 2]',
          `(${Array(70).fill(1).join(',')})`,
        ])}`,
        m.hostileText(),
      ];
      const dict = `{${parts
        .filter(() => m.chance(0.85))
        .sort(() => m.int(3) - 1)
        .join(', ')}}`;
      const version = m.pick([1, 2, 3]);
      const lenBytes = version === 1 ? 2 : 4;
      const header = enc(dict);
      if (version === 1 && header.length > 0xffff) return undefined;
      const data = new Uint8Array(m.pick([0, 4, 16, 17]));
      const out = new Uint8Array(8 + lenBytes + header.length + data.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
      const view = new DataView(out.buffer);
      if (version === 1) view.setUint16(8, header.length, true);
      else
        view.setUint32(
          8,
          m.chance(0.9) ? header.length : m.pick([0xffffffff, 1 << 24, header.length + 1]),
          true,
        );
      out.set(header, 8 + lenBytes);
      out.set(data, 8 + lenBytes + header.length);
      return ['header', out];
    };
    const check = (a: NpyArray) => {
      expect(a.shape.reduce((x, y) => x * y, 1)).toBe(a.data.length);
      if (a.dtype === '|b1') for (const v of a.data as Uint8Array) expect(v === 0 || v === 1).toBe(true);
    };
    const r = fuzz('npy', 11, 4000, seeds, (b) => check(parseNpy(b, 'fuzz.npy')), npyEdit);
    // Most edits land in the header (a small file is mostly header), so most files are refused.
    expect(r.parsed).toBeGreaterThan(300);
    expect(r.refused).toBeGreaterThan(1000);
  });

  it('JSONL manifests: 3000 mutated files, pointwise and pairwise', () => {
    const line = (id: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        id,
        prompt: 'a red circle moving left',
        latent: `${id}/latent`,
        text: `prompt/${id}`,
        labels: { physics_quality: 1, human_quality: 'good', text_alignment: null, blur_quality: 'poor' },
        split: 'train',
        ...extra,
      });
    const seeds = [
      enc(
        `${line('a')}\n${line('b', { long_prompt: 'x', long_text: 'b/long' })}\n\n${line('c', { movingshapes: { seed: 1, a: [1, { b: 2 }] } })}\n`,
      ),
      enc(
        `${JSON.stringify({ prompt: 'p', win: 'a', lose: 'b' })}\n${JSON.stringify({ prompt: 'p', win: 'c', lose: 'a', split: 'val' })}\n`,
      ),
    ];
    const r = fuzz('jsonl', 12, 3000, seeds, (b, m) => {
      if (m.chance(0.5)) {
        for (const { record } of parsePointwiseManifest(b, 'fuzz.jsonl')) {
          expect(typeof record.id).toBe('string');
          expect(typeof record.latent).toBe('string');
          expect(Object.values(record.labels).every(isLabel)).toBe(true);
          if (record.extra) expect(Object.getPrototypeOf(record.extra)).toBe(Object.prototype);
        }
      } else {
        for (const p of parsePairwiseManifest(b, 'fuzz.jsonl', new Set(['a', 'b', 'c'])))
          expect(p.win).not.toBe(p.lose);
      }
    });
    expect(r.parsed).toBeGreaterThan(100);
    expect(r.refused).toBeGreaterThan(500);
  });

  it('reference meta JSONs: 3000 mutated files', () => {
    const r = fuzz('meta', 13, 3000, metaSeeds, (b) => {
      const f = parseReferenceMeta(b, 'fuzz_meta_v1.json');
      expect(typeof f.id).toBe('string');
      expect(typeof f.latent.path).toBe('string');
      expect(Object.values(f.labels).every((v) => v === 0 || v === 1)).toBe(true);
    });
    expect(r.parsed).toBeGreaterThan(100);
    expect(r.refused).toBeGreaterThan(500);
  });

  it('.list files: 2000 mutated files', () => {
    const r = fuzz('list', 14, 2000, listSeeds, (b) => {
      let last = 0;
      for (const { line, path: p } of parseMetaList(b, 'fuzz.list')) {
        expect(line).toBeGreaterThan(last);
        last = line;
        expect(p.length).toBeGreaterThan(0);
        expect(p.includes('\0')).toBe(false);
        expect(p).toBe(p.trim());
      }
    });
    expect(r.parsed).toBeGreaterThan(500);
    expect(r.refused).toBeGreaterThan(50);
  });

  it('shard store manifests: 2000 mutated manifests, and 60 opened from disk', async () => {
    const r = fuzz('store manifest', 15, 2000, storeSeeds, (b) => {
      for (const s of parseStoreManifest(b, MANIFEST_NAME).shards) {
        expect(s.file).toMatch(/^shard-\d{6,}\.safetensors$/);
        expect(s.tensors.every((t) => typeof t === 'string')).toBe(true);
      }
    });
    expect(r.parsed).toBeGreaterThan(50);
    expect(r.refused).toBeGreaterThan(500);
    // Through open(): a damaged manifest over real shards is refused, or opens and reads consistently.
    const m = new Mutator(16);
    const manifest = path.join(storeDir, MANIFEST_NAME);
    const good = readFileSync(manifest);
    let opened = 0;
    for (let i = 0; i < 60; i++) {
      const [kind, bytes] = m.mutate(storeSeeds[0] as Uint8Array, storeSeeds);
      writeFileSync(manifest, bytes);
      try {
        const store = await LatentShardStore.open(storeDir, {
          verify: m.pick(['size', 'header', 'checksum'] as const),
        });
        for (const k of store.keys()) await store.read(k);
        await store.close();
        opened++;
      } catch (e) {
        if (!(e instanceof PrflError))
          throw new Error(`open case ${i} (${kind}): ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    writeFileSync(manifest, good);
    expect(opened).toBeGreaterThan(0);
  });

  it('line splitting does not depend on chunk boundaries; file readers agree with in-memory parsing', async () => {
    const m = new Mutator(17);
    const text = enc(`a\nbb\r\n\n${'c'.repeat(5000)}\r\nd\re\n\nlast`);
    const whole = splitLines(text, 'x', 1 << 20).map((l) => new TextDecoder().decode(l.bytes));
    for (let i = 0; i < 200; i++) {
      const s = new LineSplitter('x', 1 << 20);
      const got: string[] = [];
      let at = 0;
      while (at < text.length) {
        const n = 1 + m.int(m.chance(0.5) ? 3 : 2000);
        for (const l of s.push(text.subarray(at, at + n))) got.push(new TextDecoder().decode(l.bytes));
        at += n;
      }
      for (const l of s.end()) got.push(new TextDecoder().decode(l.bytes));
      expect(got).toEqual(whole);
    }
    expect(whole).toEqual(['a', 'bb', '', 'c'.repeat(5000), 'd\re', '', 'last']);
    // The streaming readers throw what the in-memory parsers throw.
    const dir = path.join(tmp, 'files');
    mkdirSync(dir, { recursive: true });
    const seeds = [
      enc(`${JSON.stringify({ id: 'a', prompt: 'p', latent: 'a', labels: {} })}\n`),
      ...listSeeds,
    ];
    for (let i = 0; i < 60; i++) {
      const [, bytes] = m.mutate(m.pick(seeds), seeds);
      const file = path.join(dir, `case${i}`);
      writeFileSync(file, bytes);
      const memory = (() => {
        try {
          return parsePointwiseManifest(bytes, file).map((e) => e.record);
        } catch (e) {
          return (e as Error).message;
        }
      })();
      const streamed = await readPointwiseManifest(file).catch((e: Error) => e.message);
      expect(streamed).toEqual(memory);
      const listed = await readMetaList(file, { roots: [dir] }).catch((e: Error) => e);
      if (listed instanceof Error) expect(listed).toBeInstanceOf(PrflError);
    }
  });
});
