"""A training run on disk: its workdir's config.json, checkpoints and artefacts.

`load(workdir)` gives the commands (animate, sample, convert checks) a `Run`; the trainer uses
`read_config`, `read_artefacts` and `write_artefacts`. Artefacts are the files a method's
finalize or an evaluator returns, written by file name:
  .npz  dict of numpy arrays (read back with allow_pickle=False)
  .json dict                         .md / .txt  str
  .png  uint8 or [0, 1] image [H, W, 3], or a list of line panels (animgen.plot.line_panels)
  .gif / .mp4  frames [T, H, W, 3], or (frames, fps)
"""
import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from animgen import checkpoint, media
from animgen.errors import InputError
from animgen.methods import get_method

ARTEFACTS = ('codebook_motion.npz', 'codebook_appearance.npz', 'latent_lstm.npz')


@dataclasses.dataclass
class Run:
  workdir: str
  config: ml_collections.ConfigDict
  num_train: int
  method: Any                 # animgen.methods.base.Method
  state: Any
  step: int
  artefacts: dict             # file name -> dict of arrays, for the ARTEFACTS present
  converted_from: dict | None = None  # `animgen convert`'s provenance; None for trained runs


def _saved(workdir: str) -> dict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise InputError(f'{workdir} is not a training run (no config.json): pass a workdir made '
                     'by python -m animgen.main')
  try:
    with open(path) as f:
      saved = json.load(f)
    return {'config': ml_collections.ConfigDict(saved['config']),
            'num_train': int(saved['num_train']), 'converted_from': saved.get('converted_from')}
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise InputError(f'{path} is not a config written by animgen ({type(e).__name__}: {e}); '
                     'rerun the training or restore the file') from None


def read_config(workdir: str) -> tuple[ml_collections.ConfigDict, int]:
  """(config, number of training examples) of the run in `workdir`."""
  saved = _saved(workdir)
  return saved['config'], saved['num_train']


def write_config(workdir: str, config, num_train: int) -> None:
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    media.write_json(os.path.join(workdir, 'config.json'),
                     {'config': config.to_dict(), 'num_train': num_train})


def read_artefacts(workdir: str) -> dict:
  """The known artefacts present in `workdir` (never unpickled)."""
  out = {}
  for name in ARTEFACTS:
    path = os.path.join(workdir, name)
    if os.path.isfile(path):
      try:
        with np.load(path, allow_pickle=False) as d:
          out[name] = {k: d[k] for k in d.files}
      except (OSError, ValueError) as e:
        raise InputError(f'{path} is not an animgen artefact ({e}): rebuild it with '
                         f'--mode=finalize') from None
  return out


def write_artefacts(workdir: str, files: dict) -> None:
  """Writes each artefact atomically into `workdir` by its file name's kind (module docstring)."""
  for name, content in files.items():
    path = os.path.join(workdir, name)
    ext = os.path.splitext(name)[1]
    if ext == '.npz':
      media.write_npz(path, **content)
    elif ext == '.json':
      media.write_json(path, content)
    elif ext in ('.md', '.txt'):
      media.write_text(path, content)
    elif ext == '.png' and isinstance(content, list):
      from animgen import plot
      plot.line_panels(path, content)
    elif ext == '.png':
      media.write_image(path, np.asarray(content))
    elif ext in ('.gif', '.mp4'):
      frames, fps = content if isinstance(content, tuple) else (content, 8)
      media.write_video(path, np.asarray(frames), fps=fps)
    else:
      raise ValueError(f'no writer for artefact {name}')


def build_method(config, num_train: int):
  return get_method(config.method)(config, num_train=num_train)


def require_checkpoint(workdir: str) -> None:
  if not checkpoint.exists(workdir):
    raise InputError(f'no checkpoint in {os.path.join(workdir, "checkpoints")}: train first '
                     f'with python -m animgen.main --config=CONFIG --workdir={workdir}')


def restore_state(method, workdir: str, sharding=None):
  """(state, step) of the latest checkpoint in `workdir` for `method`; frozen fields (e.g. the
  VGG16 weights) come from the method, not the checkpoint."""
  require_checkpoint(workdir)
  sharding = sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
  ckpt = checkpoint.Checkpointer(workdir)
  try:
    abstract = checkpoint.abstract_like(
        checkpoint.strip_frozen(method, jax.eval_shape(lambda: method.init(jax.random.key(0),
                                                                           None))), sharding)
    state, _, step = ckpt.restore_intact(abstract, with_data=False)
    return checkpoint.fill_frozen(method, state), int(step)
  finally:
    ckpt.manager.close()


def load(workdir: str, expect: str | None = None) -> Run:
  """The run in `workdir` (of method `expect`, if given), restored on one device."""
  saved = _saved(workdir)
  config, num_train = saved['config'], saved['num_train']
  if expect is not None and config.method != expect:
    raise InputError(f'{workdir} holds a {config.method} run, not {expect}: pass the workdir of '
                     f'a {expect} training run')
  method = build_method(config, num_train)
  state, step = restore_state(method, workdir)
  return Run(workdir, config, num_train, method, state, step, read_artefacts(workdir),
             saved['converted_from'])
