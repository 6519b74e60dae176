#!/usr/bin/python3
"""Golden vectors for @prfl/models' video VAE, from an independent PyTorch transcription of Wan2.1's
WanVAE_ (wan/modules/vae.py) that runs Wan's own *chunked, cached* algorithm: the encoder sees the first
frame alone and then chunks of 4 frames, the decoder one latent frame at a time, every causal convolution
carrying its last two input frames in `feat_cache`, the temporal resamplers with Wan's first-chunk
special cases ('Rep', the skipped time_conv). The TypeScript VAE runs whole clips with causal padding
instead; agreement with these vectors is what shows the two formulations are the same function.

Writes into packages/models/fixtures/vae/<name>/:
  config.json           the VAE config (wanVAEConfigToJson format: Wan's snake_case names)
  weights.safetensors   seeded random weights, Wan's key names and PyTorch layouts, bfloat16 (rounded
                        before the forward pass, so the file holds exactly the weights that ran)
  io.safetensors        inputs and outputs, float32, channels last:
                          video [B, F, H, W, 3], mean / logvar [B, F', H', W', C] (unnormalised),
                          latent = (mean - latents_mean) / latents_std, recon = decoder(mean) (unclamped),
                          noise (eps), loss = mse(decoder(mean + exp(logvar / 2) eps), video) + beta * KL,
                          recon_term, kl_term, beta
  grads.safetensors     d loss / d parameter for every parameter, Wan's keys and PyTorch layouts, bfloat16

Run: /usr/bin/python3 packages/models/scripts/make-vae-fixtures.py   (PyTorch 1.13 + numpy; CI does not run it)
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'vae')
CACHE_T = 2


# ---------------------------------------------------------------- model (transcribed from vae.py)

class CausalConv3d(nn.Conv3d):
    """Conv3d whose time padding is all on the left; a cache of earlier frames replaces that padding."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pt, ph, pw = self.padding
        self.causal_pad = (pw, pw, ph, ph, 2 * pt, 0)
        self.padding = (0, 0, 0)

    def forward(self, x, cache_x=None):
        pad = list(self.causal_pad)
        if cache_x is not None and pad[4] > 0:
            x = torch.cat([cache_x, x], dim=2)
            pad[4] -= cache_x.shape[2]
        return super().forward(F.pad(x, pad))


class RMSNorm(nn.Module):
    def __init__(self, dim, images=True):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


def cached_conv(layer, x, cache, idx):
    """One causal conv in chunked mode: feeds the cache, stores this chunk's last two input frames."""
    i = idx[0]
    keep = x[:, :, -CACHE_T:].clone()
    if keep.shape[2] < 2 and cache[i] is not None:
        keep = torch.cat([cache[i][:, :, -1:].to(keep.device), keep], dim=2)
    x = layer(x, cache[i])
    cache[i] = keep
    idx[0] += 1
    return x


class Resample(nn.Module):
    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        if mode in ('upsample2d', 'upsample3d'):
            self.resample = nn.Sequential(nn.Upsample(scale_factor=(2., 2.), mode='nearest-exact'),
                                          nn.Conv2d(dim, dim // 2, 3, padding=1))
            if mode == 'upsample3d':
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
            if mode == 'downsample3d':
                self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=(0, 0, 0))

    def forward(self, x, cache, idx):
        b, c, t, h, w = x.shape
        if self.mode == 'upsample3d':
            i = idx[0]
            if cache[i] is None:
                # first chunk: no time_conv, mark the slot
                cache[i] = 'Rep'
                idx[0] += 1
            else:
                keep = x[:, :, -CACHE_T:].clone()
                if keep.shape[2] < 2 and not isinstance(cache[i], str):
                    keep = torch.cat([cache[i][:, :, -1:], keep], dim=2)
                if keep.shape[2] < 2 and isinstance(cache[i], str):
                    keep = torch.cat([torch.zeros_like(keep), keep], dim=2)
                x = self.time_conv(x) if isinstance(cache[i], str) else self.time_conv(x, cache[i])
                cache[i] = keep
                idx[0] += 1
                x = x.reshape(b, 2, c, t, h, w)
                x = torch.stack((x[:, 0], x[:, 1]), 3).reshape(b, c, t * 2, h, w)
        t = x.shape[2]
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, x.shape[1], x.shape[3], x.shape[4])
        x = self.resample(x)
        x = x.reshape(b, t, x.shape[1], x.shape[2], x.shape[3]).permute(0, 2, 1, 3, 4)
        if self.mode == 'downsample3d':
            i = idx[0]
            if cache[i] is None:
                cache[i] = x.clone()
                idx[0] += 1
            else:
                keep = x[:, :, -1:].clone()
                x = self.time_conv(torch.cat([cache[i][:, :, -1:], x], 2))
                cache[i] = keep
                idx[0] += 1
        return x


class ResidualBlock(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, images=False), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x, cache, idx):
        h = self.shortcut(x)
        for layer in self.residual:
            x = cached_conv(layer, x, cache, idx) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x, cache=None, idx=None):
        b, c, t, h, w = x.shape
        y = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        y = self.norm(y)
        q, k, v = self.to_qkv(y).reshape(b * t, c * 3, h * w).permute(0, 2, 1).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(1, 2) / c ** 0.5, dim=-1) @ v          # [bt, hw, c]
        y = self.proj(a.permute(0, 2, 1).reshape(b * t, c, h, w))
        return x + y.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


class Encoder3d(nn.Module):
    def __init__(self, dim, z_dim, dim_mult, num_res_blocks, attn_scales, temporal_downsample, mid_attention):
        super().__init__()
        dims = [dim * u for u in [1] + dim_mult]
        scale = 1.0
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        downs = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(num_res_blocks):
                downs.append(ResidualBlock(in_dim, out_dim))
                if scale in attn_scales:
                    downs.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                downs.append(Resample(out_dim, 'downsample3d' if temporal_downsample[i] else 'downsample2d'))
                scale /= 2.0
        self.downsamples = nn.Sequential(*downs)
        self.middle = nn.Sequential(ResidualBlock(out_dim, out_dim),
                                    AttentionBlock(out_dim) if mid_attention else nn.Identity(),
                                    ResidualBlock(out_dim, out_dim))
        self.head = nn.Sequential(RMSNorm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, z_dim, 3, padding=1))

    def forward(self, x, cache, idx):
        x = cached_conv(self.conv1, x, cache, idx)
        for layer in self.downsamples:
            x = layer(x, cache, idx)
        for layer in self.middle:
            x = layer(x, cache, idx) if isinstance(layer, ResidualBlock) else layer(x)
        for layer in self.head:
            x = cached_conv(layer, x, cache, idx) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class Decoder3d(nn.Module):
    def __init__(self, dim, z_dim, dim_mult, num_res_blocks, attn_scales, temporal_upsample, mid_attention):
        super().__init__()
        dims = [dim * u for u in [dim_mult[-1]] + dim_mult[::-1]]
        scale = 1.0 / 2 ** (len(dim_mult) - 2)
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]),
                                    AttentionBlock(dims[0]) if mid_attention else nn.Identity(),
                                    ResidualBlock(dims[0], dims[0]))
        ups = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                in_dim = in_dim // 2
            for _ in range(num_res_blocks + 1):
                ups.append(ResidualBlock(in_dim, out_dim))
                if scale in attn_scales:
                    ups.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                ups.append(Resample(out_dim, 'upsample3d' if temporal_upsample[i] else 'upsample2d'))
                scale *= 2.0
        self.upsamples = nn.Sequential(*ups)
        self.head = nn.Sequential(RMSNorm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, 3, 3, padding=1))

    def forward(self, x, cache, idx):
        x = cached_conv(self.conv1, x, cache, idx)
        for layer in self.middle:
            x = layer(x, cache, idx) if isinstance(layer, ResidualBlock) else layer(x)
        for layer in self.upsamples:
            x = layer(x, cache, idx)
        for layer in self.head:
            x = cached_conv(layer, x, cache, idx) if isinstance(layer, CausalConv3d) else layer(x)
        return x


def count_convs(module):
    return sum(1 for m in module.modules() if isinstance(m, CausalConv3d))


class VAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.z_dim = cfg['z_dim']
        args = (cfg['dim'], cfg['dim_mult'], cfg['num_res_blocks'], cfg['attn_scales'])
        self.encoder = Encoder3d(cfg['dim'], self.z_dim * 2, *args[1:], cfg['temperal_downsample'], cfg['mid_attention'])
        self.conv1 = CausalConv3d(self.z_dim * 2, self.z_dim * 2, 1)
        self.conv2 = CausalConv3d(self.z_dim, self.z_dim, 1)
        self.decoder = Decoder3d(cfg['dim'], self.z_dim, *args[1:], cfg['temperal_downsample'][::-1], cfg['mid_attention'])

    def encode(self, x):
        cache = [None] * count_convs(self.encoder)
        t = x.shape[2]
        outs = []
        for i in range(1 + (t - 1) // 4):
            chunk = x[:, :, :1] if i == 0 else x[:, :, 1 + 4 * (i - 1):1 + 4 * i]
            outs.append(self.encoder(chunk, cache, [0]))
        mu, logvar = self.conv1(torch.cat(outs, 2)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z):
        cache = [None] * count_convs(self.decoder)
        x = self.conv2(z)
        return torch.cat([self.decoder(x[:, :, i:i + 1], cache, [0]) for i in range(z.shape[2])], 2)


# ---------------------------------------------------------------- fixtures

def channels_last(t):
    return t.permute(0, 2, 3, 4, 1).contiguous()


def bf16_bits(a):
    """float32 -> bfloat16 bit patterns, rounding to nearest even (as torch does)."""
    u = np.ascontiguousarray(a, dtype='<f4').view('<u4').astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype('<u2')


def round_bf16(t):
    bits = bf16_bits(t.detach().cpu().numpy()).astype(np.uint32) << 16
    return torch.from_numpy(bits.view(np.float32).copy()).reshape(t.shape)


def save_safetensors(path, tensors, metadata=None, dtype='F32'):
    header = {}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        b = (bf16_bits(a) if dtype == 'BF16' else np.ascontiguousarray(a.astype('<f4'))).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(a.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header['__metadata__'] = metadata
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make(name, cfg, shape, seed, beta=0.1):
    torch.manual_seed(seed)
    model = VAE(cfg).float()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith('gamma'):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif key.endswith('bias'):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
            # Stored as bfloat16: round first, so the stored file is exactly what ran.
            p.copy_(round_bf16(p))
    z = cfg['z_dim']
    g = torch.Generator().manual_seed(seed + 1)
    cfg = dict(cfg)
    cfg['latents_mean'] = [round(v, 4) for v in (0.5 * torch.randn(z, generator=g)).tolist()]
    cfg['latents_std'] = [round(v, 4) for v in (0.5 + 1.5 * torch.rand(z, generator=g)).tolist()]
    b, f, h, w = shape
    video = torch.rand(b, 3, f, h, w, generator=g) * 2 - 1
    mu, logvar = model.encode(video)
    mean_t = torch.tensor(cfg['latents_mean']).view(1, z, 1, 1, 1)
    std_t = torch.tensor(cfg['latents_std']).view(1, z, 1, 1, 1)
    latent = (mu - mean_t) / std_t
    recon = model.decode(mu)
    noise = torch.randn(mu.shape, generator=g)
    zs = mu + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * noise
    out = model.decode(zs)
    rec_term = ((out - video) ** 2).mean()
    kl_term = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).mean()
    loss = rec_term + beta * kl_term
    model.zero_grad()
    loss.backward()

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    json_cfg = {'_class_name': 'WanVAE', **cfg}
    with open(os.path.join(d, 'config.json'), 'w') as fh:
        json.dump(json_cfg, fh, indent=2)
        fh.write('\n')
    save_safetensors(os.path.join(d, 'weights.safetensors'), dict(model.state_dict()), {'format': 'pt'}, 'BF16')
    # bfloat16 (relative precision 2^-8): compared with a tolerance relative to each gradient's largest entry.
    save_safetensors(os.path.join(d, 'grads.safetensors'), {k: p.grad for k, p in model.named_parameters()}, None, 'BF16')
    save_safetensors(os.path.join(d, 'io.safetensors'), {
        'video': channels_last(video),
        'mean': channels_last(mu),
        'logvar': channels_last(logvar),
        'latent': channels_last(latent),
        'recon': channels_last(recon),
        'noise': channels_last(noise),
        'loss': loss.reshape(1),
        'recon_term': rec_term.reshape(1),
        'kl_term': kl_term.reshape(1),
        'beta': torch.tensor([beta]),
    })
    n = sum(p.numel() for p in model.parameters())
    print(f'{name}: {n} parameters, video {list(channels_last(video).shape)} -> latent {list(channels_last(mu).shape)}, '
          f'recon {list(channels_last(recon).shape)}, loss {loss.item():.6f}')


if __name__ == '__main__':
    # The `tiny` preset (the MovingShapes VAE) on a 9-frame clip: first frame + 2 chunks of 4.
    make('tiny', {
        'dim': 8, 'z_dim': 16, 'dim_mult': [1, 2, 2, 2], 'num_res_blocks': 1, 'attn_scales': [],
        'temperal_downsample': [False, True, True], 'mid_attention': True,
    }, shape=(1, 9, 32, 32), seed=0)
    # Other structure: time downsampled first (WanVAE_'s default order), attention inside stages, two
    # residual blocks, batch 2, non-square frames, 13 frames (3 chunks).
    make('attn-b2', {
        'dim': 4, 'z_dim': 4, 'dim_mult': [1, 2, 2, 2], 'num_res_blocks': 2, 'attn_scales': [0.5, 0.25],
        'temperal_downsample': [True, True, False], 'mid_attention': True,
    }, shape=(2, 13, 16, 24), seed=1)
