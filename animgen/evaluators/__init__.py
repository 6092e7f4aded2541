"""Evaluation protocols, declared per config in `config.evals` (as big_vision does):

  config.evals.<name> = dict(type=<one of EVALUATORS>, on_train=<bool>, **options)

Each evaluator is a function `evaluate(ctx, **options) -> Output` of an `EvalContext`: the
method, its state, the mesh, the run's artefacts (codebooks) and the test split. It calls only
the method's pure functions (eval_step, rollout, sample, ...) and returns scalars, images for the
metric writer, and files (json, png, gif, md) that the trainer writes atomically into the
workdir. `on_train` evaluators also run every train.eval_every steps and after training; all of
them run with --mode=eval.
"""
import dataclasses
from typing import Any, Callable, Iterator

EVALUATORS = {
    'metrics': 'animgen.evaluators.metrics:evaluate',
    'landscape_sequences': 'animgen.evaluators.rollout:landscape_sequences',
    'deepgifs_rollout': 'animgen.evaluators.rollout:deepgifs_rollout',
    'image2gif_tables': 'animgen.evaluators.tables:evaluate',
    'syncdraw_attention': 'animgen.evaluators.captions:attention',
    'syncdraw_captions': 'animgen.evaluators.captions:adherence',
}


@dataclasses.dataclass
class EvalContext:
  config: Any
  method: Any                       # an animgen.methods.base.Method
  mesh: Any
  state: Any
  step: int
  artefacts: dict                   # file name -> content of the run's artefacts (runs.py)
  batches: Callable[[], Iterator]   # -> (sharded batch, host mask [B]) over the test split
  records: Callable[[], Any]        # -> the test split's records (random access, len())


@dataclasses.dataclass
class Output:
  scalars: dict = dataclasses.field(default_factory=dict)
  images: dict = dataclasses.field(default_factory=dict)   # name -> [1, H, W, 3] for writers
  files: dict = dataclasses.field(default_factory=dict)    # file name -> content (runs.write)


def get(kind: str) -> Callable:
  import importlib
  from animgen.errors import InputError
  if kind not in EVALUATORS:
    raise InputError(f'unknown evaluator type {kind!r} in config.evals: choose one of '
                     f'{sorted(EVALUATORS)}')
  module, fn = EVALUATORS[kind].split(':')
  return getattr(importlib.import_module(module), fn)


def declared(config, during_training: bool) -> list[tuple[str, Callable, dict]]:
  """(name, evaluate, options) of config.evals, only the on_train ones during training."""
  out = []
  for name, spec in (config.get('evals') or {}).items():
    spec = dict(spec)
    kind, on_train = spec.pop('type'), spec.pop('on_train', False)
    if during_training and not on_train:
      continue
    out.append((name, get(kind), spec))
  return out


def run(ctx: EvalContext, during_training: bool = False) -> Output:
  """Runs the declared evaluators in order and merges their outputs."""
  total = Output()
  for _, evaluate, options in declared(ctx.config, during_training):
    out = evaluate(ctx, **options)
    total.scalars.update(out.scalars)
    total.images.update(out.images)
    total.files.update(out.files)
  return total
