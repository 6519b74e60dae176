#!/usr/bin/python3
"""PyTorch reference timing for bench/dit.mjs: the same Wan DiT configs and input (one 5 x 16 x 16 latent,
320 tokens, full-length text), run through the PyTorch transcription of WanModel in
scripts/make-dit-fixtures.py, float32 on the CPU. Writes bench/results/dit-torch.json, which bench/dit.mjs
prints alongside its own numbers.

Run: /usr/bin/python3 bench/dit-torch.py [--threads 1,2] [--min-seconds 2] [--batch 1] [--presets tiny,mid]
(from packages/models)
Debian's python3-torch uses the reference BLAS unless OpenBLAS is installed (libopenblas0-pthread); to
use an unpacked copy without installing it, run with
LD_LIBRARY_PATH=<dir of openblas-pthread/libblas.so.3>. The matmul rate in the output says which is in use.
"""
import argparse
import importlib.util
import json
import os
import platform
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('fixtures', os.path.join(HERE, '..', 'scripts', 'make-dit-fixtures.py'))
fx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fx)

# Same as WAN_DIT_PRESETS in src/dit/config.ts.
BASE = dict(model_type='t2v', patch_size=[1, 2, 2], in_dim=16, freq_dim=256, out_dim=16, window_size=[-1, -1],
            qk_norm=True, cross_attn_norm=True, eps=1e-6)
PRESETS = {
    'tiny': dict(BASE, dim=64, ffn_dim=128, num_heads=4, num_layers=4, text_dim=32, text_len=16),
    'mid': dict(BASE, dim=384, ffn_dim=1024, num_heads=6, num_layers=8, text_dim=512, text_len=64),
}


def flops(c, tokens):
    """Matmul FLOPs of one forward pass (as wanDiTFlops in src/dit/flops.ts, batch 1, t2v)."""
    d, n, l = c['dim'], tokens, c['text_len']
    mm = lambda r, k, o: 2 * r * k * o
    lin = mm(n, 4 * c['in_dim'], d) + mm(l, c['text_dim'], d) + mm(l, d, d)
    lin += mm(1, c['freq_dim'], d) + mm(1, d, d) + mm(1, d, 6 * d)
    block = 6 * mm(n, d, d) + 2 * mm(l, d, d) + 2 * mm(n, d, c['ffn_dim'])
    lin += c['num_layers'] * block + mm(n, d, 4 * c['out_dim'])
    return lin + c['num_layers'] * 4 * n * d * (n + l)


def timed(fn, min_seconds):
    fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(times) < 2:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000, times[0] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--min-seconds', type=float, default=2)
    ap.add_argument('--out', default=os.path.join(HERE, 'results', 'dit-torch.json'))
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--presets', default='tiny,mid')
    ap.add_argument('--sgd', action='store_true', help='forward+backward also updates every weight (plain SGD)')
    args = ap.parse_args()
    results = []
    peaks = {}
    for threads in [int(t) for t in args.threads.split(',')]:
        torch.set_num_threads(threads)
        a = torch.randn(1024, 1024)
        peaks[threads] = round(2 * 1024 ** 3 / (timed(lambda: a @ a, 1)[1] / 1000) / 1e9, 2)
        results += bench(threads, args.min_seconds, args.batch, args.presets.split(','), args.sgd)
    env = f"LD_LIBRARY_PATH={os.environ['LD_LIBRARY_PATH']} " if os.environ.get('LD_LIBRARY_PATH') else ''
    report = dict(benchmark='dit-torch',
                  command=f'{env}/usr/bin/python3 bench/dit-torch.py --threads {args.threads} --min-seconds {args.min_seconds}'
                  + (f' --batch {args.batch} --presets {args.presets}' if args.batch != 1 or args.presets != 'tiny,mid' else '')
                  + (' --sgd' if args.sgd else ''),
                  date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), torch=torch.__version__,
                  matmulPeakGflops=peaks, loadAverageAtEnd=[round(x, 2) for x in os.getloadavg()],
                  machine=platform.platform(), results=results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    print('wrote', args.out, 'matmul 1024^3 GFLOP/s by threads:', peaks)


def bench(threads, min_seconds, batch=1, presets=('tiny', 'mid'), sgd=False):
    results = []
    for name in presets:
        c = PRESETS[name]
        torch.manual_seed(0)
        model = fx.WanModel(c)
        x = torch.randn(batch, c['in_dim'], 5, 16, 16)
        t = torch.full((batch,), 500.0)
        text = torch.randn(batch, c['text_len'], c['text_dim'])
        tokens = 5 * 8 * 8

        def fwd():
            with torch.no_grad():
                model(x, t, text)

        def fwd_bwd():
            model.zero_grad(set_to_none=True)
            model(x, t, text).pow(2).mean().backward()
            if sgd:
                with torch.no_grad():
                    for p in model.parameters():
                        if p.grad is not None:
                            p.sub_(1e-9 * p.grad)

        f_ms, f_best = timed(fwd, min_seconds)
        fb_ms, fb_best = timed(fwd_bwd, min_seconds)
        gf = batch * flops(c, tokens) / 1e9
        row = dict(preset=name, threads=threads, batch=batch, tokens=tokens, forwardMs=round(f_ms, 2), forwardBestMs=round(f_best, 2),
                   forwardBackwardMs=round(fb_ms, 2), forwardBackwardBestMs=round(fb_best, 2),
                   forwardGflops=round(gf / (f_ms / 1000), 2), forwardBackwardGflops=round(3 * gf / (fb_ms / 1000), 2))
        results.append(row)
        print(row)
    return results


if __name__ == '__main__':
    main()
