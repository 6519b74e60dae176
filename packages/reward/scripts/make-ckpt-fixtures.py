#!/usr/bin/env python3
"""The head fixtures as the reference's own checkpoint files (run once, committed; CI needs no Python).

    /usr/bin/python3 packages/reward/scripts/make-ckpt-fixtures.py

Reads fixtures/head/query_attention.safetensors and fixtures/head/mlp.safetensors (written by
make-fixtures.py: the weights whose outputs head.json records), loads them into modules with the
reference's parameter names (HY-Video-PRFL's QueryAttention and MLP: `queries`, `multihead_attn` with
batch_first=True; `fc1`, `fc2`, `fc3`) and saves them exactly as the reference's training script does,
`torch.save(module.state_dict(), path)`:

  fixtures/head/query_attention_step_100.ckpt
  fixtures/head/mlp_step_100.ckpt
  fixtures/head/mlp_wrapped.ckpt    {"state_dict": mlp.state_dict(), "step": 100}, a wrapper the
                                    reference's PRFL script also accepts
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "head")


def read_safetensors(path):
    """The F32 tensors of a safetensors file (what make-fixtures.py writes)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(buf[8 + n + begin:8 + n + end], dtype="<f4").copy()).reshape(
            info["shape"])
    return out


class QueryAttention(nn.Module):
    def __init__(self, feature_dim, num_heads):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(embed_dim=feature_dim, num_heads=num_heads, dropout=0.0,
                                                    batch_first=True)
        self.queries = nn.Parameter(torch.randn(1, feature_dim))


class MLP(nn.Module):
    def __init__(self, input_dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], 1)


def main():
    with open(os.path.join(OUT, "head.json")) as f:
        config = json.load(f)["config"]
    qa_sd = read_safetensors(os.path.join(OUT, "query_attention.safetensors"))
    mlp_sd = read_safetensors(os.path.join(OUT, "mlp.safetensors"))
    qa = QueryAttention(config["featureDim"], config["numHeads"])
    qa.load_state_dict(qa_sd)  # strict: the names and shapes are the reference's
    mlp = MLP(config["featureDim"], config["hidden"])
    mlp.load_state_dict(mlp_sd)
    torch.save(qa.state_dict(), os.path.join(OUT, "query_attention_step_100.ckpt"))
    torch.save(mlp.state_dict(), os.path.join(OUT, "mlp_step_100.ckpt"))
    torch.save({"state_dict": mlp.state_dict(), "step": 100}, os.path.join(OUT, "mlp_wrapped.ckpt"))
    # torch reads back the same values.
    back = torch.load(os.path.join(OUT, "mlp_step_100.ckpt"))
    assert all(torch.equal(back[k], mlp_sd[k]) for k in mlp_sd)
    for f in ["query_attention_step_100.ckpt", "mlp_step_100.ckpt", "mlp_wrapped.ckpt"]:
        print(f, os.path.getsize(os.path.join(OUT, f)), "bytes")


if __name__ == "__main__":
    main()
