"""The reference's training grid ("FlowMatchDiscrete", docs/method.md §3) computed by PyTorch, as a golden
table for test/sigma-sampling.test.ts: sigmas = shift(linspace(1, 0, 1001)), timesteps =
int64(sigmas[:-1] * 1000), in float32 as the reference does. Run: /usr/bin/python3 scripts/make-grid-fixture.py
"""
import json
import pathlib

import torch

out = {}
for shift in (1.0, 3.0, 5.0):
    s = torch.linspace(1, 0, 1001)
    s = (shift * s) / (1 + (shift - 1) * s)
    t = (s[:-1] * 1000).to(torch.int64)
    out[str(shift)] = {"sigmas": [float(x) for x in s], "timesteps": [int(x) for x in t]}
path = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "training-grid.json"
path.write_text(json.dumps({"torch": torch.__version__, "grids": out}))
print("wrote", path)
