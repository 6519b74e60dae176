/**
 * WebGPU in Node through the `webgpu` package (Dawn's Node bindings). Imported lazily by backend.ts only
 * in Node, so browser bundles never see node: modules.
 */
import { BackendUnavailableError } from '../errors.js';

/** Debian's chromium ships SwiftShader's Vulkan driver; Dawn accepts it (it rejects Mesa's lavapipe). */
export const SWIFTSHADER_ICD_CANDIDATES = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];
const SYSTEM_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

/**
 * Chooses the Vulkan driver Dawn will load: an explicit path, then VK_ICD_FILENAMES if set, then a
 * hardware driver of the system (lavapipe is skipped: Dawn rejects it), then SwiftShader.
 * Returns undefined where nothing is found (Dawn then reports no adapter).
 */
export async function findVulkanDriver(explicit?: string): Promise<string | undefined> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  if (explicit !== undefined) {
    if (!fs.existsSync(explicit)) {
      throw new BackendUnavailableError(
        `vulkanDriver: no file at ${explicit} (expected a Vulkan ICD manifest JSON)`,
      );
    }
    return explicit;
  }
  const fromEnv = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  if (fromEnv) return fromEnv;
  for (const dir of SYSTEM_ICD_DIRS) {
    if (!fs.existsSync(dir)) continue;
    for (const file of fs.readdirSync(dir).sort()) {
      if (file.endsWith('.json') && !/lvp|lavapipe/i.test(file)) return path.join(dir, file);
    }
  }
  return SWIFTSHADER_ICD_CANDIDATES.find((p) => fs.existsSync(p));
}

/**
 * Creates a Dawn GPU instance and exposes it as `globalThis.navigator.gpu` (what tfjs's WebGPU backend
 * looks for). Returns a cleanup function that drops the instance so the process can exit.
 */
export async function installNodeWebGpu(options: { vulkanDriver?: string | undefined }): Promise<() => void> {
  const driver = await findVulkanDriver(options.vulkanDriver);
  if (driver !== undefined) process.env.VK_ICD_FILENAMES = driver;
  if (!process.env.XDG_RUNTIME_DIR) {
    const os = await import('node:os');
    process.env.XDG_RUNTIME_DIR = os.tmpdir();
  }
  let create: (flags: string[]) => GPU;
  try {
    // A variable specifier keeps bundlers from trying to resolve this optional, Node-only dependency.
    const specifier = 'webgpu';
    ({ create } = (await import(/* @vite-ignore */ specifier)) as { create: (flags: string[]) => GPU });
  } catch (e) {
    throw new BackendUnavailableError(
      `WebGPU in Node needs the package "webgpu" (npm i webgpu): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const gpu = create([]);
  const g = globalThis as { navigator?: { gpu?: GPU } };
  const hadNavigator = g.navigator !== undefined;
  if (hadNavigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  return () => {
    if (hadNavigator) delete (g.navigator as { gpu?: GPU }).gpu;
    else delete (globalThis as { navigator?: unknown }).navigator;
  };
}
