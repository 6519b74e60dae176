#!/usr/bin/python3
"""A PEFT-named LoRA file for @prfl/refl's loader test, and what PyTorch computes with it.

Starts from @prfl/models' tiny-t2v Wan DiT fixture (its bf16 weights, and the independent PyTorch
transcription of WanModel in packages/models/scripts/make-dit-fixtures.py), and wraps the target Linear
layers as PEFT's LoRA does (peft/tuners/lora/layer.py, class Linear):

    base_layer                      the original nn.Linear
    lora_A = {'default': nn.Linear(in, r, bias=False)}     weight [r, in]
    lora_B = {'default': nn.Linear(r, out, bias=False)}    weight [out, r]
    scaling = lora_alpha / r
    forward(x) = base_layer(x) + lora_B(lora_A(x)) * scaling

under a PeftModel-like root (`base_model.model.<Wan module>`). Target modules are matched by PEFT's rule
(name == entry or name ends with '.' + entry), so 'q' takes both self_attn.q and cross_attn.q. A and B are
seeded random values (B non-zero, so the adapters change the output), rounded to bfloat16 so the stored
file is exact. The saved keys are get_peft_model_state_dict's: the PeftModel's parameter names that hold
'lora_', with the adapter name '.default' removed, e.g. base_model.model.blocks.0.self_attn.q.lora_A.weight
(what the reference's save_lora_checkpoint writes and its resume_lora_path reads).

Writes into packages/refl/fixtures/lora/peft-tiny-t2v/:
  pytorch_lora_transformers_weights.safetensors   the adapters, BF16
  adapter_config.json                             the LoraConfig fields save_pretrained writes
  expected.safetensors                            float32: the inputs (x channels-last, timesteps, text),
                                                  `velocity` of the adapted model, `velocity_merged` of a
                                                  plain WanModel holding W + (alpha / r) B A, and three of
                                                  those merged weights as `merged.<module>.weight` (torch
                                                  layout)

Run: /usr/bin/python3 packages/refl/scripts/make-lora-fixture.py   (PyTorch 1.13 + numpy; CI does not run it)
"""
import importlib.util
import json
import math
import os

import torch
import torch.nn as nn

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..', '..')
OUT = os.path.join(HERE, '..', 'fixtures', 'lora', 'peft-tiny-t2v')
DIT = os.path.join(ROOT, 'models', 'fixtures', 'dit', 'tiny-t2v')

# One transcription of WanModel for the whole repository: @prfl/models' fixture script.
_spec = importlib.util.spec_from_file_location('wan_fixtures', os.path.join(ROOT, 'models', 'scripts',
                                                                             'make-dit-fixtures.py'))
wan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wan)

R = 4
ALPHA = 8  # scaling 2: a wrong alpha / r shows
TARGET_MODULES = ['q', 'k', 'v', 'o', 'ffn.0']
SEED = 2025
# Merged weights stored for the test (a few, to keep the fixture small): self- and cross-attention, FFN.
MERGED_KEPT = ['blocks.0.self_attn.q', 'blocks.3.cross_attn.o', 'blocks.1.ffn.0']


class LoraLinear(nn.Module):
    """The parts of peft.tuners.lora.layer.Linear that define its parameters' names and its forward."""

    def __init__(self, base_layer, r, alpha):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.ModuleDict({'default': nn.Linear(base_layer.in_features, r, bias=False)})
        self.lora_B = nn.ModuleDict({'default': nn.Linear(r, base_layer.out_features, bias=False)})
        self.scaling = {'default': alpha / r}

    def forward(self, x):
        result = self.base_layer(x)
        return result + self.lora_B['default'](self.lora_A['default'](x)) * self.scaling['default']


class LoraModel(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model


class PeftModel(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.base_model = LoraModel(model)

    def forward(self, *args):
        return self.base_model.model(*args)


def check_target_module_exists(target_modules, key):
    """PEFT's rule for a list of target modules (no layers_to_transform)."""
    return key in target_modules or any(key.endswith(f'.{t}') for t in target_modules)


def bf16(t):
    return t.to(torch.bfloat16).to(torch.float32)


def main():
    with open(os.path.join(DIT, 'config.json')) as f:
        cfg = {k: v for k, v in json.load(f).items() if not k.startswith('_')}
    state = wan.read_safetensors(os.path.join(DIT, 'diffusion_pytorch_model.safetensors'))
    io = wan.read_safetensors(os.path.join(DIT, 'io.safetensors'))
    x = io['x'].permute(0, 4, 1, 2, 3).contiguous()
    t = io['timesteps']
    text = io['text']

    model = wan.WanModel(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    targets = [name for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and check_target_module_exists(TARGET_MODULES, name)]
    g = torch.Generator().manual_seed(SEED)
    for name in targets:
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name)
        wrapped = LoraLinear(getattr(parent, child), R, ALPHA)
        with torch.no_grad():
            a = wrapped.lora_A['default'].weight
            bound = 1 / math.sqrt(a.shape[1])
            a.copy_(bf16((torch.rand(a.shape, generator=g) * 2 - 1) * bound))
            b = wrapped.lora_B['default'].weight
            b.copy_(bf16(torch.randn(b.shape, generator=g) * 0.1))
        setattr(parent, child, wrapped)
    peft = PeftModel(model)

    # get_peft_model_state_dict: the 'lora_' entries, adapter name removed.
    lora_state = {k.replace('.default', ''): v.detach().clone()
                  for k, v in peft.state_dict().items() if 'lora_' in k}
    with torch.no_grad():
        velocity = wan.channels_last(peft(x, t, text))

    # The merged transcription: W + (alpha / r) B A in a plain WanModel.
    merged_state = dict(state)
    merged = {}
    for name in targets:
        a = lora_state[f'base_model.model.{name}.lora_A.weight']
        b = lora_state[f'base_model.model.{name}.lora_B.weight']
        w = state[f'{name}.weight'] + (ALPHA / R) * (b @ a)
        merged_state[f'{name}.weight'] = w
        if name in MERGED_KEPT:
            merged[f'merged.{name}.weight'] = w
    plain = wan.WanModel(cfg)
    plain.load_state_dict(merged_state, strict=True)
    plain.eval()
    with torch.no_grad():
        velocity_merged = wan.channels_last(plain(x, t, text))
    diff = (velocity - velocity_merged).abs().max().item()
    change = (velocity - io['velocity']).abs().max().item()
    print(f'{len(targets)} adapted layers; max |adapted - merged| = {diff:.3g}; '
          f'max |adapted - base| = {change:.3g} (max |v| = {velocity.abs().max().item():.3g})')
    assert diff < 1e-4 and change > 0.1

    os.makedirs(OUT, exist_ok=True)
    wan.write_safetensors(os.path.join(OUT, 'pytorch_lora_transformers_weights.safetensors'), lora_state,
                          'BF16', {'format': 'pt'})
    expected = {'x': io['x'], 'timesteps': t, 'text': text, 'velocity': velocity,
                'velocity_merged': velocity_merged, **merged}
    wan.write_safetensors(os.path.join(OUT, 'expected.safetensors'), expected, 'F32')
    config = {
        'alpha_pattern': {}, 'base_model_name_or_path': None, 'bias': 'none', 'fan_in_fan_out': False,
        'inference_mode': True, 'init_lora_weights': True, 'layers_pattern': None, 'layers_to_transform': None,
        'lora_alpha': ALPHA, 'lora_dropout': 0.0, 'modules_to_save': None, 'peft_type': 'LORA', 'r': R,
        'rank_pattern': {}, 'revision': None, 'target_modules': TARGET_MODULES, 'task_type': None,
        'use_dora': False, 'use_rslora': False,
    }
    with open(os.path.join(OUT, 'adapter_config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
