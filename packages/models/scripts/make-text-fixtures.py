#!/usr/bin/python3
"""Small .npy files written by NumPy itself, for the .npy reader's tests (fixtures/text/).

The values are arange-based, so the tests can check them without reading another file:
  emb_f4.npy        float32 [1, 5, 8]: value i * 0.25 - 3 at flat index i, rows 3 and 4 zero (padding)
  emb_f2.npy        float16 [3, 8]: (i - 12) / 8
  emb_f8_v2.npy     float64 [2, 4]: i * 1.5, format version 2.0
  mask_b1.npy       bool [1, 5]: True, True, False, True, False
  mask_i8.npy       int64 [5]: 1, 1, 1, 0, 0
  fortran.npy       float32 [2, 3] in Fortran order (refused)
  big_endian.npy    >f4 [4] (refused)

Run: /usr/bin/python3 packages/models/scripts/make-text-fixtures.py
"""
import os

import numpy as np
from numpy.lib import format as npformat

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'text')
os.makedirs(OUT, exist_ok=True)

e = (np.arange(40, dtype=np.float32) * 0.25 - 3).reshape(1, 5, 8)
e[0, 3:] = 0
np.save(os.path.join(OUT, 'emb_f4.npy'), e)
np.save(os.path.join(OUT, 'emb_f2.npy'), ((np.arange(24) - 12) / 8).astype(np.float16).reshape(3, 8))
with open(os.path.join(OUT, 'emb_f8_v2.npy'), 'wb') as f:
    npformat.write_array(f, (np.arange(8) * 1.5).reshape(2, 4), version=(2, 0))
np.save(os.path.join(OUT, 'mask_b1.npy'), np.array([[True, True, False, True, False]]))
np.save(os.path.join(OUT, 'mask_i8.npy'), np.array([1, 1, 1, 0, 0], dtype=np.int64))
np.save(os.path.join(OUT, 'fortran.npy'), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save(os.path.join(OUT, 'big_endian.npy'), np.arange(4, dtype='>f4'))
print(sorted(os.listdir(OUT)))
