/**
 * The browser app end to end: `vite build`, served from 127.0.0.1, opened in Debian's headless Chromium
 * twice, WebGPU on SwiftShader and wasm, with small settings and ?auto=1 (generate -> score every step ->
 * prune -> one PRFL step -> regenerate). Needs the packages built (`npm run build`; turbo's test task
 * depends on it) and /usr/bin/chromium (with libvulkan1 for WebGPU); without Chromium it is skipped
 * with a message, except in CI where it fails.
 *
 * PRFL_UPDATE_SCREENSHOT=1 also runs the page with its default settings on wasm and saves
 * docs/images/browser-app.png (the normal run never writes into the repository).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ROOT,
  buildApp,
  CHROMIUM,
  launchChromium,
  openApp,
  type PageRun,
  readApp,
  runApp,
  type StaticServer,
  serveStatic,
  waitFor,
} from './harness.js';

const inCi = process.env.CI === 'true';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  const message = `${CHROMIUM} is missing (apt-get install chromium libvulkan1)`;
  if (inCi) throw new Error(`the browser app test needs Chromium in CI: ${message}`);
  console.warn(`SKIPPING the browser app test: ${message}`);
}
const updateScreenshot = process.env.PRFL_UPDATE_SCREENSHOT === '1';
const SCREENSHOT = path.resolve(APP_ROOT, '../../docs/images/browser-app.png');

/** 2 seeds, 3 steps, keep the best one after step 1, one PRFL micro-step of batch 1. */
const SMALL = 'seeds=2&steps=3&pruneAt=1&keep=1&prflSteps=1&prflBatch=1&clips=2&auto=1';
const STEPS = 3;
const PRUNE_AT = 1;

function checkRun(run: PageRun, backend: string): void {
  const r = run.report;
  expect(r.error, run.log.join('\n')).toBeUndefined();
  expect(run.errors, run.log.join('\n')).toEqual([]);
  expect(r.done).toBe(true);
  expect(r.backend?.requested).toBe(backend);
  expect(r.backend?.active).toBe(backend);
  if (backend === 'webgpu') expect(r.backend?.description).toMatch(/swiftshader/i);

  // Generation: every live seed has a finite reward at every step it ran; the pruned one stops at step 2.
  const g = r.generation!;
  expect(g.seeds).toHaveLength(2);
  expect(g.pruned).toMatchObject({ afterStep: PRUNE_AT });
  expect(g.pruned!.kept).toHaveLength(1);
  expect(g.survivors).toEqual(g.pruned!.kept);
  g.rewards.forEach((row, seed) => {
    const ran = g.survivors.includes(seed) ? STEPS : PRUNE_AT;
    expect(row).toHaveLength(STEPS);
    for (let j = 0; j < STEPS; j++) {
      if (j < ran) {
        expect(Number.isFinite(row[j]), `seed ${seed} step ${j + 1}`).toBe(true);
        expect(row[j]).toBeGreaterThan(0);
        expect(row[j]).toBeLessThan(1);
      } else expect(row[j]).toBeNull();
    }
  });
  // The best seed at the pruning point survived.
  const atPrune = g.rewards.map((row) => row[PRUNE_AT - 1] as number);
  expect(g.survivors[0]).toBe(atPrune.indexOf(Math.max(...atPrune)));
  expect(g.timesteps[STEPS - 1]).toBe(0);
  // Compute: 2 seeds x 3 steps x 2 (guidance) without pruning; one seed stopped for the last 2 steps.
  expect(g.compute).toMatchObject({
    ditEvaluationsWithoutPruning: 12,
    ditEvaluations: 8,
    ditEvaluationsSaved: 4,
    fractionSaved: 1 / 3,
    rewardEvaluations: 4,
  });

  // One PRFL micro-step with finite numbers, then the survivor regenerated with a finite reward per step.
  const f = r.finetune!;
  expect(f.steps).toHaveLength(1);
  const step = f.steps[0]!;
  for (const v of [step.loss, step.rewardLoss, step.reward, step.sftLoss as number]) {
    expect(Number.isFinite(v)).toBe(true);
  }
  expect(step.k).toBeGreaterThanOrEqual(0);
  expect(step.k).toBeLessThanOrEqual(STEPS - 2);
  const a = r.regeneration!;
  expect(a.seeds).toEqual(g.survivors.map((i) => g.seeds[i]));
  expect(a.pruned).toBeUndefined();
  for (const p of a.rewards[0]!) expect(Number.isFinite(p)).toBe(true);

  // Nothing is left behind: after the first generation (which fills the models' RoPE and latent-statistics
  // caches) fine-tuning and regenerating end with as many tensors as it did.
  expect(r.tensors.generation! - r.tensors.load!).toBeLessThanOrEqual(12);
  expect(r.tensors.finetune).toBe(r.tensors.generation);
  expect(r.tensors.regeneration).toBe(r.tensors.generation);

  // Every video canvas shows a 64 x 64 picture that is not blank (a shape on the background).
  const labels = run.canvases.map((c) => c.label).sort();
  const s = g.survivors[0];
  expect(labels).toEqual([`after-${s}`, `before-${s}`, `gen-${s}`]);
  for (const c of run.canvases) {
    expect([c.width, c.height]).toEqual([64, 64]);
    expect(c.variance, `${c.label}: mean ${c.mean}`).toBeGreaterThan(20);
  }
}

/** One line of timings (and the error, when the page failed). */
function summary(run: PageRun): string {
  const r = run.report;
  if (r.error !== undefined || r.generation === undefined || r.finetune === undefined) {
    return `${r.backend?.description ?? r.settings?.backend}: FAILED after ${(run.ms / 1000).toFixed(1)} s at "${run.phase}": ${r.error}\n${run.log.join('\n')}`;
  }
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const g = r.generation;
  const a = r.regeneration;
  return `${r.backend?.description}: page ${s(run.ms)}, models ${s(r.msLoad ?? 0)}, generation ${s(g.compute.ms + g.msDecode)} (decode ${s(g.msDecode)}), PRFL step ${s(r.finetune.msPerStep)} (${Object.entries(
    r.finetune.steps[0]?.phases ?? {},
  )
    .map(([k, v]) => `${k} ${s(v)}`)
    .join(
      ', ',
    )}; clips ${s(r.finetune.msData)}), regeneration ${a === undefined ? '-' : s(a.compute.ms + a.msDecode)}`;
}

describe.skipIf(!hasChromium)('examples/browser in headless Chromium', () => {
  let dir: string | undefined;
  let server: StaticServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'prfl-browser-app-'));
    const ms = await buildApp(dir);
    console.info(`vite build: ${ms} ms`);
    server = await serveStatic(dir);
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs generation, scoring, pruning and one PRFL step on WebGPU (SwiftShader)', async () => {
    const run = await runApp(browser!, server!.origin, `?backend=webgpu&${SMALL}`);
    console.info(summary(run));
    checkRun(run, 'webgpu');
  });

  it('runs generation, scoring, pruning and one PRFL step on wasm', async () => {
    const run = await runApp(browser!, server!.origin, `?backend=wasm&${SMALL}`);
    console.info(summary(run));
    checkRun(run, 'wasm');
  });

  it('drives the same phases from the form and the buttons (backend auto picks wasm over SwiftShader)', async () => {
    const t0 = performance.now();
    const app = await openApp(browser!, server!.origin, `?backend=auto&${SMALL.replace('&auto=1', '')}`);
    try {
      await waitFor(
        app,
        () => /^Models loaded/.test(document.querySelector('#phase')?.textContent ?? ''),
        'the models',
      );
      const { page } = app;
      await page.fill('#f-seeds', '3');
      await page.selectOption('#f-pruneMode', 'threshold');
      await page.fill('#f-thresholdP', '0.99');
      await page.click('#generate');
      await waitFor(app, () => window.__prfl?.generation !== undefined, 'the generation');
      await page.click('#finetune-button');
      await waitFor(app, () => window.__prfl?.done === true, 'the fine-tuning');
      await page.click('#reset');
      await waitFor(
        app,
        () => /shipped weights again/.test(document.querySelector('#phase')?.textContent ?? ''),
        'the reset',
      );
      const run = await readApp(app, t0);
      const r = run.report;
      expect(r.error, run.log.join('\n')).toBeUndefined();
      expect(run.errors).toEqual([]);
      // No hardware adapter here: auto skips SwiftShader's and says why.
      expect(r.backend?.active).toBe('wasm');
      expect(r.backend?.skipped.map((s) => s.name)).toContain('webgpu');
      expect(await page.textContent('#backend')).toMatch(/webgpu skipped/);
      // The form's values were used: 3 seeds, and a threshold no seed reaches keeps the best one.
      const g = r.generation!;
      expect(g.seeds).toEqual(['1-0', '1-1', '1-2']);
      expect(g.pruned?.kept).toHaveLength(1);
      expect(r.finetune?.steps).toHaveLength(1);
      expect(r.regeneration?.seeds).toEqual(g.pruned?.kept.map((i) => g.seeds[i]));
      expect(new URL(page.url()).searchParams.get('threshold')).toBe('0.99');
    } finally {
      await app.close();
    }
  });

  it('shows a bad URL parameter on the page', async () => {
    const app = await openApp(browser!, server!.origin, '?backend=wasm&seeds=0&auto=1');
    try {
      await waitFor(app, () => false, 'the error', 30_000);
      const error = await app.page.evaluate(() => window.__prfl.error);
      expect(error).toMatch(/seeds: expected an integer in \[1, 16\], got "0"/);
      expect(await app.page.isVisible('#error')).toBe(true);
      expect(await app.page.textContent('#error')).toContain('seeds: expected an integer');
    } finally {
      await app.close();
    }
  });

  it.runIf(updateScreenshot)(
    'saves docs/images/browser-app.png (default settings, wasm)',
    async () => {
      const run = await runApp(browser!, server!.origin, '?backend=wasm&auto=1', {
        screenshot: SCREENSHOT,
        timeoutMs: 600_000,
      });
      console.info(`screenshot run: ${summary(run)}`);
      expect(run.report.error, run.log.join('\n')).toBeUndefined();
      expect(run.errors).toEqual([]);
      console.info(`wrote ${SCREENSHOT}`);
    },
    660_000,
  );
});
