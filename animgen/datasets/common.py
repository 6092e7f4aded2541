"""What animgen's tfds builders share: manual_dir layouts, file order, seeds and progress.

Real-data builders describe what they expect in `manual_dir` with a `ManualLayout`; every
problem with it (not given, missing, a file, empty, no split folders) is a one-line InputError
that names the expected layout. Files and folders are taken in natural order (`frame_2` before
`frame_10`). Frames are read at the builder's size with `load_frame` / `resize_frames`, and
consecutive frames pass Endo 2019's pair rule through `pair_filter`. A builder whose data is a
user's folder keys its prepared copy by `folder_fingerprint(manual_dir)`. Builders that generate
their data return `generated_splits(...)` from `_split_generators`, which logs the progress of
every split.
"""
import dataclasses
import hashlib
import os
import re
import time
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from animgen import media
from animgen.errors import InputError

SPLITS = ('train', 'test')
_SPLIT_IDS = {'train': 0, 'test': 1}   # the split's entry in every builder's seed; others get 2
MIN_MEAN_ABS_DIFF = 0.02   # Endo 2019 Sec. 6.1, official train.py: pairs changing less are skipped

natural_key = media.natural_key        # one natural order for frame folders and datasets

_T = TypeVar('_T')


# ----------------------------------------------------------------------------- files


def natural_sort(names: Iterable[str]) -> list[str]:
  """`names` in natural order: digit runs compare as numbers ('frame_2' before 'frame_10'),
  the rest case-insensitively."""
  return sorted(names, key=natural_key)


def list_folders(folder: str) -> list[str]:
  """Names of the visible (not dot-named) subfolders of `folder`, in natural order."""
  return natural_sort(n for n in os.listdir(folder)
                      if not n.startswith('.') and os.path.isdir(os.path.join(folder, n)))


def list_files(folder: str, exts: Iterable[str]) -> list[str]:
  """Names of the visible files in `folder` whose extension (any case) is one of `exts`
  (e.g. ('.jpg', '.png')), in natural order."""
  exts = tuple(e.lower() for e in exts)
  return natural_sort(n for n in os.listdir(folder)
                      if not n.startswith('.') and n.lower().endswith(exts)
                      and os.path.isfile(os.path.join(folder, n)))


def prepared_by_dir(name: str, layout, manual_dir) -> str:
  """The `prepared_subdir` of a builder over a user's folder: `<name>_by_dir/<fingerprint>`
  under data_dir (input_pipeline), or `layout`'s one-line error when manual_dir is not given or
  not a non-empty folder."""
  return os.path.join(f'{name}_by_dir', folder_fingerprint(layout.check_dir(manual_dir)))


def folder_fingerprint(path, levels: int = 3) -> str:
  """16 hex digits that change with `path` (made absolute) and with the name, size and
  modification time of every file in it down to `levels` folder levels (the folder itself is
  level 1): the key under which a builder over a user's own folder keeps its prepared data, so
  that another folder, or a changed one, is prepared afresh."""
  path = os.path.abspath(os.path.expanduser(os.fspath(path)))
  digest = hashlib.sha256(path.encode('utf-8', 'surrogateescape'))
  for root, dirs, files in os.walk(path):
    rel = os.path.relpath(root, path)
    depth = 1 if rel == '.' else rel.count(os.sep) + 2
    dirs.sort()
    if depth >= levels:
      dirs[:] = []
    for name in sorted(files):
      try:
        st = os.stat(os.path.join(root, name))
      except OSError:
        continue
      digest.update(f'{rel}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode(
          'utf-8', 'surrogateescape'))
  return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- frames


def load_frame(path: str, size: int) -> np.ndarray:
  """The image file at `path` as RGB uint8 [size, size, 3], resized with PIL's bilinear filter
  and the aspect not kept (the official code resizes every frame to 256 x 256); an unreadable
  file is a one-line InputError naming it."""
  try:
    with Image.open(path) as im:
      return _resized(im.convert('RGB'), size)
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    reason = ' '.join(str(e).split()) or type(e).__name__
    raise InputError(f'cannot read the frame {path} ({reason}): replace or remove it') from None


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
  """uint8 frames [T, H, W, 3] -> [T, size, size, 3], resized as `load_frame` resizes."""
  return np.stack([_resized(Image.fromarray(f), size) for f in frames])


def _resized(im: Image.Image, size: int) -> np.ndarray:
  return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), np.uint8)


def pair_filter(numbers, frames: np.ndarray, step: int) -> np.ndarray:
  """pair_ok [T-1] of frames [T, H, W, 3] uint8 with frame numbers [T]: pair (t, t+1) is valid iff
  its numbers differ by exactly `step` and its mean absolute difference, in [0, 1], is at least
  MIN_MEAN_ABS_DIFF (Endo 2019 Sec. 6.1; the official train.py skips every other pair)."""
  numbers = np.asarray(numbers, np.int64)
  f = frames.astype(np.float32) / 255.0
  mad = np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))
  return (np.diff(numbers) == step) & (mad >= MIN_MEAN_ABS_DIFF)


# ----------------------------------------------------------------------------- manual_dir


@dataclasses.dataclass(frozen=True)
class ManualLayout:
  """What a real-data builder expects in manual_dir.

  dataset: the builder's name; it starts every message, and `<manual_dir>/<dataset>/` may hold
    the split folders instead of manual_dir itself.
  layout: the expected layout in words, e.g. '<manual_dir>/tgif/train/*.gif (and test/...)'.
  split_dirs: {split: folder name}.
  """
  dataset: str
  layout: str
  split_dirs: Mapping[str, str] = dataclasses.field(
      default_factory=lambda: {s: s for s in SPLITS})

  def error(self, what: str) -> InputError:
    """'<dataset>: <what>: expected <layout>' as a one-line InputError."""
    message = f'{self.dataset}: {what}: expected {self.layout}'
    return InputError(re.sub(r'\s*[\r\n]+\s*', ' ', message))

  def check_dir(self, path) -> str:
    """`path` as a str if it names a non-empty folder, else the layout error."""
    if path is None or not os.fspath(path):
      raise self.error('no manual_dir given')
    path = os.fspath(path)
    if not os.path.exists(path):
      raise self.error(f'manual_dir {path} does not exist')
    if not os.path.isdir(path):
      raise self.error(f'manual_dir {path} is a file, not a folder')
    if not os.listdir(path):
      raise self.error(f'manual_dir {path} is empty')
    return path

  def manual_dir(self, dl_manager) -> str:
    """The builder's manual_dir, checked by `check_dir`.

    tfds raises multi-line AssertionErrors for a missing or empty manual_dir (and
    NotADirectoryError for a file), so the configured path is checked here instead.
    """
    path = getattr(dl_manager, '_manual_dir', None)   # tfds keeps the configured path here
    try:
      path = dl_manager.manual_dir
    except (AssertionError, OSError):
      pass
    return self.check_dir(path)

  def split_folders(self, manual_dir) -> dict[str, str]:
    """{split: folder}, from `<manual_dir>/<dataset>/` or else `manual_dir`, whichever holds
    every split folder."""
    manual_dir = self.check_dir(manual_dir)
    nested = os.path.join(manual_dir, self.dataset)
    for root in (nested, manual_dir):
      if all(os.path.isdir(os.path.join(root, d)) for d in self.split_dirs.values()):
        return {s: os.path.join(root, d) for s, d in self.split_dirs.items()}
    names = ' and '.join(f'{d}/' for d in self.split_dirs.values())
    raise self.error(f'no {names} folders in {manual_dir} or {nested}')


# ----------------------------------------------------------------------------- generation


def clip_features(size: int, pairs: bool = True, **extra) -> tfds.features.FeaturesDict:
  """The features of one clip record: frames [T, size, size, 3] uint8, the flag pair_ok of each
  consecutive pair (with `pairs`), clip_id, and the tfds features in `extra`."""
  tensor = tfds.features.Tensor
  features = {'frames': tensor(shape=(None, size, size, 3), dtype=np.uint8)}
  if pairs:
    features['pair_ok'] = tensor(shape=(None,), dtype=np.bool_)
  features['clip_id'] = tensor(shape=(), dtype=np.int64)
  return tfds.features.FeaturesDict({**features, **extra})


def split_rng(seed: int, split: str, *index: int) -> np.random.Generator:
  """The random stream seeded by (seed, split id, *index); train is 0, test 1, others 2."""
  return np.random.default_rng([seed, _SPLIT_IDS.get(split, 2), *index])


def progress(items: Iterable[_T], name: str, total: int | None = None, unit: str = 'clips',
             times: int = 4) -> Iterator[_T]:
  """Yields `items` unchanged, logging '<name>: i/total <unit> (seconds)' about `times` times
  and after the last one. total defaults to len(items)."""
  if total is None:
    total = len(items)
  start, every = time.time(), max(1, total // max(times, 1))
  for i, item in enumerate(items, 1):
    yield item
    if i % every == 0 or i == total:
      logging.info('%s: %d/%d %s (%.1f s)', name, i, total, unit, time.time() - start)


def generated_splits(builder, counts: Mapping[str, int],
                     generate: Callable[[str, int], Iterable] | None = None,
                     unit: str = 'clips', times: int = 4) -> dict[str, Iterator]:
  """`_split_generators` of a builder that makes its own data.

  Returns {split: generate(split, count)} for each (split, count) in `counts`, each logging its
  progress as '<builder>/<config> <split>: i/count <unit>'. `generate` defaults to the
  builder's `_generate_examples(split, count)`; it is called here, so its arguments (e.g. digit
  images read from manual_dir) are checked before tfds starts writing.
  """
  generate = generate or builder._generate_examples  # pylint: disable=protected-access
  name = f'{builder.name}/{builder.builder_config.name}'
  return {split: progress(generate(split, n), f'{name} {split}', n, unit, times)
          for split, n in counts.items()}
