#!/usr/bin/env python3
"""Golden vectors for @prfl/reward's PAVRM head, from an independent PyTorch transcription.

Run once with Debian's python3-torch (1.13) and commit the output; CI does not need Python:

    /usr/bin/python3 packages/reward/scripts/make-fixtures.py

Writes
  fixtures/head/head.json                       inputs, weights, outputs and gradients (float32 values)
  fixtures/head/query_attention.safetensors     the QueryAttention state dict as PyTorch holds it
  fixtures/head/mlp.safetensors                 the MLP state dict as PyTorch holds it

The modules transcribe the reference's (HY-Video-PRFL, diffusers_lite/utils/network.py) parameter names:
QueryAttention holds `queries` [num_queries, D] and `multihead_attn` = nn.MultiheadAttention(D, heads,
batch_first=True) (packed in_proj_weight [3D, D], in_proj_bias, out_proj.weight, out_proj.bias); MLP holds
fc1, fc2, fc3. The reference adds the query after squeezing the attention output to [B, D] while the
expanded query is still [B, 1, D] (a [B, B, D] broadcast, right only for batch 1); `z_query` below adds
the query per batch element, as the paper means, and `reference_batch1` checks that both agree at batch 1.
Computation runs in float64 on float32-rounded weights and inputs.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "head")

D, HEADS, HIDDEN, B, N = 16, 4, [12, 8], 3, 10


class QueryAttention(nn.Module):
    def __init__(self, feature_dim, num_heads):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(embed_dim=feature_dim, num_heads=num_heads, dropout=0.0, batch_first=True)
        self.queries = nn.Parameter(torch.randn(1, feature_dim))
        nn.init.xavier_uniform_(self.queries)

    def attend(self, x):
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        attended, _ = self.multihead_attn(query=q, key=x, value=x, need_weights=False)
        return attended.squeeze(1)

    def reference_forward(self, x):
        """The reference's forward with return_type='query', verbatim in effect (valid for batch 1)."""
        queries = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        attended, _ = self.multihead_attn(query=queries, key=x, value=x, need_weights=False)
        output = attended.squeeze(1)
        return output + queries


class MLP(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.layers = []
        for i in range(len(widths) - 1):
            layer = nn.Linear(widths[i], widths[i + 1])
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
            setattr(self, f"fc{i + 1}", layer)
            self.layers.append(layer)

    def forward(self, z):
        for i, layer in enumerate(self.layers):
            z = layer(z)
            if i < len(self.layers) - 1:
                z = torch.relu(z)
        return z.squeeze(-1)


def f32(t):
    return t.detach().to(torch.float32).numpy()


def flat(t):
    return [float(v) for v in f32(t).reshape(-1)]


def write_safetensors(path, tensors):
    """A minimal safetensors writer (F32, sorted names, 8-byte aligned header), as the official one lays out."""
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        data = np.ascontiguousarray(f32(tensors[name])).astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(0)
    qa = QueryAttention(D, HEADS)
    mlp = MLP([D, *HIDDEN, 1])
    # Non-zero biases so the fixture exercises them (the inits leave them at zero).
    with torch.no_grad():
        qa.multihead_attn.in_proj_bias.normal_(0, 0.1)
        qa.multihead_attn.out_proj.bias.normal_(0, 0.1)
        for layer in mlp.layers:
            layer.bias.normal_(0, 0.1)
    # Round every parameter to float32 once, then compute in float64.
    for p in list(qa.parameters()) + list(mlp.parameters()):
        p.data = p.data.to(torch.float32)
    qa_sd = {k: v.clone() for k, v in qa.state_dict().items()}
    mlp_sd = {k: v.clone() for k, v in mlp.state_dict().items()}
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "query_attention.safetensors"), qa_sd)
    write_safetensors(os.path.join(OUT, "mlp.safetensors"), mlp_sd)

    qa64 = qa.double()
    mlp64 = mlp.double()
    tokens = torch.randn(B, N, D).to(torch.float32).double().requires_grad_(True)
    coef = torch.randn(B).to(torch.float32).double()

    outputs = {}
    grads = {}
    for aggregation in ["query-attention", "attention", "mean", "max"]:
        qa64.zero_grad()
        mlp64.zero_grad()
        tokens.grad = None
        if aggregation == "query-attention":
            z = qa64.attend(tokens) + qa64.queries
        elif aggregation == "attention":
            z = qa64.attend(tokens)
        elif aggregation == "mean":
            z = tokens.mean(dim=1)
        else:
            z = tokens.max(dim=1).values
        logits = mlp64(z)
        (logits * coef).sum().backward()
        outputs[aggregation] = {"z": flat(z), "logits": flat(logits)}
        g = {"tokens": flat(tokens.grad)}
        for k, p in qa64.named_parameters():
            if p.grad is not None:
                g["query_attention." + k] = flat(p.grad)
        for k, p in mlp64.named_parameters():
            g["mlp." + k] = flat(p.grad)
        grads[aggregation] = g

    with torch.no_grad():
        one = tokens[:1]
        ref = qa64.reference_forward(one)  # [1, 1, D]
        ours = qa64.attend(one) + qa64.queries
        assert torch.allclose(ref.reshape(-1), ours.reshape(-1))

    fixture = {
        "torch": torch.__version__,
        "config": {"featureDim": D, "numHeads": HEADS, "hidden": HIDDEN, "batch": B, "tokens": N},
        "query_attention": {k: {"shape": list(v.shape), "values": flat(v)} for k, v in qa_sd.items()},
        "mlp": {k: {"shape": list(v.shape), "values": flat(v)} for k, v in mlp_sd.items()},
        "tokens": flat(tokens),
        "coef": flat(coef),
        "outputs": outputs,
        "grads": grads,
        "reference_batch1": {"z": flat(ref.reshape(-1))},
    }
    with open(os.path.join(OUT, "head.json"), "w") as f:
        json.dump(fixture, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
