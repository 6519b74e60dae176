#!/usr/bin/env python3
"""Golden fixtures for @prfl/schedulers, from an independent numpy transcription of the references.

Run once with `/usr/bin/python3 scripts/make-fixtures.py` (numpy only; torch is optional and, when present,
only cross-checks the float32 training grid); the JSON files it writes to fixtures/ are committed and the
TypeScript tests read them, so CI needs no python.

Each class below transcribes one reference scheduler statement by statement, in the reference's own
stateful shape (set_timesteps, then step() called in order), in float64 numpy:
  - WanFlowUniPC        Wan2.1 wan/utils/fm_solvers_unipc.py FlowUniPCMultistepScheduler
  - FlowMatchDiscrete   the PRFL reference / HunyuanVideo FlowMatchDiscreteScheduler (Euler)
  - DiffusersFlowEuler  diffusers FlowMatchEulerDiscreteScheduler
  - DiffusersDDIM       diffusers DDIMScheduler
  - DiffusersDDPM       diffusers DDPMScheduler
Sigma tables are rounded to float32 where the reference stores them in float32 tensors; sample arithmetic
and the DDPM-family alpha tables are float64 (diffusers keeps those in float32: about 1e-7 relative).

Deviations from the literal reference code, all at points where it returns NaN or is wrong, and all
mirrored by the TypeScript implementation:
  - UniPC, last step to sigma = 0 with bh1: the reference multiplies B(h) = -inf by a zero correction
    (NaN); here the zero correction is skipped, which gives x0_hat as bh2 does.
  - UniPC predict_x0=False: the reference converts v to eps as x - (1 - sigma) v; the noise of
    x = (1 - sigma) x0 + sigma eps with v = eps - x0 is x + (1 - sigma) v, used here. Its last step to
    sigma = 0 (0 * inf in the reference) takes the limit, x0_hat = (x - sigma eps) / (1 - sigma).

The sampling loops run a fixed analytic model: data x0 ~ N(mu, s^2) independently per element, for which
the exact velocity (flow) or eps / x0 / v prediction (DDPM family) is known in closed form.
"""

import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures")

SPEC_TIMESTEPS = [999, 994, 989, 983, 978, 972, 965, 959, 952, 944, 937, 929, 920, 911, 902, 892, 882, 870,
                  859, 846, 833, 818, 803, 786, 768, 749, 728, 706, 681, 654, 624, 591, 555, 514, 468, 416,
                  356, 288, 208, 113]


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


# ----------------------------------------------------------------------------------------------------------
# Wan2.1 FlowUniPCMultistepScheduler
# ----------------------------------------------------------------------------------------------------------
class WanFlowUniPC:
    def __init__(self, num_train_timesteps=1000, solver_order=2, shift=1.0, predict_x0=True, solver_type="bh2",
                 lower_order_final=True, disable_corrector=()):
        self.T = num_train_timesteps
        self.solver_order = solver_order
        self.shift = shift
        self.predict_x0 = predict_x0
        self.solver_type = solver_type
        self.lower_order_final = lower_order_final
        self.disable_corrector = list(disable_corrector)
        alphas = np.linspace(1, 1 / num_train_timesteps, num_train_timesteps)[::-1].copy()
        sigmas = (1.0 - alphas).astype(np.float32)
        s = np.float32(shift)
        sigmas = (s * sigmas / (np.float32(1) + (s - np.float32(1)) * sigmas)).astype(np.float32)
        self.sigma_min = float(sigmas[-1])
        self.sigma_max = float(sigmas[0])

    def set_timesteps(self, num_inference_steps, shift=None):
        sigmas = np.linspace(self.sigma_max, self.sigma_min, num_inference_steps + 1).copy()[:-1]
        if shift is None:
            shift = self.shift
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        sigma_last = 0
        timesteps = sigmas * self.T
        self.sigmas = np.concatenate([sigmas, [sigma_last]]).astype(np.float32).astype(np.float64)
        self.timesteps = timesteps.astype(np.int64)  # truncation toward zero, as torch's .to(int64)
        self.num_inference_steps = len(timesteps)
        self.model_outputs = [None] * self.solver_order
        self.lower_order_nums = 0
        self.last_sample = None
        self.step_index = 0
        self.this_order = None

    @staticmethod
    def _alpha_sigma(sigma):
        return 1 - sigma, sigma

    @staticmethod
    def _lambda(sigma):
        alpha, sig = 1 - sigma, sigma
        with np.errstate(divide="ignore"):
            return np.log(alpha) - np.log(sig)

    def convert_model_output(self, model_output, sample):
        sigma_t = self.sigmas[self.step_index]
        if self.predict_x0:
            return sample - sigma_t * model_output
        return sample + (1 - sigma_t) * model_output  # see the module docstring

    def _coefficients(self, rks, hh, order):
        h_phi_1 = np.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial_i = 1
        B_h = hh if self.solver_type == "bh1" else np.expm1(hh)
        R, b = [], []
        for i in range(1, order + 1):
            R.append(np.power(rks, i - 1))
            b.append(h_phi_k * factorial_i / B_h)
            factorial_i *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial_i
        return np.stack(R), np.array(b), h_phi_1, B_h

    def multistep_uni_p_bh_update(self, sample, order):
        m0 = self.model_outputs[-1]
        x = sample
        sigma_t, sigma_s0 = self.sigmas[self.step_index + 1], self.sigmas[self.step_index]
        alpha_t, sigma_t = self._alpha_sigma(sigma_t)
        alpha_s0, sigma_s0 = self._alpha_sigma(sigma_s0)
        if sigma_t == 0:
            # lambda_t = inf; the update's limit is the clean estimate (module docstring).
            return m0 if self.predict_x0 else (x - sigma_s0 * m0) / alpha_s0
        lambda_t = self._lambda(sigma_t)
        lambda_s0 = self._lambda(sigma_s0)
        h = lambda_t - lambda_s0
        rks, D1s = [], []
        for i in range(1, order):
            si = self.step_index - i
            mi = self.model_outputs[-(i + 1)]
            lambda_si = self._lambda(self.sigmas[si])
            rk = (lambda_si - lambda_s0) / h
            rks.append(rk)
            D1s.append((mi - m0) / rk)
        rks.append(1.0)
        rks = np.array(rks)
        hh = -h if self.predict_x0 else h
        R, b, h_phi_1, B_h = self._coefficients(rks, hh, order)
        if len(D1s) > 0:
            D1s = np.stack(D1s, axis=1)  # (B, K, ...)
            rhos_p = np.array([0.5]) if order == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
            pred_res = np.einsum("k,bk...->b...", rhos_p, D1s)
        else:
            pred_res = None
        if self.predict_x0:
            x_t_ = sigma_t / sigma_s0 * x - alpha_t * h_phi_1 * m0
            x_t = x_t_ if pred_res is None else x_t_ - alpha_t * B_h * pred_res
        else:
            x_t_ = alpha_t / alpha_s0 * x - sigma_t * h_phi_1 * m0
            x_t = x_t_ if pred_res is None else x_t_ - sigma_t * B_h * pred_res
        return x_t

    def multistep_uni_c_bh_update(self, this_model_output, last_sample, this_sample, order):
        m0 = self.model_outputs[-1]
        x = last_sample
        model_t = this_model_output
        sigma_t, sigma_s0 = self.sigmas[self.step_index], self.sigmas[self.step_index - 1]
        alpha_t, sigma_t = self._alpha_sigma(sigma_t)
        alpha_s0, sigma_s0 = self._alpha_sigma(sigma_s0)
        lambda_t = self._lambda(sigma_t)
        lambda_s0 = self._lambda(sigma_s0)
        h = lambda_t - lambda_s0
        rks, D1s = [], []
        for i in range(1, order):
            si = self.step_index - (i + 1)
            mi = self.model_outputs[-(i + 1)]
            lambda_si = self._lambda(self.sigmas[si])
            rk = (lambda_si - lambda_s0) / h
            rks.append(rk)
            D1s.append((mi - m0) / rk)
        rks.append(1.0)
        rks = np.array(rks)
        hh = -h if self.predict_x0 else h
        R, b, h_phi_1, B_h = self._coefficients(rks, hh, order)
        D1s = np.stack(D1s, axis=1) if len(D1s) > 0 else None
        rhos_c = np.array([0.5]) if order == 1 else np.linalg.solve(R, b)
        corr_res = np.einsum("k,bk...->b...", rhos_c[:-1], D1s) if D1s is not None else 0
        D1_t = model_t - m0
        if self.predict_x0:
            x_t_ = sigma_t / sigma_s0 * x - alpha_t * h_phi_1 * m0
            return x_t_ - alpha_t * B_h * (corr_res + rhos_c[-1] * D1_t)
        x_t_ = alpha_t / alpha_s0 * x - sigma_t * h_phi_1 * m0
        return x_t_ - sigma_t * B_h * (corr_res + rhos_c[-1] * D1_t)

    def step(self, model_output, sample):
        use_corrector = (self.step_index > 0 and self.step_index - 1 not in self.disable_corrector
                         and self.last_sample is not None)
        model_output_convert = self.convert_model_output(model_output, sample)
        if use_corrector:
            sample = self.multistep_uni_c_bh_update(model_output_convert, self.last_sample, sample,
                                                    self.this_order)
        for i in range(self.solver_order - 1):
            self.model_outputs[i] = self.model_outputs[i + 1]
        self.model_outputs[-1] = model_output_convert
        if self.lower_order_final:
            this_order = min(self.solver_order, len(self.timesteps) - self.step_index)
        else:
            this_order = self.solver_order
        self.this_order = min(this_order, self.lower_order_nums + 1)
        self.last_sample = sample
        prev_sample = self.multistep_uni_p_bh_update(sample, self.this_order)
        if self.lower_order_nums < self.solver_order:
            self.lower_order_nums += 1
        self.step_index += 1
        return prev_sample


# ----------------------------------------------------------------------------------------------------------
# Flow-matching Euler: the PRFL reference grid and diffusers' grid
# ----------------------------------------------------------------------------------------------------------
class FlowMatchDiscrete:
    def __init__(self, num_train_timesteps=1000, shift=1.0):
        self.T, self.shift = num_train_timesteps, shift

    def set_timesteps(self, n):
        sigmas = np.linspace(1, 0, n + 1)
        sigmas = self.shift * sigmas / (1 + (self.shift - 1) * sigmas)
        self.sigmas = f32(sigmas)
        self.timesteps = (self.sigmas[:-1] * self.T).astype(np.int64)
        self.step_index = 0

    def step(self, model_output, sample):
        dt = self.sigmas[self.step_index + 1] - self.sigmas[self.step_index]
        self.step_index += 1
        return sample + model_output * dt


class DiffusersFlowEuler:
    def __init__(self, num_train_timesteps=1000, shift=1.0):
        self.T, self.shift = num_train_timesteps, shift
        timesteps = np.linspace(1, num_train_timesteps, num_train_timesteps, dtype=np.float32)[::-1].copy()
        sigmas = f32(timesteps / np.float32(num_train_timesteps))
        sigmas = f32(shift * sigmas / (1 + (shift - 1) * sigmas))
        self.sigma_min = float(sigmas[-1])
        self.sigma_max = float(sigmas[0])

    def set_timesteps(self, n):
        timesteps = np.linspace(self.sigma_max * self.T, self.sigma_min * self.T, n)
        sigmas = timesteps / self.T
        sigmas = self.shift * sigmas / (1 + (self.shift - 1) * sigmas)
        sigmas = f32(sigmas)
        self.timesteps = f32(sigmas * self.T)
        self.sigmas = np.concatenate([sigmas, [0.0]])
        self.step_index = 0

    def step(self, model_output, sample):
        sigma = self.sigmas[self.step_index]
        sigma_next = self.sigmas[self.step_index + 1]
        self.step_index += 1
        return sample + (sigma_next - sigma) * model_output


# ----------------------------------------------------------------------------------------------------------
# diffusers DDIM / DDPM
# ----------------------------------------------------------------------------------------------------------
def betas_for_alpha_bar(num_diffusion_timesteps, max_beta=0.999):
    def alpha_bar_fn(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = []
    for i in range(num_diffusion_timesteps):
        t1 = i / num_diffusion_timesteps
        t2 = (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar_fn(t2) / alpha_bar_fn(t1), max_beta))
    return np.array(betas)


def rescale_zero_terminal_snr(betas):
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas)
    alphas_bar_sqrt = np.sqrt(alphas_cumprod)
    a0 = alphas_bar_sqrt[0].copy()
    aT = alphas_bar_sqrt[-1].copy()
    alphas_bar_sqrt -= aT
    alphas_bar_sqrt *= a0 / (a0 - aT)
    alphas_bar = alphas_bar_sqrt ** 2
    alphas = alphas_bar[1:] / alphas_bar[:-1]
    alphas = np.concatenate([alphas_bar[0:1], alphas])
    return 1 - alphas


class DiffusersDiscreteBase:
    def __init__(self, num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                 clip_sample=True, prediction_type="epsilon", clip_sample_range=1.0, timestep_spacing="leading",
                 steps_offset=0, rescale_betas_zero_snr=False):
        if beta_schedule == "linear":
            betas = np.linspace(beta_start, beta_end, num_train_timesteps)
        elif beta_schedule == "scaled_linear":
            betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps) ** 2
        elif beta_schedule == "squaredcos_cap_v2":
            betas = betas_for_alpha_bar(num_train_timesteps)
        else:
            raise NotImplementedError(beta_schedule)
        if rescale_betas_zero_snr:
            betas = rescale_zero_terminal_snr(betas)
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.T = num_train_timesteps
        self.clip_sample = clip_sample
        self.prediction_type = prediction_type
        self.clip_sample_range = clip_sample_range
        self.timestep_spacing = timestep_spacing
        self.steps_offset = steps_offset

    def set_timesteps(self, num_inference_steps):
        self.num_inference_steps = num_inference_steps
        T, N = self.T, num_inference_steps
        if self.timestep_spacing == "linspace":
            timesteps = np.linspace(0, T - 1, N).round()[::-1].copy().astype(np.int64)
        elif self.timestep_spacing == "leading":
            step_ratio = T // N
            timesteps = (np.arange(0, N) * step_ratio).round()[::-1].copy().astype(np.int64)
            timesteps += self.steps_offset
        elif self.timestep_spacing == "trailing":
            step_ratio = T / N
            timesteps = np.round(np.arange(T, 0, -step_ratio)).astype(np.int64)
            timesteps -= 1
        else:
            raise ValueError(self.timestep_spacing)
        self.timesteps = timesteps

    def _x0_eps(self, model_output, sample, alpha_prod_t):
        beta_prod_t = 1 - alpha_prod_t
        if self.prediction_type == "epsilon":
            x0 = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
            eps = model_output
        elif self.prediction_type == "sample":
            x0 = model_output
            eps = (sample - alpha_prod_t ** 0.5 * x0) / beta_prod_t ** 0.5
        elif self.prediction_type == "v_prediction":
            x0 = alpha_prod_t ** 0.5 * sample - beta_prod_t ** 0.5 * model_output
            eps = alpha_prod_t ** 0.5 * model_output + beta_prod_t ** 0.5 * sample
        else:
            raise ValueError(self.prediction_type)
        return x0, eps


class DiffusersDDIM(DiffusersDiscreteBase):
    def __init__(self, set_alpha_to_one=True, **kw):
        super().__init__(**kw)
        self.final_alpha_cumprod = 1.0 if set_alpha_to_one else self.alphas_cumprod[0]

    def _get_variance(self, timestep, prev_timestep):
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        return (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)

    def step(self, model_output, timestep, sample, eta=0.0, variance_noise=None):
        prev_timestep = timestep - self.T // self.num_inference_steps
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        x0, eps = self._x0_eps(model_output, sample, alpha_prod_t)
        if self.clip_sample:
            x0 = np.clip(x0, -self.clip_sample_range, self.clip_sample_range)
        variance = self._get_variance(timestep, prev_timestep)
        std_dev_t = eta * variance ** 0.5
        pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t ** 2) ** 0.5 * eps
        prev_sample = alpha_prod_t_prev ** 0.5 * x0 + pred_sample_direction
        if eta > 0:
            prev_sample = prev_sample + std_dev_t * variance_noise
        return prev_sample


class DiffusersDDPM(DiffusersDiscreteBase):
    def __init__(self, variance_type="fixed_small", **kw):
        super().__init__(**kw)
        self.variance_type = variance_type

    def previous_timestep(self, timestep):
        return timestep - self.T // self.num_inference_steps

    def _get_variance(self, t):
        prev_t = self.previous_timestep(t)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else 1.0
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
        variance = max(variance, 1e-20)
        if self.variance_type == "fixed_small":
            return variance
        if self.variance_type == "fixed_small_log":
            return math.exp(0.5 * math.log(variance))
        if self.variance_type == "fixed_large":
            return current_beta_t
        raise ValueError(self.variance_type)

    def step(self, model_output, timestep, sample, variance_noise=None):
        t = timestep
        prev_t = self.previous_timestep(t)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else 1.0
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t
        x0, _ = self._x0_eps(model_output, sample, alpha_prod_t)
        if self.clip_sample:
            x0 = np.clip(x0, -self.clip_sample_range, self.clip_sample_range)
        pred_original_sample_coeff = (alpha_prod_t_prev ** 0.5 * current_beta_t) / beta_prod_t
        current_sample_coeff = current_alpha_t ** 0.5 * beta_prod_t_prev / beta_prod_t
        pred_prev_sample = pred_original_sample_coeff * x0 + current_sample_coeff * sample
        variance = 0
        if t > 0:
            if self.variance_type == "fixed_small_log":
                variance = self._get_variance(t) * variance_noise
            else:
                variance = (self._get_variance(t) ** 0.5) * variance_noise
        return pred_prev_sample + variance


# ----------------------------------------------------------------------------------------------------------
# The analytic data distribution: x0 ~ N(mu, s^2) per element
# ----------------------------------------------------------------------------------------------------------
def flow_velocity(x, sigma, mu, s):
    """E[eps - x0 | x_sigma = x] for x_sigma = (1 - sigma) x0 + sigma eps."""
    a = 1 - sigma
    var = a * a * s * s + sigma * sigma
    return (sigma - a * s * s) / var * (x - a * mu) - mu


def vp_prediction(kind, x, alpha_bar, mu, s):
    """The exact eps, x0 or v prediction for x_t = sqrt(abar) x0 + sqrt(1 - abar) eps."""
    sa, sb = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    var = alpha_bar * s * s + 1 - alpha_bar
    eps = sb * (x - sa * mu) / var
    x0 = mu + sa * s * s * (x - sa * mu) / var
    if kind == "epsilon":
        return eps
    if kind == "sample":
        return x0
    return sa * eps - sb * x0


SHAPE = [2, 1, 2, 2, 3]  # [B, F, H, W, C], a tiny latent video


def data(seed):
    rng = np.random.RandomState(seed)
    mu = rng.uniform(-0.6, 0.6, SHAPE)
    s = rng.uniform(0.3, 0.8, SHAPE)
    x_init = rng.standard_normal(SHAPE)
    return rng, mu, s, x_init


def flat(a):
    # 13 significant digits: far below the 1e-5 the tests check, and half the file size of repr().
    return [float(f"{v:.13g}") for v in np.asarray(a, dtype=np.float64).ravel()]


# ----------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------
def unipc_case(name, seed, num_steps, sample_shift, config):
    cfg = dict(num_train_timesteps=1000, solver_order=2, shift=1.0, predict_x0=True, solver_type="bh2",
               lower_order_final=True, disable_corrector=[])
    cfg.update(config)
    sched = WanFlowUniPC(**cfg)
    sched.set_timesteps(num_steps, shift=sample_shift)
    _, mu, s, x = data(seed)  # x: pure noise, as Wan2.1 starts at sigma_0 = shift(0.999)
    x_init = x.copy()
    samples = []
    for i in range(num_steps):
        v = flow_velocity(x, sched.sigmas[i], mu, s)
        x = sched.step(v, x)
        samples.append(flat(x))
    json_cfg = {"_class_name": "FlowUniPCMultistepScheduler", **cfg}
    return dict(name=name, kind="flow", config=json_cfg, numSteps=num_steps, scheduleShift=sample_shift,
                shape=SHAPE, mu=flat(mu), s=flat(s), xInit=flat(x_init), timesteps=[int(t) for t in sched.timesteps],
                sigmas=flat(sched.sigmas), samples=samples)


def euler_case(name, seed, num_steps, shift, grid):
    sched = FlowMatchDiscrete(1000, shift) if grid == "reference" else DiffusersFlowEuler(1000, shift)
    sched.set_timesteps(num_steps)
    _, mu, s, x = data(seed)
    x_init = x.copy()
    samples = []
    for i in range(num_steps):
        v = flow_velocity(x, sched.sigmas[i], mu, s)
        x = sched.step(v, x)
        samples.append(flat(x))
    class_name = "FlowMatchDiscreteScheduler" if grid == "reference" else "FlowMatchEulerDiscreteScheduler"
    return dict(name=name, kind="flow", config={"_class_name": class_name, "num_train_timesteps": 1000, "shift": shift},
                numSteps=num_steps, scheduleShift=None, shape=SHAPE, mu=flat(mu), s=flat(s), xInit=flat(x_init),
                timesteps=[float(t) if grid == "diffusers" else int(t) for t in sched.timesteps],
                sigmas=flat(sched.sigmas), samples=samples)


def discrete_case(name, seed, cls, num_steps, config, eta=None, store_every_step=True):
    sched = cls(**config)
    sched.set_timesteps(num_steps)
    rng, mu, s, x = data(seed)
    x_init = x.copy()
    samples, noises = [], []
    kind = config.get("prediction_type", "epsilon")
    stochastic = cls is DiffusersDDPM or (eta is not None and eta > 0)
    for t in sched.timesteps:
        out = vp_prediction(kind, x, sched.alphas_cumprod[t], mu, s)
        noise = rng.standard_normal(SHAPE) if stochastic else None
        if cls is DiffusersDDIM:
            x = sched.step(out, int(t), x, eta=eta or 0.0, variance_noise=noise)
        else:
            x = sched.step(out, int(t), x, variance_noise=noise)
        if noise is not None:
            noises.append(flat(noise))
        samples.append(flat(x))
    class_name = "DDIMScheduler" if cls is DiffusersDDIM else "DDPMScheduler"
    if not store_every_step:
        samples = samples[-1:]
    return dict(name=name, kind="vp", config={"_class_name": class_name, **config}, numSteps=num_steps, eta=eta,
                shape=SHAPE, mu=flat(mu), s=flat(s), xInit=flat(x_init), timesteps=[int(t) for t in sched.timesteps],
                noises=noises, samples=samples, everyStep=store_every_step)


def main():
    os.makedirs(OUT, exist_ok=True)

    # The 40-step Wan schedule of docs/method.md §3.
    wan = WanFlowUniPC(shift=1.0)
    wan.set_timesteps(40, shift=5.0)
    assert [int(t) for t in wan.timesteps] == SPEC_TIMESTEPS, "transcription disagrees with the published timesteps"

    # The reference's 1000-step training grid (shift 5).
    grid = FlowMatchDiscrete(1000, 5.0)
    grid.set_timesteps(1000)
    try:
        import torch  # optional cross-check: the reference builds the grid in float32 torch

        g32 = torch.linspace(1, 0, 1001)
        g32 = 5.0 * g32 / (1 + 4.0 * g32)
        assert (g32[:-1] * 1000).to(torch.int64).tolist() == [int(t) for t in grid.timesteps]
    except ImportError:
        pass

    schedules = dict(
        wanUniPC40Shift5=dict(timesteps=[int(t) for t in wan.timesteps], sigmas=[float(v) for v in wan.sigmas],
                              sigmaMax=wan.sigma_max),
        trainingGridShift5=dict(timesteps=[int(t) for t in grid.timesteps], sigmas=[float(v) for v in grid.sigmas]),
    )

    loops = [
        unipc_case("unipc-wan-order2-bh2-40-shift5", 1, 40, 5.0, {}),
        unipc_case("unipc-order1-bh2-40-shift5", 2, 40, 5.0, dict(solver_order=1)),
        unipc_case("unipc-order3-bh2-40-shift5", 3, 40, 5.0, dict(solver_order=3)),
        unipc_case("unipc-order2-bh1-20-shift3", 4, 20, 3.0, dict(solver_type="bh1")),
        unipc_case("unipc-order3-bh1-10-shift1", 5, 10, 1.0, dict(solver_order=3, solver_type="bh1")),
        unipc_case("unipc-order1-bh1-10-shift5", 6, 10, 5.0, dict(solver_order=1, solver_type="bh1")),
        # Noise prediction at sigma_0 = 0.9998 multiplies float32 rounding by alpha_1 / alpha_0 (about 50) per
        # step: the T = 1000 case is checked loosely, the T = 20 ones (sigma_0 = 0.95) to 1e-5.
        unipc_case("unipc-order2-noise-prediction-20-shift5", 7, 20, 5.0, dict(predict_x0=False)),
        unipc_case("unipc-order2-noise-prediction-T20-10", 24, 10, 1.0,
                   dict(predict_x0=False, num_train_timesteps=20)),
        unipc_case("unipc-order3-bh1-noise-prediction-T20-12", 25, 12, 2.0,
                   dict(predict_x0=False, num_train_timesteps=20, solver_order=3, solver_type="bh1")),
        unipc_case("unipc-order3-disable-corrector-12-shift5", 8, 12, 5.0,
                   dict(solver_order=3, disable_corrector=[0, 1, 5])),
        unipc_case("unipc-config-shift3-15", 9, 15, None, dict(shift=3.0)),
        unipc_case("unipc-order2-1-step", 10, 1, 5.0, {}),
        unipc_case("unipc-order3-2-steps", 11, 2, 5.0, dict(solver_order=3)),
        euler_case("euler-reference-40-shift5", 12, 40, 5.0, "reference"),
        euler_case("euler-diffusers-20-shift3", 13, 20, 3.0, "diffusers"),
        euler_case("euler-reference-1-step", 14, 1, 5.0, "reference"),
        discrete_case("ddim-epsilon-linear-leading-20", 15, DiffusersDDIM, 20, dict()),
        discrete_case("ddim-v-scaled-linear-trailing-25", 16, DiffusersDDIM, 25,
                      dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                           prediction_type="v_prediction", timestep_spacing="trailing", clip_sample=False)),
        discrete_case("ddim-sample-cosine-linspace-10", 17, DiffusersDDIM, 10,
                      dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample", timestep_spacing="linspace")),
        discrete_case("ddim-epsilon-cosine-offset1-eta1-20", 18, DiffusersDDIM, 20,
                      dict(beta_schedule="squaredcos_cap_v2", steps_offset=1, set_alpha_to_one=False), eta=1.0),
        discrete_case("ddim-v-zero-snr-trailing-eta0.5-16", 19, DiffusersDDIM, 16,
                      dict(prediction_type="v_prediction", timestep_spacing="trailing", rescale_betas_zero_snr=True,
                           clip_sample=False), eta=0.5),
        discrete_case("ddpm-epsilon-linear-leading-50", 20, DiffusersDDPM, 50, dict()),
        discrete_case("ddpm-v-scaled-linear-trailing-fixed-large-20", 21, DiffusersDDPM, 20,
                      dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                           prediction_type="v_prediction", timestep_spacing="trailing", clip_sample=False,
                           variance_type="fixed_large")),
        discrete_case("ddpm-sample-cosine-linspace-small-log-10", 22, DiffusersDDPM, 10,
                      dict(beta_schedule="squaredcos_cap_v2", prediction_type="sample", timestep_spacing="linspace",
                           variance_type="fixed_small_log")),
        discrete_case("ddpm-epsilon-linear-100", 23, DiffusersDDPM, 100, dict(), store_every_step=False),
    ]
    for case in loops:
        final = np.array(case["samples"][-1])
        assert np.all(np.isfinite(final)), case["name"]

    with open(os.path.join(OUT, "schedules.json"), "w") as f:
        json.dump(dict(generatedBy="scripts/make-fixtures.py", **schedules), f)
    with open(os.path.join(OUT, "loops.json"), "w") as f:
        json.dump(dict(generatedBy="scripts/make-fixtures.py", cases=loops), f)
    print(f"wrote {len(loops)} loops and {len(schedules)} schedules to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
