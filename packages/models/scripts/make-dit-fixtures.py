#!/usr/bin/python3
"""Golden vectors for @prfl/models' Wan DiT, from an independent PyTorch transcription of Wan2.1's
WanModel (wan/modules/model.py): same modules, same key names, float32 (Wan's float64 sinusoid and RoPE
kept), no flash attention (plain softmax attention), no sequence padding (all samples share one grid).

Writes into packages/models/fixtures/dit/:
  <name>/config.json                            Wan config.json of the fixture model
  <name>/diffusion_pytorch_model.safetensors    its weights, Wan layout and key names, bfloat16
  <name>/io.safetensors                         inputs and outputs, float32, channels-last latents

Weights are seeded random (not Wan's init, whose zero head would hide most of the network), rounded to
bfloat16 so the stored file is exact; the forward pass runs in float32 on the rounded values.

Run: /usr/bin/python3 packages/models/scripts/make-dit-fixtures.py   (PyTorch 1.13 + numpy; CI does not run it)

The other direction: `make-dit-fixtures.py --check DIR` loads a checkpoint folder written by saveWanDiT
(config.json + diffusion_pytorch_model.safetensors) into this WanModel with load_state_dict(strict=True)
and, when DIR/io.safetensors holds x, timesteps, text (image_tokens, image_latent) and velocity from our
side, prints the largest difference of PyTorch's velocity from ours.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'dit')


# ---------------------------------------------------------------- model (transcribed from model.py)

def sinusoidal_embedding_1d(dim, position):
    half = dim // 2
    position = position.type(torch.float64)
    sinusoid = torch.outer(position, torch.pow(10000, -torch.arange(half).to(position).div(half)))
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1)


def rope_params(max_seq_len, dim, theta=10000):
    freqs = torch.outer(
        torch.arange(max_seq_len),
        1.0 / torch.pow(theta, torch.arange(0, dim, 2).to(torch.float64).div(dim)))
    return torch.polar(torch.ones_like(freqs), freqs)


def rope_apply(x, grid, freqs):
    # x [B, L, n, d]; every sample has the same grid (f, h, w)
    b, s, n, d = x.shape
    c = d // 2
    freqs = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
    f, h, w = grid
    xc = torch.view_as_complex(x.to(torch.float64).reshape(b, s, n, -1, 2))
    fr = torch.cat([
        freqs[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
        freqs[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
        freqs[2][:w].view(1, 1, w, -1).expand(f, h, w, -1),
    ], dim=-1).reshape(1, s, 1, -1)
    return torch.view_as_real(xc * fr).flatten(3).float()


def attention(q, k, v, key_mask=None):
    # q [B, Lq, n, d], k/v [B, Lk, n, d]
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if key_mask is not None:
        s = s.masked_fill(~key_mask[:, None, None, :], float('-inf'))
    return (torch.softmax(s, dim=-1) @ v).transpose(1, 2)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class SelfAttn(nn.Module):
    def __init__(self, dim, heads, qk_norm, eps, i2v=False):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        if i2v:
            self.k_img = nn.Linear(dim, dim)
            self.v_img = nn.Linear(dim, dim)
            self.norm_k_img = RMSNorm(dim, eps) if qk_norm else nn.Identity()

    def split(self, t):
        return t.view(t.shape[0], t.shape[1], self.heads, -1)

    def self_forward(self, x, grid, freqs):
        q = self.split(self.norm_q(self.q(x)))
        k = self.split(self.norm_k(self.k(x)))
        v = self.split(self.v(x))
        out = attention(rope_apply(q, grid, freqs), rope_apply(k, grid, freqs), v)
        return self.o(out.flatten(2))

    def cross_forward(self, x, context, text_len, key_mask=None):
        # WanI2VCrossAttention splits the context at context_len - 512 (T5 length): text_len here.
        img_len = context.shape[1] - text_len
        context_img, context = context[:, :img_len], context[:, img_len:]
        q = self.split(self.norm_q(self.q(x)))
        k = self.split(self.norm_k(self.k(context)))
        v = self.split(self.v(context))
        out = attention(q, k, v, key_mask).flatten(2)
        if img_len > 0:
            k_img = self.split(self.norm_k_img(self.k_img(context_img)))
            v_img = self.split(self.v_img(context_img))
            out = out + attention(q, k_img, v_img).flatten(2)
        return self.o(out)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim, eps = cfg['dim'], cfg['eps']
        self.eps = eps
        self.self_attn = SelfAttn(dim, cfg['num_heads'], cfg['qk_norm'], eps)
        self.norm3 = nn.LayerNorm(dim, eps=eps, elementwise_affine=True) if cfg['cross_attn_norm'] else nn.Identity()
        self.cross_attn = SelfAttn(dim, cfg['num_heads'], cfg['qk_norm'], eps, i2v=cfg['model_type'] == 'i2v')
        self.ffn = nn.Sequential(nn.Linear(dim, cfg['ffn_dim']), nn.GELU(approximate='tanh'),
                                 nn.Linear(cfg['ffn_dim'], dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)
        self.text_len = cfg['text_len']

    def ln(self, x):
        return nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)

    def forward(self, x, e, grid, freqs, context, key_mask=None):
        e = (self.modulation + e).chunk(6, dim=1)
        y = self.self_attn.self_forward(self.ln(x) * (1 + e[1]) + e[0], grid, freqs)
        x = x + y * e[2]
        x = x + self.cross_attn.cross_forward(self.norm3(x), context, self.text_len, key_mask)
        y = self.ffn(self.ln(x) * (1 + e[4]) + e[3])
        return x + y * e[5]


class Head(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.eps = cfg['eps']
        self.head = nn.Linear(cfg['dim'], math.prod(cfg['patch_size']) * cfg['out_dim'])
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg['dim']) / cfg['dim'] ** 0.5)

    def forward(self, x, e):
        e = (self.modulation + e.unsqueeze(1)).chunk(2, dim=1)
        return self.head(nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps) * (1 + e[1]) + e[0])


class WanModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        dim = cfg['dim']
        self.patch_embedding = nn.Conv3d(cfg['in_dim'], dim, kernel_size=cfg['patch_size'], stride=cfg['patch_size'])
        self.text_embedding = nn.Sequential(nn.Linear(cfg['text_dim'], dim), nn.GELU(approximate='tanh'),
                                            nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(cfg['freq_dim'], dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg['num_layers'])])
        self.head = Head(cfg)
        d = dim // cfg['num_heads']
        self.freqs = torch.cat([
            rope_params(1024, d - 4 * (d // 6)),
            rope_params(1024, 2 * (d // 6)),
            rope_params(1024, 2 * (d // 6)),
        ], dim=1)
        if cfg['model_type'] == 'i2v':
            e = cfg.get('image_dim', 1280)
            self.img_emb = nn.Module()
            self.img_emb.proj = nn.Sequential(nn.LayerNorm(e), nn.Linear(e, e), nn.GELU(), nn.Linear(e, dim),
                                              nn.LayerNorm(dim))

    def embed(self, x, t, context, clip_fea=None, y=None):
        """x [B, C, F, H, W] -> tokens, and the block arguments."""
        if y is not None:
            x = torch.cat([x, y], dim=1)
        x = self.patch_embedding(x)
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)
        e = self.time_embedding(sinusoidal_embedding_1d(self.cfg['freq_dim'], t).float())
        e0 = self.time_projection(e).unflatten(1, (6, self.cfg['dim']))
        pad = self.cfg['text_len'] - context.shape[1]
        context = torch.cat([context, context.new_zeros(context.shape[0], pad, context.shape[2])], dim=1)
        context = self.text_embedding(context)
        if clip_fea is not None:
            context = torch.cat([self.img_emb.proj(clip_fea), context], dim=1)
        return x, dict(e=e0, grid=grid, freqs=self.freqs, context=context), e

    def unpatchify(self, x, grid):
        c = self.cfg['out_dim']
        p = self.cfg['patch_size']
        b = x.shape[0]
        x = x.view(b, *grid, *p, c)
        x = torch.einsum('bfhwpqrc->bcfphqwr', x)
        return x.reshape(b, c, *[i * j for i, j in zip(grid, p)])

    def forward(self, x, t, context, clip_fea=None, y=None, blocks=None):
        x, kw, e = self.embed(x, t, context, clip_fea, y)
        for block in self.blocks[:blocks]:
            x = block(x, **kw)
        if blocks is not None:
            return x
        return self.unpatchify(self.head(x, e), kw['grid'])


# ---------------------------------------------------------------- safetensors writer

DTYPES = {'F32': (np.float32, 4), 'BF16': (None, 2)}


def to_bytes(t, dtype):
    a = t.detach().contiguous().to(torch.float32).numpy()
    if dtype == 'F32':
        return a.astype('<f4').tobytes()
    bits = a.view(np.uint32)
    assert np.all((bits & 0xFFFF) == 0), 'value not representable in bfloat16'
    return (bits >> 16).astype('<u2').tobytes()


def write_safetensors(path, tensors, dtype, metadata=None):
    """8-byte LE header length, JSON header padded with spaces to 8, raw little-endian data; tensors
    sorted by dtype size (one dtype here) then name."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        data = to_bytes(tensors[name], dtype)
        header[name] = {'dtype': dtype, 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = metadata
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """A minimal reader (F32, BF16, F16): name -> float32 tensor."""
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        start, end = info['data_offsets']
        raw = data[8 + n + start:8 + n + end]
        if info['dtype'] == 'F32':
            a = np.frombuffer(raw, '<f4')
        elif info['dtype'] == 'BF16':
            a = (np.frombuffer(raw, '<u2').astype(np.uint32) << 16).view(np.float32)
        elif info['dtype'] == 'F16':
            a = np.frombuffer(raw, '<f2').astype(np.float32)
        else:
            raise ValueError(f'{path}: {name} has dtype {info["dtype"]}')
        out[name] = torch.tensor(a.copy()).reshape(info['shape'])
    return out


def check(folder):
    with open(os.path.join(folder, 'config.json')) as f:
        cfg = json.load(f)
    cfg = {**TINY, 'image_dim': 1280, **{k: v for k, v in cfg.items() if not k.startswith('_')}}
    model = WanModel(cfg)
    index = os.path.join(folder, 'diffusion_pytorch_model.safetensors.index.json')
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        state = {}
        for shard in shards:
            state.update(read_safetensors(os.path.join(folder, shard)))
    else:
        state = read_safetensors(os.path.join(folder, 'diffusion_pytorch_model.safetensors'))
    print('load_state_dict(strict=True):', model.load_state_dict(state, strict=True))
    io_path = os.path.join(folder, 'io.safetensors')
    if os.path.exists(io_path):
        io = read_safetensors(io_path)
        cf = lambda t: t.permute(0, 4, 1, 2, 3)
        with torch.no_grad():
            v = model(cf(io['x']), io['timesteps'], io['text'], io.get('image_tokens'),
                      cf(io['image_latent']) if 'image_latent' in io else None)
        diff = (channels_last(v) - io['velocity']).abs().max().item()
        print(f'max |torch - ours| = {diff:.3g} (max |v| = {v.abs().max().item():.3g})')


# ---------------------------------------------------------------- fixtures

TINY = dict(model_type='t2v', patch_size=[1, 2, 2], text_len=16, in_dim=16, dim=64, ffn_dim=128, freq_dim=256,
            text_dim=32, out_dim=16, num_heads=4, num_layers=4, window_size=[-1, -1], qk_norm=True,
            cross_attn_norm=True, eps=1e-6)


def seeded_weights(model, seed):
    """Random weights of a sensible scale, rounded to bfloat16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and not name.endswith('modulation'):
                fan_in = p[0].numel()
                v = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
            elif name.endswith('modulation'):
                v = torch.randn(p.shape, generator=g) * 0.3
            elif 'norm' in name and name.endswith('weight') or name.endswith('proj.0.weight') or name.endswith(
                    'proj.4.weight'):
                v = 1 + 0.2 * torch.randn(p.shape, generator=g)
            else:
                v = 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(v.to(torch.bfloat16).to(torch.float32))


def channels_last(x):
    return x.permute(0, 2, 3, 4, 1).contiguous()


def make(name, cfg, b, frames, height, width, text_tokens, seed, clip_tokens=0, mask_tokens=None, grads=()):
    torch.manual_seed(seed)
    model = WanModel(cfg)
    seeded_weights(model, seed)
    model.eval()
    g = torch.Generator().manual_seed(seed + 1)
    channels = cfg['out_dim']
    x = torch.randn(b, channels, frames, height, width, generator=g)
    t = torch.tensor([999.0, 321.7][:b], dtype=torch.float32)
    text = torch.randn(b, text_tokens, cfg['text_dim'], generator=g)
    clip = y = None
    if cfg['model_type'] == 'i2v':
        clip = torch.randn(b, clip_tokens, cfg['image_dim'], generator=g)
        y = torch.randn(b, cfg['in_dim'] - channels, frames, height, width, generator=g)
    io = {'x': channels_last(x), 'timesteps': t, 'text': text}
    if clip is not None:
        io['image_tokens'] = clip
        io['image_latent'] = channels_last(y)
    with torch.no_grad():
        tokens, kw, e = model.embed(x, t, text, clip, y)
        io['tokens'] = tokens
        io['time_embedding'] = e
        io['time_projection'] = kw['e']
        io['block0'] = model.blocks[0](tokens, **kw)
        io['features2'] = model(x, t, text, clip, y, blocks=2)
        io['velocity'] = channels_last(model(x, t, text, clip, y))
        if mask_tokens is not None:
            # A text mask keeping the first mask_tokens tokens of each sample: padding excluded from
            # cross-attention (an extension; Wan's reference attends to the zero padding).
            mask = torch.zeros(b, cfg['text_len'], dtype=torch.bool)
            mask[:, :mask_tokens] = True
            io['text_mask'] = mask[:, :text_tokens].float()
            x2, kw2, e2 = model.embed(x, t, text, clip, y)
            for block in model.blocks:
                x2 = block(x2, **kw2, key_mask=mask)
            io['velocity_masked'] = channels_last(model.unpatchify(model.head(x2, e2), kw2['grid']))
    if grads:
        # Gradients of sum(velocity * w) for a seeded w, by PyTorch autograd.
        w = torch.randn(io['velocity'].shape, generator=g)
        xg = x.clone().requires_grad_(True)
        model.zero_grad()
        (channels_last(model(xg, t, text, clip, y)) * w).sum().backward()
        io['loss_weights'] = w
        io['grad.x'] = channels_last(xg.grad)
        params = dict(model.named_parameters())
        for key in grads:
            io['grad.' + key] = params[key].grad
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    state = {k: v for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(folder, 'diffusion_pytorch_model.safetensors'), state, 'BF16',
                      {'format': 'pt'})
    write_safetensors(os.path.join(folder, 'io.safetensors'), {k: v.float() for k, v in io.items()}, 'F32')
    config = {'_class_name': 'WanModel', '_diffusers_version': '0.30.0', **cfg}
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')
    print(name, 'params', sum(p.numel() for p in model.parameters()), 'tokens', tokens.shape,
          'velocity', io['velocity'].shape, 'max |v|', io['velocity'].abs().max().item())


if __name__ == '__main__':
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == '--check':
        check(sys.argv[2])
        sys.exit(0)
    # t2v: the tiny preset; 2 samples, grid 2 x 3 x 4 (H != W catches transposed axes), text padded 10 -> 16.
    make('tiny-t2v', TINY, b=2, frames=2, height=6, width=8, text_tokens=10, seed=1234, mask_tokens=7,
         grads=['patch_embedding.bias', 'text_embedding.0.weight', 'blocks.0.self_attn.q.weight',
                'blocks.0.self_attn.norm_k.weight', 'blocks.1.modulation', 'blocks.2.cross_attn.k.weight',
                'head.head.weight', 'head.modulation'])
    # i2v: a smaller i2v model (fixtures stay under 1 MB) that also moves the other knobs: D 48, head dim
    # 12 (RoPE 4/4/4), freq_dim 64, 36 = 16 + 20 input channels, 5 image tokens of width 24, text 8 x 32.
    small_i2v = dict(TINY, model_type='i2v', in_dim=36, dim=48, ffn_dim=96, num_layers=2, freq_dim=64,
                     text_len=8, image_dim=24)
    make('small-i2v', small_i2v, b=1, frames=3, height=4, width=6, text_tokens=8, seed=99, clip_tokens=5)
