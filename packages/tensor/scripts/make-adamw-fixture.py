#!/usr/bin/env python3
"""Golden vectors for @prfl/tensor's AdamW and clipByGlobalNorm, from PyTorch (run once, committed).

    /usr/bin/python3 packages/tensor/scripts/make-adamw-fixture.py

writes packages/tensor/fixtures/adamw/adamw.json. Needs PyTorch (Debian python3-torch 1.13) and numpy;
CI does not: the JSON is committed.

Problem: three float32 parameters a [4, 3], b [3], c [2, 2, 2] in two parameter groups with different lr
and weight decay. The loss is the quadratic 0.5 * sum(k * (p - t)^2) per parameter, whose gradient
g = k * (p - t) is computed by hand (one subtraction, one multiplication, both correctly rounded in
float32), so a float32 reimplementation gets bit-identical gradients from identical parameters. Parameter
c has no gradient (grad None) on every step with step % 5 == 3, so its own step counter falls behind the
others, as in torch. Every gradient fed to torch.optim.AdamW is recorded too, so the TypeScript test can
replay exactly the gradients torch saw (isolating the optimizer) or recompute them from its own
parameters (closed loop).

Everything runs in float32 (the dtype tfjs trains in): comparing a float32 implementation with a
float64 reference would measure float32 rounding, not the optimizer. foreach=False pins the
single-tensor code path (torch 1.13's default on CPU anyway).

Numbers are written with the shortest decimal that round-trips to the same float32.
"""
import json
import math
import os

import numpy as np
import torch

torch.manual_seed(0)
rng = np.random.default_rng(20240611)

SHAPES = {"a": [4, 3], "b": [3], "c": [2, 2, 2]}
STEPS = 100
CHECKPOINTS = [1, 2, 10, 50, 100]


def f32(x):
    """Shortest decimal that parses back to the same float32."""
    return float(str(np.float32(x)))


def flat(t):
    return [f32(v) for v in t.detach().numpy().astype(np.float32).ravel().tolist()]


def away_from_zero(shape, lo, hi):
    """Values with |x| in [lo, hi] and random sign: parameters stay far from 0, so relative error is meaningful."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


init = {n: away_from_zero(s, 1.0, 2.0) for n, s in SHAPES.items()}
# Targets on the same side of 0 as the start, at least 0.6 away from 0: the trajectory never crosses 0.
target = {n: (np.sign(init[n]) * rng.uniform(0.6, 2.5, size=s)).astype(np.float32) for n, s in SHAPES.items()}
# Curvatures spread over two decades, so gradients of very different sizes meet in one step.
curv = {n: np.exp(rng.uniform(math.log(0.05), math.log(5.0), size=s)).astype(np.float32) for n, s in SHAPES.items()}


def has_grad(name, step):
    return not (name == "c" and step % 5 == 3)


def run(groups_spec, defaults):
    params = {n: torch.nn.Parameter(torch.tensor(init[n], dtype=torch.float32)) for n in SHAPES}
    groups = [dict(params=[params[n] for n in g["params"]], **{k: v for k, v in g.items() if k != "params"})
              for g in groups_spec]
    opt = torch.optim.AdamW(groups, foreach=False, **defaults)
    grads_log, checkpoints = [], {}
    for step in range(1, STEPS + 1):
        opt.zero_grad(set_to_none=True)
        entry = {}
        with torch.no_grad():
            for n, p in params.items():
                if not has_grad(n, step):
                    continue
                k = torch.tensor(curv[n])
                t = torch.tensor(target[n])
                g = k * (p.detach() - t)
                p.grad = g.clone()
                entry[n] = flat(g)
        grads_log.append(entry)
        opt.step()
        if step in CHECKPOINTS:
            checkpoints[str(step)] = {n: flat(p) for n, p in params.items()}
    state = {}
    for n, p in params.items():
        s = opt.state[p]
        state[n] = {"step": float(s["step"].item()), "exp_avg": flat(s["exp_avg"]), "exp_avg_sq": flat(s["exp_avg_sq"])}
        if "max_exp_avg_sq" in s:
            state[n]["max_exp_avg_sq"] = flat(s["max_exp_avg_sq"])
    return {
        "defaults": defaults,
        "groups": groups_spec,
        "grads": grads_log,
        "checkpoints": checkpoints,
        "state": state,
    }


runs = {
    # Two groups as in PAVRM (head vs backbone), larger lrs so 100 steps move the parameters visibly.
    "two_groups": run(
        [{"params": ["a", "b"], "lr": 1e-2, "weight_decay": 0.1},
         {"params": ["c"], "lr": 3e-3, "weight_decay": 0.0}],
        {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False},
    ),
    # amsgrad, other betas and eps; group 1 inherits the defaults' lr and weight decay.
    "amsgrad": run(
        [{"params": ["a"], "lr": 5e-3, "weight_decay": 0.05},
         {"params": ["b", "c"]}],
        {"lr": 2e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-2, "amsgrad": True},
    ),
}
for r in runs.values():
    r["defaults"]["betas"] = list(r["defaults"]["betas"])

# clip_grad_norm_ cases: gradient lists, max_norm, norm type; total norm and clipped gradients.
clip_cases = []


def clip_case(name, grads, max_norm, norm_type=2.0):
    ps = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float32))
        p.grad = torch.tensor(g, dtype=torch.float32)
        ps.append(p)
    before = [flat(p.grad) for p in ps]
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    clip_cases.append({
        "name": name,
        "max_norm": max_norm,
        "norm_type": "inf" if math.isinf(norm_type) else norm_type,
        "shapes": [list(g.shape) for g in grads],
        "grads": before,
        "total_norm": f32(total.item()),
        "clipped": [flat(p.grad) for p in ps],
    })


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


clip_case("clipped", [randn(4, 3), randn(3), randn(2, 2, 2)], 1.0)
clip_case("not_clipped", [randn(4, 3, scale=0.01), randn(3, scale=0.01)], 1.0)
clip_case("large_and_small", [randn(64, scale=300.0), randn(5, 5, scale=1e-3), randn(7)], 0.5)
clip_case("single_tensor", [randn(10, 10)], 2.5)
clip_case("with_zero_grad", [np.zeros((3, 3), dtype=np.float32), randn(6)], 0.1)
clip_case("inf_norm", [randn(4, 3), randn(3, scale=5.0)], 1.0, norm_type=math.inf)

fixture = {
    "generator": "packages/tensor/scripts/make-adamw-fixture.py",
    "torch": torch.__version__,
    "dtype": "float32",
    "note": "grads[i] are the gradients fed to torch at step i+1 (missing name = grad None); gradient = curvature * (param - target)",
    "shapes": SHAPES,
    "init": {n: flat(torch.tensor(v)) for n, v in init.items()},
    "target": {n: flat(torch.tensor(v)) for n, v in target.items()},
    "curvature": {n: flat(torch.tensor(v)) for n, v in curv.items()},
    "steps": STEPS,
    "runs": runs,
    "clip": clip_cases,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "adamw", "adamw.json")
with open(out, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes)")
