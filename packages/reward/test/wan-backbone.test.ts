/**
 * PAVRM on the Wan2.1 DiT of @prfl/models (when that workspace package is present): the reward trains the
 * truncation's blocks, leaves its embeddings frozen, and saves the blocks exactly as Wan's own state dict
 * (same keys, same PyTorch layouts). @prfl/reward does not depend on @prfl/models; this suite is skipped
 * where it is not installed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  type FeatureBackbone,
  Generator,
  initBackend,
  loadSafetensors,
  shutdownBackend,
  timestep,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optionalWanDiT } from './helpers.js';
import { loadReward, Pavrm, PavrmTrainer, saveReward } from '../src/index.js';

interface WanLike {
  truncate(k: number): FeatureBackbone & { stateDict(): Map<string, tf.Tensor>; dispose(): void };
  dispose(): void;
}
type WanCtor = new (preset: string, options: { seed: number }) => WanLike;

const WanDiT = await optionalWanDiT<WanCtor>();

describe.skipIf(WanDiT === undefined).each(backendsUnderTest())(
  'PAVRM on the Wan DiT (@prfl/models) on %s',
  (backend) => {
    const dirs: string[] = [];
    beforeAll(async () => {
      await initBackend({ backend });
    });
    afterAll(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      shutdownBackend();
    });

    it('trains the truncated blocks, saves them in Wan layout, loads them back', async () => {
      const Ctor = WanDiT as WanCtor;
      const dit = new Ctor('tiny', { seed: 1 });
      const backbone = dit.truncate(2);
      const reward = new Pavrm(backbone, { hidden: [32, 16] });
      const g = new Generator(1);
      const latents = g.normal<tf.Rank.R5>([2, 2, 4, 4, 16]);
      const text = g.normal<tf.Rank.R3>([2, 4, 32]);
      const labels = tf.tensor1d([1, 0]);
      const before = new Map([...backbone.namedVariables()].map(([k, v]) => [k, v.dataSync().slice()]));
      const trainer = new PavrmTrainer(reward, { seed: 1 });
      const m = trainer.trainStep({ ids: ['a', 'b'], latents, labels, conditioning: { text } });
      expect(Number.isFinite(m.loss)).toBe(true);
      for (const [name, v] of backbone.namedVariables()) {
        const changed = v.dataSync().some((x, i) => x !== before.get(name)![i]);
        expect(changed, name).toBe(name.startsWith('blocks.'));
      }

      const dir = mkdtempSync(path.join(tmpdir(), 'prfl-reward-wan-'));
      dirs.push(dir);
      await saveReward(reward, dir);
      const saved = await loadSafetensors(path.join(dir, 'transformer.safetensors'));
      const wan = backbone.stateDict();
      expect(Object.keys(saved).sort()).toEqual([...wan.keys()].sort());
      for (const [name, t] of wan) {
        expect(saved[name]!.shape, name).toEqual(t.shape);
        expect(Array.from(saved[name]!.dataSync()), name).toEqual(Array.from(t.dataSync()));
      }
      const ts = [timestep(200), timestep(800)];
      const fresh = new Ctor('tiny', { seed: 5 });
      const freshBackbone = fresh.truncate(2);
      const loaded = await loadReward(dir, freshBackbone);
      expect(Array.from(await loaded.score(latents, ts, { text }).data())).toEqual(
        Array.from(await reward.score(latents, ts, { text }).data()),
      );
      tf.dispose([latents, text, labels, ...Object.values(saved), ...wan.values()]);
      trainer.dispose();
      for (const r of [reward, loaded]) r.dispose();
      for (const b of [backbone, freshBackbone, dit, fresh]) b.dispose();
    });
  },
);
