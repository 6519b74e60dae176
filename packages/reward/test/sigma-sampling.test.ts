import { readFileSync } from 'node:fs';
import { Generator, InvalidArgumentError } from '@prfl/tensor';
import { describe, expect, it } from 'vitest';
import { sampleTrainingSigmas, shiftSigma, trainingSigmaGrid } from '../src/index.js';

describe('training sigma sampling (the reference FlowMatchDiscrete sampler)', () => {
  it('builds the shift-5 1000-step grid from 1 down to 0', () => {
    const grid = trainingSigmaGrid();
    expect(grid.length).toBe(1001);
    expect(grid[0]).toBe(1);
    expect(grid[1000]).toBe(0);
    expect(grid[500]).toBeCloseTo(shiftSigma(0.5, 5), 6);
    expect(shiftSigma(0.5, 5)).toBeCloseTo(2.5 / 3, 12);
    for (let i = 1; i <= 1000; i++) expect(grid[i]!).toBeLessThan(grid[i - 1]!);
    expect(trainingSigmaGrid(1)[250]).toBeCloseTo(0.75, 6);
  });

  it('uniform index: sigmas on the grid, half above 0.833, timestep = trunc(sigma * 1000)', () => {
    const grid = new Set(trainingSigmaGrid());
    const { sigmas, timesteps } = sampleTrainingSigmas(new Generator(1), 4000);
    expect(sigmas.every((s) => grid.has(Math.fround(s)))).toBe(true);
    timesteps.forEach((t, i) => {
      expect(t).toBe(Math.trunc(sigmas[i]! * 1000));
    });
    const above = sigmas.filter((s) => s > shiftSigma(0.5, 5) + 1e-6).length / sigmas.length;
    expect(Math.abs(above - 0.5)).toBeLessThan(0.03);
  });

  it('uniform sigma has mean 1/2; logit-normal is on the grid with median near shift(1/2); fixed is fixed', () => {
    const u = sampleTrainingSigmas(new Generator(2), 4000, { kind: 'uniform' }).sigmas;
    expect(Math.abs(u.reduce((a, s) => a + s, 0) / u.length - 0.5)).toBeLessThan(0.02);
    const ln = sampleTrainingSigmas(new Generator(3), 4001, { kind: 'logit-normal', mean: 0, std: 1 }).sigmas;
    const grid = new Set(trainingSigmaGrid());
    expect(ln.every((s) => grid.has(Math.fround(s)))).toBe(true);
    const median = [...ln].sort((a, b) => a - b)[2000]!;
    expect(Math.abs(median - shiftSigma(0.5, 5))).toBeLessThan(0.03);
    const fixed = sampleTrainingSigmas(new Generator(4), 3, { kind: 'fixed', sigma: 0.25 });
    expect(fixed.sigmas).toEqual([0.25, 0.25, 0.25]);
    expect(fixed.timesteps).toEqual([250, 250, 250]);
  });

  it('is a function of the generator state', () => {
    expect(sampleTrainingSigmas(new Generator(9), 5)).toEqual(sampleTrainingSigmas(new Generator(9), 5));
  });

  it('rejects unknown samplers and bad counts', () => {
    expect(() => sampleTrainingSigmas(new Generator(1), 2, { kind: 'cosine' } as never)).toThrow(
      InvalidArgumentError,
    );
    expect(() => sampleTrainingSigmas(new Generator(1), -1)).toThrow(/count/);
    expect(() => sampleTrainingSigmas(new Generator(1), 1, { kind: 'fixed', sigma: 2 })).toThrow(/sigma/);
  });
});

describe('the training grid against PyTorch (fixtures/training-grid.json, scripts/make-grid-fixture.py)', () => {
  const fixture = JSON.parse(
    readFileSync(new URL('../fixtures/training-grid.json', import.meta.url), 'utf8'),
  ) as { grids: Record<string, { sigmas: number[]; timesteps: number[] }> };

  // torch's float32 linspace rounds differently per platform (vectorised, FMA-contracted on x86; per
  // element on CUDA), so sigmas are compared within two float32 ulps; with the PRFL shift of 5 every
  // timestep the DiT reads is exactly the reference's.
  it.each(['1.0', '3.0', '5.0'])('shift %s: sigmas within two float32 ulps of PyTorch', (shift) => {
    const want = fixture.grids[shift]!;
    const grid = trainingSigmaGrid(Number(shift), 1000);
    for (let i = 0; i <= 1000; i++) {
      expect(Math.abs((grid[i] as number) - want.sigmas[i]!)).toBeLessThanOrEqual(
        2.4e-7 * Math.abs(want.sigmas[i]!),
      );
    }
  });

  it('shift 5: every timestep exactly as PyTorch computes it', () => {
    const want = fixture.grids['5.0']!;
    const grid = trainingSigmaGrid(5, 1000);
    for (let i = 0; i < 1000; i++)
      expect(Math.trunc(Math.fround((grid[i] as number) * 1000))).toBe(want.timesteps[i]);
  });

  it("agrees with @prfl/schedulers' grid on every timestep (the SFT term and PAVRM see the same DiT inputs)", async () => {
    const { flowMatchTrainingGrid } = await import('@prfl/schedulers');
    const theirs = flowMatchTrainingGrid({ shift: 5 });
    const ours = trainingSigmaGrid(5, 1000);
    for (let i = 0; i < 1000; i++)
      expect(Math.trunc(Math.fround((ours[i] as number) * 1000))).toBe(theirs.timesteps[i]);
  });
});
