#!/usr/bin/env python3
"""Golden safetensors files for @prfl/tensor, made with PyTorch (run once, committed), and a checker for
files written by the TypeScript code.

    /usr/bin/python3 packages/tensor/scripts/make-safetensors-fixtures.py
        writes packages/tensor/fixtures/safetensors/{f32,bf16,mixed,extra}.safetensors and expected.json

    /usr/bin/python3 packages/tensor/scripts/make-safetensors-fixtures.py --verify packages/tensor/test-results/safetensors-ts
        checks the files the TypeScript test suite wrote there (test/safetensors-write.test.ts) with torch

Needs PyTorch (Debian python3-torch 1.13) and numpy; CI does not: the fixtures are committed.

The python `safetensors` package is not available here, so this file carries a small writer and a strict
reader that follow the official (Rust) implementation's layout: an 8-byte little-endian header length N;
N bytes of compact JSON (`__metadata__` first, then one {"dtype","shape","data_offsets"} object per
tensor) padded with spaces to a multiple of 8; then the data section, tensors sorted by dtype in the
order of the Rust `Dtype` enum (widest first) and then by name, offsets relative to the data section.
Metadata keys are written sorted (Rust writes a HashMap, in no fixed order).

Float conversions are torch's own (`tensor.to(torch.float16 / torch.bfloat16)`, round to nearest even);
float16/bfloat16 -> float32 upcasts are exact, so every expected value is exact. Values are stored in
expected.json as float32 bit patterns (unsigned 32-bit integers) so NaN, -0 and infinities survive JSON;
64-bit integers are stored as decimal strings.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# The Rust crate's Dtype enum order (increasing alignment); serialize() sorts by it, descending.
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "F64", "I64", "U64"]
RANK = {d: i for i, d in enumerate(DTYPE_ORDER)}
SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
TORCH = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "F16": torch.float16,
         "BF16": torch.bfloat16, "I32": torch.int32, "F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
NUMPY = {"U16": "<u2", "U32": "<u4", "U64": "<u8"}  # dtypes torch 1.13 lacks

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "safetensors")


# ----------------------------------------------------------------------------- writer / reader

def serialize(tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes)} -> bytes of a safetensors file (official layout)."""
    items = sorted(tensors.items(), key=lambda kv: (-RANK[kv[1][0]], kv[0]))
    header = {}
    if metadata is not None:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    offset = 0
    for name, (dtype, shape, data) in items:
        assert len(data) == math.prod(shape) * SIZE[dtype], name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(data for _, (_, _, data) in items)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in header")
    return dict(pairs)


def parse(buf):
    """Strict reader: returns (metadata or None, {name: (dtype, shape, bytes)}, names in file order)."""
    if len(buf) < 8:
        raise ValueError("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > 100_000_000 or 8 + n > len(buf):
        raise ValueError(f"bad header length {n}")
    header = json.loads(buf[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("metadata values must be strings")
    data = buf[8 + n:]
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    cursor = 0
    out = {}
    for name, info in entries:
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SIZE:
            raise ValueError(f"{name}: unknown dtype {dtype}")
        if begin != cursor or end < begin or end - begin != math.prod(shape) * SIZE[dtype]:
            raise ValueError(f"{name}: bad data_offsets {info['data_offsets']}")
        cursor = end
        out[name] = (dtype, shape, data[begin:end])
    if cursor != len(data):
        raise ValueError("tensors do not cover the data section")
    return metadata, out, [name for name, _ in entries]


def to_torch(dtype, shape, data):
    """Stored bytes -> a torch tensor (numpy for the unsigned dtypes torch 1.13 lacks)."""
    if dtype in NUMPY:
        return np.frombuffer(data, dtype=NUMPY[dtype]).reshape(shape)
    if len(data) == 0:
        return torch.empty(shape, dtype=TORCH[dtype])
    return torch.frombuffer(bytearray(data), dtype=TORCH[dtype]).reshape(shape)


def stored(t):
    """A torch tensor -> (dtype name, shape, little-endian bytes)."""
    t = t.contiguous()
    dtype = {v: k for k, v in TORCH.items()}[t.dtype]
    if t.dtype == torch.bfloat16:
        data = t.view(torch.int16).numpy().tobytes()
    else:
        data = t.numpy().tobytes()
    return dtype, list(t.shape), data


def bits(t):
    """float32 bit patterns (as unsigned ints) of a tensor upcast to float32."""
    return [v & 0xFFFFFFFF for v in t.to(torch.float32).contiguous().view(torch.int32).flatten().tolist()]


def f32_from_bits(values):
    return torch.tensor(np.array(values, dtype=np.uint32).view(np.int32)).view(torch.float32)


# ----------------------------------------------------------------------------- fixtures

def float_entry(source_f32, dtype, shape):
    """A float tensor stored as `dtype` from float32 source values: what to write and what reads back."""
    t = source_f32.reshape(shape).to(TORCH[dtype])
    st = stored(t)
    return st, {"dtype": dtype, "shape": list(shape), "write": "tf", "source_bits": bits(source_f32),
                "values_bits": bits(t), "raw_hex": st[2].hex()}


def raw_entry(t, values_key, values):
    st = stored(t)
    return st, {"dtype": st[0], "shape": st[1], "write": "raw", values_key: values, "raw_hex": st[2].hex()}


def int_entry(t, write="tf"):
    st = stored(t)
    vals = t.flatten().tolist()
    if t.dtype == torch.int64:
        vals = [str(v) for v in vals]
    if t.dtype == torch.bool:
        vals = [1 if v else 0 for v in vals]
    return st, {"dtype": st[0], "shape": st[1], "write": write, "values": vals, "raw_hex": st[2].hex()}


def make_fixtures():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    expected = {"files": {}, "layout": {}}

    def emit(file, entries, metadata):
        tensors = {name: st for name, (st, _) in entries.items()}
        data = serialize(tensors, metadata)
        with open(os.path.join(OUT, file), "wb") as f:
            f.write(data)
        _, parsed, order = parse(data)  # the writer's output passes the strict reader
        assert set(parsed) == set(tensors)
        expected["files"][file] = {"metadata": metadata, "order": order, "size": len(data),
                                   "tensors": {name: info for name, (_, info) in entries.items()}}

    # f32.safetensors: plain float32, no metadata, plus PyTorch-layout weights with integer values so
    # that torch's layer outputs (recorded below) are exact in float32.
    special = f32_from_bits([0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000,
                             0x7FC00000, 0x00000001, 0x7F7FFFFF, 0x00800000, 0x3EAAAAAB])
    ints = lambda *shape: torch.randint(-3, 4, shape).to(torch.float32)  # noqa: E731
    layers = {
        "linear.weight": ints(3, 5), "linear.bias": ints(3),
        "conv1d.weight": ints(4, 3, 3),
        "conv2d.weight": ints(4, 3, 2, 2),
        "conv3d.weight": ints(4, 3, 2, 3, 2),
    }
    f32 = {
        "weight": float_entry(torch.randn(4, 3), "F32", [4, 3]),
        "bias": float_entry(torch.randn(3), "F32", [3]),
        "special": float_entry(special, "F32", [11]),
        "scalar": float_entry(torch.tensor([42.5]), "F32", []),
        "empty": float_entry(torch.zeros(0), "F32", [0, 3]),
    }
    for name, w in layers.items():
        f32[name] = float_entry(w.flatten(), "F32", list(w.shape))
    emit("f32.safetensors", f32, None)

    # Layer checks: torch computes each layer on an integer-valued input; a tfjs op with the converted
    # weight must give the same numbers. Inputs in torch layout (channels first), outputs too.
    x_lin = ints(2, 5)
    x_c1 = ints(1, 3, 6)
    x_c2 = ints(1, 3, 4, 5)
    x_c3 = ints(1, 3, 3, 4, 4)
    tn = torch.nn.functional
    cases = {
        "linear": ("linear.weight", x_lin, tn.linear(x_lin, layers["linear.weight"], layers["linear.bias"]),
                   layers["linear.weight"].t()),
        "conv1d": ("conv1d.weight", x_c1, tn.conv1d(x_c1, layers["conv1d.weight"]),
                   layers["conv1d.weight"].permute(2, 1, 0)),
        "conv2d": ("conv2d.weight", x_c2, tn.conv2d(x_c2, layers["conv2d.weight"]),
                   layers["conv2d.weight"].permute(2, 3, 1, 0)),
        "conv3d": ("conv3d.weight", x_c3, tn.conv3d(x_c3, layers["conv3d.weight"]),
                   layers["conv3d.weight"].permute(2, 3, 4, 1, 0)),
    }
    for key, (name, x, y, converted) in cases.items():
        expected["layout"][key] = {
            "weight": name,
            "input_shape": list(x.shape), "input_bits": bits(x),
            "output_shape": list(y.shape), "output_bits": bits(y),
            "tfjs_weight_shape": list(converted.shape), "tfjs_weight_bits": bits(converted),
        }

    # bf16.safetensors: float32 sources rounded by torch to bfloat16, including exact ties (round to
    # even), overflow to infinity and subnormals. NaN is written raw: torch 1.13 stores every NaN as
    # 0xFFFF, our writer as the canonical quiet NaN 0x7FC0; both are NaN.
    ties = f32_from_bits([0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF, 0x7F7FFFFF, 0x7F7F7FFF,
                          0xFF7F8000, 0x00000001, 0x00008000, 0x00018000, 0x80000000, 0x7F800000,
                          0xFF800000, 0x00800000, 0x007FFFFF, 0xC0490FDB])
    nan_bits = torch.tensor([0x7FC0, -1, 0x7F81, -0x0040], dtype=torch.int16).view(torch.bfloat16)
    bf16 = {
        "weight": float_entry(torch.randn(8, 16) * 3, "BF16", [8, 16]),
        "ties": float_entry(ties, "BF16", [16]),
        "tiny": float_entry(torch.randn(2, 3) * 1e-39, "BF16", [2, 3]),
        "nan_bits": raw_entry(nan_bits, "values_bits", bits(nan_bits)),
    }
    emit("bf16.safetensors", bf16, {"format": "pt"})

    # mixed.safetensors: F16 (ties, subnormals, overflow, NaN), I64 (in and out of int32 range), I32,
    # U8, BOOL, F32 under names whose UTF-16 and code-point orders differ, and metadata with escapes.
    f16_src = torch.cat([
        torch.randn(20) * 100,
        f32_from_bits([0x3F801000, 0x3F803000, 0x3F801001, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001,
                       0x33000000, 0x33000001, 0x33800000, 0x33C00000, 0x34200000, 0x387FC000, 0x387FE000,
                       0x387FFFFF, 0x38800000, 0x7FC00000, 0xFFC00000, 0x7F800000, 0xFF800000, 0x80000000,
                       0x00000001, 0x3DCCCCCD, 0x42F6E979]),
    ])
    mixed = {
        "f16": float_entry(f16_src, "F16", [4, 11]),
        "i64": int_entry(torch.tensor([[0, 1, -1], [2147483647, -2147483648, 123456789]], dtype=torch.int64)),
        "i64_big": int_entry(torch.tensor([2147483648, -2147483649, 9007199254740993], dtype=torch.int64), "raw"),
        "i32": int_entry(torch.tensor([-5, 0, 7, 2147483647, -2147483648], dtype=torch.int32)),
        "u8": int_entry(torch.tensor([[0, 1], [128, 255]], dtype=torch.uint8)),
        "mask": int_entry(torch.tensor([True, False, True, True, False])),
        "z\uff21": float_entry(torch.tensor([1.5, -2.0]), "F32", [2]),
        "z\U0001F600": float_entry(torch.tensor([3.25]), "F32", [1]),
        "na\u00efve.weight": float_entry(torch.tensor([0.5]), "F32", [1]),
    }
    emit("mixed.safetensors", mixed, {
        "format": "pt",
        "note": "mixed dtypes: \u00fc \u2713 \U0001F600 \"quoted\" back\\slash\nnewline\ttab \u0001 ctrl \u007f del",
        "\u00e9t\u00e9": "summer",
    })

    # extra.safetensors (read only): F64, I16, I8, and the unsigned types torch 1.13 lacks (via numpy).
    f64 = torch.tensor([0.1, 1 / 3, 1e300, -1e-50, 2.0 ** -149 * 1.5, -123.456], dtype=torch.float64)

    def np_entry(values, dtype):
        arr = np.array(values, dtype=NUMPY[dtype])
        return (dtype, list(arr.shape), arr.tobytes()), {
            "dtype": dtype, "shape": list(arr.shape), "write": "raw", "values": [str(int(v)) for v in arr],
            "raw_hex": arr.tobytes().hex()}

    f64_st = stored(f64)
    extra = {
        "f64": (f64_st, {"dtype": "F64", "shape": [6], "write": "raw", "values_f64": [repr(v) for v in f64.tolist()],
                         "values_bits": bits(f64), "raw_hex": f64_st[2].hex()}),
        "i16": int_entry(torch.tensor([-32768, 32767, -1, 0], dtype=torch.int16), "raw"),
        "i8": int_entry(torch.tensor([-128, 127, -1, 0], dtype=torch.int8), "raw"),
        "u16": np_entry([0, 65535, 1234], "U16"),
        "u32": np_entry([0, 2147483647, 7], "U32"),
        "u32_big": np_entry([4294967295], "U32"),
        "u64": np_entry([0, 2147483647], "U64"),
    }
    emit("extra.safetensors", extra, None)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(expected['files'])} fixtures and expected.json to {os.path.normpath(OUT)}")


# ----------------------------------------------------------------------------- verify

def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def same_float_bits(got, want, what):
    """Bitwise equality, except that any NaN matches any NaN (torch and the TS writer pick different NaNs)."""
    g = np.array(got, dtype=np.uint32)
    w = np.array(want, dtype=np.uint32)
    gn = np.isnan(g.view(np.float32))
    wn = np.isnan(w.view(np.float32))
    check(np.array_equal(gn, wn), f"{what}: NaN positions differ")
    bad = np.nonzero((g != w) & ~gn)[0]
    check(len(bad) == 0, f"{what}: {len(bad)} values differ, first at {bad[:5].tolist()}: "
                         f"got {[hex(int(g[i])) for i in bad[:5]]}, want {[hex(int(w[i])) for i in bad[:5]]}")


def verify_file(path, spec):
    with open(path, "rb") as f:
        data = f.read()
    metadata, tensors, _ = parse(data)
    check(metadata == spec.get("metadata"), f"{path}: metadata {metadata} != {spec.get('metadata')}")
    # Layout: re-serializing what we read with the python writer gives the same bytes.
    check(serialize(tensors, metadata) == data, f"{path}: not byte-identical to the reference layout")
    check(set(tensors) == set(spec["tensors"]), f"{path}: tensor names differ")
    for name, want in spec["tensors"].items():
        dtype, shape, raw = tensors[name]
        check(dtype == want["dtype"] and shape == want["shape"],
              f"{path}:{name}: got {dtype} {shape}, want {want['dtype']} {want['shape']}")
        t = to_torch(dtype, shape, raw)
        if "source_bits" in want:  # float: torch converts the float32 source itself
            ref = f32_from_bits(want["source_bits"]).reshape(shape).to(TORCH[dtype])
            same_float_bits(bits(t), bits(ref), f"{path}:{name} ({dtype})")
            if dtype in ("F16", "BF16"):
                check(raw == stored(ref)[2] or dtype == "BF16",
                      f"{path}:{name}: stored {dtype} bytes differ from torch's")
        else:
            got = [int(v) for v in (t.flatten().tolist() if isinstance(t, torch.Tensor) else t.flatten())]
            check(got == [int(v) for v in want["values"]], f"{path}:{name}: values differ")
    return len(spec["tensors"])


def verify(folder):
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    count = 0
    for file, spec in manifest["files"].items():
        count += verify_file(os.path.join(folder, file), spec)
        print(f"ok  {file}: {len(spec['tensors'])} tensors")
    sharded = manifest.get("sharded")
    if sharded:
        base = os.path.join(folder, sharded["dir"])
        with open(os.path.join(base, sharded["index"])) as f:
            index = json.load(f)
        total = 0
        by_shard = {}
        for name, shard in index["weight_map"].items():
            by_shard.setdefault(shard, []).append(name)
        for shard, names in by_shard.items():
            with open(os.path.join(base, shard), "rb") as f:
                data = f.read()
            metadata, tensors, _ = parse(data)
            check(serialize(tensors, metadata) == data, f"{shard}: not byte-identical to the reference layout")
            for name in names:
                check(name in tensors, f"{shard}: weight_map names {name}, which is missing")
                dtype, shape, raw = tensors[name]
                total += len(raw)
                want = sharded["tensors"][name]
                same_float_bits(bits(to_torch(dtype, shape, raw)),
                                bits(f32_from_bits(want["source_bits"]).reshape(shape).to(TORCH[dtype])),
                                f"{shard}:{name}")
        check(total == index["metadata"]["total_size"], f"total_size {index['metadata']['total_size']} != {total}")
        check(set(index["weight_map"]) == set(sharded["tensors"]), "sharded: tensor names differ")
        print(f"ok  {sharded['dir']}: {len(by_shard)} shards, {len(index['weight_map'])} tensors, "
              f"total_size {total}")
    print(f"verified {count} tensors in {len(manifest['files'])} files written by TypeScript")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", metavar="DIR", help="check files written by the TypeScript tests")
    args = parser.parse_args()
    try:
        verify(args.verify) if args.verify else make_fixtures()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
