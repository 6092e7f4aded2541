"""Orbax checkpoints of the method state together with the grain iterator state."""
import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Keeps the newest `keep` checkpoints under `workdir/checkpoints`; async saves."""

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_names=('state', 'data'))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_state: dict | None = None, force: bool = False):
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

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


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
      state, _ = ckpt.restore(abstract, with_data=False)
    except (ValueError, KeyError) as e:
      raise InputError(f'{what}: its checkpoint does not match its config.json: '
                       f'{str(e).splitlines()[0]}') from None
    return state, ckpt.latest_step()
  finally:
    ckpt.close()


def abstract_like(tree, sharding):
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
