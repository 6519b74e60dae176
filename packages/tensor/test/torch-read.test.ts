/**
 * Reading PyTorch checkpoints: files written by torch.save (fixtures/torch, made by
 * scripts/make-torch-fixtures.py) against the values torch itself read back (expected.safetensors and
 * expected.json), the refusals (code in the pickle, big-endian, the pre-1.6 format), and hand-made
 * archives for the checks real files never trip.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { CorruptFileError, InvalidArgumentError } from '../src/errors.js';
import {
  detectWeightsFormat,
  isTorchCheckpoint,
  isTorchTensor,
  loadTorchCheckpoint,
  loadWeights,
  openSafetensors,
  openTorchCheckpoint,
  openWeights,
  type SafetensorsFile,
  stripKeyPrefix,
  type TorchValue,
  UnsafePickleError,
  withoutPrefix,
} from '../src/index.js';
import { PickleBuilder, torchZip } from './torch-zip-helpers.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/torch/', import.meta.url));
const fixture = (f: string) => `${FIXTURES}${f}`;

interface Layout {
  dtype: string;
  shape: number[];
  stride: number[];
  storage_offset: number;
  storage: number;
  contiguous: boolean;
}
type PlainRoot =
  | null
  | boolean
  | number
  | string
  | { tensor: true }
  | { dict: Array<[string | number, PlainRoot]> }
  | { float: string }
  | PlainRoot[];
const expected = JSON.parse(await readFile(fixture('expected.json'), 'utf8')) as Record<
  string,
  { names: string[]; layout: Record<string, Layout>; root: PlainRoot }
>;
const READABLE = Object.keys(expected);

/** The checkpoint's root in expected.json's form. */
function plain(v: TorchValue): unknown {
  if (isTorchTensor(v)) return { tensor: true };
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [k, plain(x)]) };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'bigint') return Number(v);
  return v;
}

describe('PyTorch checkpoints', () => {
  let want: SafetensorsFile;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    want = await openSafetensors(fixture('expected.safetensors'));
  });
  afterAll(async () => {
    await want.close();
    shutdownBackend();
  });

  it.each(READABLE)('%s: names, layouts and stored bytes equal what torch read back', async (file) => {
    const e = expected[file]!;
    const ckpt = await openTorchCheckpoint(fixture(file));
    expect(ckpt.names).toEqual(e.names);
    expect(ckpt.archive).toBe(file.replace(/\.(pt|ckpt)$/, ''));
    expect(ckpt.metadata).toBeUndefined();
    const storageOf = new Map<number, string>();
    for (const name of e.names) {
      const info = ckpt.info(name);
      const l = e.layout[name]!;
      expect({
        dtype: info.dtype,
        shape: info.shape,
        stride: info.stride,
        offset: info.storageOffset,
      }).toEqual({
        dtype: l.dtype,
        shape: l.shape,
        stride: l.stride,
        offset: l.storage_offset,
      });
      expect(info.contiguous).toBe(l.contiguous);
      // Tensors torch says share a storage share a storage key, and only those.
      const key = storageOf.get(l.storage) ?? info.storageKey;
      storageOf.set(l.storage, key);
      expect(info.storageKey).toBe(key);
      const raw = await ckpt.readRaw(name);
      const ref = await want.readRaw(`${file}/${name}`);
      expect(raw.dtype).toBe(ref.dtype);
      expect(raw.shape).toEqual(ref.shape);
      expect(Buffer.from(raw.data).equals(Buffer.from(ref.data))).toBe(true);
      expect(raw.data.byteLength).toBe(info.byteLength);
    }
    expect(new Set(storageOf.values()).size).toBe(storageOf.size);
    expect(plain(ckpt.root)).toEqual(e.root);
    await ckpt.close();
  });

  it('gives the same tf.Tensors as the safetensors reader (f16/bf16/f64 upcast, int64 narrowed)', async () => {
    const ckpt = await openTorchCheckpoint(fixture('dtypes.pt'));
    for (const name of ckpt.names) {
      if (name === 'big_i64') {
        await expect(ckpt.readTensor(name)).rejects.toThrow(
          /element 0 is 1099511627776, outside the int32 range/,
        );
        continue;
      }
      const got = await ckpt.readTensor(name);
      const ref = await want.readTensor(`dtypes.pt/${name}`);
      expect(got.dtype).toBe(ref.dtype);
      expect(got.shape).toEqual(ref.shape);
      const a = await got.data();
      const b = await ref.data();
      if (got.dtype === 'float32') {
        // Bit patterns, so NaN, -0 and infinities count.
        expect(Array.from(new Uint32Array((a as Float32Array).buffer))).toEqual(
          Array.from(new Uint32Array((b as Float32Array).buffer)),
        );
      } else expect(Array.from(a)).toEqual(Array.from(b));
      tf.dispose([got, ref]);
    }
    await ckpt.close();
  });

  it("loads the reference's head files and keeps nn.Parameter's requires_grad", async () => {
    const qa = await loadTorchCheckpoint(fixture('query_attention_step_10.ckpt'));
    expect(Object.keys(qa)).toEqual([
      'queries',
      'multihead_attn.in_proj_weight',
      'multihead_attn.in_proj_bias',
      'multihead_attn.out_proj.weight',
      'multihead_attn.out_proj.bias',
    ]);
    expect(qa['multihead_attn.in_proj_weight']!.shape).toEqual([96, 32]);
    const mlp = await loadWeights(fixture('mlp_step_10.ckpt'), { names: ['fc1.weight', 'fc3.bias'] });
    expect(Object.keys(mlp)).toEqual(['fc1.weight', 'fc3.bias']);
    expect(mlp['fc1.weight']!.shape).toEqual([64, 32]);
    tf.dispose([...Object.values(qa), ...Object.values(mlp)]);
    const p = await openTorchCheckpoint(fixture('parameter.pt'));
    expect([p.info('w').requiresGrad, p.info('frozen').requiresGrad]).toEqual([true, false]);
    await p.close();
  });

  it('reads from bytes and Blobs (the browser path) as from a path', async () => {
    const bytes = new Uint8Array(await readFile(fixture('views.pt')));
    for (const source of [bytes, bytes.buffer, new Blob([bytes])]) {
      const ckpt = await openTorchCheckpoint(source, { name: 'views upload' });
      expect(ckpt.name).toBe('views upload');
      const raw = await ckpt.readRaw('transposed');
      expect(
        Buffer.from(raw.data).equals(Buffer.from((await want.readRaw('views.pt/transposed')).data)),
      ).toBe(true);
      await ckpt.close();
    }
  });

  it('flattens nested dicts to dotted names; withoutPrefix and stripKeyPrefix take a level off', async () => {
    const ckpt = await openTorchCheckpoint(fixture('nested.pt'));
    expect(ckpt.names).toEqual([
      'state_dict.module.fc.weight',
      'state_dict.module.fc.bias',
      'optimizer.state.0.exp_avg',
    ]);
    const root = ckpt.root as ReadonlyMap<string, TorchValue>;
    expect(root.get('epoch')).toBe(3);
    expect(root.get('step')).toBe(2 ** 40);
    expect(root.get('name')).toBe('run-\u00e9');
    const view = withoutPrefix(ckpt, 'state_dict.module.');
    expect(view.names).toEqual(['fc.weight', 'fc.bias']);
    expect(view.info('fc.bias').shape).toEqual([3]);
    const t = await view.readTensor('fc.weight');
    expect(t.shape).toEqual([3, 4]);
    expect(() => view.info('state_dict.module.fc.bias')).toThrow(
      /no tensor named "state_dict\.module\.fc\.bias"/,
    );
    expect(() => withoutPrefix(ckpt, 'model.')).toThrow(InvalidArgumentError);
    expect([...stripKeyPrefix({ 'module.a': 1, 'module.b': 2, c: 3 }, 'module.')]).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    t.dispose();
    await view.close();
  });

  it('openWeights tells safetensors from PyTorch by the first bytes', async () => {
    const st = await openWeights(`${FIXTURES}../safetensors/f32.safetensors`);
    const pt = await openWeights(fixture('mlp_step_10.ckpt'));
    expect([isTorchCheckpoint(st), isTorchCheckpoint(pt)]).toEqual([false, true]);
    expect(pt.names).toContain('fc2.weight');
    await st.close();
    await pt.close();
    const bytes = new Uint8Array(await readFile(fixture('views.pt')));
    expect(detectWeightsFormat(bytes.subarray(0, 9), bytes.length)).toBe('torch');
    expect(
      detectWeightsFormat(new Uint8Array(await readFile(fixture('legacy.pt'))).subarray(0, 9), 352),
    ).toBe('torch-legacy');
    await expect(openWeights(new TextEncoder().encode('hello, this is text'))).rejects.toThrow(
      /not a safetensors file, or corrupt.*not a PyTorch checkpoint either/,
    );
  });

  it('refuses pickles that name code, saying which global and which file; nothing runs', async () => {
    for (const [file, global] of [
      ['malicious.pt', 'posix.system'],
      // Protocol 2 names Python 3's builtins by their Python 2 module, as the file holds it.
      ['malicious-eval.pt', '__builtin__.eval'],
    ] as const) {
      const err = await openTorchCheckpoint(fixture(file)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePickleError);
      expect(err).toBeInstanceOf(CorruptFileError);
      expect((err as UnsafePickleError).global).toBe(global);
      expect((err as Error).message).toContain(fixture(file));
      expect((err as Error).message).toContain(`Python global ${global}`);
      expect((err as Error).message).toMatch(/nothing in the file was executed/);
      await expect(loadWeights(fixture(file))).rejects.toThrow(UnsafePickleError);
    }
    // STACK_GLOBAL (protocol 4) goes through the same allow list; object-building opcodes are refused.
    const stackGlobal = new PickleBuilder().str('os').str('system').raw(0x93).stop();
    await expect(openTorchCheckpoint(torchZip(stackGlobal))).rejects.toThrow(/Python global os\.system/);
    const newobj = new PickleBuilder().global('collections', 'OrderedDict').op(')').raw(0x81).stop();
    await expect(openTorchCheckpoint(torchZip(newobj))).rejects.toThrow(/NEWOBJ .*arbitrary class/);
    const complex = new PickleBuilder().tensor('ComplexFloatStorage', '0', 1, 0, [1], [1]).stop();
    await expect(openTorchCheckpoint(torchZip(complex, { 0: new Uint8Array(8) }))).rejects.toThrow(
      /torch\.ComplexFloatStorage is not supported/,
    );
  });

  it('refuses big-endian checkpoints and the pre-1.6 format with a clear message', async () => {
    const little = await openTorchCheckpoint(fixture('byteorder-little.pt'));
    expect(little.names).toEqual(expected['views.pt']!.names);
    await little.close();
    await expect(openTorchCheckpoint(fixture('byteorder-big.pt'))).rejects.toThrow(
      /byteorder-big\.pt: the checkpoint was written on a big-endian machine/,
    );
    await expect(openWeights(fixture('legacy.pt'))).rejects.toThrow(
      /legacy\.pt: a PyTorch checkpoint in the format before PyTorch 1\.6/,
    );
    await expect(openTorchCheckpoint(fixture('legacy.pt'))).rejects.toThrow(CorruptFileError);
  });

  it('checks declared sizes, views and structure against the stored bytes', async () => {
    const f32 = (n: number) => new Uint8Array(4 * n);
    const cases: Array<[string, Uint8Array, RegExp]> = [
      [
        'numel vs bytes',
        torchZip(new PickleBuilder().tensor('FloatStorage', '0', 4, 0, [4], [1]).stop(), { 0: f32(3) }),
        /declared as 4 F32 elements \(16 bytes\), but its data\/0 entry has 12 bytes/,
      ],
      [
        'view past the storage',
        torchZip(new PickleBuilder().tensor('FloatStorage', '0', 6, 1, [2, 3], [3, 1]).stop(), { 0: f32(6) }),
        /reaches element 6 of storage "0", which has 6/,
      ],
      [
        'missing storage',
        torchZip(new PickleBuilder().tensor('FloatStorage', '7', 1, 0, [1], [1]).stop()),
        /storage "7" has no data\/7 entry/,
      ],
      [
        'rank mismatch',
        torchZip(new PickleBuilder().tensor('FloatStorage', '0', 6, 0, [2, 3], [1]).stop(), { 0: f32(6) }),
        /has stride \[1\], of another rank/,
      ],
      [
        'self-containing list',
        torchZip(new PickleBuilder().op(']').raw(0x71, 0).raw(0x68, 0).op('a').stop()),
        /contains itself/,
      ],
      [
        'deep nesting',
        torchZip(
          new PickleBuilder()
            .raw(...new Array(300).fill(0x5d))
            .raw(...new Array(299).fill(0x61))
            .stop(),
        ),
        /deeper than the limit of 100/,
      ],
      [
        'SETITEM on a list',
        torchZip(new PickleBuilder().op(']').int(1).int(2).op('s').stop()),
        /SETITEM\(S\) on a list/,
      ],
      [
        'unknown opcode',
        torchZip(new PickleBuilder().raw(0xff).stop()),
        /opcode 0xff is not one this restricted reader/,
      ],
      ['no STOP', torchZip(new PickleBuilder().op('}').stop().subarray(0, 3)), /without a STOP opcode/],
      ['leftovers', torchZip(new PickleBuilder().op('}').op('}').stop()), /STOP with 1 values/],
      [
        'compressed entry',
        torchZip(new PickleBuilder().op('}').stop(), {}, 'archive', { method: 8 }),
        /is compressed \(method 8\)/,
      ],
      [
        'CRC mismatch',
        torchZip(new PickleBuilder().op('}').stop(), {}, 'archive', { crcOf: () => 1234 }),
        /fails its CRC-32 check/,
      ],
      ['not a zip', new Uint8Array(100), /no zip end-of-central-directory record/],
    ];
    for (const [what, bytes, message] of cases) {
      const err = await openTorchCheckpoint(bytes, { name: what }).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(CorruptFileError);
      expect((err as Error).message, what).toMatch(message);
      expect((err as Error).message.startsWith(`${what}:`), what).toBe(true);
    }
  });

  it('enforces its limits and validates them', async () => {
    const file = fixture('mlp_step_10.ckpt');
    await expect(openTorchCheckpoint(file, { limits: { maxPickleBytes: 100 } })).rejects.toThrow(
      /data\.pkl is \d+ bytes, more than the limit of 100/,
    );
    await expect(openTorchCheckpoint(file, { limits: { maxMemoEntries: 5 } })).rejects.toThrow(
      /more than the limit of 5 memo entries/,
    );
    await expect(openTorchCheckpoint(file, { limits: { maxStringBytes: 4 } })).rejects.toThrow(
      /a string of \d+ bytes, more than the limit of 4/,
    );
    await expect(openTorchCheckpoint(file, { limits: { maxStackDepth: 3 } })).rejects.toThrow(/limit of 3/);
    await expect(openTorchCheckpoint(file, { limits: { maxEntries: 3 } })).rejects.toThrow(
      /limit of 3 items/,
    );
    // A stride-0 view reaching more elements than its storage holds is bounded (readRaw materialises it).
    const expand = torchZip(new PickleBuilder().tensor('FloatStorage', '0', 1, 0, [3, 4], [0, 0]).stop(), {
      0: new Uint8Array(4),
    });
    const loaded = await loadTorchCheckpoint(expand);
    expect(loaded['']!.shape).toEqual([3, 4]);
    loaded['']!.dispose();
    await expect(openTorchCheckpoint(expand, { limits: { maxExpandedBytes: 47 } })).rejects.toThrow(
      /size \[3, 4\], stride \[0, 0\].* would take 48 bytes, more than the limit of 47 \(limits\.maxExpandedBytes\)/,
    );
    await expect(openTorchCheckpoint(file, { limits: { maxZipEntries: 2 } })).rejects.toThrow(
      /lists \d+ entries, more than the limit of 2/,
    );
    await expect(openTorchCheckpoint(file, { limits: { maxPickle: 1 } as never })).rejects.toThrow(
      /limits: unknown key "maxPickle"/,
    );
    await expect(openTorchCheckpoint(file, { limits: { maxNesting: 0 } })).rejects.toThrow(
      /limits\.maxNesting: expected a positive integer, got 0/,
    );
  });

  it('stays fast on containers shared exponentially often (memo references)', async () => {
    // t0 = x; t_i = (t_{i-1}, t_{i-1}): 60 levels, 2^59 paths to the leaf.
    const doubling = (leaf: PickleBuilder) => {
      leaf.raw(0x71, 0);
      for (let i = 1; i < 60; i++)
        leaf
          .raw(0x68, i - 1)
          .raw(0x86)
          .raw(0x71, i);
      return leaf.stop();
    };
    const started = performance.now();
    const plain = await openTorchCheckpoint(torchZip(doubling(new PickleBuilder().op(']'))));
    expect(plain.names).toEqual([]);
    await expect(
      openTorchCheckpoint(
        torchZip(doubling(new PickleBuilder().tensor('FloatStorage', '0', 1, 0, [1], [1])), {
          0: new Uint8Array(4),
        }),
        { limits: { maxTensors: 1000 } },
      ),
    ).rejects.toThrow(/lists more than the limit of 1000 tensors/);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('copies non-contiguous views into C order, including stride-0 expands', async () => {
    const ckpt = await openTorchCheckpoint(fixture('views.pt'));
    const t = await ckpt.readTensor('transposed');
    const base = await ckpt.readTensor('base');
    expect(await t.array()).toEqual(await tf.transpose(base).array());
    const e = await ckpt.readTensor('expanded');
    expect(e.shape).toEqual([3, 4]);
    expect(new Set(await e.data()).size).toBe(1);
    tf.dispose([t, base, e]);
    await ckpt.close();
  });
});
