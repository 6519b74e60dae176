#!/usr/bin/python3
"""Writes fixtures/reference/: a small dataset shaped exactly like the output of the reference's
preprocessing (HY-Video-PRFL, scripts/preprocess/gen_wanx_latent.py), made with NumPy so that our
readers are checked against the real writer. Run it from anywhere; it works in packages/datasets, as
the reference works in its repository root, so every path in the files is relative to that folder
(e.g. "fixtures/reference/latents/clip_a.npy"), the way the reference writes and reads them.

  meta_v1/<id>_meta_v1.json  the clip's input entry (source_id, long_caption, short_caption, video_path,
                             labels) updated with vae_latent_path, f1_black_path, imgclip_path,
                             latent_shape, textshort_path, text_states_short_shape, textlong_path,
                             text_states_long_shape (json.dump, indent 4, ensure_ascii=False)
  latents/<id>.npy           VAE latent, float32 [1, C, F, H, W]
  latents/<id>_f1_black.npy  first-frame condition latent, float32 [1, C, F, H, W]
  latents/<id>_img_clip.npy  image tokens, float32 [1, S, D_IMG]
  latents/<id>_textshort.npy text states of the short caption, float32 [1, L, D]
  latents/<id>_textlong.npy  text states of the long caption, float32 [1, L, D]
  data.list                  one meta path per line (every clip)
  lose.list                  the Bradley-Terry losers' list (meta_file_lose_list)
  arrays/*.npy               one array per dtype / version / order, values in arrays/expected.json;
                             arrays/latent_*.npy: latents in other stored forms (float16, float64,
                             big-endian, Fortran order, without the batch dimension)

Labels sit in the input entries (0/1, "good"/"poor", or absent: the reference reads absent as 0).
Values, all exact in float16:
  latent[c, f, h, w]     = (((c * F + f) * H + h) * W + w) % 256 / 16
  f1_black[c, f, h, w]   = latent[c, 0, h, w] if f == 0 else 0
  textshort[l, d]        = (l * D + d) / 32 - 1
  textlong[l, d]         = (l * D + d) / 32 + 0.5
  img_clip[s, d]         = (s * D_IMG + d) / 8 + k (k = the clip's index)
Run: /usr/bin/python3 scripts/make-reference-fixture.py. CI never needs NumPy.
"""
import json
import os
import shutil

import numpy as np
from numpy.lib import format as npformat

PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join('fixtures', 'reference')  # relative to PACKAGE, as the reference's output_base_dir
C, F, H, W = 4, 3, 4, 4
D = 8
S, D_IMG = 3, 8

# (source_id, short caption, long caption, short tokens, long tokens, labels)
CLIPS = [
    ('clip_a', 'a red circle moving left', 'a small red circle glides from the right edge to the left edge',
     6, 9, {'physics_quality': 1, 'human_quality': 1, 'text_alignment': 'good', 'blur_quality': 1}),
    ('clip_b', 'a blue square falling', 'a blue square drops from the top of a grey background',
     6, 9, {'physics_quality': 'poor', 'human_quality': 'good', 'text_alignment': 1}),
    ('clip_c', 'a blue square falling', 'a large blue square falls straight down, café-coloured floor',
     4, 7, {'physics_quality': 'good', 'human_quality': 'good', 'text_alignment': 'poor', 'blur_quality': 'good'}),
    ('clip_d', 'a green cross orbiting clockwise', 'a green cross circles the centre clockwise at an even pace',
     6, 9, {}),
    ('clip_e', 'a red circle moving left', 'a red circle moves left, then jumps back to where it started',
     6, 9, {'physics_quality': 1, 'human_quality': 0, 'text_alignment': 1, 'blur_quality': 0}),
]
LOSERS = ['clip_b', 'clip_d', 'clip_e']


def latent():
    c, f, h, w = np.meshgrid(np.arange(C), np.arange(F), np.arange(H), np.arange(W), indexing='ij')
    return (((((c * F + f) * H + h) * W + w) % 256) / 16).astype(np.float32)


def f1_black():
    z = latent()
    z[:, 1:] = 0
    return z


def text(length, offset):
    l, d = np.meshgrid(np.arange(length), np.arange(D), indexing='ij')
    return ((l * D + d) / 32 + offset).astype(np.float32)


def img_clip(k):
    s, d = np.meshgrid(np.arange(S), np.arange(D_IMG), indexing='ij')
    return ((s * D_IMG + d) / 8 + k).astype(np.float32)


def save(path, arr, version=(1, 0), fortran=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fortran:
        arr = np.asfortranarray(arr)
    with open(path, 'wb') as fh:
        npformat.write_array(fh, arr, version=version)


def write_layout():
    for sub in ('latents', 'meta_v1', 'text'):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    save_latents_dir = os.path.join(OUT, 'latents')
    save_clip_dir = os.path.join(OUT, 'meta_v1')
    os.makedirs(save_latents_dir, exist_ok=True)
    os.makedirs(save_clip_dir, exist_ok=True)
    metas = {}
    for k, (base_name, short, long, n_short, n_long, labels) in enumerate(CLIPS):
        clip_data = {
            'source_id': base_name,
            'long_caption': long,
            'short_caption': short,
            'video_path': os.path.join(OUT, 'videos', base_name + '.mp4'),  # not written; nothing reads it
            **labels,
        }
        # The names and the order of gen_wanx_latent.py.
        vae_latent_path = os.path.join(save_latents_dir, base_name + '.npy')
        f1_black_path = os.path.join(save_latents_dir, base_name + '_f1_black.npy')
        imgclip_path = os.path.join(save_latents_dir, base_name + '_img_clip.npy')
        textshort_path = os.path.join(save_latents_dir, base_name + '_textshort.npy')
        textlong_path = os.path.join(save_latents_dir, base_name + '_textlong.npy')
        latents = latent()[None]
        text_states_short = text(n_short, -1)[None]
        text_states_long = text(n_long, 0.5)[None]
        np.save(vae_latent_path, latents)
        np.save(f1_black_path, f1_black()[None])
        np.save(imgclip_path, img_clip(k)[None])
        np.save(textshort_path, text_states_short)
        np.save(textlong_path, text_states_long)
        dpo_meta_data = clip_data.copy()
        dpo_meta_data.update({
            'vae_latent_path': vae_latent_path,
            'f1_black_path': f1_black_path,
            'imgclip_path': imgclip_path,
            'latent_shape': list(latents.shape),
            'textshort_path': textshort_path,
            'text_states_short_shape': list(text_states_short.shape),
            'textlong_path': textlong_path,
            'text_states_long_shape': list(text_states_long.shape),
        })
        meta_path = os.path.join(save_clip_dir, base_name + '_meta_v1.json')
        with open(meta_path, 'w') as fh:
            json.dump(dpo_meta_data, fh, indent=4, ensure_ascii=False)
        metas[base_name] = meta_path
    with open(os.path.join(OUT, 'data.list'), 'w') as fh:
        fh.write(''.join(metas[c[0]] + '\n' for c in CLIPS))
    with open(os.path.join(OUT, 'lose.list'), 'w') as fh:
        fh.write(''.join(metas[c] + '\n' for c in LOSERS))


def write_arrays():
    lat = latent()
    raw_bool = np.frombuffer(bytes([1, 154, 0, 255]), dtype=np.uint8).view(np.bool_)
    arrays = {
        'f4': (np.array([[1.5, -2.25, 3.0], [0.125, 1e-3, -7.0]], np.float32), (1, 0), False),
        'f2': (np.array([1.0, -0.5, 65504.0, 6.1035156e-05, 5.9604645e-08, -0.0], np.float16), (1, 0), False),
        'f8': (np.array([1.0 / 3.0, -2.5, 1e300], np.float64), (1, 0), False),
        'i8': (np.array([[-(2 ** 40), 0], [7, 2 ** 52]], np.int64), (1, 0), False),
        'i4': (np.array([-5, 0, 2 ** 31 - 1], np.int32), (1, 0), False),
        'u1': (np.array([0, 1, 255], np.uint8), (1, 0), False),
        'b1': (np.array([True, False, True, True]), (1, 0), False),
        # A bool array whose bytes are not 0/1 (a view of raw bytes): NumPy reads any nonzero byte as True.
        'b1_raw': (raw_bool, (1, 0), False),
        'scalar': (np.array(2.5, np.float32), (1, 0), False),
        'empty': (np.zeros((0, 3), np.float32), (1, 0), False),
        'fortran3d': (np.arange(24, dtype=np.float32).reshape(2, 3, 4), (1, 0), True),
        'bigendian': (np.array([1.25, -3.5], '>f4'), (1, 0), False),
        'v2': (np.arange(6, dtype=np.float32).reshape(2, 3), (2, 0), False),
        'v3': (np.arange(6, dtype=np.int32).reshape(3, 2), (3, 0), False),
        # Latents in other stored forms than the reference's own (float32 [1, C, F, H, W], version 1.0).
        'latent_f2_v2': (lat.astype(np.float16)[None], (2, 0), False),
        'latent_cfhw_fortran_v3': (lat, (3, 0), True),
        'latent_bigendian': (lat.astype('>f4')[None], (1, 0), False),
        'latent_f8': (lat.astype(np.float64), (1, 0), False),
    }
    expected = {}
    for name, (arr, version, fortran) in arrays.items():
        save(os.path.join(OUT, 'arrays', name + '.npy'), arr, version, fortran)
        if name.startswith('latent_'):
            continue  # the tests check latents against the formula
        values = arr.astype(np.float64).ravel(order='C').tolist()
        expected[name] = {'descr': arr.dtype.str, 'shape': list(arr.shape), 'values': values}
    with open(os.path.join(OUT, 'arrays', 'expected.json'), 'w') as fh:
        json.dump(expected, fh, indent=1)
        fh.write('\n')


def main():
    os.chdir(PACKAGE)
    write_layout()
    write_arrays()


if __name__ == '__main__':
    main()
