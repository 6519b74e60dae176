/**
 * Threaded wasm in Node. tfjs-backend-wasm 4.22 ships a threaded SIMD build whose Emscripten runtime
 * supports Node's worker_threads, but three things keep it single-threaded in Node; each is handled
 * here, only while the backend starts:
 *
 * 1. Its WASM_HAS_MULTITHREAD_SUPPORT flag answers false whenever IS_NODE (tfjs issue 3830): we set it.
 * 2. It hands Emscripten the pthread worker script, and the workers the main script, as Blob URLs, which
 *    Node's Worker and the worker's importScripts (fs.readFileSync) cannot open: we write both scripts
 *    from the package's own modules to a private temporary folder and answer `URL.createObjectURL` with
 *    their paths (the worker script gets a two-line prelude that does the same inside the worker).
 * 3. Its C++ caps XNNPACK's pool at half the logical cores (it assumes two hardware threads per core),
 *    so a 2-core machine gets 1 thread: while the module instantiates, `os.cpus()` reports twice the
 *    wanted count.
 *
 * The pool's workers are unreferenced afterwards so that they do not keep the process alive; the
 * backend's dispose (shutdownBackend) terminates them. The scripts are removed once the module is ready.
 */
import { BackendUnavailableError } from '../errors.js';
import { nodeImport } from './node-import.js';

type OsModule = typeof import('node:os');
type PThreadWorker = { unref?: () => void };
/** The parts of Emscripten's module object we touch. */
export interface EmscriptenThreadedModule {
  PThread?: { runningWorkers: PThreadWorker[]; unusedWorkers: PThreadWorker[] };
}

/** Writes the worker and main scripts into a fresh private temporary folder; returns their paths. */
async function writeScripts(dir: string): Promise<{ worker: string; main: string }> {
  const fs = await nodeImport<typeof import('node:fs')>('node:fs');
  const path = await nodeImport<typeof import('node:path')>('node:path');
  const factoryModule = await nodeImport<{ default?: unknown; WasmBackendModuleThreadedSimd?: unknown }>(
    '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js',
  );
  const workerModule = await nodeImport<{
    wasmWorkerContents?: unknown;
    default?: { wasmWorkerContents?: unknown };
  }>('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
  const factory = factoryModule.WasmBackendModuleThreadedSimd ?? factoryModule.default;
  const workerText = workerModule.wasmWorkerContents ?? workerModule.default?.wasmWorkerContents;
  if (typeof factory !== 'function' || typeof workerText !== 'string') {
    throw new BackendUnavailableError(
      'threaded wasm in Node: @tensorflow/tfjs-backend-wasm/wasm-out has no threaded SIMD factory or worker script (expected tfjs-backend-wasm 4.22)',
    );
  }
  const main = path.join(dir, 'tfjs-backend-wasm-threaded-simd.cjs');
  const worker = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  // The same text tfjs puts in its Blob: a global the worker's "load" command calls.
  fs.writeFileSync(main, `var WasmBackendModuleThreadedSimd = ${factory.toString()};\n`);
  // tfjs escapes the newlines of the embedded worker text before making its Blob; so do we.
  const prelude = `URL.createObjectURL = () => ${JSON.stringify(main)}; URL.revokeObjectURL = () => {};\n`;
  fs.writeFileSync(worker, prelude + workerText.replace(/\n/g, '\\n'));
  return { worker, main };
}

// The functions patched while a module starts, as they were before any start.
const realCreateObjectURL = URL.createObjectURL;
// Starts run one at a time, so that one never saves another's patches as the originals.
let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `start` (which must call `tf.setBackend('wasm')`) with tfjs's threaded wasm build enabled for
 * `threads` threads in Node (2 to 8, checked by initBackend), then restores what it patched (the flag too, when the start fails) and
 * removes the scripts: by the time the module is ready, its pre-made workers have read them.
 */
export function startThreadedWasmInNode<T>(
  threads: number,
  setFlag: (value: boolean) => void,
  start: () => Promise<T>,
): Promise<T> {
  const run = queue.then(() => startOnce(threads, setFlag, start));
  queue = run.catch(() => undefined);
  return run;
}

async function startOnce<T>(
  threads: number,
  setFlag: (value: boolean) => void,
  start: () => Promise<T>,
): Promise<T> {
  const fs = await nodeImport<typeof import('node:fs')>('node:fs');
  const os = await nodeImport<OsModule & { default?: OsModule }>('node:os');
  const path = await nodeImport<typeof import('node:path')>('node:path');
  const osObject = (os.default ?? os) as OsModule;
  const realCpus = osObject.cpus;
  const dir = fs.mkdtempSync(path.join(osObject.tmpdir(), 'prfl-wasm-threads-'));
  let started = false;
  try {
    const paths = await writeScripts(dir);
    setFlag(true);
    osObject.cpus = () => {
      const real = realCpus();
      return Array.from({ length: 2 * threads }, (_, i) => real[i % real.length] as (typeof real)[number]);
    };
    URL.createObjectURL = (blob: Blob) =>
      blob.type === 'application/javascript' ? paths.worker : realCreateObjectURL(blob);
    const result = await start();
    started = true;
    return result;
  } finally {
    osObject.cpus = realCpus;
    URL.createObjectURL = realCreateObjectURL;
    if (!started) setFlag(false);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Lets the process exit while the pool's threads wait for work. */
export function unrefWasmWorkers(module: EmscriptenThreadedModule | undefined): void {
  const pthread = module?.PThread;
  if (pthread === undefined) return;
  for (const worker of [...pthread.runningWorkers, ...pthread.unusedWorkers]) worker.unref?.();
}
