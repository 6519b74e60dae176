/**
 * @prfl/tensor in a real browser bundle: test/browser/page.ts is bundled with esbuild (platform browser,
 * resolving @prfl/tensor to the built dist like a user's bundler), served from http://127.0.0.1 and run
 * in Debian's headless Chromium with SwiftShader WebGPU. cpu and wasm must compute gradients exactly;
 * webgpu must run on the SwiftShader adapter. Needs `npm run build` first and /usr/bin/chromium (with
 * libvulkan1), which .ci/run installs; without Chromium it is skipped loudly, except in CI where it fails.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BundleResult,
  buildPage,
  CHROMIUM,
  launchChromium,
  type PageRun,
  runPage,
  type StaticServer,
  serveStatic,
} from './browser/harness.js';

const root = path.resolve(import.meta.dirname, '..');
const inCi = process.env.CI === 'true';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  const message = `${CHROMIUM} is missing (apt-get install chromium libvulkan1)`;
  if (inCi) throw new Error(`the browser test needs Chromium in CI: ${message}`);
  console.warn(`SKIPPING the browser bundle test: ${message}`);
}

describe.skipIf(!hasChromium)('@prfl/tensor bundled for the browser, in headless Chromium', () => {
  let dir: string | undefined;
  let server: StaticServer | undefined;
  let browser: Browser | undefined;
  let bundle: BundleResult;
  let run: PageRun;

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/index.js'))) {
      throw new Error(
        'packages/tensor/dist/index.js is missing: build the package first (`npm run build` in packages/tensor, or `npx turbo run build`)',
      );
    }
    dir = mkdtempSync(path.join(tmpdir(), 'prfl-browser-'));
    bundle = await buildPage(dir);
    if (bundle.nodeBuiltins.length > 0) {
      console.warn(
        `the browser bundle had to mark Node built-ins external: ${bundle.nodeBuiltins
          .map((b) => `${b.specifier} (${b.kind} in ${b.importer})`)
          .join(', ')}`,
      );
    }
    server = await serveStatic(dir);
    browser = await launchChromium();
    run = await runPage(browser, `${server.origin}/`);
    console.info(
      `browser bundle: ${(bundle.bundleBytes / 1024).toFixed(0)} KiB minified (built in ${bundle.ms} ms); page ran in ${run.ms} ms: ${run.report.runs
        .map((r) => `${r.description} ${r.ms} ms`)
        .join(', ')}; auto -> ${run.report.auto?.description}`,
    );
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('bundles @prfl/tensor from dist without any Node built-in import', () => {
    expect(bundle.warnings).toEqual([]);
    expect(bundle.wasmFiles).toContain('tfjs-backend-wasm-simd.wasm');
    // The browser condition picks the browser build, where tfjs-core's gradient file is resolved by the
    // bundler from tfjs-core's own ESM graph: no second copy of tfjs-core internals.
    expect(bundle.inputs).toContain('packages/tensor/dist/browser/index.js');
    expect(bundle.inputs).toContain('node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js');
    expect(bundle.inputs.filter((f) => f.includes('dist/chunk-'))).toEqual([]);
    expect(bundle.inputs.filter((f) => f.startsWith('packages/tensor/src/'))).toEqual([]);
    // Node-only code reaches fs/os/webgpu through src/node/node-import.ts, invisible to bundlers.
    expect(bundle.nodeBuiltins).toEqual([]);
  });

  it("registers gradients on import (tfjs-core's and prfl's)", () => {
    const missing = Object.entries(run.report.gradientsRegistered)
      .filter(([, ok]) => !ok)
      .map(([k]) => k);
    expect(
      missing,
      'gradients missing in the bundle: the bundler probably dropped the dist chunk that registers them as side-effect free (package.json "sideEffects" must cover every dist file that calls registerGradient, e.g. "./dist/chunk-*.js")',
    ).toEqual([]);
  });

  it('runs in a secure context with navigator.gpu and no page errors', () => {
    expect(run.report.errors, run.log.join('\n')).toEqual([]);
    expect(run.log.filter((l) => l.startsWith('[pageerror]') || l.startsWith('[requestfailed]'))).toEqual([]);
    expect(run.report.secureContext).toBe(true);
    expect(run.report.hasNavigatorGpu).toBe(true);
  });

  it.each(['cpu', 'wasm'])('%s computes gradients exactly', (name) => {
    const r = run.report.runs.find((x) => x.requested === name);
    expect(r, run.report.errors.join('\n')).toBeDefined();
    expect(r!.active).toBe(name);
    expect(r!.sizes.square).toBeGreaterThan(1000);
    expect(r!.sizes.a).toBeGreaterThan(1000);
    expect(r!.squareGradMaxErr).toBe(0);
    expect(r!.matMulMaxErr).toBe(0);
    expect(r!.matMulGradAMaxErr).toBe(0);
    expect(r!.matMulGradBMaxErr).toBe(0);
    expect(r!.stridedSliceGrad).toEqual([1, 0, 1, 0, 1, 0]);
    expect(r!.tensorsLeaked).toBe(0);
  });

  it('wasm found its binaries through wasmPaths and uses SIMD', () => {
    const r = run.report.runs.find((x) => x.requested === 'wasm');
    expect(r, run.report.errors.join('\n')).toBeDefined();
    expect(r!.description).toMatch(/^wasm \(simd, \d+ threads?\)$/);
  });

  it('wasm runs XNNPACK threads on a cross-origin isolated page (threads: auto)', async () => {
    // tfjs caps the pool at hardwareConcurrency / 2, so a 2-core machine would run 1 thread; claim 4.
    const isolated = await runPage(
      browser!,
      `${server!.origin}/isolated/?backends=wasm&threads=auto&auto=0`,
      {
        hardwareConcurrency: 4,
      },
    );
    const { report } = isolated;
    console.info(
      `cross-origin isolated page: ${report.runs.map((r) => `${r.description} ${r.ms} ms`).join(', ')}`,
    );
    expect(report.errors, isolated.log.join('\n')).toEqual([]);
    expect(report.crossOriginIsolated).toBe(true);
    const r = report.runs[0]!;
    expect(r.flags.WASM_HAS_MULTITHREAD_SUPPORT, JSON.stringify(r.flags)).toBe(true);
    expect(r.description).toBe('wasm (simd, 2 threads)');
    expect(r.squareGradMaxErr).toBe(0);
    expect(r.matMulMaxErr).toBe(0);
    expect(r.matMulGradAMaxErr).toBe(0);
    expect(r.matMulGradBMaxErr).toBe(0);
    expect(r.stridedSliceGrad).toEqual([1, 0, 1, 0, 1, 0]);
  });

  it('webgpu runs on the SwiftShader adapter and matches', () => {
    const r = run.report.runs.find((x) => x.requested === 'webgpu');
    expect(r, run.report.errors.join('\n')).toBeDefined();
    expect(r!.active).toBe('webgpu');
    const adapter = (r!.info as { adapter?: { architecture: string; software: boolean } }).adapter;
    expect(adapter?.architecture).toBe('swiftshader');
    expect(adapter?.software).toBe(true);
    expect(r!.description).toContain('swiftshader');
    // Integers and halves: float32 is exact in any summation order, but allow for GPU arithmetic.
    expect(r!.squareGradMaxErr).toBeLessThan(1e-5);
    expect(r!.matMulMaxErr).toBeLessThan(1e-3);
    expect(r!.matMulGradAMaxErr).toBeLessThan(1e-3);
    expect(r!.matMulGradBMaxErr).toBeLessThan(1e-3);
    expect(r!.stridedSliceGrad).toEqual([1, 0, 1, 0, 1, 0]);
    expect(r!.tensorsLeaked).toBe(0);
  });

  it('auto skips the software adapter for wasm, and takes it with allowSoftwareGpu', () => {
    const { auto, autoSoftware } = run.report;
    expect(auto?.name).toBe('wasm');
    expect(auto?.skipped).toEqual([{ name: 'webgpu', reason: expect.stringMatching(/software adapter/) }]);
    expect(autoSoftware?.name).toBe('webgpu');
    expect((autoSoftware?.adapter as { architecture?: string } | undefined)?.architecture).toBe(
      'swiftshader',
    );
  });
});
