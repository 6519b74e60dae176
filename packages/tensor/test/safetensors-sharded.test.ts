import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { CorruptFileError, InvalidArgumentError } from '../src/errors.js';
import {
  loadTensors,
  openShardedSafetensors,
  openShardedSafetensorsFrom,
  parseShardIndex,
  saveShardedSafetensors,
  serializeSafetensors,
} from '../src/safetensors/index.js';
import { backendsUnderTest } from '../src/testing/backends.js';

function weights(): Record<string, tf.Tensor> {
  // 5 tensors of 400 bytes (F32 [10, 10]) and one of 2000 bytes.
  return tf.tidy(() => {
    const out: Record<string, tf.Tensor> = {};
    for (let i = 0; i < 5; i++) out[`layers.${i}.weight`] = tf.fill([10, 10], i);
    out['embed.weight'] = tf.reshape(tf.range(0, 500, 1, 'float32'), [50, 10]);
    return out;
  });
}

describe.each(backendsUnderTest())('sharded safetensors on %s', (backend) => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend });
    dir = await mkdtemp(join(tmpdir(), `prfl-shards-${backend}-`));
  });
  afterAll(async () => {
    await shutdownBackend();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes shards of at most maxShardBytes plus a Hugging Face index, and reads them back lazily', async () => {
    const before = tf.memory().numTensors;
    const tensors = weights();
    const out = join(dir, 'ckpt');
    const saved = await saveShardedSafetensors(out, tensors, {
      maxShardBytes: 1000,
      metadata: { format: 'pt' },
    });
    // As huggingface_hub: [l0, l1] (800 bytes), [l2, l3]; embed (2000 > max) gets a shard of its own at
    // once, while l4 stays in the open shard, which is closed last.
    expect(saved.files).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
    ]);
    expect(saved.indexFile).toBe('model.safetensors.index.json');
    expect(saved.totalSize).toBe(4000);
    expect((await readdir(out)).sort()).toEqual([...saved.files, saved.indexFile].sort());
    const index = JSON.parse(await readFile(join(out, saved.indexFile!), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 4000 },
      weight_map: {
        'embed.weight': 'model-00003-of-00004.safetensors',
        'layers.0.weight': 'model-00001-of-00004.safetensors',
        'layers.1.weight': 'model-00001-of-00004.safetensors',
        'layers.2.weight': 'model-00002-of-00004.safetensors',
        'layers.3.weight': 'model-00002-of-00004.safetensors',
        'layers.4.weight': 'model-00004-of-00004.safetensors',
      },
    });
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort());

    for (const path of [join(out, saved.indexFile!), out]) {
      const ckpt = await openShardedSafetensors(path);
      expect(ckpt.files).toEqual(saved.files);
      expect(ckpt.index.totalSize).toBe(4000);
      expect(ckpt.metadata).toEqual({ format: 'pt' });
      expect([...ckpt.names].sort()).toEqual(Object.keys(tensors).sort());
      expect(ckpt.shardOf('layers.3.weight')).toBe('model-00002-of-00004.safetensors');
      expect(ckpt.info('embed.weight').shape).toEqual([50, 10]);
      const loaded = await loadTensors(ckpt);
      for (const [name, t] of Object.entries(tensors)) {
        expect(Array.from(await loaded[name]!.data())).toEqual(Array.from(await t.data()));
      }
      tf.dispose(Object.values(loaded));
      await expect(ckpt.readTensor('layers.9.weight')).rejects.toThrow(/no tensor named "layers.9.weight"/);
      await ckpt.close();
    }
    tf.dispose(Object.values(tensors));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('writes one unsharded file without an index when everything fits, and opens it from the folder', async () => {
    const tensors = weights();
    const out = join(dir, 'single');
    const saved = await saveShardedSafetensors(out, tensors, {
      prefix: 'diffusion_pytorch_model',
      dtype: 'BF16',
    });
    expect(saved).toEqual({
      files: ['diffusion_pytorch_model.safetensors'],
      indexFile: undefined,
      totalSize: 2000,
    });
    const ckpt = await openShardedSafetensors(out);
    expect(ckpt.files).toEqual(['diffusion_pytorch_model.safetensors']);
    expect(ckpt.info('embed.weight').dtype).toBe('BF16');
    const t = await ckpt.readTensor('layers.4.weight');
    expect(Array.from(await t.data())).toEqual(new Array(100).fill(4));
    t.dispose();
    await ckpt.close();
    tf.dispose(Object.values(tensors));
  });

  it('opens shards from any source through openShardedSafetensorsFrom', async () => {
    const a = tf.tensor([1, 2]);
    const b = tf.tensor([3], [1], 'int32');
    const shards: Record<string, Uint8Array<ArrayBuffer>> = {
      's1.safetensors': await serializeSafetensors({ a }),
      's2.safetensors': await serializeSafetensors({ b }),
    };
    const index = JSON.stringify({
      metadata: { total_size: 12 },
      weight_map: { a: 's1.safetensors', b: 's2.safetensors' },
    });
    const ckpt = await openShardedSafetensorsFrom(index, (file) => new Blob([shards[file]!]));
    const loaded = await loadTensors(ckpt, ['b']);
    expect(Array.from(await loaded.b!.data())).toEqual([3]);
    await ckpt.close();
    tf.dispose([a, b, loaded.b!]);
  });
});

describe('sharded safetensors errors', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    dir = await mkdtemp(join(tmpdir(), 'prfl-shards-err-'));
  });
  afterAll(async () => {
    await shutdownBackend();
    await rm(dir, { recursive: true, force: true });
  });

  async function checkpoint(name: string): Promise<string> {
    const out = join(dir, name);
    const tensors = weights();
    await saveShardedSafetensors(out, tensors, { maxShardBytes: 1000 });
    tf.dispose(Object.values(tensors));
    return out;
  }

  it('names a missing shard file', async () => {
    const out = await checkpoint('missing');
    await rm(join(out, 'model-00002-of-00004.safetensors'));
    const err = await openShardedSafetensors(out).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CorruptFileError);
    expect((err as Error).message).toMatch(
      /model\.safetensors\.index\.json: weight_map refers to shard model-00002-of-00004\.safetensors, which does not exist in /,
    );
  });

  it('names a weight_map entry whose shard lacks the tensor', async () => {
    const out = await checkpoint('wrong-shard');
    const path = join(out, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(path, 'utf8'));
    index.weight_map['layers.0.weight'] = 'model-00003-of-00004.safetensors';
    await writeFile(path, JSON.stringify(index));
    await expect(openShardedSafetensors(path)).rejects.toThrow(
      /weight_map puts tensor "layers.0.weight" in model-00003-of-00004.safetensors, but that shard has no such tensor \(it holds 1: "embed.weight"\)/,
    );
  });

  it('names a corrupt shard', async () => {
    const out = await checkpoint('corrupt-shard');
    const shard = join(out, 'model-00001-of-00004.safetensors');
    const bytes = await readFile(shard);
    await writeFile(shard, bytes.subarray(0, bytes.length - 1));
    await expect(openShardedSafetensors(out)).rejects.toThrow(
      /model-00001-of-00004\.safetensors: tensor "layers.1.weight" has data_offsets \[400, 800\], past the end of the data section \(799 bytes/,
    );
  });

  it('rejects malformed indexes', () => {
    const bad = (text: string, re: RegExp): void => {
      expect(() => parseShardIndex(text, 'idx.json')).toThrow(CorruptFileError);
      expect(() => parseShardIndex(text, 'idx.json')).toThrow(re);
    };
    bad('{"weight_map": ', /idx\.json: not valid JSON: unexpected end of input/);
    bad('[]', /expected a JSON object with a weight_map, got an array of 0/);
    bad(
      '{"metadata": {}}',
      /expected "weight_map" to be an object of tensor name -> shard file, got nothing/,
    );
    bad('{"weight_map": []}', /got an array of 0/);
    bad(
      '{"weight_map": {"a": 1}}',
      /expected weight_map\["a"\] to be a shard file name in the index's folder, got the number 1/,
    );
    bad('{"weight_map": {"a": "../../etc/passwd"}}', /got the string "..\/..\/etc\/passwd"/);
    bad('{"weight_map": {"a": "C:x.safetensors"}}', /shard file name/);
    bad('{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}', /duplicate key "a"/);
    bad(
      '{"weight_map": {}, "metadata": {"total_size": "12"}}',
      /metadata.total_size to be a non-negative number, got the string "12"/,
    );
    bad('{"weight_map": {}, "metadata": 3}', /expected "metadata" to be an object/);
    expect(() => parseShardIndex(new Uint8Array([0xff, 0xfe]), 'idx.json')).toThrow(/not valid UTF-8/);
    expect(parseShardIndex('{"weight_map": {"a": "x.safetensors"}}').totalSize).toBeUndefined();
  });

  it('explains a folder without a checkpoint, and bad save options', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(openShardedSafetensors(empty)).rejects.toThrow(InvalidArgumentError);
    await expect(openShardedSafetensors(empty)).rejects.toThrow(
      /expected a \*\.safetensors\.index\.json or a single \*\.safetensors file, found neither/,
    );
    await expect(openShardedSafetensors(join(dir, 'nope'))).rejects.toThrow(/cannot open the checkpoint/);
    const a = tf.ones([2]);
    await expect(saveShardedSafetensors(empty, { a }, { maxShardBytes: 0 })).rejects.toThrow(
      /maxShardBytes: expected a positive integer/,
    );
    await expect(saveShardedSafetensors(empty, { a }, { prefix: '../x' })).rejects.toThrow(
      /prefix: expected a file name/,
    );
    a.dispose();
  });

  it('removes the shards it wrote when a later shard fails', async () => {
    const out = join(dir, 'failing');
    const a = tf.ones([100]);
    const bad = tf.tensor([1, 1000], [2], 'int32');
    await expect(
      saveShardedSafetensors(out, { a, bad }, { maxShardBytes: 400, dtypes: { bad: 'U8' } }),
    ).rejects.toThrow(/element 1 is 1000/);
    expect(await readdir(out)).toEqual([]);
    tf.dispose([a, bad]);
  });
});
