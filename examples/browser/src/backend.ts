/**
 * Starts the tfjs backends through @prfl/tensor's `initBackend`, which picks the same way in every
 * browser: `auto` takes WebGPU when `navigator.gpu` gives a hardware adapter, else wasm, else cpu (a
 * software WebGPU adapter such as SwiftShader is skipped under `auto`: it is slower than wasm; ask for
 * it with ?backend=webgpu). The .wasm binaries are served next to the page under tfjs-wasm/.
 *
 * The DiT, the text encoder, the PAVRM and PRFL run on that backend. The VAE only works at the edges
 * (decoding finished videos for display, encoding the SFT clips once; the latent reward and PRFL never
 * decode), and with WebGPU it runs on wasm by default: the tiny VAE decodes a video in a quarter of a
 * second there, and tensors cross between the two only through explicit asynchronous reads
 * (`toBackend`), never through tfjs's synchronous GPU reads. `?vae=main` keeps it on the main backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BackendInfo, describeBackend, initBackend } from '@prfl/tensor';
import type { BackendChoice, VaeChoice } from './settings.js';

export interface StartedBackend {
  requested: BackendChoice;
  /** tf.getBackend() after the start: 'webgpu', 'wasm' or 'cpu'. */
  active: string;
  /** One line: `webgpu (google swiftshader, software)`, `wasm (simd, 1 thread)`. */
  description: string;
  /** Backends `auto` tried first, and why each was not used. */
  skipped: BackendInfo['skipped'];
  /** Where the VAE runs ('wasm', or the main backend's name) and its description. */
  vae: string;
  vaeDescription: string;
}

function wasmOptions() {
  return { wasmPaths: new URL('tfjs-wasm/', document.baseURI).href, threads: 'auto' as const };
}

export async function startBackend(requested: BackendChoice, vae: VaeChoice): Promise<StartedBackend> {
  const info = await initBackend({ backend: requested, ...wasmOptions() });
  const main = {
    requested,
    active: tf.getBackend(),
    description: describeBackend(info),
    skipped: info.skipped,
  };
  const separate = vae === 'wasm' || (vae === 'auto' && main.active === 'webgpu');
  if (!separate || main.active === 'wasm') {
    return { ...main, vae: main.active, vaeDescription: main.description };
  }
  const wasm = await initBackend({ backend: 'wasm', ...wasmOptions() });
  if (!(await tf.setBackend(main.active))) throw new Error(`tfjs could not switch back to ${main.active}`);
  return { ...main, vae: 'wasm', vaeDescription: describeBackend(wasm) };
}

/** Runs `f` with backend `name` active, then makes `back` active again. */
export async function onBackend<T>(name: string, back: string, f: () => T | Promise<T>): Promise<T> {
  if (name === back) return f();
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not switch to ${name}`);
  try {
    return await f();
  } finally {
    await tf.setBackend(back);
  }
}

/**
 * A copy of `t` on backend `to`, made from an asynchronous read (`t` is not disposed). With `to` the
 * backend `t` lives on already, a clone.
 */
export async function toBackend<T extends tf.Tensor>(t: T, to: string): Promise<T> {
  const values = await t.data();
  const active = tf.getBackend();
  return onBackend(to, active, () => tf.tensor(values, t.shape, t.dtype) as T);
}
