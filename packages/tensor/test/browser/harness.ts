/**
 * Bundles page.ts with esbuild the way a user's bundler would (platform browser, ESM, @prfl/tensor
 * resolved to its built dist), copies tfjs's .wasm binaries next to it, serves the folder from
 * http://127.0.0.1 (a secure context, so navigator.gpu exists) and drives Debian's Chromium headless with
 * SwiftShader WebGPU through playwright-core. Used by ../browser.test.ts.
 */
import { copyFileSync, createReadStream, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';
import type { Browser } from 'playwright-core';
import type { BrowserReport } from './report.js';

const here = import.meta.dirname;
const repoRoot = path.resolve(here, '../../../..');
const require = createRequire(import.meta.url);

export const CHROMIUM = '/usr/bin/chromium';

/** Flags that give headless Chromium a WebGPU adapter on SwiftShader (CPU emulation) without a GPU. */
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** An import of a Node built-in module that the bundle leaves as it is (see nodeBuiltinsExternal). */
export interface NodeBuiltinImport {
  specifier: string;
  importer: string;
  kind: esbuild.ImportKind;
}

/**
 * esbuild (platform browser) fails on an import of a Node built-in that no package.json "browser" field
 * maps away, even a dynamic one that only runs in Node, unless it is marked external. This plugin marks
 * exactly those external and records each, so the test can check that they are all dynamic imports
 * (which a browser never evaluates on this code path).
 */
function nodeBuiltinsExternal(found: NodeBuiltinImport[]): esbuild.Plugin {
  const names = new Set(builtinModules.filter((m) => !m.startsWith('_')));
  const isBuiltin = (p: string) => p.startsWith('node:') || names.has(p) || names.has(p.split('/')[0]!);
  return {
    name: 'node-builtins-external',
    setup(build) {
      build.onResolve({ filter: /^[a-z0-9_:/]+$/ }, async (args) => {
        if (args.pluginData === 'node-builtins-external' || !isBuiltin(args.path)) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'node-builtins-external',
        });
        // Resolvable (a "browser" field maps it to an empty module, say): let esbuild do it as usual.
        if (resolved.errors.length === 0) return undefined;
        found.push({
          specifier: args.path,
          importer: path.relative(repoRoot, args.importer),
          kind: args.kind,
        });
        return { path: args.path, external: true };
      });
    },
  };
}

export interface BundleResult {
  bundleBytes: number;
  /** Node built-ins the bundle had to leave external (none once the package hides them from bundlers). */
  nodeBuiltins: NodeBuiltinImport[];
  /** The module files that went into the bundle (paths relative to the repository root). */
  inputs: string[];
  wasmFiles: string[];
  /** esbuild warnings, formatted. */
  warnings: string[];
  ms: number;
}

/** Builds bundle.js, index.html and the tfjs .wasm files into `outDir`. */
export async function buildPage(outDir: string): Promise<BundleResult> {
  const t0 = performance.now();
  const nodeBuiltins: NodeBuiltinImport[] = [];
  const result = await esbuild.build({
    entryPoints: [path.join(here, 'page.ts')],
    outfile: path.join(outDir, 'bundle.js'),
    absWorkingDir: repoRoot,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    // The default conditions (browser, import, module, default): @prfl/tensor resolves to dist/browser/index.js,
    // exactly as in a user's project; the repo's '@prfl/source' condition is deliberately not set.
    logLevel: 'silent',
    metafile: true,
    plugins: [nodeBuiltinsExternal(nodeBuiltins)],
  });
  const warnings = await esbuild.formatMessages(result.warnings, { kind: 'warning', color: false });
  const wasmDir = path.join(
    path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  const wasmFiles = readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'));
  for (const f of wasmFiles) copyFileSync(path.join(wasmDir, f), path.join(outDir, f));
  writeFileSync(
    path.join(outDir, 'index.html'),
    '<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<title>prfl tensor browser check</title>\n<script type="module" src="./bundle.js"></script>\n',
  );
  return {
    bundleBytes: statSync(path.join(outDir, 'bundle.js')).size,
    nodeBuiltins,
    inputs: Object.keys(result.metafile.inputs),
    wasmFiles,
    warnings,
    ms: Math.round(performance.now() - t0),
  };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

export interface StaticServer {
  server: Server;
  origin: string;
  close(): Promise<void>;
}

/**
 * A static file server for `root` on 127.0.0.1 and a free port. Paths under `/isolated/` serve the same
 * files with COOP/COEP headers, which makes the page cross-origin isolated (SharedArrayBuffer, wasm threads).
 */
export function serveStatic(root: string): Promise<StaticServer> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let rel = decodeURIComponent(url.pathname);
    const isolated = rel.startsWith('/isolated/');
    if (isolated) rel = rel.slice('/isolated'.length);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(root, `.${rel}`);
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const headers: Record<string, string> = {
      'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    };
    if (isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        origin: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // launch() makes a fresh temporary profile (--user-data-dir) and deletes it on close.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 });
}

export interface PageRun {
  report: BrowserReport;
  /** Console lines and page errors, for diagnosing a failure. */
  log: string[];
  ms: number;
}

export interface RunPageOptions {
  timeoutMs?: number;
  /**
   * Overrides navigator.hardwareConcurrency before the page's scripts run. tfjs's wasm backend caps its
   * XNNPACK thread pool at hardwareConcurrency / 2 (it assumes two hyperthreads per core), so on a
   * 2-core machine threads only run when the page is told there are 4.
   */
  hardwareConcurrency?: number;
}

/** Opens `url`, waits for the page to set `window.__prflDone`, and returns its report. */
export async function runPage(browser: Browser, url: string, options: RunPageOptions = {}): Promise<PageRun> {
  const t0 = performance.now();
  const context = await browser.newContext();
  const log: string[] = [];
  try {
    if (options.hardwareConcurrency !== undefined) {
      await context.addInitScript((n: number) => {
        Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', {
          get: () => n,
          configurable: true,
        });
      }, options.hardwareConcurrency);
    }
    const page = await context.newPage();
    page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
    await page.goto(url);
    try {
      await page.waitForFunction(() => window.__prflDone === true, undefined, {
        timeout: options.timeoutMs ?? 90_000,
      });
    } catch (e) {
      throw new Error(
        `the page did not finish: ${e instanceof Error ? e.message : String(e)}\n${log.join('\n')}`,
      );
    }
    const report = await page.evaluate(() => window.__prfl!);
    return { report, log, ms: Math.round(performance.now() - t0) };
  } finally {
    await context.close();
  }
}
