/**
 * The latent shard store: append, read by byte range, and the states a crash can leave behind (a
 * temporary shard, a complete but unlisted shard, a temporary manifest) which must not break it.
 * test/built-package.test.ts also kills a writer process mid-append.
 */
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CorruptFileError } from '@prfl/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { LatentShardStore, MANIFEST_NAME } from '../src/index.js';

/** The pid of a process that has exited: what a killed writer leaves in its temporary files' names. */
const deadPid = spawnSync(process.execPath, ['-e', '']).pid as number;
/** A temporary file name as @prfl/tensor's writeFileAtomic makes it. */
const tempOf = (target: string, pid: number) => `.${target}.${pid}.m4k2x9.a1b2c3d4.tmp`;

const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const latent = (seed: number) => ({
  shape: [2, 3, 3, 4],
  data: Float32Array.from({ length: 72 }, (_, i) => seed + i / 8),
});

describe('LatentShardStore', () => {
  it('appends shards and reads every tensor back', async () => {
    const dir = path.join(tmp, 'basic');
    const store = await LatentShardStore.open(dir, { create: true });
    await store.append({ 'a/latent': latent(1), 'b/latent': latent(2) });
    await store.append({ 'c/latent': latent(3), 'c/ids': { shape: [3], data: new Int32Array([4, 5, 6]) } });
    expect(store.keys()).toEqual(['a/latent', 'b/latent', 'c/latent', 'c/ids']);
    expect(store.shards.map((s) => s.file)).toEqual(['shard-000000.safetensors', 'shard-000001.safetensors']);
    const b = await store.read('b/latent');
    expect(b.shape).toEqual([2, 3, 3, 4]);
    expect(Array.from(b.data)).toEqual(Array.from(latent(2).data));
    expect(Array.from((await store.read('c/ids')).data)).toEqual([4, 5, 6]);
    expect(await store.info('a/latent')).toEqual({
      dtype: 'F32',
      shape: [2, 3, 3, 4],
      shard: 'shard-000000.safetensors',
    });
    await store.close();

    const again = await LatentShardStore.open(dir, { verify: 'checksum' });
    expect(again.size).toBe(4);
    expect(again.orphans).toEqual([]);
    await again.close();
  });

  it('stores float16 on request and reads float32 back', async () => {
    const store = await LatentShardStore.open(path.join(tmp, 'f16'), { create: true });
    await store.append(
      { x: { shape: [3], data: new Float32Array([1.5, -2, 1 / 3]) } },
      { floatStorage: 'F16' },
    );
    const x = await store.read('x');
    expect(x.dtype).toBe('F16');
    expect(Array.from(x.data)).toEqual([1.5, -2, 0.333251953125]);
    await store.close();
  });

  it('rejects duplicate names, unknown names, bad arrays and a missing store, naming them', async () => {
    await expect(LatentShardStore.open(path.join(tmp, 'nothing'))).rejects.toThrow(
      /no manifest\.json in .*nothing \(pass \{ create: true \}/,
    );
    const store = await LatentShardStore.open(path.join(tmp, 'errors'), { create: true });
    await store.append({ k: latent(0) });
    await expect(store.append({ k: latent(1) })).rejects.toThrow(
      /"k" is already in the store \(shard-000000\.safetensors\)/,
    );
    await expect(store.read('nope')).rejects.toThrow(/no tensor "nope" \(1 stored, e\.g\. "k"\)/);
    await expect(store.append({ bad: { shape: [2, 2], data: new Float32Array(3) } })).rejects.toThrow(
      /"bad" has shape \[2, 2\] \(4 values\) but 3 values/,
    );
    await store.close();
    await expect(store.read('k')).rejects.toThrow(/after close\(\)/);
  });

  it('survives the states a crash leaves: temporary files of killed writes are removed, an unlisted shard is an orphan', async () => {
    const dir = path.join(tmp, 'crash');
    const store = await LatentShardStore.open(dir, { create: true });
    await store.append({ a: latent(1) });
    await store.append({ b: latent(2) });
    await store.close();
    const manifestBefore = readFileSync(path.join(dir, MANIFEST_NAME), 'utf8');
    // Killed while writing a shard: a partial temporary file.
    writeFileSync(path.join(dir, tempOf('shard-000002.safetensors', deadPid)), 'partial');
    // Killed after the shard's rename, before the manifest's: a complete shard nobody lists.
    copyFileSync(path.join(dir, 'shard-000001.safetensors'), path.join(dir, 'shard-000003.safetensors'));
    // Killed while writing the manifest: a partial temporary manifest.
    writeFileSync(path.join(dir, tempOf(MANIFEST_NAME, deadPid)), '{"format": "prfl-lat');
    // A write still in progress (its process runs) and files that are not the store's: left alone.
    const live = tempOf('shard-000002.safetensors', process.pid);
    writeFileSync(path.join(dir, live), 'in progress');
    writeFileSync(path.join(dir, '.notes.tmp'), 'mine');
    writeFileSync(path.join(dir, tempOf('other.bin', deadPid)), 'not the store');

    const reopened = await LatentShardStore.open(dir, { verify: 'checksum' });
    expect(reopened.keys()).toEqual(['a', 'b']);
    expect(reopened.orphans).toEqual([live, 'shard-000003.safetensors']);
    expect(readdirSync(dir).filter((n) => n.includes(String(deadPid)))).toEqual([
      tempOf('other.bin', deadPid),
    ]);
    expect(Array.from((await reopened.read('b')).data)).toEqual(Array.from(latent(2).data));
    // Appending after a crash never reuses an orphan's number, and clears stale temporary files too.
    writeFileSync(path.join(dir, tempOf('shard-000009.safetensors', deadPid)), 'killed meanwhile');
    const entry = await reopened.append({ c: latent(3) });
    expect(entry.file).toBe('shard-000004.safetensors');
    expect(readdirSync(dir)).not.toContain(tempOf('shard-000009.safetensors', deadPid));
    expect(readFileSync(path.join(dir, MANIFEST_NAME), 'utf8')).not.toBe(manifestBefore);
    expect((await reopened.removeOrphans()).length).toBe(2);
    expect(readdirSync(dir).sort()).toEqual([
      '.notes.tmp',
      tempOf('other.bin', deadPid),
      MANIFEST_NAME,
      'shard-000000.safetensors',
      'shard-000001.safetensors',
      'shard-000004.safetensors',
    ]);
    await reopened.close();
  });

  it('refuses a hostile manifest with a CorruptFileError naming it', async () => {
    const dir = path.join(tmp, 'hostile');
    const store = await LatentShardStore.open(dir, { create: true });
    await store.close();
    const manifest = path.join(dir, MANIFEST_NAME);
    const cases: Array<[string | Uint8Array, RegExp]> = [
      [Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), /manifest\.json: not valid UTF-8 \(byte 2: 0xc0\)/],
      [
        `{"format": "prfl-latent-shards", "version": 1, "shards": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
        /nested deeper than 64 levels/,
      ],
      [
        '{"__proto__": {"format": "prfl-latent-shards", "version": 1, "shards": []}}',
        /expected \{"format": "prfl-latent-shards"/,
      ],
      [
        `{"format": "prfl-latent-shards", "version": 1, "shards": [{"file": "../../etc/passwd", "bytes": 1, "sha256": "", "tensors": []}]}`,
        /shards\[0\] must be/,
      ],
      [
        `{"format": "prfl-latent-shards", "version": 1, "shards": [{"file": "shard-000000.safetensors", "bytes": 1e400, "sha256": "", "tensors": ["${'t'.repeat(100_000)}"]}]}`,
        /shards\[0\] must be/,
      ],
    ];
    for (const [text, re] of cases) {
      writeFileSync(manifest, text);
      const error = await LatentShardStore.open(dir).catch((e: Error) => e);
      expect(error, re.source).toBeInstanceOf(CorruptFileError);
      expect((error as Error).message).toMatch(re);
      expect((error as Error).message.length).toBeLessThan(500);
    }
  });

  it('detects a listed shard that is missing, truncated or altered', async () => {
    const dir = path.join(tmp, 'damaged');
    const store = await LatentShardStore.open(dir, { create: true });
    await store.append({ a: latent(1) });
    await store.append({ b: latent(2) });
    await store.close();
    const shard = path.join(dir, 'shard-000001.safetensors');
    const bytes = readFileSync(shard);
    // Same size, one byte changed: only the checksum sees it.
    const altered = Buffer.from(bytes);
    altered.writeUInt8((altered.at(-1) as number) ^ 0xff, altered.length - 1);
    writeFileSync(shard, altered);
    await expect(LatentShardStore.open(dir)).resolves.toBeDefined();
    await expect(LatentShardStore.open(dir, { verify: 'checksum' })).rejects.toThrow(
      /shard-000001\.safetensors: SHA-256 .* differs from the manifest's/,
    );
    truncateSync(shard, bytes.length - 10);
    await expect(LatentShardStore.open(dir)).rejects.toThrow(
      /shard-000001\.safetensors: \d+ bytes, the manifest says \d+ \(truncated or altered\)/,
    );
    rmSync(shard);
    await expect(LatentShardStore.open(dir)).rejects.toThrow(
      /lists shard-000001\.safetensors but .* is missing/,
    );
  });
});
