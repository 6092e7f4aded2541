"""The one check of a training config before any work: every field a user can override
(`--config.x.y=...`) has a rule here, and a bad value is one InputError line naming the field,
the value and what is allowed. tests/test_fuzz.py asserts that every field of every config
variant has a rule, so a new field cannot skip the check; `option(rule)` parses the numeric
options of the `animgen` command with the same rules.

Rules are matched by dotted key, then by the fnmatch patterns in PATTERNS (e.g. `evals.*.type`).
"""
import fnmatch
import math
import os
from typing import Any, NamedTuple

from animgen.errors import InputError

_DTYPES = ('float32', 'bfloat16', 'float16')


class Int(NamedTuple):
  lo: int = 1                    # smallest allowed value
  multiple: int = 1              # value % multiple == 0
  why: str = ''                  # appended to the message, e.g. 'Table 1's three strides'
  hi: int | None = None          # largest allowed value

  def check(self, key, v):
    if type(v) is not int:
      return 'an integer'
    if v < self.lo or v % self.multiple or (self.hi is not None and v > self.hi):
      what = (f'an integer in [{self.lo}, {self.hi}]' if self.hi is not None else
              f'an integer >= {self.lo}') + (f', a multiple of {self.multiple}'
                                             if self.multiple > 1 else '')
      return what + (f' ({self.why})' if self.why else '')
    return None


class Float(NamedTuple):
  lo: float = 0.0
  hi: float = math.inf
  open_lo: bool = False          # lo itself excluded
  open_hi: bool = False

  def check(self, key, v):
    if type(v) not in (int, float):
      return 'a number'
    ok = math.isfinite(v) and (v > self.lo if self.open_lo else v >= self.lo) and \
        (v < self.hi if self.open_hi else v <= self.hi)
    if ok:
      return None
    left, right = '(' if self.open_lo else '[', ')' if self.open_hi or self.hi == math.inf else ']'
    hi = 'inf' if self.hi == math.inf else f'{self.hi:g}'
    return f'a finite number in {left}{self.lo:g}, {hi}{right}'


class Choice(NamedTuple):
  values: tuple

  def check(self, key, v):
    return None if v in self.values else 'one of ' + ', '.join(map(repr, self.values))


class Widths(NamedTuple):
  """A tuple of positive ints of a fixed length (the networks' layer widths)."""
  length: int | None = None      # None: the length the variant's default has

  def check(self, key, v, default=None):
    n = self.length if self.length is not None else (len(default) if default is not None
                                                     else None)
    if not isinstance(v, (tuple, list)) or not all(type(x) is int and x >= 1 for x in v):
      return 'a tuple of positive integers, e.g. (64, 128)'
    if n is not None and len(v) != n:
      return f'{n} positive integers (the network has {n} such layers)'
    return None


class Steps(NamedTuple):
  """A tuple of increasing step numbers >= 1 (lr drops, restarts); () for none."""

  def check(self, key, v):
    if not isinstance(v, (tuple, list)) or not all(type(x) is int and x >= 1 for x in v) \
        or list(v) != sorted(set(v)):
      return "increasing step numbers >= 1, e.g. '(2000,)', or '()' for none"
    return None


class Text(NamedTuple):
  """Free text (names checked where they are used, e.g. the dataset and method registries)."""

  def check(self, key, v):
    return None if isinstance(v, str) else 'text'


class Flag(NamedTuple):
  def check(self, key, v):
    return None if type(v) is bool else 'true or false'


class Folder(NamedTuple):
  """'' (unset) or a path that is not a file; `must_exist`: an existing folder."""
  must_exist: bool = False

  def check(self, key, v):
    if not isinstance(v, str):
      return 'a folder path'
    if not v:
      return None
    path = os.path.expanduser(v)
    if os.path.exists(path) and not os.path.isdir(path):
      return 'a folder, not a file'
    if self.must_exist and not os.path.isdir(path):
      return 'an existing folder (it does not exist)'
    return None


POS, NONNEG = Int(1), Int(0)
WEIGHT = Float(0.0)                        # a loss weight: finite, >= 0
RATE = Float(0.0, open_lo=True)            # a learning rate or scale: finite, > 0
PROB = Float(0.0, 1.0)

RULES: dict[str, Any] = {
    'method': Text(), 'dataset': Text(), 'data_dir': Folder(), 'manual_dir': Folder(True),
    'seed': NONNEG, 'dtype': Choice(_DTYPES), 'image_size': POS, 'batch_size': POS,
    'frames': POS, 'profile': Flag(),
    'optim.learning_rate': RATE, 'optim.b1': Float(0.0, 1.0, open_hi=True),
    'optim.b2': Float(0.0, 1.0, open_hi=True), 'optim.grad_clip': RATE,
    'optim.lr_decay': RATE, 'optim.lr_drop_at': Steps(),
    'data.threads': NONNEG, 'data.flip': Flag(), 'data.crop': NONNEG,
    'data.resized_crop': NONNEG, 'data.train_frames': NONNEG,
    'train.num_steps': POS, 'train.log_every': POS, 'train.checkpoint_every': POS,
    'train.keep_checkpoints': POS, 'train.sample_every': NONNEG, 'train.check_finite_every': POS,
    'train.eval_every': NONNEG, 'train.init_from': Folder(), 'train.restart_at': Steps(),
    'train.restart_freeze': NONNEG, 'train.phase': Choice(('vaegan', 'lstm')),
    'train.vaegan_frames_per_clip': POS,
    'eval.batch_size': POS, 'eval.codebook_codes': POS, 'eval.pairs_per_clip': POS,
    'eval.targets_per_clip': POS,
    'sample.num_frames': Int(2),
    'codebook.max_codes': POS,
    'dqn.epsilon_start': PROB, 'dqn.epsilon_end': PROB, 'dqn.epsilon_steps': NONNEG,
    'dqn.gamma': PROB, 'dqn.target_update_every': POS,
    'lstm.learning_rate': RATE, 'lstm.num_steps': POS,
    'loss.sigma': RATE, 'loss.pyramid_cells': POS,
    'model.beta': RATE, 'model.latent_reg': Choice(('none', 'vae', 'wae', 'wae_gan')),
    'model.recurrent': Choice(('convlstm', 'dense')),
    'model.widths': Widths(), 'model.encoder_widths': Widths(), 'model.decoder_widths': Widths(),
    'model.discriminator_widths': Widths(),
}
PATTERNS: dict[str, Any] = {
    'loss.lambda_*': WEIGHT,
    'evals.*.type': Text(), 'evals.*.on_train': Flag(), 'evals.*.digit_frame': NONNEG,
    'evals.*': POS,                        # the evaluators' counts (samples, frames, steps, ...)
    'model.*': POS,                        # sizes, counts and dims of the networks
}
# model.* booleans and the method-specific sizes
RULES.update({f'model.{k}': Flag() for k in
              ('captions', 'cuboid', 'dqn', 'fast', 'remat', 'rgb_conv')})
# Animating Landscape: Table 1's three stride-2 convolutions need a frame size divisible by 8
METHOD_RULES = {m: {'image_size': Int(8, 8, "Table 1's three stride-2 convolutions")}
                for m in ('landscape_motion', 'landscape_appearance')}


def rule_for(key: str, method: str | None = None):
  """The rule of a dotted key, or None when no rule covers it."""
  special = METHOD_RULES.get(method or '', {})
  if key in special:
    return special[key]
  if key in RULES:
    return RULES[key]
  for pattern, rule in PATTERNS.items():
    if fnmatch.fnmatchcase(key, pattern):
      return rule
  return None


def leaves(config, prefix: str = '') -> dict[str, Any]:
  """{dotted key: value} of a ConfigDict's leaves (plain dicts inside it are leaves' parents)."""
  out = {}
  for k, v in config.items():
    if hasattr(v, 'items'):
      out.update(leaves(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def check(config, default=None) -> None:
  """InputError (one line) for the first field of `config` its rule refuses, or that no rule
  covers. `default`: the same config before the user's overrides (gives tuples their length)."""
  method = config.get('method')
  base = leaves(default) if default is not None else {}
  for key, value in leaves(config).items():
    rule = rule_for(key, method)
    if rule is None:
      raise InputError(f'--config.{key}: animgen has no check for this field; '
                       'report it (animgen/validate.py)')
    why = rule.check(key, value, base.get(key)) if isinstance(rule, Widths) else \
        rule.check(key, value)
    if why:
      raise InputError(f'--config.{key}={_show(value)}: give {why}')
  _combinations(config)


def _combinations(c) -> None:
  d = c.get('dqn')
  if d is not None and d.epsilon_end > d.epsilon_start:
    raise InputError(f'--config.dqn.epsilon_end={d.epsilon_end} is above '
                     f'dqn.epsilon_start={d.epsilon_start}: epsilon decays, give end <= start')


def check_workdir(workdir: str) -> None:
  """A workdir that can hold a run: not a file, inside a folder that exists or can be made and
  is writable."""
  from animgen import media
  media.check_can_make(workdir, '--workdir', workdir)


def option(rule, parse=None):
  """An argparse `type=` that parses the option's text (int for Int, float for Float rules)
  and refuses what `rule` refuses, in argparse's one-line form."""
  import argparse
  parse = parse or (int if isinstance(rule, Int) else float)

  def convert(text: str):
    try:
      value = parse(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f'{_show(text)}: give {rule.check(None, None)}') from None
    why = rule.check(None, value)
    if why:
      raise argparse.ArgumentTypeError(f'{_show(text)}: give {why}')
    return value

  convert.__name__ = type(rule).__name__.lower()
  convert.rule = rule
  return convert


FPS = Float(0.0, 1000.0, open_lo=True)     # frames per second of a written animation
SEED = Int(0, hi=2**32 - 1)                # numpy's and JAX's seeds


def _show(value) -> str:
  text = repr(value) if isinstance(value, str) else str(value)
  return text if len(text) <= 60 else text[:57] + '...'
