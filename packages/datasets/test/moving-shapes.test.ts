import { describe, expect, it } from 'vitest';
import {
  ALIGNMENT_DEFECTS,
  COLOURS,
  combinations,
  formatPrompt,
  isHeldOutCombination,
  MOTION_DEFECTS,
  MOTIONS,
  parsePrompt,
  PROMPT_VOCABULARY,
  promptTokens,
  renderClip,
  renderScene,
  sampleClip,
  sampleClips,
  SHAPES,
  shapeCoverage,
  shapeExtent,
  SIZES,
} from '../src/index.js';

describe('prompt grammar', () => {
  it('formats and parses every colour x shape x size x motion back to itself', () => {
    let n = 0;
    for (const colour of COLOURS)
      for (const shape of SHAPES)
        for (const size of SIZES)
          for (const motion of MOTIONS) {
            const spec = { colour, shape, size, motion };
            expect(parsePrompt(formatPrompt(spec))).toEqual(spec);
            n++;
          }
    expect(n).toBe(8 * 6 * 3 * 16);
  });

  it('reads the examples of the design', () => {
    expect(formatPrompt({ colour: 'red', shape: 'circle', size: 'medium', motion: 'bounce-right' })).toBe(
      'a red circle bouncing left to right',
    );
    expect(formatPrompt({ colour: 'orange', shape: 'cross', size: 'medium', motion: 'orbit-cw' })).toBe(
      'an orange cross orbiting clockwise',
    );
    expect(parsePrompt('  A Small white cross orbiting counterclockwise ')).toEqual({
      colour: 'white',
      shape: 'cross',
      size: 'small',
      motion: 'orbit-ccw',
    });
  });

  it('names the part of a prompt outside the grammar', () => {
    expect(() => parsePrompt('a purple circle moving left')).toThrow(/expected a colour.*got "purple"/);
    expect(() => parsePrompt('a red blob moving left')).toThrow(/expected a shape.*got "blob"/);
    expect(() => parsePrompt('a red circle dancing')).toThrow(/unknown motion phrase "dancing"/);
  });

  it('tokenises with a fixed vocabulary, padding with 0', () => {
    const ids = promptTokens('a red circle moving left', 8);
    expect(ids).toHaveLength(8);
    expect(ids.slice(5)).toEqual([0, 0, 0]);
    expect(ids.slice(0, 5).every((i) => i >= 2)).toBe(true);
    expect(PROMPT_VOCABULARY[ids[1] as number]).toBe('red');
    expect(promptTokens('a zebra')).toEqual([PROMPT_VOCABULARY.indexOf('a'), 1]);
  });
});

describe('compositional split', () => {
  it('holds out one in eight combinations and keeps every pair of attributes in training', () => {
    const train = combinations(false);
    const test = combinations(true);
    expect(train.length + test.length).toBe(8 * 6 * 16);
    expect(test.length).toBe((8 * 6 * 16) / 8);
    const pairs = (f: (c: (typeof train)[number]) => string) => new Set(train.map(f));
    expect(pairs((c) => `${c.colour}|${c.shape}`).size).toBe(8 * 6);
    expect(pairs((c) => `${c.colour}|${c.motion}`).size).toBe(8 * 16);
    expect(pairs((c) => `${c.shape}|${c.motion}`).size).toBe(6 * 16);
  });

  it('draws test prompts only from held-out combinations and train prompts never', () => {
    for (let i = 0; i < 50; i++) {
      const test = sampleClip({ seed: i, split: 'test' });
      expect(isHeldOutCombination(test.said.colour, test.said.shape, test.said.motion)).toBe(true);
      const train = sampleClip({ seed: i, split: 'train' });
      expect(isHeldOutCombination(train.said.colour, train.said.shape, train.said.motion)).toBe(false);
    }
  });
});

describe('shapes', () => {
  it('have area pi r^2 and stay within their extent', () => {
    const r = 7;
    for (const shape of SHAPES) {
      let area = 0;
      const e = shapeExtent(shape, r);
      let outside = 0;
      for (let y = -20; y < 20; y += 0.25) {
        for (let x = -20; x < 20; x += 0.25) {
          const c = shapeCoverage(shape, x, y, r);
          area += c * 0.0625;
          if (
            c > 0.5 &&
            (x < -e.left - 0.01 || x > e.right + 0.01 || y < -e.top - 0.01 || y > e.bottom + 0.01)
          )
            outside++;
        }
      }
      expect(Math.abs(area / (Math.PI * r * r) - 1), shape).toBeLessThan(0.01);
      expect(outside, shape).toBe(0);
    }
  });
});

describe('sampleClip and renderClip', () => {
  it('is deterministic in the seed and JSON round-trips', () => {
    const a = sampleClip({ seed: 42, motionDefect: 'random', alignmentDefect: 'random' });
    const b = sampleClip({ seed: 42, motionDefect: 'random', alignmentDefect: 'random' });
    expect(a).toEqual(b);
    const copy = JSON.parse(JSON.stringify(a));
    expect(renderClip(copy).data).toEqual(renderClip(a).data);
  });

  it('renders [17, 64, 64, 3] in [-1, 1] with the object covering pi r^2 pixels', () => {
    const spec = sampleClip({
      seed: 'area',
      prompt: { colour: 'white', shape: 'square', size: 'large', motion: 'left' },
    });
    const v = renderClip(spec);
    expect([v.frames, v.height, v.width, v.data.length]).toEqual([17, 64, 64, 17 * 64 * 64 * 3]);
    let min = Infinity;
    let max = -Infinity;
    for (const x of v.data) {
      if (x < min) min = x;
      if (x > max) max = x;
    }
    expect(min).toBeGreaterThanOrEqual(-1);
    expect(max).toBeLessThanOrEqual(1);
    // A solid background is the same everywhere; the object's coverage is the colour distance ratio.
    if (spec.drawn.background.kind === 'solid') {
      const bg = [v.data[0], v.data[1], v.data[2]] as number[];
      const white = [245 / 127.5 - 1, 245 / 127.5 - 1, 245 / 127.5 - 1];
      let cover = 0;
      for (let p = 0; p < 64 * 64; p++)
        cover += ((v.data[3 * p] as number) - (bg[0] as number)) / ((white[0] as number) - (bg[0] as number));
      expect(cover / (Math.PI * 81)).toBeCloseTo(1, 2);
    }
  });

  it('keeps prompt, background and path when only the defect changes, and sets the labels', () => {
    const good = sampleClip({ seed: 7 });
    expect(good.labels).toEqual({ physics: 1, integrity: 1, motionQuality: 1, textAlignment: 1 });
    for (const kind of MOTION_DEFECTS) {
      const bad = sampleClip({ seed: 7, motionDefect: kind });
      expect(bad.prompt).toBe(good.prompt);
      expect(bad.drawn).toEqual(good.drawn);
      expect(bad.labels.motionQuality).toBe(0);
      expect(bad.labels.textAlignment).toBe(1);
      const physicsKind = ['jitter', 'teleport', 'stall', 'speed-change'].includes(kind);
      expect(bad.labels.physics).toBe(physicsKind ? 0 : 1);
      expect(bad.labels.integrity).toBe(physicsKind ? 1 : 0);
      expect(bad.defects.length).toBe(1);
    }
    for (const kind of ALIGNMENT_DEFECTS) {
      const bad = sampleClip({ seed: 7, alignmentDefect: kind });
      expect(bad.prompt).toBe(good.prompt);
      expect(bad.labels).toEqual({ physics: 1, integrity: 1, motionQuality: 1, textAlignment: 0 });
      expect(bad.defects[0]?.kind).toBe(kind);
    }
  });

  it('balances labels exactly in a clip set and keeps every motion defect kind', () => {
    const clips = sampleClips({ count: 200, seed: 'set', alignmentDefectRate: 0.5 });
    expect(clips.filter((c) => c.labels.motionQuality === 0)).toHaveLength(100);
    expect(clips.filter((c) => c.labels.textAlignment === 0)).toHaveLength(100);
    const kinds = new Set(clips.flatMap((c) => c.defects.map((d) => d.kind)));
    for (const k of [...MOTION_DEFECTS, ...ALIGNMENT_DEFECTS]) expect(kinds.has(k), k).toBe(true);
  });

  it('rejects bad options with the argument named', () => {
    expect(() => sampleClip({ seed: 1, frames: 4 })).toThrow(/frames must be an integer >= 9/);
    expect(() => sampleClip({ seed: 1, motionDefect: 'wobble' as never })).toThrow(
      /motionDefect must be one of/,
    );
    expect(() =>
      renderScene({
        width: 8,
        height: 8,
        shape: 'circle',
        radius: 2,
        colour: [1, 1, 1],
        background: { kind: 'solid', colour: 'black' },
        states: [],
      }),
    ).toThrow(/states is empty/);
  });

  it('draws a fixed background and keeps straight paths near the middle line with pathSpread 0', () => {
    for (let i = 0; i < 40; i++) {
      const motion = (['left', 'right', 'up', 'down'] as const)[i % 4] ?? 'left';
      const prompt = { colour: 'red', shape: 'square', size: 'large', motion } as const;
      const free = sampleClip({ seed: `s${i}`, prompt });
      const c = sampleClip({
        seed: `s${i}`,
        prompt,
        background: { kind: 'solid', colour: 'black' },
        pathSpread: 0,
      });
      expect(c.drawn.background).toEqual({ kind: 'solid', colour: 'black' });
      const m = c.drawn.motion as { kind: string; x0: number; y0: number; vx: number; vy: number };
      // left/right: y near the middle (32 +- 4); up/down: x near it; the along-path draws are the free clip's.
      const across = m.kind === 'left' || m.kind === 'right' ? m.y0 : m.x0;
      expect(Math.abs(across - 32)).toBeLessThanOrEqual(4.01);
      const f = free.drawn.motion as typeof m;
      expect(Math.hypot(m.vx, m.vy)).toBeCloseTo(Math.hypot(f.vx, f.vy), 9);
    }
    expect(() => sampleClip({ seed: 1, pathSpread: 2 })).toThrow(
      /pathSpread must be a number in \[0, 1\], got 2/,
    );
    expect(() => sampleClip({ seed: 1, background: { kind: 'solid', colour: 'pink' } as never })).toThrow(
      /background must be .* got \{"kind":"solid","colour":"pink"\}/,
    );
  });

  it('renders other sizes: 33 frames of 96 x 128', () => {
    const spec = sampleClip({ seed: 3, frames: 33, height: 96, width: 128, motionDefect: 'random' });
    const v = renderClip(spec);
    expect(v.data.length).toBe(33 * 96 * 128 * 3);
  });
});
