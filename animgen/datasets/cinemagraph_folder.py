"""A user's cinemagraphs for Image2GIF (Zhou et al. 2018, Sec. 4.2 and 5.3), from `manual_dir`.

Reads `manual_dir`:
  <manual_dir>/*.gif|mp4|mov|avi|mkv|webm|m4v  one cinemagraph per file (every frame, read by
                                               animgen.media at the file's frame rate)
  <manual_dir>/<name>/*.jpg|png                 one cinemagraph per folder of frames (natural
                                               order, taken to be media.DEFAULT_FPS = 30 fps)
Both kinds may be mixed; at least two cinemagraphs. The paper collected GIFs tagged
"cinemagraph" from Giphy (Sec. 4.2); that set is not distributed, so the folder is yours.

Per cinemagraph (the module constants cite the sentence each follows): cut into 1-second clips,
one from the start, or two to three spread as far apart as possible when it lasts more than
3 seconds; from every clip 6 frames evenly spaced (1 input + 5 outputs). Frames are
centre-cropped to a square and resized to 64 x 64 (`square_frames`, also what
`animgen animate --method image2gif` does to a photo). The split is by cinemagraph: a seeded
permutation puts TEST_FRACTION of them (at least one, at least one left for training) in test,
and all the clips of a cinemagraph go with it. Clips with fewer than 6 frames are skipped.
Training-time random crops and flips are the config's (configs/image2gif.py:real), not stored.

Prepared data is kept per folder (`prepared_subdir`, as clip_folders), so a changed or another
folder is prepared afresh.
"""
import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from animgen import media
from animgen.datasets import common
from animgen.datasets.clip_folders import Clip, seeded_split
from animgen.errors import InputError

FRAME_EXTS = ('.jpg', '.jpeg', '.png')
VIDEO_EXTS = ('.gif', '.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v')
SIZE = 64                  # Sec. 5.1: inputs and outputs are 64 x 64 x 3
NUM_FRAMES = 6             # Sec. 5.3: "we sample 6 frames (1 input and 5 generation outputs)"
CLIP_SECONDS = 1.0         # Sec. 4.2: "we cut the cinemagraphs to be no more than 1 second"
LONG_SECONDS = 3.0         # Sec. 4.2: "long cinemagraphs that are more than 3 seconds long"
THREE_CLIPS_SECONDS = 5.0  # ours: "two to three" clips; three once 1-second gaps fit between them
TEST_FRACTION = 0.15       # Sec. 5.3: "a ratio of 0.85 : 0.15"
_LAYOUT = common.ManualLayout(
    'cinemagraph_folder',
    '<manual_dir>/*.gif|mp4|mov (one cinemagraph per file) and/or <manual_dir>/<name>/*.jpg|png '
    '(one folder of frames per cinemagraph), two or more cinemagraphs, the folder given as '
    '--config.manual_dir=DIR')


@dataclasses.dataclass(eq=False)
class CinemagraphFolderConfig(tfds.core.BuilderConfig):
  split_seed: int = 0


def list_cinemagraphs(folder: str) -> list[Clip]:
  """The video files and frame folders directly in `folder`, in natural name order; frames
  lying in `folder` itself are a layout error."""
  loose = common.list_files(folder, FRAME_EXTS)
  if loose:
    raise _LAYOUT.error(f'{len(loose)} frame(s) lie directly in {folder} ({loose[0]}, ...): '
                        "put each cinemagraph's frames in a folder of its own")
  found = [Clip(n, os.path.join(folder, n)) for n in common.list_files(folder, VIDEO_EXTS)]
  for name in common.list_folders(folder):
    files = common.list_files(os.path.join(folder, name), FRAME_EXTS)
    if files:
      found.append(Clip(name, os.path.join(folder, name), tuple(files)))
  return sorted(found, key=lambda c: common.natural_key(c.name))


def split_cinemagraphs(manual_dir, seed: int = 0) -> dict[str, list[Clip]]:
  """{'train', 'test'}: whole cinemagraphs (Sec. 4.2: "clips from the same cinemagraph to the
  same training/testing split"), a seeded 0.85 / 0.15 split (Sec. 5.3)."""
  root = _LAYOUT.check_dir(manual_dir)
  found = list_cinemagraphs(root)
  if not found:
    raise _LAYOUT.error(f'no cinemagraph files or folders of frames in {root}')
  if len(found) < 2:
    raise _LAYOUT.error(f'{root} holds one cinemagraph ({found[0].name}); a train/test split '
                        'by cinemagraph needs two or more')
  return seeded_split(found, seed, TEST_FRACTION)


def clip_starts(num_frames: int, fps: float) -> list[int]:
  """First frames of the 1-second clips cut from a cinemagraph of `num_frames` at `fps`."""
  per_clip = max(1, int(round(CLIP_SECONDS * fps)))
  seconds = num_frames / fps
  if seconds <= LONG_SECONDS or num_frames <= per_clip:
    return [0]                                    # Sec. 4.2: cut to no more than 1 second
  count = 3 if seconds >= THREE_CLIPS_SECONDS else 2
  # Sec. 4.2: "two to three 1-second clips with a maximum margin": the first at the start, the
  # last at the end, equal gaps between them
  return np.linspace(0, num_frames - per_clip, count).round().astype(int).tolist()


def sample_indices(start: int, num_frames: int, fps: float) -> np.ndarray | None:
  """The NUM_FRAMES frame indices sampled from the clip starting at `start`, evenly spaced from
  its first to its last frame (the paper does not say how; ours), or None when the clip has
  fewer than NUM_FRAMES frames."""
  length = min(max(1, int(round(CLIP_SECONDS * fps))), num_frames - start)
  if length < NUM_FRAMES:
    return None
  return np.linspace(start, start + length - 1, NUM_FRAMES).round().astype(int)


def square_frames(frames: np.ndarray, size: int = SIZE) -> np.ndarray:
  """uint8 frames [T, H, W, 3] -> [T, size, size, 3]: the centred square of side min(H, W),
  resized as common.resize_frames does (PIL bilinear)."""
  h, w = frames.shape[1:3]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  return common.resize_frames(frames[:, top:top + side, left:left + side], size)


def read_examples(clip: Clip) -> list[np.ndarray]:
  """The examples of one cinemagraph: per clip, frames [NUM_FRAMES, SIZE, SIZE, 3] uint8."""
  video, fps = media.read_video(clip.path)        # a folder of frames reads at DEFAULT_FPS
  video = media.to_uint8(video)
  out = []
  for start in clip_starts(len(video), fps):
    index = sample_indices(start, len(video), fps)
    if index is not None:
      out.append(square_frames(video[index]))
  return out


class CinemagraphFolder(tfds.core.GeneratorBasedBuilder):
  """A user's cinemagraphs as Image2GIF's 1 + 5 frame examples at 64 x 64."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [CinemagraphFolderConfig(name='default', description='64x64, 6 frames.')]
  DEFAULT_CONFIG_NAME = 'default'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Put your cinemagraphs so that {_LAYOUT.layout} (or animgen datasets prepare '
      'cinemagraph_folder/default --manual-dir DIR).')

  @classmethod
  def prepared_subdir(cls, manual_dir) -> str:
    """Where under data_dir the data prepared from `manual_dir` lives (input_pipeline); the
    layout error when manual_dir is not given or not a non-empty folder."""
    return common.prepared_by_dir('cinemagraph_folder', _LAYOUT, manual_dir)

  def _info(self) -> tfds.core.DatasetInfo:
    tensor = tfds.features.Tensor
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            'frames': tensor(shape=(NUM_FRAMES, SIZE, SIZE, 3), dtype=np.uint8),
            'cinemagraph': tfds.features.Text(),   # the file or folder name
            'cinemagraph_id': tensor(shape=(), dtype=np.int64),  # its index in the split
            'clip': tensor(shape=(), dtype=np.int64),            # which clip of it
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    splits = split_cinemagraphs(_LAYOUT.manual_dir(dl_manager), self.builder_config.split_seed)
    return {split: self._generate_examples(split, found) for split, found in splits.items()}

  def _generate_examples(self, split: str, found):
    key = 0
    for i, clip in enumerate(common.progress(found, f'cinemagraph_folder {split}',
                                             unit='cinemagraphs read')):
      examples = read_examples(clip)
      if not examples:
        logging.warning('cinemagraph_folder %s: %s has no clip of %d frames: skipped', split,
                        clip.name, NUM_FRAMES)
      for k, frames in enumerate(examples):
        yield key, {'frames': frames, 'cinemagraph': clip.name,
                    'cinemagraph_id': np.int64(i), 'clip': np.int64(k)}
        key += 1
    if not key:
      raise InputError(
          f'cinemagraph_folder: none of the {len(found)} {split} cinemagraph(s) has '
          f'{NUM_FRAMES} frames within its first second: give longer cinemagraphs or ones '
          'with a higher frame rate')
