"""Real MNIST digits for the moving-digit datasets (moving_mnist, bouncing_mnist).

The shipped set is 5,000 genuine 28x28 MNIST digits (500 per class, data/digits/mnist_5k.npz,
see data/LICENSE.md). A user with the full MNIST can point `path` at either the Keras
`mnist.npz` (x_train/y_train/x_test/y_test) or a folder holding the four original idx files.
Files are read as plain arrays only (never unpickled).
"""
import gzip
import os

import numpy as np

from animgen.errors import InputError

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), 'data', 'digits', 'mnist_5k.npz')


def _read_idx(path):
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rb') as f:
    data = f.read()
  magic = int.from_bytes(data[:4], 'big')
  if magic >> 8 != 0x08:  # 0x08 = unsigned byte
    raise InputError(f'{path}: not an idx file of unsigned bytes (magic {magic:#x})')
  ndim = magic & 0xff
  shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder, stem):
  for name in (stem, stem + '.gz', stem.replace('-idx', '.idx'), stem.replace('-idx', '.idx') + '.gz'):
    if os.path.exists(os.path.join(folder, name)):
      return os.path.join(folder, name)
  raise InputError(f'{folder}: no {stem}[.gz]; expected the four original MNIST idx files')


def load_digits(path: str = '', split: str = 'all') -> tuple[np.ndarray, np.ndarray]:
  """-> (images uint8 [N, 28, 28], labels uint8 [N]).

  path '' uses the shipped 5,000 digits (split is ignored: callers split them by index).
  split 'train' / 'test' / 'all' selects from a full MNIST given by path.
  """
  if not path:
    with np.load(SHIPPED, allow_pickle=False) as z:
      return z['images'], z['labels']
  path = os.path.expanduser(path)
  if not os.path.exists(path):
    raise InputError(f'MNIST path {path!r} does not exist: give mnist.npz or the idx folder')
  parts = {'train': ['train'], 'test': ['test'], 'all': ['train', 'test']}[split]
  xs, ys = [], []
  if os.path.isdir(path):
    for p in parts:
      prefix = 'train' if p == 'train' else 't10k'
      xs.append(_read_idx(_find(path, f'{prefix}-images-idx3-ubyte')))
      ys.append(_read_idx(_find(path, f'{prefix}-labels-idx1-ubyte')))
  else:
    try:
      with np.load(path, allow_pickle=False) as z:
        for p in parts:
          xs.append(z[f'x_{p}'])
          ys.append(z[f'y_{p}'])
    except (ValueError, KeyError, OSError) as e:
      raise InputError(f'{path}: not an mnist.npz with x_train/y_train/x_test/y_test ({e})') from None
  x, y = np.concatenate(xs), np.concatenate(ys)
  if x.shape[1:] != (28, 28):
    raise InputError(f'{path}: digits have shape {x.shape[1:]}, expected 28x28')
  return x.astype(np.uint8), y.astype(np.uint8)
