// The child side of bench/refl.mjs: every measurement runs in its own Node process (a "cell"), so each
// reports its own wasm heap peak (the heap never shrinks) and a cell that runs out of memory ends only
// itself. A cell reads its spec as JSON from argv[2], prints progress to stderr, and prints one JSON
// line to stdout: its result, or { error, outOfMemory, ... } with the memory it held when it failed.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, shutdownBackend } from '@prfl/tensor';
import { wasmHeapBytes } from './wasm-heap.mjs';

const OUT_OF_MEMORY =
  /memory access out of bounds|Aborted\(\)|out of memory|Cannot enlarge memory|Array buffer allocation failed/i;

export function log(...parts) {
  process.stderr.write(`${parts.join(' ')}\n`);
}

/** Runs `measure(spec)` on the spec's backend and prints its result (or its failure) as one JSON line. */
export async function runCell(measure) {
  const spec = JSON.parse(process.argv[2] ?? '{}');
  let result;
  try {
    await initBackend({ backend: spec.backend ?? 'wasm' });
    result = await measure(spec);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    result = {
      error: message,
      outOfMemory: OUT_OF_MEMORY.test(message),
      numBytesAtError: tf.memory().numBytes,
      ...(e?.partial ?? {}),
    };
  }
  result.wasmHeapBytes = wasmHeapBytes();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  try {
    await shutdownBackend();
  } catch {
    // A wasm instance that aborted cannot always shut down cleanly; the result is already out.
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
