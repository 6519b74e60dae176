import { describe, expect, it } from 'vitest';
import { EMBEDDED_WORLD, isHeldOut, sampleWorldClips, wideScenes, worldPrompts } from '../src/index.js';

describe('the embedded world', () => {
  it('splits its 48 prompts into 41 for training and 7 held out', () => {
    const train = worldPrompts(EMBEDDED_WORLD, 'train');
    const held = worldPrompts(EMBEDDED_WORLD, 'held-out');
    expect(train).toHaveLength(41);
    expect(held).toHaveLength(7);
    expect(held.every((p) => isHeldOut(EMBEDDED_WORLD, p))).toBe(true);
    expect(train.some((p) => isHeldOut(EMBEDDED_WORLD, p))).toBe(false);
  });

  it('draws every clip on black with its path along a middle line of the canvas', () => {
    const specs = sampleWorldClips(EMBEDDED_WORLD, {
      side: 'train',
      count: 48,
      seed: 'w',
      motionDefectRate: 0.25,
    });
    expect(specs.filter((s) => s.labels.motionQuality === 0)).toHaveLength(12);
    // Across its direction a path stays within an 8 px band (the middle of the room the shape has).
    const bands = new Map<string, number[]>();
    for (const s of specs) {
      expect(s.drawn.background).toEqual({ kind: 'solid', colour: 'black' });
      const m = s.drawn.motion as { kind: string; x0: number; y0: number };
      const horizontal = m.kind === 'left' || m.kind === 'right';
      const key = `${s.drawn.shape}/${horizontal}`;
      bands.set(key, [...(bands.get(key) ?? []), horizontal ? m.y0 : m.x0]);
    }
    for (const across of bands.values()) {
      expect(Math.max(...across) - Math.min(...across)).toBeLessThanOrEqual(8.01);
      expect(Math.abs(across[0]! - 32)).toBeLessThan(10);
    }
  });

  it('wideScenes keeps the vocabulary and draws MovingShapes scenes (the VAE trains on them)', () => {
    const wide = wideScenes(EMBEDDED_WORLD);
    expect(wide.background).toBeUndefined();
    expect(wide.pathSpread).toBeUndefined();
    expect(worldPrompts(wide, 'train')).toEqual(worldPrompts(EMBEDDED_WORLD, 'train'));
    const specs = sampleWorldClips(wide, { side: 'train', count: 48, seed: 'w' });
    const backgrounds = new Set(specs.map((s) => JSON.stringify(s.drawn.background)));
    expect(backgrounds.size).toBeGreaterThan(10);
    // Same seeds, same prompts and motion draws: only the scene differs.
    const narrow = sampleWorldClips(EMBEDDED_WORLD, { side: 'train', count: 48, seed: 'w' });
    expect(narrow.map((s) => s.prompt)).toEqual(specs.map((s) => s.prompt));
  });
});
