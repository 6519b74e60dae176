#!/usr/bin/python3
"""Writes fixtures/reference/: a small dataset in the reference's layout (HY-Video-PRFL), made with
NumPy so that our .npy reader is checked against the real writer.

  data.list                 one meta path per line (relative to the list), with a comment and a blank line
  meta_v1/<id>_meta_v1.json latent_path, prompt_embed_path, prompt, physics_quality, human_quality
  latents/<id>.npy          PyTorch layout [C, F, H, W] or [1, C, F, H, W], assorted dtypes and versions
  text/<id>.npy             [L, D] or [1, L, D]
  arrays/*.npy              one array per dtype / version / order, values listed in arrays/expected.json

Latent values: v[c, f, h, w] = (((c * 5 + f) * 8 + h) * 8 + w) % 256 / 16 (exact in float16).
Text values:   t[l, d] = (l * 16 + d) / 64 - 1.
Run: /usr/bin/python3 scripts/make-reference-fixture.py (from packages/datasets). CI never needs NumPy.
"""
import json
import os

import numpy as np
from numpy.lib import format as npformat

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'reference')
C, F, H, W = 4, 5, 8, 8
D = 16


def latent(dtype=np.float32):
    c, f, h, w = np.meshgrid(np.arange(C), np.arange(F), np.arange(H), np.arange(W), indexing='ij')
    return (((((c * 5 + f) * 8 + h) * 8 + w) % 256) / 16).astype(dtype)


def text(length, dtype=np.float32):
    l, d = np.meshgrid(np.arange(length), np.arange(D), indexing='ij')
    return ((l * 16 + d) / 64 - 1).astype(dtype)


def save(path, arr, version=(1, 0), fortran=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fortran:
        arr = np.asfortranarray(arr)
    with open(path, 'wb') as fh:
        npformat.write_array(fh, arr, version=version)


def main():
    clips = [
        # id, latent array, version, fortran, text array, physics, human, prompt
        ('clip_a', latent(), (1, 0), False, text(6), 1, 1, 'a red circle moving left'),
        ('clip_b', latent(np.float16)[None], (2, 0), False, text(6, np.float16)[None], 'poor', 'good',
         'a blue square falling'),
        ('clip_c', latent(), (3, 0), True, text(4), 'good', 'good', 'a blue square falling'),
        ('clip_d', latent().astype('>f4'), (1, 0), False, text(6), None, 1, 'a green cross orbiting clockwise'),
        ('clip_e', latent(np.float64), (1, 0), False, text(6), 1, 0, 'a red circle moving left'),
    ]
    lines = ['# meta files of the fixture (comments and blank lines are skipped)', '']
    for cid, lat, version, fortran, txt, physics, human, prompt in clips:
        save(os.path.join(ROOT, 'latents', cid + '.npy'), lat, version, fortran)
        save(os.path.join(ROOT, 'text', cid + '.npy'), txt)
        meta = {
            'prompt': prompt,
            'latent_path': '../latents/' + cid + '.npy',
            'prompt_embed_path': '../text/' + cid + '.npy',
            'physics_quality': physics,
            'human_quality': human,
        }
        os.makedirs(os.path.join(ROOT, 'meta_v1'), exist_ok=True)
        with open(os.path.join(ROOT, 'meta_v1', cid + '_meta_v1.json'), 'w') as fh:
            json.dump(meta, fh, indent=2)
            fh.write('\n')
        lines.append('meta_v1/' + cid + '_meta_v1.json')
    with open(os.path.join(ROOT, 'data.list'), 'w') as fh:
        fh.write('\n'.join(lines) + '\n')

    # The dtype zoo.
    arrays = {
        'f4': np.array([[1.5, -2.25, 3.0], [0.125, 1e-3, -7.0]], np.float32),
        'f2': np.array([1.0, -0.5, 65504.0, 6.1035156e-05, 5.9604645e-08, -0.0], np.float16),
        'f8': np.array([1.0 / 3.0, -2.5, 1e300], np.float64),
        'i8': np.array([[-(2 ** 40), 0], [7, 2 ** 52]], np.int64),
        'i4': np.array([-5, 0, 2 ** 31 - 1], np.int32),
        'u1': np.array([0, 1, 255], np.uint8),
        'b1': np.array([True, False, True, True]),
        'scalar': np.array(2.5, np.float32),
        'empty': np.zeros((0, 3), np.float32),
        'fortran3d': np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        'bigendian': np.array([1.25, -3.5], '>f4'),
        'v2': np.arange(6, dtype=np.float32).reshape(2, 3),
        'v3': np.arange(6, dtype=np.int32).reshape(3, 2),
    }
    expected = {}
    for name, arr in arrays.items():
        version = (2, 0) if name == 'v2' else (3, 0) if name == 'v3' else (1, 0)
        save(os.path.join(ROOT, 'arrays', name + '.npy'), arr, version, fortran=(name == 'fortran3d'))
        values = arr.astype(np.float64).ravel(order='C').tolist()
        expected[name] = {'descr': arr.dtype.str, 'shape': list(arr.shape), 'values': values}
    with open(os.path.join(ROOT, 'arrays', 'expected.json'), 'w') as fh:
        json.dump(expected, fh, indent=1)
        fh.write('\n')


if __name__ == '__main__':
    main()
