// The wasm backend's linear memory: what the process really holds for tensors, allocator slack and
// kernel scratch included. It only grows (WebAssembly memory never shrinks), so read at the end of a
// process it is that process's peak. tfjs counts only tensor bytes (tf.memory().numBytes); the heap is
// what runs out (4 GiB: wasm32 addresses).
import * as tf from '@tensorflow/tfjs-core';

export const WASM_HEAP_LIMIT = 4 * 2 ** 30;

/** Bytes of the wasm heap now, or null on another backend. */
export function wasmHeapBytes() {
  if (tf.getBackend() !== 'wasm') return null;
  const module = tf.backend().wasm;
  return module?.HEAPU8?.buffer?.byteLength ?? module?.wasmMemory?.buffer?.byteLength ?? null;
}
