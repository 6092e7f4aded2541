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

from animgen.datasets import common
from animgen.errors import InputError

_LAYOUT = common.ManualLayout(
    'tgif', '<manual_dir>/tgif/train/*.gif and <manual_dir>/tgif/test/*.gif')


@dataclasses.dataclass(eq=False)
class TgifConfig(tfds.core.BuilderConfig):
  size: int = 128
  frames: int = 10
  seed: int = 0


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
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Put GIFs so that {_LAYOUT.layout} exist; pass the folder as manual_dir.')

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
    splits = {}
    for split, folder in _LAYOUT.split_folders(_LAYOUT.manual_dir(dl_manager)).items():
      # plain sorted paths: a GIF's position seeds its frame choice
      files = sorted(glob.glob(os.path.join(folder, '*.gif')))
      if not files:
        raise _LAYOUT.error(f'no .gif files in {folder}')
      splits[split] = self._generate_examples(split, files)
    return splits

  def _generate_examples(self, split, files):
    c = self.builder_config
    kept = 0
    for i, path in common.progress(enumerate(files), f'tgif/{c.name} {split}', len(files),
                                   unit='GIFs read'):
      rng = np.random.default_rng([c.seed, i])
      frames = gif_to_frames(path, c.size, c.frames, rng)
      if frames is None:
        logging.warning('tgif %s: %s has fewer than %d frames: skipped', split, path, c.frames)
        continue
      kept += 1
      yield i, {'frames': frames}
    if not kept:
      raise InputError(f'tgif: none of the {len(files)} {split} GIFs has {c.frames} frames')
