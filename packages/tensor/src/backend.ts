import * as tf from '@tensorflow/tfjs-core';
import { BackendUnavailableError, InvalidArgumentError } from './errors.js';
import './register-gradients.js';
import { nodeImport } from './node/node-import.js';
import { installFastWasmSlice } from './ops/wasm-slice.js';
import { installWebgpuRank5BinaryFix } from './ops/webgpu-binary-rank5.js';

/** The compute backends prfl runs on, fastest first where each exists. */
export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'wasm', 'cpu'];

export interface InitBackendOptions {
  /**
   * Which backend to start. `auto` (the default) tries WebGPU on a real GPU, then wasm, then cpu, and
   * reports what it skipped and why. `auto` does not pick a software WebGPU adapter (SwiftShader):
   * it is slower than wasm and meant for tests; ask for `webgpu` explicitly (or set allowSoftwareGpu).
   */
  backend?: BackendName | 'auto';
  /**
   * Where the tfjs wasm binaries are served from, in a browser bundle: a URL prefix ending in `/`, or a
   * map from file name (`tfjs-backend-wasm-simd.wasm`, ...) to URL. Not needed in Node.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * wasm threads (XNNPACK's pool; identical numerics at any count). In Node: 1 by default, `auto` for
   * the machine's cores (at most 4), or a count up to 8; the environment variable PRFL_WASM_THREADS sets
   * the default. In browsers threads need a cross-origin isolated page; `auto` uses
   * `navigator.hardwareConcurrency`.
   */
  threads?: number | 'auto';
  /**
   * Node only: the Vulkan driver manifest (ICD JSON) Dawn should use. By default the system's drivers are
   * used and, where none works, SwiftShader from Debian's chromium package is found automatically.
   */
  vulkanDriver?: string;
  /** Also accept a software adapter (SwiftShader, WARP) under `auto`, in Node and in the browser. */
  allowSoftwareGpu?: boolean;
}

export interface GpuAdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU emulation (SwiftShader, lavapipe, WARP): correct but slow. */
  software: boolean;
}

/** What `initBackend` started: the backend, the adapter or wasm features, and what it tried first. */
export interface BackendInfo {
  name: BackendName;
  platform: 'node' | 'browser';
  adapter?: GpuAdapterDescription;
  wasm?: { simd: boolean; threads: number };
  /** Backends tried before this one, with the reason each was not used. */
  skipped: Array<{ name: BackendName; reason: string }>;
}

let current: BackendInfo | undefined;
let nodeGpuCleanup: (() => void) | undefined;

export function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node != null && typeof window === 'undefined';
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function startCpu(): Promise<Partial<BackendInfo>> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu')))
    throw new BackendUnavailableError('tfjs refused to initialise the cpu backend');
  // The cpu backend prints a banner recommending tfjs-node on first use in Node; we choose backends on purpose.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return {};
}

async function startWasm(options: InitBackendOptions): Promise<Partial<BackendInfo>> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new BackendUnavailableError(
      `the wasm backend needs the package @tensorflow/tfjs-backend-wasm (npm i @tensorflow/tfjs-backend-wasm): ${errorText(e)}`,
    );
  }
  if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths);
  const wanted = await wantedWasmThreads(options.threads);
  const node = isNode();
  // In Node tfjs never enables its threaded build (see node/wasm-threads-node.ts); the flag is set
  // explicitly both ways so that a later single-threaded start does not inherit a threaded one.
  if (node) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const threadsSupported = node
    ? wanted > 1
    : Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
  if (node) restartWasmForThreads(wanted);
  // In browsers tfjs picks its own count unless one is asked for.
  if (threadsSupported && (node || options.threads !== undefined)) wasm.setThreadsCount(wanted);
  const setBackend = async (): Promise<boolean> => {
    try {
      return await tf.setBackend('wasm');
    } catch (e) {
      throw new BackendUnavailableError(`the wasm backend failed to load its binary: ${errorText(e)}`);
    }
  };
  let ok: boolean;
  if (node && threadsSupported) {
    const { startThreadedWasmInNode, unrefWasmWorkers } = await import('./node/wasm-threads-node.js');
    ok = await startThreadedWasmInNode(
      wanted,
      (value) => tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', value),
      setBackend,
    );
    if (ok) unrefWasmWorkers((tf.backend() as unknown as { wasm?: EmscriptenModuleLike }).wasm);
  } else {
    ok = await setBackend();
  }
  if (!ok) {
    throw new BackendUnavailableError(
      'the wasm backend failed to initialise (in a browser bundle, pass wasmPaths so the .wasm files can be found)',
    );
  }
  // tfjs-backend-wasm 4.22's Slice copies its whole input per call; ours reads the heap in place.
  installFastWasmSlice();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  return { wasm: { simd, threads: threadsSupported ? wasm.getThreadsCount() : 1 } };
}

/**
 * A started wasm backend keeps its thread pool: to change the count, its instance is dropped (the
 * factory registered again) so that the next setBackend instantiates the module anew. Only when no
 * tensor is alive, since tensors on the old instance would be lost.
 */
function restartWasmForThreads(wanted: number): void {
  // engine.findBackend would start a registered backend that is not running yet; the registry does not.
  const instance = tf.engine().registry.wasm as
    | { wasm?: { tfjs?: { getThreadsCount?: () => number } } }
    | undefined;
  if (instance === undefined) return;
  // The instance's own pool, whether or not wasm is the current backend (-1 without a pool: 1 thread).
  const running = Math.max(1, instance.wasm?.tfjs?.getThreadsCount?.() ?? 1);
  if (running === wanted) return;
  const alive = tf.memory().numTensors;
  if (alive > 0) {
    throw new InvalidArgumentError(
      `threads: the wasm backend already runs with ${running} thread${running === 1 ? '' : 's'} and holds ${alive} tensors; call shutdownBackend() before starting it with ${wanted}`,
    );
  }
  const factory = tf.findBackendFactory('wasm');
  if (factory === null) return;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory, WASM_PRIORITY);
  if (current?.name === 'wasm') current = undefined;
}

/** tfjs-backend-wasm registers itself with this priority. */
const WASM_PRIORITY = 2;

type EmscriptenModuleLike = import('./node/wasm-threads-node.js').EmscriptenThreadedModule;

/** PRFL_WASM_THREADS, when set, is the default; `auto` is the machine's cores (at most 4). */
export const WASM_THREADS_ENV = 'PRFL_WASM_THREADS';

async function wantedWasmThreads(threads: number | 'auto' | undefined): Promise<number> {
  const fromEnv = typeof process !== 'undefined' ? process.env?.[WASM_THREADS_ENV] : undefined;
  const envSet = fromEnv !== undefined && fromEnv !== '';
  const source = threads !== undefined ? 'threads' : WASM_THREADS_ENV;
  const shown = threads !== undefined ? String(threads) : JSON.stringify(fromEnv);
  const asked: number | 'auto' | undefined =
    threads ?? (!envSet ? undefined : fromEnv === 'auto' ? 'auto' : Number(fromEnv));
  if (asked === undefined) return 1;
  if (asked === 'auto') return autoThreads();
  // Node's pool holds at most 8 threads (tfjs's pre-made workers); browsers take what tfjs allows.
  const max = isNode() ? MAX_NODE_WASM_THREADS : Number.POSITIVE_INFINITY;
  if (!Number.isInteger(asked) || asked < 1 || asked > max) {
    throw new InvalidArgumentError(
      `${source}: expected ${isNode() ? `an integer from 1 to ${MAX_NODE_WASM_THREADS}` : 'a positive integer'} or 'auto', got ${shown}`,
    );
  }
  return asked;
}

/** tfjs-backend-wasm 4.22 makes 8 pool workers up front; a bigger pool would need more. */
const MAX_NODE_WASM_THREADS = 8;

async function autoThreads(): Promise<number> {
  if (isNode()) {
    const os = await nodeImport<typeof import('node:os')>('node:os');
    const cores =
      typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    return Math.max(1, Math.min(4, cores));
  }
  return Math.max(
    1,
    (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1,
  );
}

function describeAdapter(info: Partial<GPUAdapterInfo> | undefined): GpuAdapterDescription {
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const device = info?.device ?? '';
  const description = info?.description ?? '';
  const text = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  const software = /swiftshader|llvmpipe|lavapipe|warp|software|cpu/.test(text);
  return { vendor, architecture, device, description, software };
}

async function startWebgpu(options: InitBackendOptions, auto: boolean): Promise<Partial<BackendInfo>> {
  try {
    return await startWebgpuUnguarded(options, auto);
  } catch (e) {
    // Do not leave a Dawn instance behind for a backend we are not going to use.
    nodeGpuCleanup?.();
    nodeGpuCleanup = undefined;
    throw e;
  }
}

async function startWebgpuUnguarded(
  options: InitBackendOptions,
  auto: boolean,
): Promise<Partial<BackendInfo>> {
  if (isNode() && (globalThis.navigator as { gpu?: unknown } | undefined)?.gpu === undefined) {
    const { hasGpuDevice, installNodeWebGpu } = await import('./node/webgpu-node.js');
    const softwareWanted = !auto || options.allowSoftwareGpu === true;
    if (!softwareWanted && options.vulkanDriver === undefined && !(await hasGpuDevice())) {
      throw new BackendUnavailableError('no GPU device found (/dev/dri/renderD*, /dev/nvidia*)');
    }
    nodeGpuCleanup = await installNodeWebGpu({
      vulkanDriver: options.vulkanDriver,
      allowSwiftShader: softwareWanted,
    });
  }
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (gpu === undefined) {
    throw new BackendUnavailableError('WebGPU is not available here (navigator.gpu is undefined)');
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter === null) {
    throw new BackendUnavailableError(
      'navigator.gpu.requestAdapter() returned no adapter (no usable GPU or Vulkan driver; in Node without a GPU, install Debian chromium for SwiftShader)',
    );
  }
  const adapterDescription = describeAdapter(
    (adapter as { info?: GPUAdapterInfo }).info ??
      (await (
        adapter as unknown as { requestAdapterInfo?: () => Promise<GPUAdapterInfo> }
      ).requestAdapterInfo?.()),
  );
  if (auto && adapterDescription.software && !options.allowSoftwareGpu) {
    throw new BackendUnavailableError(
      `only a software adapter (${adapterDescription.architecture || adapterDescription.vendor}) is available; it is slower than wasm`,
    );
  }
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new BackendUnavailableError(
      `the webgpu backend needs the package @tensorflow/tfjs-backend-webgpu: ${errorText(e)}`,
    );
  }
  if (tf.findBackendFactory('webgpu') == null) {
    throw new BackendUnavailableError(
      '@tensorflow/tfjs-backend-webgpu was imported before navigator.gpu existed, so it did not register; call initBackend before importing it',
    );
  }
  if (!(await tf.setBackend('webgpu')))
    throw new BackendUnavailableError('tfjs failed to initialise the webgpu backend');
  // tfjs-backend-webgpu 4.22 cannot compile a per-channel op on a rank-5 tensor; see the file.
  installWebgpuRank5BinaryFix();
  return { adapter: adapterDescription };
}

/**
 * Starts a tfjs backend the same way in Node and in the browser, registers prfl's gradients, and
 * reports what it chose. Call once before building tensors; calling again switches backends.
 *
 * @throws BackendUnavailableError when the requested backend (or, for `auto`, every backend) cannot start, with the reasons.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const requested = options.backend ?? 'auto';
  if (requested !== 'auto' && !BACKEND_NAMES.includes(requested)) {
    throw new InvalidArgumentError(
      `backend: expected one of ${[...BACKEND_NAMES, 'auto'].join(', ')}, got ${JSON.stringify(requested)}`,
    );
  }
  const order: BackendName[] = requested === 'auto' ? [...BACKEND_NAMES] : [requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order) {
    try {
      const extra =
        name === 'cpu'
          ? await startCpu()
          : name === 'wasm'
            ? await startWasm(options)
            : await startWebgpu(options, requested === 'auto');
      current = { name, platform: isNode() ? 'node' : 'browser', skipped, ...extra };
      return current;
    } catch (e) {
      // A mistake in the options (a bad thread count) is not a reason to fall back to a slower backend.
      if (e instanceof InvalidArgumentError) throw e;
      if (requested !== 'auto') {
        if (e instanceof BackendUnavailableError) throw e;
        throw new BackendUnavailableError(`backend ${name} could not start: ${errorText(e)}`);
      }
      skipped.push({ name, reason: errorText(e) });
    }
  }
  throw new BackendUnavailableError(
    `no backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`,
  );
}

/** The backend `initBackend` started last, or undefined. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** One line for logs: `wasm (simd, 1 thread)`, `webgpu (google swiftshader, software)`. */
export function describeBackend(info: BackendInfo): string {
  if (info.name === 'webgpu' && info.adapter) {
    const a = info.adapter;
    return `webgpu (${[a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter'}${a.software ? ', software' : ''})`;
  }
  if (info.name === 'wasm' && info.wasm) {
    return `wasm (${info.wasm.simd ? 'simd' : 'no simd'}, ${info.wasm.threads} thread${info.wasm.threads === 1 ? '' : 's'})`;
  }
  return info.name;
}

/**
 * Releases the backend's resources so the process can exit: disposes every variable and tensor, removes
 * the backends, and in Node drops the Dawn WebGPU instance (which otherwise keeps the event loop alive).
 */
export async function shutdownBackend(): Promise<void> {
  // engine().reset() disposes every tensor, variable and backend instance but keeps the registered
  // factories, so initBackend works again afterwards (tf.removeBackend would drop the factories).
  tf.engine().reset();
  current = undefined;
  if (nodeGpuCleanup) {
    const cleanup = nodeGpuCleanup;
    nodeGpuCleanup = undefined;
    cleanup();
  }
}
