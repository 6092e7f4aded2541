"""The data layer: tfds data sources (array_record) fed through grain.

The only module that knows about tfds. Synthetic datasets prepare themselves on first use
into `config.data_dir`; real ones read `config.manual_dir` (clip_folders, a user's own folder,
into a subfolder of data_dir keyed by that folder). A method turns one stored record
into one training example with `method.make_example(record, rng, train)`; in training the
pipeline then applies the config's augmentation (data.crop, data.flip) to its frames.
"""
import contextlib
import os
import shutil
from typing import Any, Callable

from absl import logging
import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from animgen.errors import InputError


def get_builder(name: str, data_dir: str | None = None, manual_dir: str | None = None):
  """'synthetic_timelapse/tiny' -> (a tfds builder registered by animgen.datasets, prepare
  kwargs). A builder with `prepared_subdir(manual_dir)` (a user's own folder) keeps its data
  under data_dir/<that>, so each folder, and each change to it, is prepared on its own; it
  raises the builder's layout error for a missing manual_dir."""
  import animgen.datasets  # registers the builders
  base, _, variant = name.partition('/')
  cls = animgen.datasets.BUILDERS.get(base)
  if cls is None:
    raise InputError(f'unknown dataset {name!r}: choose one of '
                     f'{", ".join(sorted(animgen.datasets.BUILDERS))} (animgen/datasets/)')
  variants = [c.name for c in cls.BUILDER_CONFIGS or ()]
  if variant and variants and variant not in variants:
    raise InputError(f'unknown dataset {name!r}: {base} has ' + ', '.join(
        f'{base}/{v}' for v in variants))
  data_dir = os.path.expanduser(data_dir or '~/tensorflow_datasets')
  from animgen import media
  media.check_can_make(data_dir, 'data dir')   # a file, or a folder under one, is refused
  config_kw = {}
  if manual_dir:
    config_kw['download_config'] = tfds.download.DownloadConfig(
        manual_dir=os.path.expanduser(manual_dir))
  try:
    keyed = getattr(tfds.builder_cls(name.split('/')[0]), 'prepared_subdir', None)
    if keyed is not None:   # a user's folder: one prepared copy per folder and state of it
      data_dir = os.path.join(data_dir, keyed(os.path.expanduser(manual_dir or '')))
    builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
  except tfds.core.registered.DatasetNotFoundError as e:
    raise InputError(f'unknown dataset {name!r}: choose one of animgen/datasets/') from e
  except ValueError as e:
    raise InputError(f'dataset {name!r}: {str(e).splitlines()[0]}') from e
  return builder, config_kw


def prepare(name: str, data_dir: str | None = None, manual_dir: str | None = None):
  """Returns a prepared builder, generating the dataset on first use."""
  builder, kw = get_builder(name, data_dir, manual_dir)
  with _absl_level(logging.ERROR):   # tfds warns of the version folder it has yet to write
    prepared = builder.is_prepared()
  if not prepared:
    logging.info('Preparing dataset %s into %s (first use only) ...', name, builder.data_dir)
    print(f'animgen: preparing dataset {name} into {builder.data_dir} (first use only)',
          flush=True)
    made = _new_paths(builder)
    try:
      builder.download_and_prepare(file_format='array_record', **kw)
    except BaseException:   # a missing or wrong manual_dir: leave no dataset skeleton behind
      for path in made:
        if os.path.exists(path):
          shutil.rmtree(path, ignore_errors=True)
      raise
  return builder


@contextlib.contextmanager
def _absl_level(level):
  previous = logging.get_verbosity()
  logging.set_verbosity(min(previous, level))   # absl: lower is quieter (ERROR -2)
  try:
    yield
  finally:
    logging.set_verbosity(previous)


def _new_paths(builder) -> list[str]:
  """The outermost folders that preparing `builder` would create (its data folder and tfds's
  downloads/) and that do not exist yet."""
  out = []
  for path in (builder.data_dir, os.path.join(builder._data_dir_root, 'downloads')):  # noqa: SLF001
    path, top = os.path.abspath(path), None
    while not os.path.exists(path):
      top, path = path, os.path.dirname(path)
    if top and top not in out:
      out.append(top)
  return out


def num_examples(builder, split: str) -> int:
  return builder.info.splits[split].num_examples


def random_crop_flip(arrays: dict[str, np.ndarray], rng: np.random.Generator, crop: int | None,
                     flip: bool, keys=('frames',)) -> dict[str, np.ndarray]:
  """The same random crop / horizontal flip on every array in `keys` ([..., H, W, C])."""
  out = dict(arrays)
  h, w = arrays[keys[0]].shape[-3:-1]
  y0 = x0 = 0
  if crop and (crop < h or crop < w):
    y0 = int(rng.integers(0, h - crop + 1))
    x0 = int(rng.integers(0, w - crop + 1))
  do_flip = flip and bool(rng.integers(2))
  for k in keys:
    a = arrays[k]
    if crop:
      a = a[..., y0:y0 + crop, x0:x0 + crop, :]
    if do_flip:
      a = a[..., :, ::-1, :]
    out[k] = np.ascontiguousarray(a)
  return out


def augment(config, example: dict, rng: np.random.Generator) -> dict:
  """The training augmentation of `config.data` (crop size, horizontal flip) on 'frames'."""
  data = config.get('data') or {}
  crop, flip = data.get('crop'), data.get('flip', False)
  if not crop and not flip:
    return example
  return random_crop_flip(example, rng, crop, flip)


def make_dataset(config, split: str, make_example: Callable[[dict, np.random.Generator, bool], Any],
                 *, train: bool, batch_size: int, seed: int = 0,
                 eval_index: Callable | None = None) -> grain.MapDataset:
  """A grain MapDataset of batches for this process.

  Training: shuffled with `seed`, reshuffled every epoch, repeated forever, one random
  `make_example` draw per record and epoch. Evaluation: in order, one pass.
  `eval_index(source) -> (index_map, length) | None` lets evaluation visit several items per
  record, with `index_map(i) -> (record_index, extra)`; the extra reaches make_example as
  '_extra' (None: one item per record).
  """
  builder = prepare(config.dataset, config.get('data_dir'), config.get('manual_dir'))
  source = builder.as_data_source(split=split)
  ds = grain.MapDataset.source(source)
  spec = eval_index(source) if eval_index is not None else None
  if spec is not None:
    index_map, n = spec
    base = ds
    ds = grain.MapDataset.range(n).map(lambda i: (base[index_map(i)[0]], index_map(i)[1]))
  else:
    ds = ds.map(lambda r: (r, None))
  per_process = batch_size // jax.process_count()
  if train:
    ds = ds.shuffle(seed=seed).repeat(None)
    ds = ds.random_map(
        lambda rx, rng: augment(config, make_example(_with_extra(rx), rng, True), rng),
        seed=seed + 1)
    # Multi-host: each process feeds its rows of the one global batch sequence, so that any
    # number of processes trains on the batches a single process would (tests/test_multihost)
    ds = grain.MapDataset.source(_ProcessRows(ds, batch_size, per_process, jax.process_index()))
  else:   # evaluation: every process a slice of the records (the metrics are means)
    ds = ds[jax.process_index()::jax.process_count()]
    ds = ds.map(lambda rx: make_example(_with_extra(rx), np.random.default_rng(0), False))
  return ds.batch(per_process, drop_remainder=train)


class _ProcessRows:
  """Rows [p * per, (p + 1) * per) of every global batch of `batch` consecutive elements of
  `ds`, as one random-access sequence (elements are made only when read)."""

  def __init__(self, ds, batch: int, per: int, process: int):
    self.ds, self.batch, self.per, self.process = ds, batch, per, process

  def __len__(self):
    return len(self.ds) // self.batch * self.per

  def __getitem__(self, j):
    k, r = divmod(j, self.per)
    return self.ds[k * self.batch + self.process * self.per + r]


def _with_extra(record_and_extra):
  record, extra = record_and_extra
  if extra is None:
    return record
  return dict(record, _extra=extra)


def to_iter(ds: grain.MapDataset, threads: int = 2, prefetch: int = 4):
  """A checkpointable iterator (get_state / set_state) with background prefetch."""
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=threads,
                                                   prefetch_buffer_size=prefetch)))
