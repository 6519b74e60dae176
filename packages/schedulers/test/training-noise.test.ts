/**
 * Training noise levels: the reference's uniform index on the shifted 1000-step grid, uniform and
 * logit-normal sigmas; all reproducible from a seeded Generator.
 */
import { Generator, InvalidArgumentError } from '@prfl/tensor';
import { describe, expect, it } from 'vitest';
import {
  flowMatchTrainingGrid,
  sampleGridNoiseLevels,
  sampleLogitNormalNoiseLevels,
  sampleUniformNoiseLevels,
} from '../src/index.js';

describe('training noise levels', () => {
  it('grid draws: idx = floor(1000 u) on the shifted grid, so with shift 5 half of the sigmas exceed 0.833', () => {
    const g = new Generator(42);
    const draws = sampleGridNoiseLevels(g, 20_000, { shift: 5 });
    const grid = flowMatchTrainingGrid({ shift: 5 });
    // The same stream of uniforms gives the same indices.
    const u = new Generator(42);
    for (const d of draws.slice(0, 100)) {
      expect(d.index).toBe(Math.floor(1000 * u.nextDouble()));
      expect(d.sigma).toBe(grid.sigmas[d.index]);
      expect(d.timestep).toBe(grid.timesteps[d.index]);
    }
    const above = draws.filter((d) => d.sigma > 0.833).length / draws.length;
    expect(above).toBeGreaterThan(0.48);
    expect(above).toBeLessThan(0.52);
    expect(Math.max(...draws.map((d) => d.index))).toBeLessThanOrEqual(999);
    expect(Math.min(...draws.map((d) => d.sigma))).toBeGreaterThan(0);
  });

  it('the grid: sigma 1 and timestep 1000 at index 0, integer timesteps, cached and frozen', () => {
    const grid = flowMatchTrainingGrid();
    expect(grid.shift).toBe(5);
    expect(grid.sigmas).toHaveLength(1001);
    expect(grid.timesteps).toHaveLength(1000);
    expect(grid.sigmas[0]).toBe(1);
    expect(grid.timesteps[0]).toBe(1000);
    expect(grid.sigmas[1000]).toBe(0);
    expect(grid.timesteps.every((t) => Number.isInteger(t))).toBe(true);
    expect(flowMatchTrainingGrid({ shift: 5 })).toBe(grid);
    expect(Object.isFrozen(grid.sigmas)).toBe(true);
    // shift 1 is the plain linear grid.
    expect(flowMatchTrainingGrid({ shift: 1 }).sigmas[250]).toBe(Math.fround(0.75));
  });

  it('uniform sigmas are shift(u) and reproducible', () => {
    const a = sampleUniformNoiseLevels(new Generator('seed'), 1000);
    const b = sampleUniformNoiseLevels(new Generator('seed'), 1000);
    expect(a).toEqual(b);
    expect(a.every((l) => l.sigma >= 0 && l.sigma < 1 && l.timestep === l.sigma * 1000)).toBe(true);
    const mean = a.reduce((s, l) => s + l.sigma, 0) / a.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    const g = new Generator(3);
    const u = new Generator(3).nextDouble();
    expect(sampleUniformNoiseLevels(g, 1, { shift: 5 })[0]!.sigma).toBeCloseTo((5 * u) / (1 + 4 * u), 12);
  });

  it('logit-normal sigmas: sigmoid(mean + std n), median near sigmoid(mean)', () => {
    const levels = sampleLogitNormalNoiseLevels(new Generator(7), 4001, { mean: 0, std: 1 });
    const sorted = levels.map((l) => l.sigma as number).sort((x, y) => x - y);
    expect(sorted[2000]).toBeGreaterThan(0.47);
    expect(sorted[2000]).toBeLessThan(0.53);
    const shifted = sampleLogitNormalNoiseLevels(new Generator(7), 4001, { mean: 1 })
      .map((l) => l.sigma as number)
      .sort((x, y) => x - y);
    expect(shifted[2000]).toBeGreaterThan(0.7);
    const first = new Generator(9).normalArray(1)[0]!;
    const one = sampleLogitNormalNoiseLevels(new Generator(9), 1, { mean: 0.5, std: 2 })[0]!;
    expect(one.sigma).toBeCloseTo(1 / (1 + Math.exp(-(0.5 + 2 * first))), 12);
  });

  it('refuses bad arguments, naming them', () => {
    const g = new Generator(1);
    expect(() => sampleGridNoiseLevels(g, 0)).toThrow(
      /count: expected a positive integer \(the batch size\), got 0/,
    );
    expect(() => sampleGridNoiseLevels({} as Generator, 2)).toThrow(/generator: expected a Generator/);
    expect(() => sampleGridNoiseLevels(g, 2, { shift: 0 })).toThrow(
      /shift: expected a finite number > 0, got 0/,
    );
    expect(() => sampleUniformNoiseLevels(g, 2.5)).toThrow(InvalidArgumentError);
    expect(() => sampleLogitNormalNoiseLevels(g, 2, { std: 0 })).toThrow(
      /std: expected a finite number > 0, got 0/,
    );
    expect(() => flowMatchTrainingGrid({ numTrainTimesteps: 0 })).toThrow(
      /numTrainTimesteps: expected a positive integer/,
    );
  });
});
