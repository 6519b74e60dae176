#!/usr/bin/python3
"""PyTorch peer of bench/refl.mjs: the same settings, float32 on the CPU, timing the parts of a training
micro-step PRFL and RGB ReFL share (the SFT term's forward and backward, one untaped rollout step of the
generator, AdamW's update) and the part where they differ, forward and backward together:

  prfl       generator forward at x_k under autograd, the step to x_{k+1}, PAVRM on x_{k+1}, backward
  rgb-first  generator forward, x0_hat = x_k - sigma_k v, decode its first latent frame, pixel reward, backward
  rgb-all    the same decoding every latent frame

A full step is then composed as sft + k x rollout + readout + update (what the JavaScript phases add up
to). The generator and the PAVRM backbone are the DiT transcription of packages/models/scripts/
make-dit-fixtures.py (WanModel; PAVRM reads a frozen copy's first two blocks, then query attention and an
MLP as in packages/reward/scripts/make-fixtures.py); the decoder is the compact whole-clip transcription
of Wan2.1's causal decoder below (the shapes and convolutions of @prfl/models' WanVAE, which runs the
same whole-clip form; random weights); the pixel reward is PixelVideoReward's architecture. The
scheduler step is a flow Euler step: its arithmetic is negligible next to the networks, as UniPC's is.

Each measurement runs in a child process (--cell) so its peak resident memory (ru_maxrss) is its own.
Writes JSON (--out); bench/refl.mjs runs this and stores the result with its own.

Run: /usr/bin/python3 bench/refl-torch.py [--settings tiny,mid] [--mid-frames 17,33] [--k 30]
     [--repeats 2] [--threads 1] [--all-frames-max 17] [--out FILE]      (from packages/refl)
Debian's python3-torch: apt-get install -y python3-torch python3-numpy.
"""
import argparse
import copy
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, '..', '..', 'models')


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- settings (as bench/lib/world.mjs)

DIT_BASE = dict(model_type='t2v', patch_size=[1, 2, 2], in_dim=16, freq_dim=256, out_dim=16, window_size=[-1, -1],
                qk_norm=True, cross_attn_norm=True, eps=1e-6)
DIT = {
    'tiny': dict(DIT_BASE, dim=64, ffn_dim=128, num_heads=4, num_layers=4, text_dim=32, text_len=16),
    'mid': dict(DIT_BASE, dim=384, ffn_dim=1024, num_heads=6, num_layers=8, text_dim=512, text_len=64),
}
VAE = {
    'tiny': dict(dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temporal_downsample=[False, True, True]),
    'wan2.1': dict(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temporal_downsample=[False, True, True]),
}
SETTINGS = {
    'tiny': dict(dit='tiny', vae='tiny', reward_blocks=2, pavrm_hidden=[64, 32]),
    'mid': dict(dit='mid', vae='wan2.1', reward_blocks=2, pavrm_hidden=[1024, 512]),
}


# ---------------------------------------------------------------- Wan2.1's causal decoder, whole clips

class CausalConv3d(nn.Conv3d):
    """Wan's CausalConv3d: time padded on the left only (2 * pt zero frames), space on both sides."""

    def __init__(self, cin, cout, kernel, padding):
        super().__init__(cin, cout, kernel)
        pt, ph, pw = padding
        self.causal_pad = (pw, pw, ph, ph, 2 * pt, 0)

    def forward(self, x):
        return super().forward(F.pad(x, self.causal_pad))


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim, 1, 1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


class Residual(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.n1, self.c1 = RMSNorm(cin), CausalConv3d(cin, cout, 3, (1, 1, 1))
        self.n2, self.c2 = RMSNorm(cout), CausalConv3d(cout, cout, 3, (1, 1, 1))
        self.shortcut = CausalConv3d(cin, cout, 1, (0, 0, 0)) if cin != cout else None

    def forward(self, x):
        h = self.shortcut(x) if self.shortcut is not None else x
        return self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x)))))) + h


class Attention(nn.Module):
    """Single-head self-attention over the H x W positions of each frame."""

    def __init__(self, dim):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, t, h, w = x.shape
        y = self.norm(x).transpose(1, 2).reshape(b * t, c, h, w)
        q, k, v = self.to_qkv(y).reshape(b * t, 3, c, h * w).permute(1, 0, 3, 2).unbind(0)
        o = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1) @ v
        o = self.proj(o.transpose(1, 2).reshape(b * t, c, h, w))
        return x + o.reshape(b, t, c, h, w).transpose(1, 2)


class Upsample(nn.Module):
    """Wan's Resample 'upsample3d' / 'upsample2d': frame 0 passes, frames 1.. double through time_conv; then 2x
    nearest and a 3x3 convolution to half the channels, per frame."""

    def __init__(self, dim, temporal):
        super().__init__()
        self.time_conv = CausalConv3d(dim, 2 * dim, (3, 1, 1), (1, 0, 0)) if temporal else None
        self.conv = nn.Conv2d(dim, dim // 2, 3, padding=1)

    def forward(self, x):
        b, c, t, h, w = x.shape
        if self.time_conv is not None and t > 1:
            rest = self.time_conv(x[:, :, 1:])
            rest = rest.reshape(b, 2, c, t - 1, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * (t - 1), h, w)
            x = torch.cat([x[:, :, :1], rest], 2)
            t = x.shape[2]
        y = F.interpolate(x.transpose(1, 2).reshape(b * t, c, h, w), scale_factor=2.0, mode='nearest')
        y = self.conv(y)
        return y.reshape(b, t, c // 2, 2 * h, 2 * w).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, dim, z_dim, dim_mult, num_res_blocks, temporal_downsample):
        super().__init__()
        dims = [dim * u for u in [dim_mult[-1]] + dim_mult[::-1]]
        up = temporal_downsample[::-1]
        self.conv2 = CausalConv3d(z_dim, z_dim, 1, (0, 0, 0))
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, (1, 1, 1))
        self.middle = nn.Sequential(Residual(dims[0], dims[0]), Attention(dims[0]), Residual(dims[0], dims[0]))
        blocks = []
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                cin //= 2
            for _ in range(num_res_blocks + 1):
                blocks.append(Residual(cin, cout))
                cin = cout
            if i != len(dim_mult) - 1:
                blocks.append(Upsample(cout, up[i]))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(RMSNorm(dims[-1]), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, (1, 1, 1)))

    def forward(self, z):
        x = self.conv1(self.conv2(z))
        return self.head(self.blocks(self.middle(x))).clamp(-1, 1)


def decoder_conv_flops(dec, z_shape):
    """Conv FLOPs of one decode, counted by hooks (each convolution at its padded input)."""
    total = [0]

    def hook(module, inputs, output):
        k = math.prod(module.kernel_size)
        total[0] += 2 * k * module.in_channels * output.numel()

    handles = [m.register_forward_hook(hook) for m in dec.modules()
               if isinstance(m, (nn.Conv3d, nn.Conv2d)) and math.prod(m.kernel_size) > 1]
    with torch.no_grad():
        dec(torch.zeros(z_shape))
    for h in handles:
        h.remove()
    return total[0]


# ---------------------------------------------------------------- rewards

class Pavrm(nn.Module):
    """A frozen copy of the generator's first blocks, query attention, MLP (the paper's head)."""

    def __init__(self, generator, blocks, hidden, reward_module):
        super().__init__()
        self.backbone = copy.deepcopy(generator)
        self.blocks = blocks
        dim = generator.cfg['dim']
        self.attn = reward_module.QueryAttention(dim, 8 if dim % 8 == 0 else 4)
        self.mlp = reward_module.MLP([dim, *hidden, 1])

    def forward(self, x, t, text):
        tokens = self.backbone(x, t, text, blocks=self.blocks)
        z = self.attn.attend(tokens) + self.attn.queries
        return self.mlp(z)


def same_pad(size, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + 3 - size, 0)
    return total // 2, total - total // 2


class PixelReward(nn.Module):
    """PixelVideoReward's architecture: three 3x3x3 convolutions ('same' padding, TensorFlow's split), mean, MLP."""

    def __init__(self, channels=(16, 32, 32), strides=((1, 2, 2), (1, 2, 2), (2, 2, 2)), hidden=64):
        super().__init__()
        cin = 3
        self.convs = nn.ModuleList()
        for cout in channels:
            self.convs.append(nn.Conv3d(cin, cout, 3))
            cin = cout
        self.strides = strides
        self.fc1, self.fc2 = nn.Linear(cin, hidden), nn.Linear(hidden, 1)

    def forward(self, frames):
        h = frames
        for conv, s in zip(self.convs, self.strides):
            pt, ph, pw = (same_pad(n, st) for n, st in zip(h.shape[2:], s))
            h = F.relu(F.conv3d(F.pad(h, (*pw, *ph, *pt)), conv.weight, conv.bias, stride=s))
        return self.fc2(F.relu(self.fc1(h.mean(dim=(2, 3, 4))))).squeeze(-1)


# ---------------------------------------------------------------- one cell (a child process)

def rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn, repeats, heavy_seconds=10.0):
    """Median and best of `repeats` calls after one warm-up; a first call slower than heavy_seconds is the
    only measurement (flagged cold), to keep the default run short."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > heavy_seconds:
        return dict(ms=round(first * 1000, 1), bestMs=round(first * 1000, 1), reps=1, cold=True)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    return dict(ms=round(med * 1000, 1), bestMs=round(times[0] * 1000, 1), reps=n, cold=False)


def run_cell(spec):
    torch.set_num_threads(spec['threads'])
    torch.manual_seed(0)
    dit_mod = load_module('dit_fixtures', os.path.join(MODELS, 'scripts', 'make-dit-fixtures.py'))
    reward_mod = load_module('reward_fixtures', os.path.join(HERE, '..', '..', 'reward', 'scripts', 'make-fixtures.py'))
    s = SETTINGS[spec['setting']]
    cfg = DIT[s['dit']]
    vae = VAE[s['vae']]
    frames = spec['frames']
    lf = 1 + (frames - 1) // 4
    gen = dit_mod.WanModel(cfg)
    x0 = torch.randn(1, 16, lf, 8, 8)
    text = torch.randn(1, cfg['text_len'], cfg['text_dim'])
    params = [p for p in gen.parameters()]
    sigma, sigma_next = 0.5, 0.45
    t_k, t_next = torch.tensor([500.0]), torch.tensor([450.0])
    out = dict(setting=spec['setting'], frames=frames, latent=[lf, 8, 8, 16], kind=spec['kind'], threads=spec['threads'])
    rss_setup = None

    def zero():
        for p in params:
            p.grad = None

    if spec['kind'] == 'common':
        def rollout_step():
            with torch.no_grad():
                gen(x0, t_k, text)

        def sft():
            zero()
            eps = torch.randn_like(x0)
            v = gen((1 - sigma) * x0 + sigma * eps, t_k, text)
            ((v - (eps - x0)) ** 2).mean().backward()

        opt = torch.optim.AdamW(params, lr=5e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        sft()
        # The BLAS rate at this thread count (OpenBLAS's pool is pinned by the parent's environment).
        a = torch.randn(1024, 1024)
        out['matmul1024'] = timed(lambda: a @ a, 3)
        out['matmul1024']['gflops'] = round(2 * 1024 ** 3 / (out['matmul1024']['ms'] / 1000) / 1e9, 2)

        rss_setup = rss_bytes()
        out['rollout'] = timed(rollout_step, spec['repeats'])
        out['sft'] = timed(sft, spec['repeats'])
        out['update'] = timed(opt.step, spec['repeats'])
    else:
        x_k = torch.randn(1, 16, lf, 8, 8)
        if spec['kind'] == 'prfl':
            reward = Pavrm(gen, s['reward_blocks'], s['pavrm_hidden'], reward_mod)
            for p in reward.parameters():
                p.requires_grad_(False)

            def readout():
                zero()
                v = gen(x_k, t_k, text)
                x_next = x_k + (sigma_next - sigma) * v
                r = reward(x_next, t_next, text)
                (0.1 * F.relu(2 - torch.sigmoid(r))).mean().backward()
        else:
            dec = Decoder(vae['dim'], vae['z_dim'], vae['dim_mult'], vae['num_res_blocks'], vae['temporal_downsample'])
            pixel = PixelReward()
            for p in [*dec.parameters(), *pixel.parameters()]:
                p.requires_grad_(False)
            first = spec['kind'] == 'rgb-first'
            zf = 1 if first else lf
            out['decoderGflopForward'] = round(decoder_conv_flops(dec, (1, 16, zf, 8, 8)) / 1e9, 3)

            def readout():
                zero()
                v = gen(x_k, t_k, text)
                x0_hat = x_k - sigma * v
                z = x0_hat[:, :, :1] if first else x0_hat
                r = pixel(dec(z))
                (0.1 * F.relu(2 - torch.sigmoid(r))).mean().backward()

            z = torch.randn(1, 16, zf, 8, 8)

            def decode():
                with torch.no_grad():
                    dec(z)

            def decode_backward():
                zz = z.clone().requires_grad_(True)
                (dec(zz) ** 2).mean().backward()

            # The decoder alone (input gradient only, as RGB ReFL needs it); skipped where one pass takes
            # tens of seconds (Wan2.1's width on all frames), which the readout already shows.
            if out['decoderGflopForward'] < 100:
                out['decoderForward'] = timed(decode, spec['repeats'])
                out['decoderForwardBackward'] = timed(decode_backward, spec['repeats'])
                for key, mult in (('decoderForward', 1), ('decoderForwardBackward', 2)):
                    out[key]['gflops'] = round(mult * out['decoderGflopForward'] / (out[key]['ms'] / 1000), 2)
        rss_setup = rss_bytes()
        out['readout'] = timed(readout, spec['repeats'])
    out['peakRssBytes'] = rss_bytes()
    out['rssAfterSetupBytes'] = rss_setup
    return out


# ---------------------------------------------------------------- the parent

def cell(spec):
    # OpenBLAS keeps its own thread pool: pin it to the same count as PyTorch's.
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(spec['threads']), OMP_NUM_THREADS=str(spec['threads']))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), '--cell', json.dumps(spec)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return dict(spec, error=(r.stderr or '').strip().splitlines()[-1:] or [f'exit {r.returncode}'])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cell')
    ap.add_argument('--settings', default='tiny,mid')
    ap.add_argument('--mid-frames', default='17,33')
    ap.add_argument('--k', type=int, default=30)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--all-frames-max', type=int, default=17,
                    help='decode all frames only up to this many frames (minutes per step beyond)')
    ap.add_argument('--out', default=os.path.join(HERE, 'results', 'refl-torch.json'))
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(run_cell(json.loads(args.cell))))
        return
    started = time.time()
    rows, steps = [], []
    for setting in args.settings.split(','):
        for frames in ([17] if setting == 'tiny' else [int(f) for f in args.mid_frames.split(',')]):
            base = dict(setting=setting, frames=frames, repeats=args.repeats, threads=args.threads)
            common = cell(dict(base, kind='common'))
            rows.append(common)
            print(f"torch {setting} {frames} frames common: {json.dumps({k: common.get(k) for k in ('rollout', 'sft', 'update', 'matmul1024', 'error')})}", flush=True)
            for kind in ('prfl', 'rgb-first', 'rgb-all'):
                if kind == 'rgb-all' and frames > args.all_frames_max:
                    rows.append(dict(base, kind=kind, skipped=f'more than --all-frames-max {args.all_frames_max} frames'))
                    continue
                r = cell(dict(base, kind=kind))
                rows.append(r)
                print(f"torch {setting} {frames} frames {kind}: readout {r.get('readout')} peak RSS {r.get('peakRssBytes', 0) / 2 ** 20:.0f} MiB {r.get('error', '')}", flush=True)
                if 'readout' in r and 'rollout' in common:
                    for sft in (False, True):
                        ms = r['readout']['ms'] + args.k * common['rollout']['ms'] + common['update']['ms'] + (common['sft']['ms'] if sft else 0)
                        steps.append(dict(setting=setting, frames=frames, method=kind, sft=sft, k=args.k, ms=round(ms, 1)))
    report = dict(benchmark='refl-torch',
                  command=f'/usr/bin/python3 bench/refl-torch.py --settings {args.settings} --mid-frames {args.mid_frames} --k {args.k} --repeats {args.repeats} --threads {args.threads} --all-frames-max {args.all_frames_max}',
                  date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), torch=torch.__version__,
                  threads=args.threads, cpus=os.cpu_count(), machine=platform.platform(),
                  matmul1024Gflops=next((r['matmul1024']['gflops'] for r in rows if 'matmul1024' in r), None),
                  loadAverageAtEnd=[round(x, 2) for x in os.getloadavg()], elapsedSeconds=round(time.time() - started),
                  notes='ms: median after one warm-up (cold: one run slower than 10 s, the only one). steps: sft + k x rollout '
                        '+ readout + update, composed from the cells (sft only in the +SFT rows). peakRssBytes: ru_maxrss of '
                        'the cell process (weights, PyTorch and all); rssAfterSetupBytes: the same before the timed passes.',
                  cells=rows, steps=steps)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    print('wrote', args.out, f'({report["elapsedSeconds"]} s)')


if __name__ == '__main__':
    main()
