/** Shared test helpers: fixtures, a stub backbone, closeness checks. */
import { readFileSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs-core';
import type { FeatureBackbone } from '@prfl/tensor';
import { expect } from 'vitest';

export interface HeadFixture {
  torch: string;
  config: { featureDim: number; numHeads: number; hidden: number[]; batch: number; tokens: number };
  query_attention: Record<string, { shape: number[]; values: number[] }>;
  mlp: Record<string, { shape: number[]; values: number[] }>;
  tokens: number[];
  coef: number[];
  outputs: Record<string, { z: number[]; logits: number[] }>;
  grads: Record<string, Record<string, number[]>>;
  reference_batch1: { z: number[] };
}

export function fixturePath(rel: string): string {
  return new URL(`../fixtures/${rel}`, import.meta.url).pathname;
}

export function loadHeadFixture(): HeadFixture {
  return JSON.parse(readFileSync(fixturePath('head/head.json'), 'utf8')) as HeadFixture;
}

/** A backbone that only has a width: for tests of the head on given tokens. */
export function stubBackbone(featureDim: number, numBlocks = 1): FeatureBackbone {
  return {
    featureDim,
    numBlocks,
    features: () => {
      throw new Error('stub backbone: features() is not available');
    },
    namedVariables: () => new Map(),
  };
}

/** Max |a - b| / max(1, |b|) over elements. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    m = Math.max(m, Math.abs(x - y) / Math.max(1, Math.abs(y)));
  }
  return m;
}

export async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

import { Generator as Gen } from '@prfl/tensor';
import { Pavrm } from '../src/index.js';
import { motionLatentBatch, TinyVideoBackbone } from '../src/toy/index.js';

/** A tiny PAVRM on the toy backbone (the caller disposes both). */
export function tinyReward(
  seed = 1,
  options: ConstructorParameters<typeof Pavrm>[1] = {},
): { backbone: TinyVideoBackbone; reward: Pavrm } {
  const backbone = new TinyVideoBackbone('tiny', { seed });
  const reward = new Pavrm(backbone, { hidden: [16, 8], seed, ...options });
  return { backbone, reward };
}

/** A small labelled batch of motion latents [B, 4, 8, 8, 4]. */
export function tinyBatch(count = 4, seed = 7) {
  return motionLatentBatch(new Gen(seed), count);
}

/**
 * @prfl/models' WanDiT class when that workspace package is installed, else undefined (@prfl/reward does
 * not depend on it; the suites that need it are skipped without it).
 */
export async function optionalWanDiT<T>(): Promise<T | undefined> {
  const specifier = '@prfl/models';
  try {
    return ((await import(/* @vite-ignore */ specifier)) as { WanDiT: T }).WanDiT;
  } catch {
    return undefined;
  }
}
