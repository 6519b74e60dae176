#!/usr/bin/env python3
"""PyTorch checkpoints written by torch.save itself, for @prfl/tensor's torch reader (run once, committed).

    /usr/bin/python3 packages/tensor/scripts/make-torch-fixtures.py
        writes packages/tensor/fixtures/torch/*.pt, *.ckpt, expected.safetensors and expected.json

Needs PyTorch (Debian python3-torch 1.13) and numpy; CI does not: the files are committed.

Every tensor the checkpoints hold is also written, made contiguous and in its own dtype, to
expected.safetensors under `<file>/<flattened name>`, so the TypeScript test compares stored bytes exactly.
expected.json records the non-tensor values (ints, floats, strings, lists, None) and the layout facts of
each tensor (storage offset, strides, which tensors share a storage) as torch reports them.

Files
  dtypes.pt                  float32/64, float16, bfloat16 (NaN, +-inf, -0, subnormals), int64/32/16/8,
                             uint8, bool
  views.pt                   a base tensor plus a transpose (non-contiguous), a slice with a storage offset,
                             a strided slice, an expand (stride 0), a 0-dim and an empty tensor: every view
                             shares the base's storage, and torch.save keeps the views
  shared.pt                  two tensors over one storage (a view and the tensor itself, twice)
  nested.pt                  {"state_dict": OrderedDict, "epoch": int, "meta": {...}, ...} with `module.`
                             keys, as training scripts save whole checkpoints
  parameter.pt               nn.Parameter values (torch._utils._rebuild_parameter)
  protocol4.pt               a state dict pickled with protocol 4 (SHORT_BINUNICODE, MEMOIZE, FRAME,
                             STACK_GLOBAL)
  query_attention_step_10.ckpt, mlp_step_10.ckpt
                             PAVRM's heads saved as HY-Video-PRFL saves them
                             (torch.save(module.state_dict(), path)), scaled down: D = 32, 8 heads,
                             MLP 32 -> 64 -> 32 -> 1
  byteorder-little.pt, byteorder-big.pt
                             views.pt with a `byteorder` record added (PyTorch >= 2.0 writes one;
                             1.13 does not); "big" must be refused
  malicious.pt               torch.save of an object whose __reduce__ returns os.system: must be refused
  malicious-eval.pt          the same with builtins.eval
  legacy.pt                  the pre-1.6 (non-zip) format: must be refused with a clear message
"""
import collections
import importlib.util
import io
import json
import math
import os
import zipfile

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "torch")

# The safetensors writer of make-safetensors-fixtures.py (official layout).
_spec = importlib.util.spec_from_file_location("st", os.path.join(HERE, "make-safetensors-fixtures.py"))
st = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(st)

DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
               torch.uint8: "U8", torch.bool: "BOOL"}


def stored_bytes(t):
    t = t.detach().contiguous()
    if t.numel() == 0:
        return b""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def flatten(value, prefix, out):
    """Tensors of nested dicts/lists under dotted names, as the TypeScript reader names them."""
    if isinstance(value, torch.Tensor):
        out[prefix] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
    return out


def plain(value):
    """The non-tensor structure as JSON: tensors become {"tensor": name}; tuples become lists."""
    if isinstance(value, torch.Tensor):
        return {"tensor": True}
    if isinstance(value, dict):
        return {"dict": [[k, plain(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


expected_tensors = {}
expected_json = {}


def save(file, obj, **kwargs):
    path = os.path.join(OUT, file)
    torch.save(obj, path, **kwargs)
    loaded = torch.load(path)  # torch reads back what it wrote
    tensors = flatten(loaded, "", {})
    storages = {}
    layout = {}
    for name, t in tensors.items():
        expected_tensors[f"{file}/{name}"] = (DTYPE_NAMES[t.dtype], list(t.shape), stored_bytes(t))
        ptr = t.storage().data_ptr()
        storages.setdefault(ptr, len(storages))
        layout[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "stride": list(t.stride()),
                        "storage_offset": t.storage_offset(), "storage": storages[ptr],
                        "contiguous": t.is_contiguous()}
    expected_json[file] = {"names": list(tensors), "layout": layout, "root": plain(loaded)}


def add_record(src, dst, record, data):
    """Copies a torch zip and adds `<archive>/<record>` (stored), as a newer PyTorch would write it."""
    with zipfile.ZipFile(os.path.join(OUT, src)) as zin, \
            zipfile.ZipFile(os.path.join(OUT, dst), "w", compression=zipfile.ZIP_STORED) as zout:
        archive = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr(f"{archive}/{record}", data)


class Payload:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


class QueryAttention(nn.Module):
    """The reference's parameter names: `queries` and `multihead_attn` (batch_first)."""

    def __init__(self, feature_dim, num_heads):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(embed_dim=feature_dim, num_heads=num_heads, dropout=0.0,
                                                    batch_first=True)
        self.queries = nn.Parameter(torch.randn(1, feature_dim))
        nn.init.xavier_uniform_(self.queries)


class MLP(nn.Module):
    """The reference's MLP (fc1, fc2, fc3), scaled down from 1024/512."""

    def __init__(self, input_dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], 1)


def main():
    torch.manual_seed(20240611)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    special = torch.tensor(np.array([0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000,
                                     0x7FC00000, 0x00000001, 0x7F7FFFFF, 0x3EAAAAAB], dtype=np.uint32)
                           .view(np.int32)).view(torch.float32)
    save("dtypes.pt", {
        "f32": torch.randn(2, 3),
        "f32_special": special,
        "f64": torch.randn(3, dtype=torch.float64),
        "f16": torch.cat([torch.randn(6), torch.tensor([float("nan"), float("inf"), -0.0, 6e-8, 65504.0])])
        .to(torch.float16),
        "bf16": torch.cat([torch.randn(6), torch.tensor([float("-inf"), -0.0, 1e-40, 3.0e38])]).to(torch.bfloat16)
        .reshape(2, 5),
        "i64": torch.tensor([[0, -1, 2 ** 31 - 1], [-(2 ** 31), 7, 123456]], dtype=torch.int64),
        "i32": torch.tensor([1, -2, 2 ** 31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-32768, 5, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "big_i64": torch.tensor([2 ** 40], dtype=torch.int64),
    })

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    save("views.pt", collections.OrderedDict([
        ("base", base),
        ("transposed", base.t()),
        ("offset_slice", base.view(-1)[5:11]),
        ("strided", base[1:, ::2]),
        ("expanded", base[2, :1].expand(3, 4)),
        ("scalar", base[3, 4]),
        ("empty", base[:0]),
        ("bf16_t", torch.randn(3, 5).to(torch.bfloat16).t()),
    ]))

    shared = torch.randn(10)
    save("shared.pt", {"a": shared, "b": shared[2:8].view(2, 3), "a_again": shared})

    sd = collections.OrderedDict([("module.fc.weight", torch.randn(3, 4)), ("module.fc.bias", torch.randn(3))])
    save("nested.pt", {
        "state_dict": sd,
        "epoch": 3,
        "step": 2 ** 40,
        "lr": 0.5,
        "name": "run-\u00e9",
        "flags": [True, False, None],
        "pair": (1, -2),
        "optimizer": {"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 0.001, "params": [0]}]},
    })

    save("parameter.pt", {"w": nn.Parameter(torch.randn(2, 2)), "frozen": nn.Parameter(torch.randn(3),
                                                                                          requires_grad=False)})

    save("protocol4.pt", collections.OrderedDict([("weight", torch.randn(2, 3)), ("bias", torch.randn(2)),
                                                   ("half", torch.randn(4).half())]), pickle_protocol=4)

    qa = QueryAttention(32, 8)
    mlp = MLP(32, [64, 32])
    save("query_attention_step_10.ckpt", qa.state_dict())
    save("mlp_step_10.ckpt", mlp.state_dict())

    add_record("views.pt", "byteorder-little.pt", "byteorder", b"little")
    add_record("views.pt", "byteorder-big.pt", "byteorder", b"big")

    torch.save({"weight": torch.ones(2), "payload": Payload(os.system, "echo pwned")},
               os.path.join(OUT, "malicious.pt"))
    torch.save({"payload": Payload(eval, "__import__('os').system('echo pwned')")},
               os.path.join(OUT, "malicious-eval.pt"))
    torch.save({"weight": torch.ones(2)}, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)

    with open(os.path.join(OUT, "expected.safetensors"), "wb") as f:
        f.write(st.serialize(expected_tensors, {"source": "torch " + torch.__version__}))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected_json, f, indent=1, ensure_ascii=False)
        f.write("\n")

    # Self-check: the malicious files really do carry the calls (so the refusal test means something).
    for name, needle in [("malicious.pt", b"system"), ("malicious-eval.pt", b"eval")]:
        with zipfile.ZipFile(os.path.join(OUT, name)) as z:
            assert needle in z.read(z.namelist()[0]), name
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
