import { describe, expect, it } from 'vitest';
import { eta, formatDuration, progressLine } from '../src/recipe/index.js';

describe('progress lines', () => {
  it('formats durations and estimates the time left from the pace so far', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(61_400)).toBe('1:01');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
    expect(formatDuration(Number.NaN)).toBe('?');
    expect(eta(25, 100, 10_000)).toBe(30_000);
    expect(Number.isNaN(eta(0, 100, 10))).toBe(true);
    expect(eta(60, 100, 10_000, 50)).toBe(40_000);
    expect(progressLine('generator', 25, 100, 10_000, { loss: 0.41234, skipped: undefined, step: 3 })).toBe(
      'generator          25/100   25%  elapsed 0:10  eta 0:30  loss 0.4123  step 3',
    );
  });
});
