import { describe, expect, it } from 'vitest';
import { sigma, sigmaToTimestep, stepIndex, timestep, timestepToSigma } from '../src/index.js';

describe('branded time quantities', () => {
  it('validate their ranges and name what arrived', () => {
    expect(sigma(0.5)).toBe(0.5);
    expect(() => sigma(1.2)).toThrow(/sigma: expected a number in \[0, 1\], got 1.2/);
    expect(() => sigma(Number.NaN)).toThrow(/got NaN/);
    expect(() => timestep(1001)).toThrow(/timestep: expected a number in \[0, 1000\], got 1001/);
    expect(() => stepIndex(2.5)).toThrow(/expected a non-negative integer, got 2.5/);
    expect(() => stepIndex(40, 40)).toThrow(/expected an integer in \[0, 39\], got 40/);
  });

  it('convert between sigma and timestep as the reference does', () => {
    expect(sigmaToTimestep(sigma(0.9999))).toBeCloseTo(999.9, 6);
    expect(sigmaToTimestep(sigma(0.9999), { truncate: true })).toBe(999);
    expect(timestepToSigma(timestep(250))).toBe(0.25);
  });
});
