import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeEmbedded, loadEmbedded } from '../src/index.js';
import { pretrain } from '../src/recipe/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-pretrain-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('pretrain --quick', () => {
  it('runs every stage into a loadable weights folder, and a second call reuses every stage', async () => {
    const runDir = path.join(tmp, 'run');
    const out = path.join(tmp, 'weights');
    const stages = new Set<string>();
    const lines: string[] = [];
    const r = await pretrain({
      runDir,
      out,
      quick: true,
      onProgress: (p) => stages.add(p.stage),
      log: (l) => lines.push(l),
    });
    expect([...stages].sort()).toEqual(['decoder', 'encode', 'generate', 'generator', 'reward', 'vae']);
    expect(r.manifest.recipe).toMatchObject({
      seed: 1,
      quick: true,
      command: 'npm run pretrain -w @prfl/pretrained',
    });
    expect(readdirSync(runDir).sort()).toEqual(['decoder', 'generator', 'reward', 'vae']);
    const m = await loadEmbedded({ from: out });
    expect(m.reward).toBeDefined();
    disposeEmbedded(m);

    const again = new Set<string>();
    await pretrain({
      runDir,
      out,
      quick: true,
      onProgress: (p) => again.add(p.stage),
      log: (l) => lines.push(l),
    });
    expect(lines).toContain(`vae: trained already (${path.join(runDir, 'vae', 'vae.safetensors')})`);
    expect(lines).toContain(`decoder: tuned already (${path.join(runDir, 'decoder', 'vae.safetensors')})`);
    // Cached clips and generations, finished trainings: nothing is recomputed.
    expect([...again].sort()).toEqual(['encode', 'generate']);
  }, 180_000);
});
