"""The data layer: tfds data sources (array_record) fed through grain.

The only module that knows about tfds. Synthetic datasets prepare themselves on first use
into `config.data_dir`; real ones read `config.manual_dir` (clip_folders, a user's own folder,
into a subfolder of data_dir keyed by that folder). A method turns one stored record
into one training example with `method.make_example(record, rng, train)`; in training the
pipeline then applies the config's augmentation (data.crop, data.flip) to its frames.
"""
import os
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
  import animgen.datasets  # noqa: F401  (registers the builders)
  data_dir = os.path.expanduser(data_dir or '~/tensorflow_datasets')
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
  if not builder.is_prepared():
    logging.info('Preparing dataset %s into %s (first use only) ...', name, builder.data_dir)
    print(f'animgen: preparing dataset {name} into {builder.data_dir} (first use only)',
          flush=True)
    builder.download_and_prepare(file_format='array_record', **kw)
  return builder


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
  # Per-process shard (multi-host); each process feeds its slice of the global batch.
  ds = ds[jax.process_index()::jax.process_count()]
  per_process = batch_size // jax.process_count()
  if train:
    ds = ds.shuffle(seed=seed).repeat(None)
    ds = ds.random_map(
        lambda rx, rng: augment(config, make_example(_with_extra(rx), rng, True), rng),
        seed=seed + 1)
  else:
    ds = ds.map(lambda rx: make_example(_with_extra(rx), np.random.default_rng(0), False))
  return ds.batch(per_process, drop_remainder=train)


def _with_extra(record_and_extra):
  record, extra = record_and_extra
  if extra is None:
    return record
  return dict(record, _extra=extra)


def to_iter(ds: grain.MapDataset, threads: int = 2, prefetch: int = 4):
  """A checkpointable iterator (get_state / set_state) with background prefetch."""
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=threads,
                                                   prefetch_buffer_size=prefetch)))
