/** Shared by the VAE, text and pipeline tests: fixture loading and tensor comparison. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Generator, loadSafetensors } from '@prfl/tensor';

export const VAE_FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'vae');

export interface VAEFixture {
  config: Record<string, unknown>;
  weights: Record<string, tf.Tensor>;
  grads: Record<string, tf.Tensor>;
  io: Record<string, tf.Tensor>;
  dispose(): void;
}

/** Loads fixtures/vae/<name> (written by scripts/make-vae-fixtures.py). */
export async function loadVAEFixture(name: string): Promise<VAEFixture> {
  const dir = path.join(VAE_FIXTURES, name);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const weights = await loadSafetensors(path.join(dir, 'weights.safetensors'));
  const grads = await loadSafetensors(path.join(dir, 'grads.safetensors'));
  const io = await loadSafetensors(path.join(dir, 'io.safetensors'));
  return {
    config,
    weights,
    grads,
    io,
    dispose: () => tf.dispose([...Object.values(weights), ...Object.values(grads), ...Object.values(io)]),
  };
}

/** max |a - b| and max |b| over two tensors of one shape. */
export async function compare(a: tf.Tensor, b: tf.Tensor): Promise<{ maxDiff: number; scale: number }> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  const x = await a.data();
  const y = await b.data();
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs((x[i] as number) - (y[i] as number)));
    scale = Math.max(scale, Math.abs(y[i] as number));
  }
  return { maxDiff, scale };
}

/** Overwrites every variable with seeded normal values (norm weights around 1), so no zero-initialised head hides the network. */
export function perturbVariables(vars: ReadonlyMap<string, tf.Variable>, seed: string, scale = 0.2): void {
  const g = new Generator(seed);
  for (const [name, v] of vars) {
    const fresh = g.derive(name).normal(v.shape, 0, scale);
    tf.tidy(() => v.assign(/norm\w*\.weight$|gamma$/.test(name) ? tf.add(fresh, 1) : fresh));
    fresh.dispose();
  }
}
