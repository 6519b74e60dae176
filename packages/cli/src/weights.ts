/**
 * Which embedded models a command loads: `--weights DIR` (any folder written by saveEmbedded or
 * `prfl pretrain --out`), else the weights/ folder of @prfl/pretrained, which stays empty until the
 * models are pretrained. A missing folder says so, and how to make it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  disposeEmbedded,
  type EmbeddedModels,
  embeddedWeightsUrl,
  loadEmbedded,
  MANIFEST_FILE,
} from '@prfl/pretrained';
import { UsageError } from './errors.js';

/** The folder of the shipped weights (packages/pretrained/weights). */
export function defaultWeightsDir(): string {
  return fileURLToPath(embeddedWeightsUrl());
}

/**
 * The weights folder to load: `dir`, or the shipped one. Throws a UsageError saying how to make it when
 * it has no manifest.json, so commands check this before they create anything.
 */
export function weightsFolder(dir: string | undefined): string {
  const from = dir ?? defaultWeightsDir();
  if (existsSync(path.join(from, MANIFEST_FILE))) return from;
  if (dir === undefined) {
    throw new UsageError(
      `the embedded weights do not exist yet (${from} has no ${MANIFEST_FILE}): make them with \`prfl pretrain\` ` +
        '(`prfl pretrain --quick` checks the pipeline in minutes), or pass --weights DIR',
    );
  }
  throw new UsageError(
    `--weights ${dir}: no ${MANIFEST_FILE} there; expected a folder written by \`prfl pretrain --out\` (or saveEmbedded)`,
  );
}

/** Loads the models of `dir` (default: the shipped ones); the caller disposes them with `disposeEmbedded`. */
export async function loadModels(
  dir: string | undefined,
  options: { reward?: boolean } = {},
): Promise<EmbeddedModels> {
  return loadEmbedded({ from: weightsFolder(dir), reward: options.reward ?? true });
}

export { disposeEmbedded };
