// Plain Node, ESM, against the built package: train a PAVRM for two steps, save, load, score.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend, shutdownBackend, timestep } from '@prfl/tensor';
import { loadReward, Pavrm, PavrmTrainer, saveReward } from '@prfl/reward';
import { motionLatentBatch, TinyVideoBackbone } from '@prfl/reward/toy';

const backend = process.argv[2] ?? 'cpu';
await initBackend({ backend });
const batch = motionLatentBatch(new Generator(1), 4);
const backbone = new TinyVideoBackbone('tiny', { seed: 1 });
const reward = new Pavrm(backbone, { hidden: [16, 8] });
const trainer = new PavrmTrainer(reward, { seed: 2 });
const losses = [trainer.trainStep(batch).loss, trainer.trainStep(batch).loss];
const dir = mkdtempSync(path.join(tmpdir(), 'prfl-reward-smoke-'));
await saveReward(reward, dir);
const loaded = await loadReward(dir, new TinyVideoBackbone('tiny', { seed: 9 }));
const ts = [0, 300, 600, 900].map((t) => timestep(t));
const a = Array.from(await reward.score(batch.latents, ts, batch.conditioning).data());
const b = Array.from(await loaded.score(batch.latents, ts, batch.conditioning).data());
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    backend: tf.getBackend(),
    finite: losses.every(Number.isFinite),
    same: a.every((v, i) => v === b[i]),
    n: a.length,
  }),
);
await shutdownBackend();
