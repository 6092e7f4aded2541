"""Bouncing MNIST GIFs with captions (Mittal et al. 2017, Sec. 4.2, 4.3, 4.5).

Each GIF has `frames` frames of size x size (10 of 64 x 64 in the paper) with one or two 28 x 28
real MNIST digits (animgen/datasets/digits.py), each moving either left and right or up and
down from a random start, bouncing off the borders. Overlapping digits are added and clipped to
1 (Sec. 4.3, footnote 2; the public code took the maximum). Speed: the public dataset script's
step 0.1 times its speed 2, i.e. 0.2 of the free range per frame (7.2 px at 64 px with 28 px
digits).

Every GIF carries its caption, e.g. 'the digit 3 is moving left and right' or
'the digit 0 is moving up and down and digit 1 is moving left and right', as token ids of the
fixed vocabulary VOCAB (0 pads), and the ground-truth digits and motions (-1 where absent).

Splits are disjoint in (digit, motion) (Sec. 4.5): digit d moves with motion d % 2 in train
and with the other motion in test (0 = left and right, 1 = up and down); a two-digit GIF
belongs to a split only if both of its (digit, motion) pairs do. Train GIFs use the first 80 %
of each class's shipped digit images, test GIFs the last 20 %.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from animgen.captions import (MOTIONS, VOCAB, caption_length, caption_text,  # noqa: F401
                              detokenize, split_motion, tokenize)
from animgen.datasets import common

__all__ = ['BouncingMnist', 'BouncingMnistConfig', 'CONFIGS', 'MOTIONS', 'SPEED', 'STEP', 'VOCAB',
           'caption_length', 'caption_text', 'detokenize', 'digit_images', 'make_gif',
           'render_gif', 'split_motion', 'tokenize', 'trajectory']   # captions re-exported

_TRAIN_SHARE = 0.8
STEP, SPEED = 0.1, 2   # public script step 0.1 x speed 2 (of the free range) per frame


@dataclasses.dataclass(eq=False)
class BouncingMnistConfig(tfds.core.BuilderConfig):
  """digits: 1 or 2 per GIF; size: frame side; frames: N; digit_size: side of a digit."""
  digits: int = 1
  size: int = 64
  frames: int = 10
  digit_size: int = 28
  train_gifs: int = 12_000
  test_gifs: int = 2_000
  seed: int = 0


CONFIGS = {
    'single_digit': BouncingMnistConfig(
        name='single_digit', digits=1, description='Sec. 4.2: 12,000 / 2,000 GIFs, one digit.'),
    'two_digit': BouncingMnistConfig(
        name='two_digit', digits=2, description='Sec. 4.3: 12,000 / 2,000 GIFs, two digits.'),
    'single_digit_tiny': BouncingMnistConfig(
        name='single_digit_tiny', digits=1, size=32, frames=4, digit_size=14, train_gifs=32,
        test_gifs=16, description='tests: 32 px, 4 frames, 14 px digits.'),
    'two_digit_tiny': BouncingMnistConfig(
        name='two_digit_tiny', digits=2, size=32, frames=4, digit_size=14, train_gifs=32,
        test_gifs=16, description='tests: 32 px, 4 frames, two 14 px digits.'),
}


def digit_images(split: str, digit_size: int = 28):
  """The shipped digits of a split as float [N, s, s] in [0, 1] and labels [N]."""
  from animgen.datasets.digits import load_digits
  images, labels = load_digits()
  keep = []
  for d in range(10):
    idx = np.flatnonzero(labels == d)
    cut = int(round(_TRAIN_SHARE * len(idx)))
    keep.append(idx[:cut] if split == 'train' else idx[cut:])
  keep = np.concatenate(keep)
  images = images[keep].astype(np.float32) / 255.0
  if digit_size != images.shape[1]:
    from PIL import Image
    images = np.stack([np.asarray(Image.fromarray(im).resize((digit_size, digit_size),
                                                             Image.BILINEAR)) for im in images])
  return images, labels[keep].astype(np.int32)


def trajectory(rng, frames: int, free: int, speed: float):
  """Positions [frames] along one axis in [0, free], from a random start at `speed` px/frame
  with a random sign, reflecting at both ends."""
  pos = rng.uniform(0, free)
  vel = speed * rng.choice([-1.0, 1.0])
  out = np.empty(frames)
  for t in range(frames):
    out[t] = pos
    pos += vel
    if pos < 0 or pos > free:
      vel = -vel
      pos = -pos if pos < 0 else 2 * free - pos
  return np.round(out).astype(int)


def render_gif(rng, images, motions, frames: int, size: int) -> np.ndarray:
  """Digits [D, s, s] in [0, 1] with motions [D] -> float GIF [frames, size, size] in [0, 1]."""
  s = images.shape[-1]
  free = size - s
  out = np.zeros((frames, size, size), np.float32)
  for im, m in zip(images, motions):
    moving = trajectory(rng, frames, free, STEP * SPEED * free)   # 7.2 px at 64 - 28
    fixed = np.full(frames, int(rng.integers(0, free + 1)))
    ys, xs = (fixed, moving) if m == 0 else (moving, fixed)
    for t in range(frames):
      out[t, ys[t]:ys[t] + s, xs[t]:xs[t] + s] += im
  return np.minimum(out, 1.0)


def make_gif(rng, split: str, num_digits: int, images, labels, frames: int, size: int,
             motions=None):
  """One GIF of `split`: random digit classes (motions by split_motion unless given) and
  images. Returns (uint8 [frames, size, size, 1], digits [2], motions [2])."""
  classes = rng.integers(0, 10, num_digits)
  if motions is None:
    motions = [split_motion(int(d), split) for d in classes]
  picks = [rng.choice(np.flatnonzero(labels == d)) for d in classes]
  gif = render_gif(rng, images[picks], motions, frames, size)
  pad = lambda v: np.array(list(v) + [-1] * (2 - len(v)), np.int32)
  return (np.round(gif * 255).astype(np.uint8)[..., None], pad(classes), pad(motions))


class BouncingMnist(tfds.core.GeneratorBasedBuilder):
  """Bouncing MNIST GIFs (one or two digits) with captions and (digit, motion)-disjoint splits."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': 'Speed 0.2 of the free range per frame (step 0.1 x speed 2 as the '
                            'public script), was 0.1.'}
  BUILDER_CONFIGS = list(CONFIGS.values())
  DEFAULT_CONFIG_NAME = 'single_digit'

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            'frames': tfds.features.Tensor(shape=(c.frames, c.size, c.size, 1), dtype=np.uint8),
            'caption': tfds.features.Tensor(shape=(caption_length(c.digits),), dtype=np.int32),
            'digits': tfds.features.Tensor(shape=(2,), dtype=np.int32),
            'motions': tfds.features.Tensor(shape=(2,), dtype=np.int32),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    c = self.builder_config
    return common.generated_splits(self, {'train': c.train_gifs, 'test': c.test_gifs},
                                   unit='GIFs')

  def _generate_examples(self, split: str, count: int):
    c = self.builder_config
    images, labels = digit_images(split, c.digit_size)
    rng = common.split_rng(c.seed, split)   # one stream for the whole split
    for i in range(count):
      frames, digits, motions = make_gif(rng, split, c.digits, images, labels, c.frames, c.size)
      n = c.digits
      caption = tokenize(caption_text(digits[:n], motions[:n]), caption_length(n))
      yield i, {'frames': frames, 'caption': caption, 'digits': digits, 'motions': motions}
