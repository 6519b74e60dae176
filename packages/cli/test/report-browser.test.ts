/**
 * report.html in a real browser (Debian's chromium through playwright-core): no console error, every
 * GIF decodes and has several frames (it animates), both SVG plots have their lines, the tables hold
 * the numbers. The report is rendered from a small synthetic demo result, so the test needs no model.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Video } from '@prfl/datasets';
import { wilson } from '@prfl/pretrained';
import { afterAll, describe, expect, it } from 'vitest';
import type { DemoResult } from '../src/demo/pipeline.js';
import { DEMO_DEFAULTS } from '../src/demo/pipeline.js';
import { renderReport } from '../src/demo/report.js';
import { tempDir } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const tmp = tempDir('report');
afterAll(() => tmp.remove());

function movingDot(shift: number): Video {
  const f = 5;
  const n = 16;
  const data = new Float32Array(f * n * n * 3).fill(-1);
  for (let t = 0; t < f; t++) {
    const x = (t * 3 + shift) % n;
    for (let c = 0; c < 3; c++) data[((t * n + 8) * n + x) * 3 + c] = 1;
  }
  return { frames: f, height: n, width: n, data };
}

function result(): DemoResult {
  const v = (motionGood: 0 | 1) => ({
    prompt: 'a large red circle moving left',
    seed: 's-0',
    motionGood,
    adherent: 1 as const,
    colourOk: true,
    shapeOk: true,
    motionOk: true,
    sizeOk: true,
    motionScore: 0.6,
    adherenceScore: 0.7,
  });
  return {
    settings: { ...DEMO_DEFAULTS },
    backend: 'wasm',
    reward: {
      trainVideos: 256,
      trainMotionGoodRate: 0.4,
      buckets: [0, 0.2, 0.4, 0.6, 0.8].map((low) => ({
        low,
        high: low + 0.2,
        accuracy: 0.9 - low / 4,
        rocAuc: 0.85 - low / 5,
        withinPromptAuc: 0.7 - low / 5,
        n: 112,
      })),
      average: 0.8,
      averageRocAuc: 0.77,
      averageWithinPromptAuc: 0.62,
      heldOutGoodRate: 40 / 112,
    },
    before: { motionGood: wilson(40, 112), adherence: wilson(90, 112) },
    after: { motionGood: wilson(70, 112), adherence: wilson(89, 112) },
    delta: { motionGood: 26.8, adherence: -0.9 },
    curves: {
      pavrm: Array.from({ length: 20 }, (_, i) => ({
        step: i + 1,
        loss: 0.7 - i / 40,
        accuracy: 0.5 + i / 50,
      })),
      prfl: Array.from({ length: 20 }, (_, i) => ({
        step: i + 1,
        loss: 0.15 - i / 400,
        reward: 0.5 + i / 60,
        k: i,
        sigma: 0.5,
      })),
    },
    seconds: { reward: 60, before: 30, prfl: 40, after: 30 },
    samples: [
      { prompt: 'a large red circle moving left', seed: 's-0', before: v(0), after: v(1) },
      { prompt: 'a large <b>blue</b> square moving up', seed: 's-1', before: v(1), after: v(1) },
    ],
  };
}

describe.runIf(existsSync(CHROMIUM))('report.html in chromium', () => {
  it('opens offline without console errors; its GIFs animate and its plots render', async () => {
    const html = renderReport(result(), {
      before: [movingDot(0), movingDot(5)],
      after: [movingDot(2), movingDot(7)],
    });
    const file = path.join(tmp.dir, 'report.html');
    writeFileSync(file, html);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('data:') && !r.url().startsWith('file:')) requests.push(r.url());
      });
      await page.goto(pathToFileURL(file).href);
      const state = await page.evaluate(() => ({
        images: Array.from(document.images).map((i) => ({ complete: i.complete, width: i.naturalWidth })),
        polylines: Array.from(document.querySelectorAll('svg.plot polyline')).map(
          (p) => p.getAttribute('points')?.split(' ').length ?? 0,
        ),
        beforeAfter: document.querySelector('#before-after')?.textContent ?? '',
        buckets: document.querySelectorAll('#buckets tr').length,
        escaped: document.body.innerHTML.includes('&lt;b&gt;blue&lt;/b&gt;'),
      }));
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      expect(state.images).toHaveLength(4);
      for (const i of state.images) expect(i).toEqual({ complete: true, width: 48 });
      expect(state.polylines).toEqual([20, 20, 20, 20]);
      expect(state.beforeAfter).toContain('+26.8 points');
      expect(state.buckets).toBe(6);
      expect(state.escaped).toBe(true);
      // Each GIF holds one image block per frame: 5 frames, so it animates.
      const gifs = [...html.matchAll(/data:image\/gif;base64,([A-Za-z0-9+/=]+)/g)].map((m) =>
        Buffer.from(m[1] as string, 'base64'),
      );
      for (const g of gifs) {
        expect(g.subarray(0, 6).toString('latin1')).toBe('GIF89a');
        expect(g.includes(Buffer.from('NETSCAPE2.0', 'latin1'))).toBe(true);
      }
    } finally {
      await browser.close();
    }
  }, 60_000);
});
