"""Orbax checkpoints of the method state together with the grain iterator state.

Every finished checkpoint gets a stamp (STAMP: the SHA-256 of each of its files). Reading one
(`Checkpointer.restore_intact`) checks the stamp and falls back to the newest checkpoint that
is intact and restores, with one warning line per damaged one; training moves damaged ones to
workdir/checkpoints_damaged/ so that their step can be saved again. Checkpoints without a stamp
(written before the stamp was, or by a process killed just after orbax committed them) are
used when they restore.
"""
import hashlib
import json
import os
import shutil
import sys

from absl import logging
import jax
import orbax.checkpoint as ocp

STAMP = 'animgen_sha256.json'


class Checkpointer:
  """Keeps the newest `keep` checkpoints under `workdir/checkpoints`; async saves."""

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    with _quiet_orbax():   # orbax logs what it cannot parse of a damaged step's metadata
      self.manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
          item_names=('state', 'data'))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_state: dict | None = None, force: bool = False):
    self.manager.wait_until_finished()   # orbax waits for the previous save anyway
    self.stamp()
    args = {'state': ocp.args.StandardSave(state)}
    if data_state is not None:
      args['data'] = ocp.args.JsonSave(data_state)
    self.manager.save(step, args=ocp.args.Composite(**args), force=force)

  def restore(self, abstract_state, step: int | None = None, with_data: bool = True):
    """abstract_state: a pytree of jax.ShapeDtypeStruct (with shardings) like the state."""
    step = self.latest_step() if step is None else step
    args = {'state': ocp.args.StandardRestore(abstract_state)}
    if with_data and os.path.isdir(os.path.join(self.directory, str(step), 'data')):
      args['data'] = ocp.args.JsonRestore()
    out = self.manager.restore(step, args=ocp.args.Composite(**args))
    return out['state'], (out['data'] if 'data' in args else None)

  def wait(self):
    self.manager.wait_until_finished()
    self.stamp()

  def close(self):
    self.wait()
    self.manager.close()

  def stamp(self) -> None:
    """Writes the stamp of every finished checkpoint that has none (process 0)."""
    if jax.process_index() != 0:
      return
    for step in self.manager.all_steps():
      path = os.path.join(self.directory, str(step))
      if os.path.isdir(path) and not os.path.exists(os.path.join(path, STAMP)):
        tmp = os.path.join(path, STAMP + '.tmp')
        with open(tmp, 'w') as f:
          json.dump(_digests(path), f)
        os.replace(tmp, os.path.join(path, STAMP))

  def damage(self, step: int) -> str | None:
    """Why checkpoint `step` is damaged (a file missing, changed or added since its stamp), or
    None when it matches its stamp or has none."""
    path = os.path.join(self.directory, str(step))
    try:
      with open(os.path.join(path, STAMP)) as f:
        want = json.load(f)
      if not isinstance(want, dict):
        raise ValueError('not a dict')
    except FileNotFoundError:
      return None
    except (OSError, ValueError) as e:
      return f'unreadable {STAMP}: {type(e).__name__}'
    got = _digests(path)
    for name in sorted(set(want) | set(got)):
      if name not in got:
        return f'{name} is missing'
      if name not in want:
        return f'{name} was added'
      if got[name] != want[name]:
        return f'{name} has changed'
    return None

  def restore_intact(self, abstract_state, with_data: bool = True, quarantine: bool = False):
    """(state, data state or None, step) of the newest checkpoint that matches its stamp and
    restores. One warning line per newer damaged one; `quarantine` (training) moves those to
    workdir/checkpoints_damaged/. InputError when none can be read."""
    from animgen.errors import InputError
    failures = []
    with _quiet_orbax():
      steps = sorted(self.manager.all_steps(), reverse=True)
    for step in steps:
      reason = self.damage(step)
      if reason is None:
        try:
          with _quiet_orbax():
            state, data = self.restore(abstract_state, step, with_data)
        except Exception as e:  # noqa: BLE001  (orbax and tensorstore raise many kinds)
          reason = _first_line(e)
      if reason is None:
        for bad, why in failures:
          print(f'animgen: warning: checkpoint step {bad} in {self.directory} cannot be read '
                f'({why}); using step {step}', file=sys.stderr, flush=True)
          if quarantine:
            self._quarantine(bad)
        return state, data, step
      failures.append((step, reason))
    listed = '; '.join(f'step {s}: {why}' for s, why in failures[:3])
    raise InputError(f'no checkpoint in {self.directory} can be read ({listed}): they are '
                     'damaged or were written by another config; restore them from a backup or '
                     'train again in a new workdir')

  def _quarantine(self, step: int) -> None:
    if jax.process_index() == 0:
      dest = os.path.join(os.path.dirname(self.directory), 'checkpoints_damaged', str(step))
      n = 1
      while os.path.exists(dest):
        dest = os.path.join(os.path.dirname(dest), f'{step}.{n}')
        n += 1
      os.makedirs(os.path.dirname(dest), exist_ok=True)
      shutil.move(os.path.join(self.directory, str(step)), dest)
    self.manager.reload()


def _digests(path: str) -> dict[str, str]:
  out = {}
  for root, _, files in os.walk(path):
    for name in files:
      full = os.path.join(root, name)
      rel = os.path.relpath(full, path)
      if rel in (STAMP, STAMP + '.tmp'):
        continue
      h = hashlib.sha256()
      with open(full, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
          h.update(block)
      out[rel] = h.hexdigest()
  return out


def _first_line(e: Exception) -> str:
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  text = f'{type(e).__name__}: {lines[0]}' if lines else type(e).__name__
  return text if len(text) <= 160 else text[:157] + '...'


class _quiet_orbax:
  """While a possibly damaged checkpoint is read: absl logging at FATAL, the asyncio logger
  silent and exceptions of orbax's reader threads unprinted (orbax logs the tracebacks of what
  it cannot read before raising the error animgen reports in one line)."""

  def __enter__(self):
    import logging as std_logging
    import threading
    self.previous = logging.get_verbosity()
    logging.set_verbosity(logging.FATAL)
    self.asyncio = std_logging.getLogger('asyncio')
    self.asyncio_level = self.asyncio.level
    self.asyncio.setLevel(std_logging.CRITICAL + 1)
    self.hooks = threading.excepthook, sys.unraisablehook
    threading.excepthook = sys.unraisablehook = lambda *_: None

  def __exit__(self, *exc):
    import threading
    logging.set_verbosity(self.previous)
    self.asyncio.setLevel(self.asyncio_level)
    threading.excepthook, sys.unraisablehook = self.hooks


def exists(workdir: str) -> bool:
  """Whether `workdir` holds a saved checkpoint (creates nothing, unlike Checkpointer)."""
  d = os.path.join(os.path.abspath(workdir), 'checkpoints')
  return os.path.isdir(d) and any(n.isdigit() for n in os.listdir(d))


def strip_frozen(method, state):
  """`state` without the method's frozen fields (e.g. VGG16 weights): what a checkpoint holds."""
  frozen = method.frozen_fields
  return state.replace(**{k: {} for k in frozen}) if frozen else state


def fill_frozen(method, state):
  """A restored `state` with the method's frozen fields put back from the method."""
  return state.replace(**method.frozen_values()) if method.frozen_fields else state


def restore_latest(workdir: str, abstract, what: str):
  """(state, step) of the latest checkpoint in `workdir`, shaped and sharded like `abstract`
  (ShapeDtypeStructs); InputError naming `what` (e.g. 'train.init_from=DIR') when there is
  none or it does not fit."""
  from animgen.errors import InputError
  if not exists(workdir):
    raise InputError(f'{what}: no checkpoint in {workdir}: train that run first')
  ckpt = Checkpointer(workdir)
  try:
    try:
      state, _, step = ckpt.restore_intact(abstract, with_data=False)
    except InputError as e:
      raise InputError(f'{what}: {e}') from None
    return state, step
  finally:
    ckpt.manager.close()


def abstract_like(tree, sharding):
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
