/**
 * WebGPU in Node through the `webgpu` package (Dawn's Node bindings). Imported lazily by backend.ts only
 * in Node, so browser bundles never see node: modules.
 */
import { BackendUnavailableError } from '../errors.js';
import { nodeImport } from './node-import.js';

/** Debian's chromium ships SwiftShader's Vulkan driver; Dawn accepts it (it rejects Mesa's lavapipe). */
export const SWIFTSHADER_ICD_CANDIDATES = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

type DawnModule = { create: (flags: string[]) => GPU; globals: Record<string, unknown> };

async function loadDawn(): Promise<DawnModule> {
  try {
    return await nodeImport<DawnModule>('webgpu');
  } catch (e) {
    throw new BackendUnavailableError(
      `WebGPU in Node needs the package "webgpu" (npm i webgpu): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

async function hasVulkanLoader(): Promise<boolean> {
  const fs = await nodeImport<typeof import('node:fs')>('node:fs');
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return process.platform !== 'linux' || dirs.some((d) => fs.existsSync(`${d}/libvulkan.so.1`));
}

/**
 * Whether this machine shows a GPU device node Vulkan could drive (Linux: /dev/dri/renderD*, /dev/nvidia*).
 * Other platforms answer true (no cheap check). Lets `auto` skip Dawn, and its warnings on stderr, on
 * machines that only have a CPU.
 */
export async function hasGpuDevice(): Promise<boolean> {
  if (process.platform !== 'linux') return true;
  const fs = await nodeImport<typeof import('node:fs')>('node:fs');
  try {
    if (fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD'))) return true;
  } catch {
    // no /dev/dri
  }
  try {
    return fs.readdirSync('/dev').some((f) => /^nvidia\d+$/.test(f));
  } catch {
    return false;
  }
}

/**
 * Creates a Dawn GPU instance with an adapter and exposes it as `globalThis.navigator.gpu`, plus the
 * WebGPU constants (GPUBufferUsage, ...) tfjs's WebGPU backend expects as globals.
 *
 * Driver choice: an explicit `vulkanDriver`, else VK_ICD_FILENAMES if set, else the system's drivers,
 * and where those give no adapter, SwiftShader from Debian's chromium package. Returns a cleanup
 * function that drops the instance so the process can exit.
 */
export async function installNodeWebGpu(options: {
  vulkanDriver?: string | undefined;
  /** Fall back to SwiftShader when the system's drivers give no adapter (default true). */
  allowSwiftShader?: boolean;
}): Promise<() => void> {
  const fs = await nodeImport<typeof import('node:fs')>('node:fs');
  if (!process.env.XDG_RUNTIME_DIR) {
    const os = await nodeImport<typeof import('node:os')>('node:os');
    process.env.XDG_RUNTIME_DIR = os.tmpdir();
  }
  if (options.vulkanDriver !== undefined) {
    if (!fs.existsSync(options.vulkanDriver)) {
      throw new BackendUnavailableError(
        `vulkanDriver: no file at ${options.vulkanDriver} (expected a Vulkan ICD manifest JSON)`,
      );
    }
    process.env.VK_ICD_FILENAMES = options.vulkanDriver;
  }
  const dawn = await loadDawn();
  let gpu = dawn.create([]);
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const pinned = options.vulkanDriver !== undefined || Boolean(process.env.VK_ICD_FILENAMES);
  if (adapter === null && !pinned && options.allowSwiftShader !== false) {
    const swiftshader = SWIFTSHADER_ICD_CANDIDATES.find((p) => fs.existsSync(p));
    if (swiftshader !== undefined) {
      process.env.VK_ICD_FILENAMES = swiftshader;
      gpu = dawn.create([]);
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    }
  }
  if (adapter === null) {
    const hints: string[] = [];
    if (!(await hasVulkanLoader()))
      hints.push('the Vulkan loader libvulkan.so.1 is missing (apt-get install libvulkan1)');
    if (!SWIFTSHADER_ICD_CANDIDATES.some((p) => fs.existsSync(p))) {
      hints.push('no SwiftShader driver found (apt-get install chromium provides one)');
    }
    if (process.env.VK_ICD_FILENAMES) hints.push(`VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}`);
    throw new BackendUnavailableError(
      `Dawn found no WebGPU adapter${hints.length > 0 ? `: ${hints.join('; ')}` : ''}`,
    );
  }
  const g = globalThis as Record<string, unknown> & { navigator?: { gpu?: GPU } };
  const addedGlobals = Object.keys(dawn.globals).filter((k) => !(k in g));
  for (const k of addedGlobals) g[k] = dawn.globals[k];
  const hadNavigator = g.navigator !== undefined;
  if (hadNavigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  return () => {
    if (hadNavigator) delete (g.navigator as { gpu?: GPU }).gpu;
    else delete g.navigator;
    for (const k of addedGlobals) delete g[k];
  };
}
