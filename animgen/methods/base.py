"""The method contract: what the trainer, the evaluators and `animgen.runs` call on a method.

A method is one paper's training recipe, built from its config and the size of the training
split. It is stateless apart from those two: no disk IO, no datasets, no checkpoints, and
nothing that a jitted step reads from `self` at trace time except the config and the networks.
Everything that needs the outside world (data records, artefacts of earlier runs) comes in as an
argument; everything it makes for the outside world (codebooks, figures) goes out as a return
value that the trainer writes.

Pure, jitted by the trainer (shardings and donation are the trainer's):
  init(rng, batch) -> state                        a flax struct pytree
  train_step(state, batch, rng) -> (state, metrics)
  eval_step(state, batch, inputs) -> metrics       per example [B]; averaged over the test split
  sample(state, batch, rng) -> {name: video}       [B, T, H, W, 3] in [0, 1], written as GIFs
  rollout(state, batch, num_frames, **kw) -> video [B, T, H, W, C] in [0, 1], frame 0 = input

Host side (numpy in, numpy out):
  frozen_values() -> {field: value}                state fields never checkpointed
  make_example(record, rng, train) -> dict         one example from a stored record
  eval_index(records) -> (index_fn, length) | None  the items evaluation visits, if not one each
  eval_inputs(state, artefacts) -> pytree | None   extra arguments of eval_step (e.g. codes)
  warm_start(state, source) -> state               train.init_from: take over a source state
  finalize(state, train_records) -> artefacts      {file name: content} after training
"""
from typing import Any, Callable, Iterable, Mapping

import jax
import numpy as np

Artefacts = Mapping[str, Any]   # file name -> content (dict of arrays for .npz, see runs.py)


class Method:
  """Base class of every method; subclasses override what their paper has."""

  # State fields that are constants of the method (e.g. frozen VGG16 weights): never written
  # to checkpoints, put back from frozen_values() on restore.
  frozen_fields: tuple[str, ...] = ()

  def __init__(self, config, num_train: int = 0):
    self.config = config
    self.num_train = num_train

  @property
  def compiler_options(self) -> dict | None:
    """XLA options the trainer compiles this method's programs with (None: XLA's defaults)."""
    return None

  def frozen_values(self) -> dict:
    """{field: value} for frozen_fields."""
    return {}

  # ---------------------------------------------------------------- data (host)
  def make_example(self, record: dict, rng: np.random.Generator | None, train: bool) -> dict:
    raise NotImplementedError

  def eval_index(self, records) -> tuple[Callable[[int], Any], int] | None:
    """(j -> record index or (index, extra), number of items) or None for one item per record."""
    del records
    return None

  # ---------------------------------------------------------------- steps (pure)
  def init(self, rng: jax.Array, batch: dict | None):
    raise NotImplementedError

  def train_step(self, state, batch: dict, rng: jax.Array):
    raise NotImplementedError

  def eval_inputs(self, state, artefacts: Artefacts):
    """Host-side extra inputs of eval_step, computed once per evaluation (None: none)."""
    del state, artefacts
    return None

  def eval_step(self, state, batch: dict, inputs) -> dict:
    del state, batch, inputs
    return {}

  def sample(self, state, batch: dict, rng: jax.Array) -> dict:
    del state, batch, rng
    return {}

  def rollout(self, state, batch: dict, num_frames: int, **kwargs):
    raise NotImplementedError(f'{type(self).__name__} has no rollout')

  # ---------------------------------------------------------------- run life cycle (host)
  def warm_start(self, state, source):
    """train.init_from: the fresh `state` takes the networks of `source`, the latest state of
    another run (built by that run's own config); optimiser state and step stay fresh."""
    return state.replace(**{k: getattr(source, k) for k in ('params', 'batch_stats')
                            if hasattr(state, k) and hasattr(source, k)})

  def finalize(self, state, train_records: Iterable[dict]) -> Artefacts:
    """Artefacts built from the trained state (e.g. a codebook), written into the workdir."""
    del state, train_records
    return {}
