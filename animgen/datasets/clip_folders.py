"""A user's own clips for Animating Landscape, with the pair rule of Endo 2019 Sec. 6.1.

Reads `manual_dir`, the folder the official train.py takes as --indir:
  <manual_dir>/<clip>/*.jpg|png         one folder of frames per clip (any file names, natural
                                        order: frame_2 before frame_10)
  <manual_dir>/*.mp4|avi|mov|gif        one video file per clip (every frame, read by animgen.media)
Both kinds may be mixed. If <manual_dir>/train/ and <manual_dir>/test/ both exist, each holds
that layout and they are the splits; otherwise a seeded clip-level split puts TEST_FRACTION of
the clips (at least one, and at least one left for training) in test.

Every frame is resized to size x size (PIL bilinear, aspect not kept). Frame numbers: the last
digit run of each file name ('frames_00000003.jpg' -> 3), used when every frame of a folder has
one and they increase in natural order; the clip's step is their most common difference (2 for
the official every-other-frame data). Pair (t, t+1) is valid (`pair_ok`) iff its numbers differ
by the step (always, for videos and for folders without such numbers) and the mean absolute
difference of the two resized uint8 frames, in [0, 1], is at least 0.02. Clips with fewer than
two frames or no valid pair are skipped; `clip_id` numbers the rest of a split 0..N-1 in natural
clip-name order, and record i holds clip_id i. The features are Sky Timelapse's (frames,
pair_ok, clip_id), so both landscape methods train on them.

Prepared data is kept per folder: `input_pipeline` asks `prepared_subdir(manual_dir)` (the
folder's path and listing), so a changed or another folder is prepared afresh.
"""
import concurrent.futures
import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from animgen import media
from animgen.datasets import common
from animgen.errors import InputError

FRAME_EXTS = ('.jpg', '.jpeg', '.png')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.gif', '.mkv', '.webm', '.m4v')
TEST_FRACTION = 0.1    # ours; of the order of Sec. 6.1's 224 Sky Timelapse test clips
SIZES = tuple(range(16, 1025, 8))   # builder configs s16 .. s1024 (Table 1: multiples of 8)
_LAST_NUMBER = re.compile(r'(\d+)\D*$')
_LAYOUT = common.ManualLayout(
    'clip_folders',
    '<manual_dir>/<clip>/*.jpg|png (one folder of frames per clip) and/or '
    '<manual_dir>/*.mp4|avi|mov|gif, at least two clips, or the same inside '
    '<manual_dir>/train/ and <manual_dir>/test/')


@dataclasses.dataclass(eq=False)
class ClipFoldersConfig(tfds.core.BuilderConfig):
  size: int = 256
  split_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Clip:
  name: str                     # the folder or file name
  path: str                     # the folder of frames or the video file
  frames: tuple[str, ...] = ()  # a folder's frame file names in natural order; () for a video


def list_clips(folder: str) -> list[Clip]:
  """The clip folders (visible subfolders holding frames) and video files directly in
  `folder`, in natural name order; frames lying in `folder` itself are a layout error."""
  loose = common.list_files(folder, FRAME_EXTS)
  if loose:
    raise _LAYOUT.error(f'{len(loose)} frame(s) lie directly in {folder} ({loose[0]}, ...): '
                        "put each clip's frames in a folder of its own")
  clips = [Clip(n, os.path.join(folder, n)) for n in common.list_files(folder, VIDEO_EXTS)]
  for name in common.list_folders(folder):
    files = common.list_files(os.path.join(folder, name), FRAME_EXTS)
    if files:
      clips.append(Clip(name, os.path.join(folder, name), tuple(files)))
  return sorted(clips, key=lambda c: common.natural_key(c.name))


def seeded_split(clips, seed: int = 0, fraction: float = TEST_FRACTION) -> dict[str, list]:
  """{'train', 'test'}: whole clips, the test ones drawn by a permutation seeded with `seed`;
  round(fraction * N) test clips, at least 1 and at most N - 1; order kept within a split."""
  n = len(clips)
  n_test = min(n - 1, max(1, round(fraction * n)))
  test = set(np.random.default_rng(seed).permutation(n)[:n_test].tolist())
  return {'train': [c for i, c in enumerate(clips) if i not in test],
          'test': [c for i, c in enumerate(clips) if i in test]}


def split_clips(manual_dir, seed: int = 0) -> dict[str, list[Clip]]:
  """{split: [Clip]} of manual_dir: its train/ and test/ folders when both exist, else a
  `seeded_split` of its clips; an unusable layout is a one-line InputError naming it."""
  root = _LAYOUT.check_dir(manual_dir)
  present = [s for s in common.SPLITS if os.path.isdir(os.path.join(root, s))]
  if len(present) == 1:
    other = next(s for s in common.SPLITS if s not in present)
    raise _LAYOUT.error(f'{root} has {present[0]}/ but no {other}/: give both, or put the '
                        'clips directly in it for a seeded split')
  if present:
    splits = {s: list_clips(os.path.join(root, s)) for s in common.SPLITS}
    for s, clips in splits.items():
      if not clips:
        raise _LAYOUT.error(f'no clip folders of frames or video files in {os.path.join(root, s)}')
    return splits
  clips = list_clips(root)
  if not clips:
    raise _LAYOUT.error(f'no clip folders of frames or video files in {root}')
  if len(clips) < 2:
    raise _LAYOUT.error(f'{root} holds one clip ({clips[0].name}); a clip-level train/test '
                        'split needs two or more')
  return seeded_split(clips, seed)


def frame_numbers(names) -> list[int] | None:
  """The last digit run of each file name (extension dropped), or None unless every name has
  one and they increase strictly in the given order."""
  found = [_LAST_NUMBER.search(os.path.splitext(n)[0]) for n in names]
  if not all(found):
    return None
  numbers = [int(m.group(1)) for m in found]
  if any(b <= a for a, b in zip(numbers, numbers[1:])):
    return None
  return numbers


def clip_step(numbers) -> int:
  """The most common difference of consecutive frame numbers (the smallest of equally common)."""
  values, counts = np.unique(np.diff(np.asarray(numbers, np.int64)), return_counts=True)
  return int(values[np.argmax(counts)])


def read_clip(clip: Clip, size: int, pool=None):
  """(frames [T, size, size, 3] uint8, pair_ok [T-1]) of `clip`, or None when it has fewer than
  two frames or no valid pair; `pool` reads a folder's frames in parallel."""
  if clip.frames:
    paths = [os.path.join(clip.path, f) for f in clip.frames]
    load = lambda p: common.load_frame(p, size)
    frames = np.stack(list(pool.map(load, paths)) if pool else [load(p) for p in paths])
    numbers = frame_numbers(clip.frames)
  else:
    video, _ = media.read_video(clip.path)
    frames, numbers = common.resize_frames(media.to_uint8(video), size), None
  if len(frames) < 2:
    return None
  step = 1 if numbers is None else clip_step(numbers)
  ok = common.pair_filter(range(len(frames)) if numbers is None else numbers, frames, step)
  return (frames, ok) if ok.any() else None


def _names(clips, limit: int = 8) -> str:
  shown = ', '.join(c.name for c in clips[:limit])
  return shown + (f' and {len(clips) - limit} more' if len(clips) > limit else '')


class ClipFolders(tfds.core.GeneratorBasedBuilder):
  """A user's clips (frame folders and/or video files) with Endo 2019 pair validity."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [ClipFoldersConfig(name=f's{s}', size=s, description=f'{s}x{s} frames.')
                     for s in SIZES]
  DEFAULT_CONFIG_NAME = 's256'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Put your clips so that {_LAYOUT.layout} exists and pass the folder as manual_dir '
      '(--config.manual_dir=DIR, or animgen datasets prepare clip_folders/s256 --manual-dir DIR).')

  @classmethod
  def prepared_subdir(cls, manual_dir) -> str:
    """Where under data_dir the data prepared from `manual_dir` lives (input_pipeline); the
    layout error when manual_dir is not given or not a non-empty folder."""
    return common.prepared_by_dir('clip_folders', _LAYOUT, manual_dir)

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=common.clip_features(s),
        disable_shuffling=True,  # record i holds clip_id i
    )

  def _split_generators(self, dl_manager):
    splits = split_clips(_LAYOUT.manual_dir(dl_manager), self.builder_config.split_seed)
    return {split: self._generate_examples(split, clips) for split, clips in splits.items()}

  def _generate_examples(self, split: str, clips):
    c = self.builder_config
    kept, skipped = [], []
    with concurrent.futures.ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
      for clip in common.progress(clips, f'clip_folders/{c.name} {split}', unit='clips read'):
        loaded = read_clip(clip, c.size, pool)
        if loaded is None:
          skipped.append(clip)
          continue
        frames, ok = loaded
        yield len(kept), {'frames': frames, 'pair_ok': ok, 'clip_id': np.int64(len(kept))}
        kept.append(clip)
    if not kept:
      raise InputError(
          f'clip_folders: none of the {len(clips)} {split} clip(s) ({_names(clips)}) has two '
          'consecutive frames (numbered one step apart) with a mean absolute difference of at '
          f'least {common.MIN_MEAN_ABS_DIFF}: give clips with visible motion between frames, '
          'e.g. time-lapse frames or a lower frame rate')
    print(f'animgen: clip_folders {split}: {len(kept)} clip(s) ({_names(kept)})'
          + (f'; skipped {len(skipped)} without a valid pair ({_names(skipped)})'
             if skipped else ''), flush=True)


def make_builder(data_dir, size: int = 256) -> ClipFolders:
  """Builder for size x size frames; prepare with `b.download_and_prepare(download_config=
  tfds.download.DownloadConfig(manual_dir=...))` (input_pipeline.prepare keys data_dir by it)."""
  return ClipFolders(data_dir=data_dir, config=f's{size}', file_format='array_record')
