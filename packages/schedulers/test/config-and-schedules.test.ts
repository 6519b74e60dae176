/**
 * diffusers-compatible configs of every scheduler (what is accepted, what is refused and how), schedules of
 * the Euler grids and the DDPM family, and the noise rules of DDIM/DDPM steps.
 */
import {
  backendsUnderTest,
  InvalidArgumentError,
  initBackend,
  shutdownBackend,
  stepIndex,
} from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DDIMScheduler,
  DDPMScheduler,
  FlowMatchEulerScheduler,
  FlowUniPCScheduler,
  flowMatchTrainingGrid,
  SCHEDULER_CLASS_NAMES,
  schedulerFromConfig,
} from '../src/index.js';

describe('schedulerFromConfig', () => {
  it('dispatches on _class_name', () => {
    expect(schedulerFromConfig({ _class_name: 'FlowUniPCMultistepScheduler' })).toBeInstanceOf(
      FlowUniPCScheduler,
    );
    expect(schedulerFromConfig({ _class_name: 'DDIMScheduler' })).toBeInstanceOf(DDIMScheduler);
    expect(schedulerFromConfig({ _class_name: 'DDPMScheduler' })).toBeInstanceOf(DDPMScheduler);
    const reference = schedulerFromConfig({ _class_name: 'FlowMatchDiscreteScheduler', shift: 5 });
    expect(reference).toBeInstanceOf(FlowMatchEulerScheduler);
    expect((reference as FlowMatchEulerScheduler).grid).toBe('reference');
    const diffusers = schedulerFromConfig({ _class_name: 'FlowMatchEulerDiscreteScheduler', shift: 3 });
    expect((diffusers as FlowMatchEulerScheduler).grid).toBe('diffusers');
  });

  it('refuses a missing or unknown class and non-objects, listing the classes it reads', () => {
    const list = SCHEDULER_CLASS_NAMES.join(', ');
    expect(() => schedulerFromConfig({ shift: 5 })).toThrow(
      `_class_name: expected one of ${list}, got undefined`,
    );
    expect(() => schedulerFromConfig({ _class_name: 'PNDMScheduler' })).toThrow(/got "PNDMScheduler"/);
    expect(() => schedulerFromConfig([1, 2])).toThrow(/expected a JSON object, got \[1,2\]/);
    expect(() => schedulerFromConfig(null)).toThrow(InvalidArgumentError);
  });

  it("reads a diffusers DDIM config with metadata keys, and refuses another class's key", () => {
    const json = {
      _class_name: 'DDIMScheduler',
      _diffusers_version: '0.27.0',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      clip_sample: false,
      set_alpha_to_one: false,
      steps_offset: 1,
      trained_betas: null,
      prediction_type: 'epsilon',
      timestep_spacing: 'leading',
      rescale_betas_zero_snr: false,
      thresholding: false,
      dynamic_thresholding_ratio: 0.995,
      clip_sample_range: 1.0,
      sample_max_value: 1.0,
      num_train_timesteps: 1000,
    };
    const s = schedulerFromConfig(json) as DDIMScheduler;
    const { _diffusers_version: _, ...rest } = json;
    expect(s.toConfig()).toEqual(rest);
    expect([...s.schedule(4).timesteps]).toEqual([751, 501, 251, 1]);
    expect(() => schedulerFromConfig({ ...json, skip_prk_steps: true })).toThrow(
      /DDIMScheduler config: unknown key "skip_prk_steps"; accepted keys: num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas, clip_sample, set_alpha_to_one/,
    );
  });

  it('refuses invalid values with the expected values and what arrived', () => {
    expect(() => new DDIMScheduler({ beta_schedule: 'cosine' as never })).toThrow(
      /beta_schedule: expected one of "linear", "scaled_linear", "squaredcos_cap_v2", got "cosine"/,
    );
    expect(() => new DDIMScheduler({ prediction_type: 'flow_prediction' as never })).toThrow(
      /prediction_type: expected one of "epsilon", "v_prediction", "sample", got "flow_prediction"/,
    );
    expect(() => new DDIMScheduler({ thresholding: true as never })).toThrow(/thresholding: expected false/);
    expect(() => new DDIMScheduler({ num_train_timesteps: 0 })).toThrow(
      /num_train_timesteps: expected an integer/,
    );
    expect(() => new DDIMScheduler({ trained_betas: [0.1, 0.2] })).toThrow(
      /trained_betas: expected 1000 values \(num_train_timesteps\), got 2/,
    );
    expect(() => new DDPMScheduler({ variance_type: 'learned_range' as never })).toThrow(
      /variance_type: expected one of "fixed_small", "fixed_small_log", "fixed_large", got "learned_range"/,
    );
    expect(() => new DDPMScheduler({ clip_sample: 'yes' as never })).toThrow(
      /clip_sample: expected true or false, got "yes"/,
    );
    expect(() => new FlowMatchEulerScheduler({ shift: -1 })).toThrow(
      /shift: expected a finite number in \(0, inf\]/,
    );
    expect(
      () => new FlowMatchEulerScheduler({ use_karras_sigmas: true } as never, { grid: 'diffusers' }),
    ).toThrow(/use_karras_sigmas: expected false \(Karras sigmas are not implemented\), got true/);
    expect(() => new FlowMatchEulerScheduler({ use_karras_sigmas: false } as never)).toThrow(
      /FlowMatchDiscreteScheduler config: unknown key "use_karras_sigmas"; accepted keys: num_train_timesteps, shift, reverse, solver, n_tokens/,
    );
    expect(() => new FlowMatchEulerScheduler({}, { grid: 'other' as never })).toThrow(
      /grid: expected "reference" or "diffusers"/,
    );
  });

  it('trained_betas are used as given', () => {
    const betas = Array.from({ length: 10 }, (_, i) => 0.01 * (i + 1));
    const s = new DDPMScheduler({ num_train_timesteps: 10, trained_betas: betas });
    let p = 1;
    const expected = betas.map((b) => (p *= 1 - b));
    expect(s.alphasCumprod).toEqual(expected);
    expect(schedulerFromConfig(JSON.parse(JSON.stringify(s.toConfig())))).toBeInstanceOf(DDPMScheduler);
  });
});

describe('flow-matching Euler grids', () => {
  it('the reference grid is shift(linspace(1, 0, N + 1)) with truncated timesteps; N = 1000 is the training grid', () => {
    const s = new FlowMatchEulerScheduler({ shift: 5 });
    const schedule = s.schedule(4);
    const expected = [1, 0.75, 0.5, 0.25, 0].map((x) => Math.fround((5 * x) / (1 + 4 * x)));
    expect([...schedule.sigmas]).toEqual(expected);
    expect([...schedule.timesteps]).toEqual(expected.slice(0, 4).map((x) => Math.trunc(x * 1000)));
    const grid = flowMatchTrainingGrid({ shift: 5 });
    const full = s.schedule(1000);
    expect([...full.sigmas]).toEqual([...grid.sigmas]);
    expect([...full.timesteps]).toEqual([...grid.timesteps]);
  });

  it("the diffusers grid runs linspace from sigma_max to diffusers' twice-shifted sigma_min, timesteps not truncated", () => {
    const s = new FlowMatchEulerScheduler({ shift: 3 }, { grid: 'diffusers' });
    const schedule = s.schedule(5);
    expect(schedule.sigmas[0]).toBe(1);
    expect(schedule.sigmas[5]).toBe(0);
    const sigmaMin = (3 * 0.001) / (1 + 2 * 0.001);
    expect(schedule.sigmas[4]).toBeCloseTo((3 * sigmaMin) / (1 + 2 * sigmaMin), 6);
    expect(Number.isInteger(schedule.timesteps[1])).toBe(false);
    expect(s.toConfig()['_class_name']).toBe('FlowMatchEulerDiscreteScheduler');
  });
});

describe('DDPM-family schedules', () => {
  it('leading, trailing and linspace spacing as diffusers', () => {
    const make = (timestep_spacing: 'leading' | 'trailing' | 'linspace', steps_offset = 0) => [
      ...new DDIMScheduler({ timestep_spacing, steps_offset }).schedule(10).timesteps,
    ];
    expect(make('leading')).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(make('leading', 1)).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(make('trailing')).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(make('linspace')).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
  });

  it('a step lands on t - T // N, as diffusers, even where that is not the next timestep', () => {
    const s = new DDIMScheduler({ timestep_spacing: 'linspace' });
    const schedule = s.schedule(10);
    // sigmas[i] is the level of timesteps[i]; step 0 lands on 999 - 100 = 899, not on the next timestep 888.
    expect(schedule.timesteps[1]).toBe(888);
    expect(schedule.sigmas[1]).toBeCloseTo(Math.sqrt(1 - (s.alphasCumprod[888] as number)), 12);
    expect(schedule.alphaProdPrev[0]).toBe(s.alphasCumprod[899]);
    expect(schedule.sigmas[10]).toBe(0);
    const keep = new DDIMScheduler({ set_alpha_to_one: false }).schedule(10);
    expect(keep.sigmas[10]).toBeCloseTo(Math.sqrt(1 - (new DDIMScheduler().alphasCumprod[0] as number)), 12);
  });

  it('refuses more steps than training timesteps and offsets past the table', () => {
    expect(() => new DDPMScheduler().schedule(1001)).toThrow(
      /numSteps: expected at most num_train_timesteps = 1000 .* got 1001/,
    );
    expect(() => new DDIMScheduler({ steps_offset: 1 }).schedule(1000)).toThrow(
      /timestep 1000 of leading spacing/,
    );
    expect([...new DDPMScheduler().schedule(1000).timesteps].slice(0, 3)).toEqual([999, 998, 997]);
  });

  it('sigmaAt gives sqrt(1 - alpha_bar_t) and refuses non-timesteps', () => {
    const s = new DDPMScheduler({ beta_schedule: 'squaredcos_cap_v2' });
    expect(s.sigmaAt(0)).toBeCloseTo(Math.sqrt(1 - (s.alphasCumprod[0] as number)), 12);
    expect(() => s.sigmaAt(1000)).toThrow(/timestep: expected an integer in \[0, 999\], got 1000/);
    expect(() => s.sigmaAt(2.5)).toThrow(InvalidArgumentError);
  });

  it('rescale_betas_zero_snr makes the last alpha_bar zero', () => {
    const s = new DDIMScheduler({
      rescale_betas_zero_snr: true,
      prediction_type: 'v_prediction',
      timestep_spacing: 'trailing',
    });
    expect(s.alphasCumprod[999]).toBeCloseTo(0, 12);
    expect(s.schedule(10).sigmas[0]).toBeCloseTo(1, 12);
  });
});

describe.each(backendsUnderTest())('DDIM / DDPM noise rules on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('DDPM needs noise on every step with t > 0, not on the last (t = 0)', () => {
    const s = new DDPMScheduler();
    const schedule = s.schedule(5);
    const x = tf.ones([2, 3]);
    expect(() =>
      s.step({ schedule, state: s.initialState(schedule), index: stepIndex(0), sample: x, modelOutput: x }),
    ).toThrow(/noise: this step adds noise, expected a float32 tensor of shape \[2, 3\]/);
    const bad = tf.ones([3, 2]);
    expect(() =>
      s.step({
        schedule,
        state: s.initialState(schedule),
        index: stepIndex(0),
        sample: x,
        modelOutput: x,
        noise: bad,
      }),
    ).toThrow(/noise: expected a float32 tensor of the sample's shape \[2, 3\], got float32 \[3, 2\]/);
    const last = s.step({
      schedule,
      state: s.initialState(schedule),
      index: stepIndex(4),
      sample: x,
      modelOutput: x,
    });
    last.sample.dispose();
    x.dispose();
    bad.dispose();
  });

  it('DDIM needs noise only when eta > 0, and refuses a negative eta', () => {
    const s = new DDIMScheduler();
    const schedule = s.schedule(5);
    const x = tf.ones([4]);
    const state = s.initialState(schedule);
    const det = s.step({ schedule, state, index: stepIndex(0), sample: x, modelOutput: x });
    expect(() => s.step({ schedule, state, index: stepIndex(0), sample: x, modelOutput: x, eta: 1 })).toThrow(
      /noise/,
    );
    expect(() =>
      s.step({ schedule, state, index: stepIndex(0), sample: x, modelOutput: x, eta: -1 }),
    ).toThrow(/eta: expected a finite number >= 0, got -1/);
    det.sample.dispose();
    x.dispose();
  });

  it('clip_sample clips the x0 prediction to clip_sample_range', async () => {
    const s = new DDIMScheduler({ prediction_type: 'sample', clip_sample_range: 0.5 });
    const schedule = s.schedule(1);
    const x = tf.zeros([3]);
    const out = tf.tensor1d([-3, 0.25, 3]);
    const r = s.step({
      schedule,
      state: s.initialState(schedule),
      index: stepIndex(0),
      sample: x,
      modelOutput: out,
    });
    // One step to alpha_bar = 1: the result is the clipped x0.
    expect(Array.from(await r.sample.data())).toEqual([-0.5, 0.25, 0.5]);
    for (const t of [x, out, r.sample]) t.dispose();
  });
});
