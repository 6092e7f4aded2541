"""One-day time-lapse clips for the appearance predictor, thinned as in Endo 2019 Sec. 6.1.

Reads clips from `manual_dir`:
  <manual_dir>/oneday_timelapse/train/<clip>/<frame>.(jpg|jpeg|png)
  <manual_dir>/oneday_timelapse/test/<clip>/...
(`manual_dir` may also be the folder that holds train/ and test/ directly.) Frames of a clip are
ordered by natural file name ('2' before '10').

Sec. 6.1 first samples frames about every 10 minutes of real time; the builder config's
`frame_step` keeps every k-th file for that (1 when the files already are ~10 minutes apart).
It then omits frames whose appearance barely changes: with the mean colour m(I) of a frame
(RGB in [0, 1]), a frame is kept only if sum_c |m_c(I) - m_c(last kept frame)| >= 0.3; the
first frame is always kept. (Sec. 6.1 compares "consecutive frames"; comparing with the last KEPT
frame is our reading, so that a slow drift is not thinned away entirely.) Frames are resized to
size x size (bilinear, aspect not kept, as the official code). Clips with fewer than two kept
frames are skipped; record i of a split holds clip_id i.
"""
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from animgen.datasets import common
from animgen.errors import InputError

MIN_COLOUR_CHANGE = 0.3   # Endo 2019 Sec. 6.1: sum of RGB differences of the mean pixel values
_EXTS = ('.jpg', '.jpeg', '.png')
_LAYOUT = common.ManualLayout(
    'oneday_timelapse', '<manual_dir>/oneday_timelapse/train/<clip>/<frame>.jpg (and test/...)')


@dataclasses.dataclass(eq=False)
class OnedayTimelapseConfig(tfds.core.BuilderConfig):
  size: int = 256
  frame_step: int = 1


def list_clips(split_dir: str):
  """[(clip name, [frame paths])] of the clips with at least one frame, clips and frames in
  natural order."""
  clips = []
  for clip in common.list_folders(split_dir):
    cdir = os.path.join(split_dir, clip)
    files = common.list_files(cdir, _EXTS)
    if files:
      clips.append((clip, [os.path.join(cdir, f) for f in files]))
  return clips


def thin(mean_colours: np.ndarray, threshold: float = MIN_COLOUR_CHANGE) -> list[int]:
  """Indices of the frames kept by Sec. 6.1's colour-change rule, from per-frame mean RGB
  colours [T, 3] in [0, 1]."""
  kept = [0]
  for i in range(1, len(mean_colours)):
    if np.abs(mean_colours[i] - mean_colours[kept[-1]]).sum() >= threshold:
      kept.append(i)
  return kept


def load_clip(paths, size: int, frame_step: int = 1):
  """frames [T, size, size, 3] uint8 of a clip after sampling and thinning, or None."""
  frames = np.stack([common.load_frame(p, size) for p in paths[::frame_step]])
  kept = thin(frames.astype(np.float32).mean(axis=(1, 2)) / 255.0)
  return frames[kept] if len(kept) >= 2 else None


class OnedayTimelapse(tfds.core.GeneratorBasedBuilder):
  """One-day landscape time-lapse clips (user-supplied), thinned for appearance training."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [OnedayTimelapseConfig(name='default', size=256, description='256x256.'),
                     OnedayTimelapseConfig(name='s128', size=128, description='128x128.')]
  DEFAULT_CONFIG_NAME = 'default'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Put one folder of frames per one-day clip so that {_LAYOUT.layout} exists (e.g. frames '
      'extracted every ~10 minutes from day-long time-lapse videos, or the Shih et al. 2013 '
      'time-lapse data) and pass the folder as manual_dir.')

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=common.clip_features(s, pairs=False),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    splits = {}
    for split, folder in _LAYOUT.split_folders(_LAYOUT.manual_dir(dl_manager)).items():
      clips = list_clips(folder)
      if not clips:
        raise _LAYOUT.error(f'no clip folders with frames under {folder}')
      splits[split] = self._generate_examples(split, clips)
    return splits

  def _generate_examples(self, split, clips):
    cfg = self.builder_config
    clip_id = 0
    for _, paths in common.progress(clips, f'oneday_timelapse/{cfg.name} {split}',
                                    unit='clips read'):
      frames = load_clip(paths, cfg.size, cfg.frame_step)
      if frames is None:
        continue
      yield clip_id, {'frames': frames, 'clip_id': np.int64(clip_id)}
      clip_id += 1
    if clip_id == 0:
      raise InputError(f'oneday_timelapse: no {split} clip keeps two frames whose mean colours '
                       f'differ by >= {MIN_COLOUR_CHANGE} (sum over RGB, values in [0, 1])')
