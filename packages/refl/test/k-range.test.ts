/** Which step k the reward step trains: the ranges and the uniform draw. */
import { Generator } from '@prfl/tensor';
import { describe, expect, it } from 'vitest';
import { resolveStepRange, sampleStep } from '../src/index.js';

describe('step ranges', () => {
  it('for the paper 40-step schedule: full 0-38, thirds 0-12, 13-25, 26-38', () => {
    expect(resolveStepRange('full', 40)).toEqual([0, 38]);
    expect(resolveStepRange('early', 40)).toEqual([0, 12]);
    expect(resolveStepRange('middle', 40)).toEqual([13, 25]);
    expect(resolveStepRange('late', 40)).toEqual([26, 38]);
    expect(resolveStepRange([30, 30], 40)).toEqual([30, 30]);
  });

  it('the thirds of any schedule cover {0..N-2} without overlap', () => {
    for (let n = 4; n <= 60; n++) {
      const parts = (['early', 'middle', 'late'] as const).map((r) => resolveStepRange(r, n));
      expect(parts[0]?.[0]).toBe(0);
      expect(parts[2]?.[1]).toBe(n - 2);
      expect((parts[1]?.[0] as number) - (parts[0]?.[1] as number)).toBe(1);
      expect((parts[2]?.[0] as number) - (parts[1]?.[1] as number)).toBe(1);
    }
  });

  it('draws k uniformly (random.randint(0, N - 2))', () => {
    const g = new Generator(1);
    const counts = new Array(39).fill(0);
    for (let i = 0; i < 39_000; i++) counts[sampleStep(g, [0, 38])]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });

  it('refuses ranges the schedule cannot hold, naming them', () => {
    expect(() => resolveStepRange('full', 1)).toThrow(/at least 2 steps.*got numSteps 1/);
    expect(() => resolveStepRange('early', 3)).toThrow(/'early' is empty for a 3-step schedule/);
    expect(() => resolveStepRange([2, 1], 40)).toThrow(/0 <= lo <= hi <= 38.*got \[2, 1\]/);
    expect(() => resolveStepRange('last' as never, 40)).toThrow(
      /expected 'full', 'early', 'middle', 'late' or \[lo, hi\], got "last"/,
    );
  });
});
