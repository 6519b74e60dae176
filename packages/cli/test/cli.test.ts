/**
 * The built binary, run as a child process: `node dist/bin.js ...` (turbo builds the package before its
 * tests; run `npm run build -w @prfl/cli` first when calling vitest directly).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeNpy } from '@prfl/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, PACKAGE_DIR, saveTinyModels, tempDir } from './fixtures.js';

const tmp = tempDir('bin');
const weights = path.join(tmp.dir, 'weights');
afterAll(tmp.remove);

beforeAll(async () => {
  if (!existsSync(BIN)) {
    throw new Error(
      `${BIN} does not exist: build the package first (npm run build -w @prfl/cli; turbo does it before tests)`,
    );
  }
  await saveTinyModels(weights);
}, 120_000);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function prfl(args: string[], cwd = tmp.dir): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A safetensors file with one F32 [2, 3] tensor, one I32 [4] and metadata, written by hand. */
function smallSafetensors(file: string): void {
  const header = {
    __metadata__: { format: 'pt', note: 'cli test' },
    'block.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    'block.index': { dtype: 'I32', shape: [4], data_offsets: [24, 40] },
  };
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, json.length, true);
  const data = new Uint8Array(40);
  new Float32Array(data.buffer, 0, 6).set([1, 2, 3, 4, 5, 6]);
  new Int32Array(data.buffer, 24, 4).set([0, 1, 2, 3]);
  writeFileSync(file, Buffer.concat([head, Buffer.from(json), data]));
}

describe('prfl (built binary)', () => {
  it('--help lists the commands with examples; each command has its own help', async () => {
    const r = await prfl(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['inspect', 'generate', 'score', 'pretrain', 'config']) expect(r.stdout).toContain(c);
    expect(r.stdout).toContain('--backend <name>');
    expect(r.stdout).toContain('Examples:');
    const g = await prfl(['generate', '--help']);
    expect(g.code).toBe(0);
    expect(g.stdout).toContain('--prompt <text>');
    expect(g.stdout).toContain('Global Options:');
    expect(g.stdout).toContain('$ prfl generate --prompt');
  });

  it('a config error exits with 2 and one line on stderr', async () => {
    const r = await prfl(['config', '--set', 'optimizer.lr=1']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'prfl: unknown config key optimizer.lr (from --set); did you mean optimizer.learning_rate? `prfl config --keys` lists every key\n',
    );
    const range = await prfl(['config', '--set', 'dataset.uncond_prob=2']);
    expect(range.code).toBe(2);
    expect(range.stderr).toBe(
      'prfl: dataset.uncond_prob (from --set): expected a number in [0, 1], got number 2\n',
    );
    const usage = await prfl(['generate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--prompt <text>' not specified");
  });

  it('inspect: a safetensors file, as text and as JSON', async () => {
    const file = path.join(tmp.dir, 'small.safetensors');
    smallSafetensors(file);
    const text = await prfl(['inspect', file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('2 tensors, 10 parameters, 40 B');
    expect(text.stdout).toMatch(/block\.weight\s+F32\s+\[2, 3\]\s+6/);
    expect(text.stdout).toContain('note: cli test');
    const json = await prfl(['inspect', file, '--json']);
    expect(json.code).toBe(0);
    const r = JSON.parse(json.stdout);
    expect(r).toMatchObject({ kind: 'safetensors', tensorCount: 2, totalParams: 10, totalBytes: 40 });
    expect(r.metadata).toEqual({ format: 'pt', note: 'cli test' });
    expect(r.tensors[1]).toEqual({ name: 'block.index', dtype: 'I32', shape: [4], params: 4, bytes: 16 });
    const bad = path.join(tmp.dir, 'bad.safetensors');
    writeFileSync(bad, 'not a weights file at all');
    const b = await prfl(['inspect', bad]);
    expect(b.code).toBe(2);
    expect(b.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(b.stderr).toMatch(/^prfl: /);
  });

  it('inspect: a PyTorch checkpoint, read without running its pickle', async () => {
    const fixtures = path.join(PACKAGE_DIR, '..', 'tensor', 'fixtures', 'torch');
    const r = await prfl(['inspect', path.join(fixtures, 'mlp_step_10.ckpt'), '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.stdout);
    expect(t).toMatchObject({ kind: 'torch', archive: 'mlp_step_10', tensorCount: 6, totalParams: 4225 });
    expect(t.tensors[0]).toMatchObject({ name: 'fc1.weight', dtype: 'F32', shape: [64, 32] });
    const evil = await prfl(['inspect', path.join(fixtures, 'malicious-eval.pt')]);
    expect(evil.code).toBe(2);
    expect(evil.stderr).toMatch(/^prfl: .*refuses.*nothing in the file was executed/);
  });

  it('inspect: a trainer checkpoint folder', async () => {
    const dir = path.join(tmp.dir, 'ckpt');
    mkdirSync(dir, { recursive: true });
    smallSafetensors(path.join(dir, 'model-00000012.safetensors'));
    writeFileSync(
      path.join(dir, 'checkpoint.json'),
      JSON.stringify({
        format: 'prfl-reward-checkpoint',
        version: 1,
        step: 12,
        epoch: 1,
        batchInEpoch: 3,
        files: { model: 'model-00000012.safetensors' },
        options: { lrHead: 1e-5 },
      }),
    );
    const r = await prfl(['inspect', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('trainer checkpoint (prfl-reward-checkpoint), step 12, epoch 1');
    expect(r.stdout).toContain('model          model-00000012.safetensors: 2 tensors, 10 parameters');
    const j = JSON.parse((await prfl(['inspect', path.join(dir, 'checkpoint.json'), '--json'])).stdout);
    expect(j).toMatchObject({ kind: 'checkpoint', step: 12, epoch: 1, state: { batchInEpoch: 3 } });
  });

  it('inspect: folders (embedded weights, PAVRM, Wan DiT)', async () => {
    const e = JSON.parse((await prfl(['inspect', weights, '--json'])).stdout);
    expect(e.kind).toBe('embedded');
    expect(e.manifest.rewardBlocks).toBe(1);
    expect(Object.keys(e.models)).toEqual(['vae', 'textEncoder', 'dit', 'pavrm']);
    expect(e.models.dit.totalParams).toBeGreaterThan(0);
    const p = JSON.parse((await prfl(['inspect', path.join(weights, 'pavrm'), '--json'])).stdout);
    expect(p.kind).toBe('pavrm');
    expect(p.manifest.config.blocks).toBe(1);
    const d = await prfl(['inspect', path.join(weights, 'dit')]);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('Wan DiT folder');
    expect(d.stdout).toContain('num_layers: 2');
    const unknown = await prfl(['inspect', path.join(tmp.dir)]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('not a folder prfl knows');
  });

  it('generate writes a GIF (and a PNG strip) judged by the oracle and the PAVRM; the run folder inspects', async () => {
    const runDir = path.join(tmp.dir, 'gen-run');
    const out = path.join(tmp.dir, 'out', 'video.gif');
    mkdirSync(path.dirname(out), { recursive: true });
    const r = await prfl([
      'generate',
      '--prompt',
      'a large red circle moving left',
      '--prompt',
      'a large blue square moving up',
      '--weights',
      weights,
      '--steps',
      '2',
      '--seed',
      '3',
      '--out',
      out,
      '--run-dir',
      runDir,
      '--json',
    ]);
    expect(r.stderr).not.toContain('unexpected');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      out,
      runDir,
      steps: 2,
      seed: 3,
      timestep: 0,
      frames: 17,
      height: 64,
      width: 64,
    });
    expect(result.videos).toHaveLength(2);
    for (const v of result.videos) {
      expect(v.reward).toBeGreaterThan(0);
      expect(v.reward).toBeLessThan(1);
      expect([0, 1]).toContain(v.motionGood);
    }
    expect(result.videos[1].seed).toBe('3-1');
    const gif = readFileSync(out);
    expect(gif.subarray(0, 6).toString('latin1')).toBe('GIF89a');
    // Logical screen: two 64 x 4 = 256 px videos side by side with a 2 px gap, 256 px high.
    expect(gif.readUInt16LE(6)).toBe(256 * 2 + 2);
    expect(gif.readUInt16LE(8)).toBe(256);
    expect(gif[gif.length - 1]).toBe(0x3b); // trailer
    // Progress went to stderr, never into the JSON.
    expect(r.stderr).toContain('sample');

    const run = JSON.parse((await prfl(['inspect', runDir, '--json'])).stdout);
    expect(run.kind).toBe('run');
    expect(run.metricsLines).toBe(2);
    expect(run.lastMetrics).toMatchObject({ video: 1, prompt: 'a large blue square moving up' });
    expect(run.config.prfl.sampling.num_steps).toBe(2);

    const png = path.join(tmp.dir, 'strip.png');
    const s = await prfl([
      'generate',
      '--prompt',
      'a large red circle moving left',
      '--weights',
      weights,
      '--steps',
      '1',
      '--scale',
      '1',
      '--out',
      png,
      '--quiet',
    ]);
    expect(s.code).toBe(0);
    expect(s.stderr).toBe('');
    expect(s.stdout).toMatch(/^wrote .*strip\.png: 1 video of 17 frames 64x64/);
    expect(readFileSync(png).subarray(1, 4).toString('latin1')).toBe('PNG');
  });

  it('generate: missing weights and bad prompts are one-line errors', async () => {
    const missing = await prfl([
      'generate',
      '--prompt',
      'a large red circle moving left',
      '--weights',
      path.join(tmp.dir, 'nowhere'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^prfl: --weights .*nowhere: no manifest\.json there; expected a folder written by `prfl pretrain --out`/,
    );
    if (!existsSync(path.join(PACKAGE_DIR, '..', 'pretrained', 'weights', 'manifest.json'))) {
      // Before `prfl pretrain` has run: say so, and create nothing.
      const cwd = path.join(tmp.dir, 'empty-cwd');
      mkdirSync(cwd);
      const none = await prfl(['generate', '--prompt', 'a large red circle moving left'], cwd);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(
        /^prfl: the embedded weights do not exist yet \(.*\): make them with `prfl pretrain`/,
      );
      expect(readdirSync(cwd)).toEqual([]);
    }
    const prompt = await prfl(['generate', '--prompt', 'a purple cow', '--weights', weights]);
    expect(prompt.code).toBe(2);
    expect(prompt.stderr).toMatch(/^prfl: prompt "a purple cow": expected a colour/);
    const ext = await prfl(['generate', '--prompt', 'a large red circle moving left', '--out', 'x.mp4']);
    expect(ext.code).toBe(2);
    expect(ext.stderr).toContain('expected a .gif (animation) or .png (frame strip) file name');
  });

  it('score: a latent and a video from .npy', async () => {
    const latent = path.join(tmp.dir, 'latent.npy');
    const values = Float32Array.from({ length: 5 * 8 * 8 * 4 }, (_, i) => Math.sin(i));
    writeFileSync(latent, encodeNpy({ shape: [5, 8, 8, 4], data: values }));
    const r = await prfl([
      'score',
      latent,
      '--prompt',
      'a large red circle moving left',
      '--weights',
      weights,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ kind: 'latent', shape: [5, 8, 8, 4], timestep: 0 });
    expect(s.probabilities).toHaveLength(1);
    const noisy = JSON.parse(
      (
        await prfl([
          'score',
          latent,
          '--prompt',
          'a large red circle moving left',
          '--weights',
          weights,
          '--timestep',
          '500',
          '--json',
        ])
      ).stdout,
    );
    expect(noisy.timestep).toBe(500);
    expect(noisy.probabilities[0]).not.toBe(s.probabilities[0]);

    const video = path.join(tmp.dir, 'video.npy');
    writeFileSync(
      video,
      encodeNpy({ shape: [17, 64, 64, 3], data: new Uint8Array(17 * 64 * 64 * 3).fill(128) }),
    );
    const v = await prfl([
      'score',
      video,
      '--prompt',
      'a large red circle moving left',
      '--weights',
      weights,
    ]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(
      /video \[17, 64, 64, 3\], PAVRM at t=0\n {2}#0 "a large red circle moving left": p\(good motion\) = 0\.\d{4}/,
    );
  });
});
