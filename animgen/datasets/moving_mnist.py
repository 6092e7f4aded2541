"""Moving MNIST (Srivastava et al. 2015), with the speeds of the script DeepGIFs used (Sec. 3.1).

Two 28x28 MNIST digits move in a 64x64 frame for 20 frames. Each digit gets a direction
uniform in [-pi, pi) and an integer speed of 2-6 px/frame (the Tencia Lee script DeepGIFs
adapted). At a wall the position is clamped to the frame and that velocity component reflected
(the original Moving MNIST), so digits never leave the frame. Digits are summed and clipped to
255 as the Tencia Lee script DeepGIFs used (all configs but `max`), or combined by pixelwise
maximum as the original Moving MNIST (`max`).

Digits: the 5,000 real MNIST digits shipped in data/digits (animgen.datasets.digits), 450 per
class for train and the other 50 per class for test, so train and test never share a digit
image. The `full` config reads a full MNIST (Keras mnist.npz or the four idx files) from
`manual_dir` and uses its own train / test splits; `mnist_path` does the same for a builder
made in code (make_builder(data_dir, 'default', mnist_path=...)).
"""
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from animgen.datasets import common
from animgen.datasets import digits as digits_lib
from animgen.errors import InputError

_SHIPPED_TEST_PER_CLASS = 50   # of the 500 shipped digits per class
_LAYOUT = common.ManualLayout(
    'moving_mnist', '<manual_dir>/mnist.npz (Keras: x_train, y_train, x_test, y_test) or the four '
    'MNIST idx files in <manual_dir> (train-images-idx3-ubyte[.gz], ...); only the full config '
    'reads manual_dir')


def digit_trajectories(rng: np.random.Generator, num_digits: int, frames: int, limit: int,
                       speed_min: int = 2, speed_max: int = 6):
  """Top-left corners of each digit -> (positions, velocities), each float [T, n, 2] (x, y).

  Start uniform in [0, limit]^2; velocity = integer speed in [speed_min, speed_max] times a
  random unit direction; a step past 0 or `limit` clamps the position there and negates that
  velocity component (clamp-and-reflect).
  """
  theta = rng.uniform(-np.pi, np.pi, num_digits)
  speed = rng.integers(speed_min, speed_max + 1, num_digits).astype(np.float64)
  v = np.stack([speed * np.cos(theta), speed * np.sin(theta)], axis=-1)
  x = rng.uniform(0, limit, (num_digits, 2))
  pos, vel = np.empty((frames, num_digits, 2)), np.empty((frames, num_digits, 2))
  for t in range(frames):
    pos[t], vel[t] = x, v
    x = x + v
    out = (x < 0) | (x > limit)
    x = np.clip(x, 0, limit)
    v = np.where(out, -v, v)
  return pos, vel


def compose(digit_images: np.ndarray, positions: np.ndarray, size: int = 64,
            additive: bool = True) -> np.ndarray:
  """digit_images uint8 [n, d, d], positions [T, n, 2] (x, y corners) -> uint8 [T, size, size].

  Corners are rounded to whole pixels; overlapping digits combine by a sum clipped to 255 (the
  DeepGIFs script's additive overlap), or by maximum when not `additive` (original Moving
  MNIST)."""
  n, d, _ = digit_images.shape
  frames = np.zeros((positions.shape[0], size, size), np.int32)
  corners = np.round(positions).astype(np.int64)
  for t in range(positions.shape[0]):
    for i in range(n):
      x, y = corners[t, i]
      window = frames[t, y:y + d, x:x + d]
      if additive:
        window += digit_images[i]
      else:
        np.maximum(window, digit_images[i], out=window)
  return np.minimum(frames, 255).astype(np.uint8)


def split_mask(labels: np.ndarray, split: str,
               test_per_class: int = _SHIPPED_TEST_PER_CLASS) -> np.ndarray:
  """Which shipped digits belong to `split`: the last `test_per_class` of each class are test."""
  keep = np.zeros(len(labels), bool)
  for k in np.unique(labels):
    idx = np.flatnonzero(labels == k)
    keep[idx[-test_per_class:] if split == 'test' else idx[:-test_per_class]] = True
  return keep


@dataclasses.dataclass(eq=False)
class MovingMnistConfig(tfds.core.BuilderConfig):
  """Frames T, frame size, digits per clip, speed range (px/frame), overlap rule, clips per
  split, seed, and an optional full-MNIST file or folder (mnist_path; '' = shipped digits)."""
  frames: int = 20
  size: int = 64
  num_digits: int = 2
  speed_min: int = 2
  speed_max: int = 6
  additive: bool = True       # DeepGIFs' (Tencia Lee) script adds the digits
  train_clips: int = 8000
  test_clips: int = 800
  seed: int = 0
  mnist_path: str = ''
  from_manual_dir: bool = False


CONFIGS = {
    'default': MovingMnistConfig(name='default',
                                 description='2 digits, additive overlap clipped to 255 '
                                             '(DeepGIFs\' script), 8000 / 800 clips.'),
    'max': MovingMnistConfig(name='max', additive=False,
                             description='2 digits, max overlap (original Moving MNIST), '
                                         '8000 / 800 clips.'),
    'full': MovingMnistConfig(name='full', train_clips=80_000, test_clips=10_000,
                              from_manual_dir=True,
                              description='Full MNIST from manual_dir, DeepGIFs sizes 80000 / '
                                          '10000 (7.2 GB).'),
    'tiny': MovingMnistConfig(name='tiny', frames=6, train_clips=16, test_clips=8,
                              description='2 digits, 6 frames, 16 / 8 clips (tests).'),
}


class MovingMnist(tfds.core.GeneratorBasedBuilder):
  """Two MNIST digits bouncing in 64x64 for 20 frames."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': 'default, full and tiny add the digits (clipped to 255) as the '
                            'DeepGIFs script; max overlap moved to the `max` config.'}
  BUILDER_CONFIGS = list(CONFIGS.values())
  DEFAULT_CONFIG_NAME = 'default'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f'Put the full MNIST in manual_dir: {_LAYOUT.layout}.'

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            'frames': tfds.features.Tensor(shape=(c.frames, c.size, c.size, 1), dtype=np.uint8),
            'positions': tfds.features.Tensor(shape=(c.frames, c.num_digits, 2),
                                              dtype=np.float32),
            'labels': tfds.features.Tensor(shape=(c.num_digits,), dtype=np.int64),
        }),
        disable_shuffling=True,
    )

  def _digits(self, split: str, dl_manager):
    c = self.builder_config
    path = c.mnist_path
    if c.from_manual_dir:
      path = _mnist_in(_LAYOUT.manual_dir(dl_manager))
    if path:
      return digits_lib.load_digits(path, split)
    images, labels = digits_lib.load_digits()
    keep = split_mask(labels, split)
    return images[keep], labels[keep]

  def _split_generators(self, dl_manager):
    c = self.builder_config
    if c.size < 28 or c.frames < 2 or not 1 <= c.speed_min <= c.speed_max:
      raise ValueError(f'moving_mnist config {c.name!r}: need size >= 28, frames >= 2 and '
                       '1 <= speed_min <= speed_max')
    return common.generated_splits(
        self, {'train': c.train_clips, 'test': c.test_clips},
        lambda split, n: self._generate_examples(split, n, *self._digits(split, dl_manager)))

  def _generate_examples(self, split, num_clips, images, labels):
    c = self.builder_config
    for i in range(num_clips):
      rng = common.split_rng(c.seed, split, i)
      pick = rng.integers(0, len(images), c.num_digits)
      pos, _ = digit_trajectories(rng, c.num_digits, c.frames, c.size - 28, c.speed_min,
                                  c.speed_max)
      frames = compose(images[pick], pos, c.size, c.additive)
      yield i, {'frames': frames[..., None], 'positions': pos.astype(np.float32),
                'labels': labels[pick].astype(np.int64)}


def _mnist_in(manual_dir) -> str:
  """The MNIST file or folder inside manual_dir (mnist.npz, or the idx files themselves)."""
  folder = _LAYOUT.check_dir(manual_dir)
  npz = os.path.join(folder, 'mnist.npz')
  return npz if os.path.exists(npz) else folder


def make_builder(data_dir, name: str = 'default', **overrides) -> MovingMnist:
  """Builder for config `name` with fields overridden (e.g. mnist_path='~/mnist.npz',
  train_clips=1000); an overridden config is stored under a name that encodes its fields."""
  if name not in CONFIGS:
    raise InputError(f'unknown moving_mnist config {name!r}; known: {sorted(CONFIGS)}')
  config = CONFIGS[name]
  if overrides:
    config = dataclasses.replace(config, **overrides)
    tag = '_'.join(f'{k}{os.path.basename(str(v)).replace(".", "")}'
                   for k, v in sorted(overrides.items()))
    config = dataclasses.replace(config, name=f'{name}_{tag}', description=f'{name} {overrides}')
  return MovingMnist(data_dir=data_dir, config=config, file_format='array_record')
