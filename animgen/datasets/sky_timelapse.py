"""Sky Timelapse (Xiong et al. 2018) videos with the pair filter of Endo 2019 Sec. 6.1.

Reads the extracted dataset from `manual_dir`:
  <manual_dir>/sky_timelapse/sky_train/<video_id>/<clip#>/<video_id>_frames_XXXXXXXX.jpg
  <manual_dir>/sky_timelapse/sky_test/...
(`manual_dir` may also be the folder that holds sky_train/ and sky_test/ directly.)

One example = one VIDEO, not one <clip#> folder: Sky Timelapse splits each of its ~1.8k videos
into ~35k 32-frame clip folders whose frame numbers XXXXXXXX run on across the folders of a
video, and Endo 2019 Sec. 6.1 trains on 1,825 clips (224 test) of 227 frames on average, i.e.
on whole videos; gaps between clip folders are what their "numbers differ by exactly 2" pair
rule guards against.

Per video: the frames of all its clip folders (clip folders in natural name order, files by
name) merged and sorted by number, exact duplicate numbers dropped (the first one kept), every
other frame kept, each resized to size x size (PIL bilinear, aspect not kept). Pair (t, t+1) of
the kept frames is valid (`pair_ok`) iff their numbers differ by exactly 2 and the mean absolute
difference of the two resized uint8 frames, in [0, 1], is >= 0.02. Videos with fewer than two
kept frames or no valid pair are skipped; `clip_id` numbers the remaining videos 0..N-1 in
sorted video_id order, and record i of a split holds clip_id i.
"""
import concurrent.futures
import dataclasses
import os
import re

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from animgen.datasets import common
from animgen.errors import InputError

MIN_MEAN_ABS_DIFF = common.MIN_MEAN_ABS_DIFF   # Endo 2019 Sec. 6.1
FRAME_STEP = 2             # every other frame
_FRAME_RE = re.compile(r'_frames_(\d+)\.jpe?g$', re.IGNORECASE)
_LAYOUT = common.ManualLayout(
    'sky_timelapse',
    '<manual_dir>/sky_timelapse/sky_train/<video>/<clip>/<video>_frames_XXXXXXXX.jpg '
    '(and sky_test/...)',
    split_dirs={'train': 'sky_train', 'test': 'sky_test'})


@dataclasses.dataclass(eq=False)
class SkyTimelapseConfig(tfds.core.BuilderConfig):
  size: int = 256


def frame_number(filename: str):
  """XXXXXXXX of '<video>_frames_XXXXXXXX.jpg' as int, or None for other files."""
  m = _FRAME_RE.search(filename)
  return int(m.group(1)) if m else None


def merge_frames(clips):
  """[(frame_number, path)] sorted by number, from per-clip-folder frame lists given in clip
  folder order; of frames with the same number only the first one is kept."""
  merged = {}
  for frames in clips:
    for n, path in frames:
      merged.setdefault(n, path)
  return sorted(merged.items())


def list_videos(split_dir: str):
  """[(video_id, [(frame_number, path), ...])] of videos with >= 1 frame, by plain sorted
  video_id (which fixes the clip ids); a video's frames are those of all its clip folders, taken
  in natural order ('2' before '10') and merged by `merge_frames`."""
  videos = []
  for video in sorted(os.listdir(split_dir)):
    vdir = os.path.join(split_dir, video)
    if not os.path.isdir(vdir):
      continue
    clips = []
    for clip in common.list_folders(vdir):
      cdir = os.path.join(vdir, clip)
      clips.append(sorted((n, os.path.join(cdir, f)) for f in os.listdir(cdir)
                          if (n := frame_number(f)) is not None))
    frames = merge_frames(clips)
    if frames:
      videos.append((video, frames))
  return videos


def pair_filter(numbers, frames: np.ndarray) -> np.ndarray:
  """pair_ok [T-1] for kept frame numbers [T] and frames [T, H, W, 3] uint8 (Endo 2019 Sec. 6.1)."""
  return common.pair_filter(numbers, frames, FRAME_STEP)


def load_video(frames, size: int, pool=None):
  """(numbers, frames [T, size, size, 3] uint8, pair_ok [T-1]) of every other frame of a
  video's merged `frames`, or None if it has no valid pair; `pool` decodes frames in parallel."""
  return _finish(_start(frames, size, pool))


def _start(frames, size: int, pool=None):
  kept = frames[::FRAME_STEP]
  if len(kept) < 2:
    return None
  numbers = [n for n, _ in kept]
  if pool is None:
    return numbers, [common.load_frame(p, size) for _, p in kept]
  return numbers, [pool.submit(common.load_frame, p, size) for _, p in kept]


def _finish(started):
  if started is None:
    return None
  numbers, images = started
  images = np.stack([f.result() if isinstance(f, concurrent.futures.Future) else f
                     for f in images])
  ok = pair_filter(numbers, images)
  if not ok.any():
    return None
  return numbers, images, ok


class SkyTimelapse(tfds.core.GeneratorBasedBuilder):
  """Sky Timelapse videos, every other frame, with Endo 2019 pair validity."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release.',
      '1.1.0': 'One example per video (all clip folders merged by frame number, duplicates '
               'dropped), not per 32-frame clip folder, as in Endo 2019 Sec. 6.1.',
  }
  BUILDER_CONFIGS = [SkyTimelapseConfig(name='default', size=256, description='256x256 frames.'),
                     SkyTimelapseConfig(name='s128', size=128, description='128x128 frames.')]
  DEFAULT_CONFIG_NAME = 'default'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Download Sky Timelapse (github.com/weixiong-ur/mdgan) and extract it so that '
      f'{_LAYOUT.layout} exists; pass the folder as manual_dir '
      '(tfds.download.DownloadConfig(manual_dir=...)).')

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=common.clip_features(s),
        homepage='https://github.com/weixiong-ur/mdgan',
        disable_shuffling=True,  # record i holds clip_id i
    )

  def _split_generators(self, dl_manager):
    splits = {}
    for split, folder in _LAYOUT.split_folders(_LAYOUT.manual_dir(dl_manager)).items():
      videos = list_videos(folder)
      if not videos:
        raise _LAYOUT.error(f'no clips with <video>_frames_N.jpg frames under {folder}')
      splits[split] = self._generate_examples(split, videos)
    return splits

  def _generate_examples(self, split: str, videos):
    c = self.builder_config
    size = c.size
    workers = max(1, min(8, os.cpu_count() or 1))
    # The pool decodes the frames of one video while the previous one is being written, so at
    # most two videos (a few tens of MB each at 256 px) are in memory.
    clip_id = skipped = 0
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      started = _start(videos[0][1], size, pool)
      for i in common.progress(range(len(videos)), f'sky_timelapse/{c.name} {split}',
                               unit='videos read', times=20):
        current = started
        started = _start(videos[i + 1][1], size, pool) if i + 1 < len(videos) else None
        loaded = _finish(current)
        if loaded is None:
          skipped += 1
        else:
          _, images, ok = loaded
          yield clip_id, {'frames': images, 'pair_ok': ok, 'clip_id': np.int64(clip_id)}
          clip_id += 1
    if clip_id == 0:
      raise InputError(f'sky_timelapse: none of the {len(videos)} {split} clips has two frames '
                       f'{FRAME_STEP} apart with mean abs difference >= {MIN_MEAN_ABS_DIFF}')
    logging.info('sky_timelapse %s: kept %d videos, skipped %d', split, clip_id, skipped)


def make_builder(data_dir, name: str = 'default') -> SkyTimelapse:
  """Builder for config 'default' (256) or 's128'; prepare with
  `b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=...))`."""
  return SkyTimelapse(data_dir=data_dir, config=name, file_format='array_record')
