/**
 * One entry point for weight files of either kind: a safetensors file or a PyTorch checkpoint
 * (.pt/.pth/.bin/.ckpt), told apart by their first bytes rather than their names (the reference names its
 * torch pickles `.ckpt`, diffusers `.bin`, Wan `.pth`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { CorruptFileError } from '../errors.js';
import {
  loadTensors,
  type OpenSafetensorsOptions,
  openSafetensors,
  type SafetensorsFile,
} from '../safetensors/read.js';
import { type ByteSource, type SafetensorsInput, toByteSource } from '../safetensors/source.js';
import type { TorchReadLimits } from './limits.js';
import { openTorchCheckpoint, type TorchCheckpoint } from './read.js';

/** What a file's first bytes say it is. */
export type WeightsFormat = 'safetensors' | 'torch' | 'torch-legacy' | 'unknown';

/**
 * Tells the format from a file's first bytes (8 are enough) and its size: 'torch' for a zip archive
 * (`PK\x03\x04`, what torch.save writes since PyTorch 1.6), 'torch-legacy' for a bare pickle (the format
 * before 1.6, or `_use_new_zipfile_serialization=False`), 'safetensors' when an 8-byte little-endian
 * header length fitting the file is followed by `{`, else 'unknown'.
 */
export function detectWeightsFormat(prefix: Uint8Array, size: number): WeightsFormat {
  if (prefix.length >= 4 && prefix[0] === 0x50 && prefix[1] === 0x4b) {
    if ((prefix[2] === 3 && prefix[3] === 4) || (prefix[2] === 5 && prefix[3] === 6)) return 'torch';
  }
  if (prefix.length >= 2 && prefix[0] === 0x80 && (prefix[1] as number) >= 2 && (prefix[1] as number) <= 5) {
    return 'torch-legacy';
  }
  if (prefix.length >= 8) {
    const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
    const length = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
    if (length >= 2 && length <= size - 8)
      return prefix.length < 9 || prefix[8] === 0x7b ? 'safetensors' : 'unknown';
  }
  return 'unknown';
}

export interface OpenWeightsOptions extends OpenSafetensorsOptions {
  /** Bounds for PyTorch checkpoints (see TorchReadLimits). */
  torchLimits?: Partial<TorchReadLimits>;
}

export interface LoadWeightsOptions extends OpenWeightsOptions {
  /** Load only these tensors (default: all). */
  names?: readonly string[];
}

/**
 * Opens a safetensors file or a PyTorch checkpoint, whichever `source` holds (detected from its first
 * bytes), as a TensorReader: names, info, readRaw, readTensor, close. `isTorchCheckpoint(reader)` tells
 * which one it is; a PyTorch checkpoint's nested dicts come out as dotted names (`state_dict.fc.weight`).
 *
 * @throws CorruptFileError for a file that is neither, or the pre-1.6 PyTorch format; UnsafePickleError
 *   for a PyTorch pickle that names code; whatever openSafetensors / openTorchCheckpoint throw otherwise.
 */
export async function openWeights(
  source: SafetensorsInput,
  options: OpenWeightsOptions = {},
): Promise<SafetensorsFile | TorchCheckpoint> {
  const bytes: ByteSource = await toByteSource(source);
  const name = options.name ?? bytes.name ?? 'weights';
  let format: WeightsFormat;
  try {
    const head = bytes.size > 0 ? await bytes.read(0, Math.min(9, bytes.size)) : new Uint8Array(0);
    format = detectWeightsFormat(head, bytes.size);
  } catch (e) {
    await bytes.close?.();
    throw e;
  }
  if (format === 'torch') {
    return openTorchCheckpoint(bytes, {
      name,
      ...(options.torchLimits ? { limits: options.torchLimits } : {}),
    });
  }
  if (format === 'torch-legacy') {
    await bytes.close?.();
    throw new CorruptFileError(
      `${name}: a PyTorch checkpoint in the format before PyTorch 1.6 (a bare pickle, or saved with _use_new_zipfile_serialization=False); only the zip format is read. Re-save it with torch.save in PyTorch >= 1.6, or convert it to safetensors`,
    );
  }
  try {
    return await openSafetensors(
      bytes,
      options.maxHeaderBytes !== undefined ? { name, maxHeaderBytes: options.maxHeaderBytes } : { name },
    );
  } catch (e) {
    // Keep the safetensors reader's diagnosis, and say that the PyTorch formats were considered too.
    if (format === 'unknown' && e instanceof CorruptFileError) {
      throw new CorruptFileError(
        `${e.message}; it is not a PyTorch checkpoint either (those are zip archives starting with "PK")`,
      );
    }
    throw e;
  }
}

/**
 * Loads every tensor (or only `names`) of a safetensors file or PyTorch checkpoint into tf.Tensors keyed
 * by name, then closes it. The caller disposes the tensors.
 */
export async function loadWeights(
  source: SafetensorsInput,
  options: LoadWeightsOptions = {},
): Promise<Record<string, tf.Tensor>> {
  const file = await openWeights(source, options);
  try {
    return await loadTensors(file, options.names);
  } finally {
    await file.close();
  }
}
