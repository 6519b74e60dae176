/**
 * Builds the app with Vite into a temporary folder, serves it from http://127.0.0.1 (a secure context,
 * so navigator.gpu exists; with COOP/COEP as vite preview sends them) and drives Debian's Chromium
 * through playwright-core with WebGPU on SwiftShader, as packages/tensor/test/browser/harness.ts does.
 * Never downloads a browser.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import type { PageReport } from '../src/report.js';

export const APP_ROOT = path.resolve(import.meta.dirname, '..');
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium with a WebGPU adapter on SwiftShader (CPU emulation), no GPU needed. The flags of
 * packages/tensor/test/browser/harness.ts, plus ANGLE on SwiftShader: tfjs's synchronous WebGPU read
 * (`dataSync`, which @prfl/refl's trainer step uses for its metrics) copies the buffer through a WebGPU
 * canvas drawn into a 2D canvas, and without a GL backend headless Chromium draws zeros and drops the
 * WebGPU device ("A valid external Instance reference no longer exists").
 */
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-angle=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** `vite build` of the app into `outDir`; returns the milliseconds it took. */
export async function buildApp(outDir: string): Promise<number> {
  const t0 = performance.now();
  await build({
    root: APP_ROOT,
    configFile: path.join(APP_ROOT, 'vite.config.ts'),
    logLevel: 'error',
    build: { outDir, emptyOutDir: true },
  });
  return Math.round(performance.now() - t0);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

export interface StaticServer {
  origin: string;
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 and a free port, cross-origin isolated like `vite preview` of this app. */
export function serveStatic(root: string): Promise<StaticServer> {
  const server = createServer((req, res) => {
    let rel = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(root, `.${rel}`);
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
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
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 });
}

/** Statistics of one canvas's pixels, read back with getImageData. */
export interface CanvasPixels {
  label: string;
  width: number;
  height: number;
  /** Variance of the RGB values (0-255) over the canvas. */
  variance: number;
  mean: number;
}

export interface PageRun {
  report: PageReport;
  /** The progress line when the run ended. */
  phase: string;
  canvases: CanvasPixels[];
  /** Console errors and page errors (none expected), and every console line, for diagnosis. */
  errors: string[];
  log: string[];
  ms: number;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Save a full-page screenshot here when the run is done. */
  screenshot?: string;
}

async function readCanvases(page: Page): Promise<CanvasPixels[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLCanvasElement>('canvas[data-video]')].map((c) => {
      const data = (c.getContext('2d') as CanvasRenderingContext2D).getImageData(
        0,
        0,
        c.width,
        c.height,
      ).data;
      let sum = 0;
      let sq = 0;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        for (let k = 0; k < 3; k++) {
          const v = data[i + k] as number;
          sum += v;
          sq += v * v;
          n++;
        }
      }
      const mean = sum / n;
      return {
        label: c.dataset.video ?? '',
        width: c.width,
        height: c.height,
        mean,
        variance: sq / n - mean * mean,
      };
    }),
  );
}

/** An open page of the app, with its console collected. */
export interface OpenApp {
  page: Page;
  /** Console errors, page errors and failed requests (none expected). */
  errors: string[];
  /** Every console line, for diagnosis. */
  log: string[];
  close(): Promise<void>;
}

/** Opens the app at `query` (e.g. `?backend=wasm&auto=1`) in a fresh browser context. */
export async function openApp(browser: Browser, origin: string, query: string): Promise<OpenApp> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const log: string[] = [];
  const errors: string[] = [];
  const page = await context.newPage();
  page.on('console', (m) => {
    log.push(`[${m.type()}] ${m.text()}`);
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => {
    log.push(`[pageerror] ${e.stack ?? e.message}`);
    errors.push(e.message);
  });
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(`${origin}/${query}`);
  return { page, errors, log, close: () => context.close() };
}

/** Waits until `predicate` holds on the page, or the page reports an error (then returns too). */
export async function waitFor(
  app: OpenApp,
  predicate: () => boolean,
  what: string,
  timeoutMs = 120_000,
): Promise<void> {
  const options = { timeout: timeoutMs, polling: 250 };
  const failed = app.page.waitForFunction(() => window.__prfl?.error !== undefined, undefined, options);
  try {
    await Promise.race([app.page.waitForFunction(predicate, undefined, options), failed]);
  } catch (e) {
    const phase = await app.page.textContent('#phase').catch(() => '');
    throw new Error(
      `waiting for ${what}: ${e instanceof Error ? e.message : String(e)} (at "${phase}")\n${app.log.join('\n')}`,
    );
  } finally {
    failed.catch(() => {});
  }
}

/** The report, the progress line and the canvases' pixels, now. */
export async function readApp(app: OpenApp, startedAt: number): Promise<PageRun> {
  const report = await app.page.evaluate(() => window.__prfl);
  const canvases = await readCanvases(app.page);
  const phase = (await app.page.textContent('#phase')) ?? '';
  return {
    report,
    phase,
    canvases,
    errors: app.errors,
    log: app.log,
    ms: Math.round(performance.now() - startedAt),
  };
}

/** Opens the app at `query`, waits until `window.__prfl` is done (or has an error), and reads it back. */
export async function runApp(
  browser: Browser,
  origin: string,
  query: string,
  options: RunOptions = {},
): Promise<PageRun> {
  const t0 = performance.now();
  const app = await openApp(browser, origin, query);
  try {
    await waitFor(app, () => window.__prfl?.done === true, 'the automatic run', options.timeoutMs);
    const run = await readApp(app, t0);
    if (options.screenshot !== undefined)
      await app.page.screenshot({ path: options.screenshot, fullPage: true });
    return run;
  } finally {
    await app.close();
  }
}
