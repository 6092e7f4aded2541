"""TGIF-style GIF folders for Sync-DRAW (Mittal et al. 2017, Sec. 4.4), read from `manual_dir`.

Expected layout (TGIF itself cannot be downloaded here; any GIFs in this layout work):
  <manual_dir>/tgif/train/*.gif
  <manual_dir>/tgif/test/*.gif
(`manual_dir` may also be the folder that holds train/ and test/ directly.)

Each GIF becomes `frames` (10) grayscale frames in [0, 255]: the frames are converted to
grayscale, zero-padded to a square, resized to size x size (128) and `frames` of them are picked
at random, in their order (seeded by the file's position, so the dataset is reproducible).
GIFs with fewer frames are skipped.
"""
import dataclasses
import glob
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from animgen.errors import InputError

_LAYOUT = '<manual_dir>/tgif/train/*.gif and <manual_dir>/tgif/test/*.gif'


@dataclasses.dataclass(eq=False)
class TgifConfig(tfds.core.BuilderConfig):
  size: int = 128
  frames: int = 10
  seed: int = 0


def _layout_error(what: str) -> InputError:
  return InputError(f'tgif: {what}: expected {_LAYOUT}')


def find_root(manual_dir) -> str:
  if not manual_dir or not os.path.isdir(manual_dir):
    raise _layout_error(f'manual_dir {manual_dir} does not exist')
  for root in (os.path.join(manual_dir, 'tgif'), manual_dir):
    if all(os.path.isdir(os.path.join(root, s)) for s in ('train', 'test')):
      return root
  raise _layout_error(f'no train/ and test/ folders in {manual_dir} or '
                      f'{os.path.join(manual_dir, "tgif")}')


def gif_to_frames(path: str, size: int, frames: int, rng) -> np.ndarray | None:
  """One GIF -> uint8 [frames, size, size, 1], or None if it has fewer than `frames` frames."""
  from animgen import media
  from animgen.ops import warp
  import jax.numpy as jnp
  video, _ = media.read_video(path)                                  # [T, H, W, 3] in [0, 1]
  if len(video) < frames:
    return None
  keep = np.sort(rng.choice(len(video), frames, replace=False))      # random, in order
  grey = video[keep] @ np.array([0.299, 0.587, 0.114], np.float32)   # ITU-R 601 luma
  t, h, w = grey.shape
  side = max(h, w)
  top, left = (side - h) // 2, (side - w) // 2
  square = np.zeros((t, side, side), np.float32)
  square[:, top:top + h, left:left + w] = grey                       # pad with zeros
  small = np.asarray(warp.resize(jnp.asarray(square)[..., None], size, size))
  return np.clip(np.round(small * 255), 0, 255).astype(np.uint8)


class Tgif(tfds.core.GeneratorBasedBuilder):
  """TGIF-style GIFs as 10 grayscale 128 x 128 frames (Sec. 4.4)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [TgifConfig(name='default', description='128 x 128, 10 frames.'),
                     TgifConfig(name='tiny', size=32, frames=4, description='tests.')]
  DEFAULT_CONFIG_NAME = 'default'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f'Put GIFs so that {_LAYOUT} exist; pass the folder as manual_dir.'

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            'frames': tfds.features.Tensor(shape=(c.frames, c.size, c.size, 1), dtype=np.uint8),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    manual_dir = getattr(dl_manager, '_manual_dir', None)
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError:   # tfds: missing or empty manual dir
      raise _layout_error(f'manual_dir {manual_dir} does not exist or is empty') from None
    root = find_root(os.fspath(manual_dir))
    splits = {}
    for split in ('train', 'test'):
      files = sorted(glob.glob(os.path.join(root, split, '*.gif')))
      if not files:
        raise _layout_error(f'no .gif files in {os.path.join(root, split)}')
      splits[split] = self._generate_examples(split, files)
    return splits

  def _generate_examples(self, split, files):
    c = self.builder_config
    kept = 0
    for i, path in enumerate(files):
      rng = np.random.default_rng([c.seed, i])
      frames = gif_to_frames(path, c.size, c.frames, rng)
      if frames is None:
        logging.warning('tgif %s: %s has fewer than %d frames: skipped', split, path, c.frames)
        continue
      kept += 1
      yield i, {'frames': frames}
    if not kept:
      raise InputError(f'tgif: none of the {len(files)} {split} GIFs has {c.frames} frames')
