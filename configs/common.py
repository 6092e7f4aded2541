"""What every configs/<method>.py shares: the base fields and big_vision-style arguments.

`--config=configs/landscape.py:cpu,res=64` calls `get_config('cpu,res=64')`. The argument is a
comma-separated list of tokens: a token without `=` names a variant (`cpu`), a `key=value`
token sets an option (`res=64`). Values are parsed as int, float or bool (`true` / `false`),
otherwise kept as text, and must have the type the config declares for the key. Each config
lists its variants and options in its module docstring; anything else raises `InputError`
with one line naming the bad token and what is allowed. No argument (or '') is the default.

A variant is a few overrides of the config's default: a dict of dotted keys
(`{'train.num_steps': 1500}`), a function `f(config)` for overrides that read fields set
before them, or a tuple of these applied in order.
"""
import os
from typing import Any, Collection, Mapping, NamedTuple

import ml_collections

from animgen.errors import InputError


class Arg(NamedTuple):
  """A parsed `get_config` argument."""
  variant: str                    # the variant tokens as given, comma-joined ('' for none)
  names: tuple[str, ...]          # the variant names, in the order given
  options: dict[str, Any]         # key -> value, parsed and type-checked
  option_tokens: tuple[str, ...]  # the `key=value` tokens as given


def base(method: str, dataset: str, *, batch_size: int, num_steps: int, learning_rate: float,
         b1: float, image_size: int | None = None, sample_frames: int | None = None,
         init_from: str | None = None) -> ml_collections.ConfigDict:
  """The fields every method's config has, with the defaults they share.

  `image_size`, `sample.num_frames` and `train.init_from` exist only where a method reads
  them (given here as not None).
  """
  c = ml_collections.ConfigDict()
  c.method = method                    # animgen/methods/<method>.py
  c.dataset = dataset                  # tfds name/config (animgen/datasets/)
  c.data_dir = '~/tensorflow_datasets'
  c.manual_dir = ''                    # the folder real datasets read their files from
  c.seed = 0
  c.dtype = 'float32'
  if image_size is not None:
    c.image_size = image_size
  c.batch_size = batch_size            # global, sharded over all devices

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = learning_rate  # Adam
  c.optim.b1 = b1
  c.optim.b2 = 0.999

  c.data = ml_collections.ConfigDict()
  c.data.threads = 2                   # grain read threads (0: none)

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = num_steps
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 2000
  c.train.check_finite_every = 1       # steps between NaN/Inf checks of the metrics
  c.train.eval_every = 0               # >0: evaluate (eval_<step>.json) during training
  if init_from is not None:
    c.train.init_from = init_from      # '' or the workdir of a run to start from

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = batch_size
  # Evaluation protocols (animgen/evaluators/): name -> dict(type, on_train, options). on_train
  # ones also run every train.eval_every steps and after training; all run with --mode=eval.
  c.evals = ml_collections.ConfigDict()
  c.evals.metrics = {'type': 'metrics', 'on_train': True}   # eval_step over the test split
  c.profile = False                    # True: a clu profiler trace of a few steps in workdir
  if sample_frames is not None:
    c.sample = ml_collections.ConfigDict()
    c.sample.num_frames = sample_frames
  return c


def smoke(*, num_steps: int, batch_size: int) -> dict[str, Any]:
  """Overrides for a test-sized run in which every periodic action (log, checkpoint, sample)
  happens at least once, without read threads."""
  return {'batch_size': batch_size, 'eval.batch_size': batch_size,
          'train.num_steps': num_steps, 'train.log_every': num_steps // 2,
          'train.checkpoint_every': 2, 'train.sample_every': num_steps, 'data.threads': 0}


def apply(c: ml_collections.ConfigDict, overrides) -> None:
  """Applies a variant's overrides (a dict of dotted keys, a function or a tuple of these)."""
  if isinstance(overrides, tuple):
    for o in overrides:
      apply(c, o)
  elif callable(overrides):
    overrides(c)
  else:
    for key, value in overrides.items():
      *parents, leaf = key.split('.')
      node = c
      for p in parents:
        node = node[p]
      assert leaf in node, f'override of a field the config does not have: {key}'
      node[leaf] = value


def run_dir(config_name: str, arg: str) -> str:
  """The workdir that `python -m animgen.main --config=configs/<config_name>.py:<arg>` uses
  by default (animgen.main.default_workdir): runs/<config_name>[_<arg>]."""
  return os.path.join('runs', config_name + (f'_{arg}' if arg else ''))


def parse_arg(arg: str | None, config: str, variants: Collection[str],
              options: Mapping[str, type] | None = None, *, combine: bool = False,
              separator: str | None = None) -> Arg:
  """'cpu,res=64' -> Arg('cpu', ('cpu',), {'res': 64}, ('res=64',)).

  config: the file for messages ('configs/landscape.py'); variants: the allowed names;
  options: key -> type (int, float, bool or str); combine: several variant tokens may be given;
  separator: a variant token joins several names with it (deepgifs: `cpu_balls_vaegan`).
  """
  options = options or {}
  tokens = [t.strip() for t in (arg or '').split(',') if t.strip()]
  variant_tokens = [t for t in tokens if '=' not in t]
  option_tokens = tuple(t for t in tokens if '=' in t)
  opts = ', '.join(f'{k}=<{t.__name__}>' for k, t in options.items())
  allowed = _allowed(variants, combine, separator) + (f' (options: {opts})' if opts else '')
  if len(variant_tokens) > 1 and not combine:
    raise InputError(f'{config}:{arg}: one variant at a time, not {",".join(variant_tokens)!r}:'
                     f' use {allowed}')
  names = []
  for token in variant_tokens:
    for name in token.split(separator) if separator else [token]:
      if name not in variants:
        raise InputError(f'unknown variant {name!r} of {config}: use {allowed}')
      names.append(name)
  values = {}
  for token in option_tokens:
    key, _, text = (s.strip() for s in token.partition('='))
    if key not in options:
      raise InputError(f'unknown option {key!r} of {config} (in {arg!r}): '
                       + (f'use {opts}' if opts else 'it takes no key=value options'))
    values[key] = _typed(key, text, options[key], config)
  return Arg(','.join(variant_tokens), tuple(names), values, option_tokens)


def check(ok: bool, message: str) -> None:
  """A bad option value: InputError with one line."""
  if not ok:
    raise InputError(message)


def _allowed(variants: Collection[str], combine: bool, separator: str | None) -> str:
  names = list(variants)
  text = ', '.join(names[:-1]) + ' or ' + names[-1] if len(names) > 1 else names[0]
  if separator:
    return text + f' (several joined with {separator})'
  return text + (' (several joined with commas)' if combine else '')


def _parse_value(text: str):
  """'64' -> 64, '1e-3' -> 0.001, 'true' -> True; anything else stays text."""
  if text.lower() in ('true', 'false'):
    return text.lower() == 'true'
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def _typed(key: str, text: str, kind: type, config: str):
  """The option's value as `kind` (an int is a valid float)."""
  value = text if kind is str else _parse_value(text)
  if text == '' or not (type(value) is kind or (kind is float and type(value) is int)):
    raise InputError(f'option {key}={text} of {config}: expected {kind.__name__}')
  return float(value) if kind is float else value
