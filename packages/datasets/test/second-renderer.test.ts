/**
 * The second renderer (test/support/second-renderer) is only a fair check of the oracle if its good
 * clips are good and its defects are as strong as the world's: this checks its geometry, its paths,
 * each injected defect's strength (src/moving-shapes/defects.ts) and what each rendering does to pixels.
 */
import { describe, expect, it } from 'vitest';
import { SHAPES } from '../src/moving-shapes/vocabulary.js';
import { outline } from './support/second-renderer/geometry.js';
import { type RenderingName, type SecondClip, secondClip } from './support/second-renderer/index.js';

const clips = (defect: SecondClip['defect'], n: number, rendering: RenderingName = 'hard-edged') =>
  Array.from({ length: n }, (_, i) => secondClip({ seed: `check/${i}`, rendering, defect }));

const offsets = (c: SecondClip) =>
  c.states.map((s, t) =>
    Math.hypot(s.x - (c.clean[t] as [number, number])[0], s.y - (c.clean[t] as [number, number])[1]),
  );

describe('second renderer', () => {
  it('draws every shape with area pi r^2 around its area centroid', () => {
    const r = 7;
    const h = 0.05;
    for (const shape of SHAPES) {
      const o = outline(shape, r);
      let area = 0;
      let mx = 0;
      let my = 0;
      for (let v = -2 * r; v < 2 * r; v += h)
        for (let u = -2 * r; u < 2 * r; u += h)
          if (o.inside(u + h / 2, v + h / 2)) {
            area += h * h;
            mx += (u + h / 2) * h * h;
            my += (v + h / 2) * h * h;
          }
      expect(Math.abs(area / (Math.PI * r * r) - 1), shape).toBeLessThan(0.02);
      expect(Math.hypot(mx / area, my / area), shape).toBeLessThan(0.05);
    }
  });

  it('keeps good paths on the canvas and moving (median step >= 0.7 px)', () => {
    // Named sizes, sizes in between, and radii jittered by 10 %.
    for (const [rendering, n] of [
      ['hard-edged', 40],
      ['other sizes', 40],
      ['VAE-like', 20],
    ] as const) {
      for (const c of clips('none', n, rendering)) {
        const { left, right, up, down } = c.outline;
        for (const s of c.states) {
          expect(s.x - left, rendering).toBeGreaterThanOrEqual(-1e-9);
          expect(s.x + right, rendering).toBeLessThanOrEqual(64 + 1e-9);
          expect(s.y - up, rendering).toBeGreaterThanOrEqual(-1e-9);
          expect(s.y + down, rendering).toBeLessThanOrEqual(64 + 1e-9);
        }
        const steps = c.states
          .slice(1)
          .map((s, t) =>
            Math.hypot(s.x - (c.states[t] as { x: number }).x, s.y - (c.states[t] as { y: number }).y),
          )
          .sort((a, b) => a - b);
        expect(steps[steps.length >> 1] as number).toBeGreaterThanOrEqual(0.7);
      }
    }
  });

  it('injects each defect at the strength of the world', () => {
    for (const c of clips('jitter', 20)) {
      const d = offsets(c);
      expect(Math.sqrt(d.reduce((a, b) => a + b * b, 0) / d.length)).toBeGreaterThan(1.3);
    }
    for (const c of clips('teleport', 20)) {
      const jumped = offsets(c).filter((d) => d > 1e-9);
      expect(jumped.length).toBeGreaterThanOrEqual(1);
      expect(jumped.length).toBeLessThanOrEqual(2);
      expect(Math.min(...jumped)).toBeGreaterThanOrEqual(7.7);
    }
    for (const c of clips('stall', 20)) {
      let run = 0;
      let longest = 0;
      c.states.slice(1).forEach((s, t) => {
        const p = c.states[t] as { x: number; y: number };
        run = s.x === p.x && s.y === p.y ? run + 1 : 0;
        longest = Math.max(longest, run);
      });
      expect(longest).toBeGreaterThanOrEqual(3);
    }
    for (const c of clips('speed-change', 20)) {
      // Somewhere the velocity jumps by >= 1.3 px/frame more than the clean path's does (bounces are
      // left out: their hits, at other frames once time is warped, outweigh the change of speed).
      if (c.said.motion.startsWith('bounce')) continue;
      const accelerations = (p: Array<[number, number]>) =>
        p.slice(2).map(([x, y], k) => {
          const [x1, y1] = p[k + 1] as [number, number];
          const [x0, y0] = p[k] as [number, number];
          return Math.hypot(x - 2 * x1 + x0, y - 2 * y1 + y0);
        });
      const drawn = accelerations(c.states.map((s) => [s.x, s.y]));
      const clean = accelerations(c.clean);
      expect(Math.max(...drawn.map((a, k) => a - (clean[k] as number)))).toBeGreaterThanOrEqual(1.3 - 0.05);
    }
    for (const c of clips('deformation', 20)) {
      const stretch = Math.max(
        ...c.states.map((s) => Math.max(Math.abs(Math.log(s.sx)), Math.abs(Math.log(s.sy)))),
      );
      expect(stretch).toBeGreaterThanOrEqual(Math.log(1.25) - 1e-9);
    }
    for (const c of clips('flicker', 20)) {
      const faded = c.states.filter((s) => s.opacity < 1);
      expect(faded.length).toBeGreaterThanOrEqual(2);
      expect(faded.length).toBeLessThanOrEqual(5);
      for (const s of faded) expect(s.opacity).toBeLessThanOrEqual(0.5);
    }
  });

  it('renders hard edges with no partial pixels and anti-aliased edges with some', () => {
    const partial = (c: SecondClip) => {
      // Fraction of the object's colour in each pixel, on the red channel of a solid-background frame.
      const v = c.video;
      const bg = v.data[0] as number;
      const fg = Math.max(
        ...Array.from(v.data.subarray(0, v.width * v.height * 3)).filter((_, k) => k % 3 === 0),
      );
      let n = 0;
      for (let p = 0; p < v.width * v.height; p++) {
        const a = ((v.data[3 * p] as number) - bg) / (fg - bg);
        if (a > 0.02 && a < 0.98) n++;
      }
      return n;
    };
    const pick = (rendering: 'hard-edged' | 'anti-aliased') => {
      for (let i = 0; ; i++) {
        const c = secondClip({ seed: `pixels/${i}`, rendering });
        const v = c.video.data;
        // A solid background and a colour whose red channel differs from it.
        if (v[0] === v[3 * 63] && v[0] === v[3 * 64 * 63] && c.said.colour !== 'blue') return c;
      }
    };
    expect(partial(pick('hard-edged'))).toBe(0);
    expect(partial(pick('anti-aliased'))).toBeGreaterThan(10);
  });
});
