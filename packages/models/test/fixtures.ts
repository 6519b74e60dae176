/** Loads the PyTorch golden vectors written by scripts/make-dit-fixtures.py. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, loadSafetensors } from '@prfl/tensor';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dit');

export interface DiTFixture {
  dir: string;
  config: Record<string, unknown>;
  weights: Record<string, tf.Tensor>;
  io: Record<string, tf.Tensor>;
}

export async function loadFixture(name: 'tiny-t2v' | 'small-i2v'): Promise<DiTFixture> {
  const dir = path.join(FIXTURES, name);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const weights = await loadSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'));
  const io = await loadSafetensors(path.join(dir, 'io.safetensors'));
  return { dir, config, weights, io };
}

/** Max |a - b| over two tensors of one shape. */
export async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  const x = await a.data();
  const y = await b.data();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs((x[i] as number) - (y[i] as number)));
  return m;
}

/** Overwrites every variable with seeded random values (Wan's init zeroes the head, hiding the rest). */
export function randomize(vars: ReadonlyMap<string, tf.Variable>, seed: string, scale = 0.3): void {
  const g = new Generator(seed);
  for (const [name, v] of vars) {
    const fresh = g.derive(name).normal(v.shape, 0, scale);
    tf.tidy(() => v.assign(/norm\w*\.weight$/.test(name) ? tf.add(fresh, 1) : fresh));
    fresh.dispose();
  }
}
