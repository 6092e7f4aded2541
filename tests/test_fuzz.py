"""Fuzz: malformed values of every option of every `animgen` subcommand, of every config field of
`python -m animgen.main`, and malformed files of every kind the commands read. Each is refused
with exit code 2, one line on stderr, no traceback and no new file (in-process where it can).

Values come from hypothesis (derandomised, so CI sees the same cases) and from the rules of
animgen/validate.py: every numeric option must be declared with a rule, so none escapes.
"""
import argparse
import os
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from animgen import cli, validate
from conftest import ROOT, run_cli

import test_configs

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
TREE = os.path.join(ROOT, 'data', 'clips', 'tree.mp4')
PHOTO = os.path.join(ROOT, 'data', 'photos', 'china.jpg')


# --------------------------------------------------------------------------- helpers
def _tree(root):
  out = set()
  for base, dirs, files in os.walk(root):
    out.update(os.path.relpath(os.path.join(base, n), root) for n in dirs + files)
  return out


def _refused(argv, capfd, root):
  """Runs `animgen argv` in-process: exit 2, one stderr line, no traceback, nothing new under
  root -> the line."""
  before = _tree(root)
  capfd.readouterr()
  with pytest.raises(SystemExit) as e:
    cli.main(argv)
  err = capfd.readouterr().err
  lines = [l for l in err.splitlines() if l.strip()]
  assert e.value.code == 2, (argv, err[-3000:])
  assert len(lines) == 1 and 'Traceback' not in err, (argv, err[-3000:])
  assert len(lines[0]) <= 1010, lines[0]   # runtime.user_errors clips longer messages
  assert _tree(root) == before, (argv, _tree(root) - before)
  return lines[0]


def _options(choices=False):
  """(subcommand words, option flag, its validate rule) for every typed option of `animgen`;
  choices: (words, flag, allowed values) for every option with a fixed set of values."""
  out = []

  def walk(parser, words):
    for a in parser._actions:   # pylint: disable=protected-access
      if isinstance(a, argparse._SubParsersAction):   # pylint: disable=protected-access
        for name, sp in a.choices.items():
          walk(sp, words + (name,))
      elif a.option_strings and choices and a.choices:
        out.append((words, a.option_strings[-1], tuple(a.choices)))
      elif a.option_strings and not choices and a.type is not None:
        out.append((words, a.option_strings[-1], a.type))
  walk(cli.build_parser(), ())
  return out


OPTIONS = _options()
CHOICES = _options(choices=True)
# required arguments of each subcommand (the option under test is appended)
BASE = {
    ('animate',): [PHOTO, '-o', 'OUT/a.gif'], ('loop',): [TREE, '-o', 'OUT/l.gif'],
    ('convert',): ['OUT'], ('prefs', 'panel'): ['OUT/panel'],
    ('prefs', 'fit'): ['OUT', '-o', 'OUT/m.npz'], ('prefs', 'eval'): ['OUT', '-o', 'OUT/e'],
    ('prefs', 'features'): ['OUT', '-o', 'OUT/f.npz'],
    ('sample',): ['--workdir', 'OUT', '-o', 'OUT/s.gif'],
    ('datasets',): ['prepare', 'synthetic_timelapse/tiny'],
}


def _argv(words, extra, root):
  base = [a.replace('OUT', str(root)) for a in BASE[words]]
  return list(words) + base + extra


def _bad_texts(rule):
  """Text that `rule` must refuse: unparsable, non-finite, out of range."""
  garbage = st.sampled_from(['nan', 'inf', '-inf', 'x', '', ' ', '1e400', '0x10', '1,5', '1_000x'])
  if isinstance(rule, validate.Int):
    parts = [garbage, st.integers(max_value=rule.lo - 1).map(str),
             st.floats(allow_nan=False, allow_infinity=False).filter(
                 lambda f: f != int(f)).map(repr)]
    if rule.hi is not None:
      parts.append(st.integers(min_value=rule.hi + 1).map(str))
    if rule.multiple > 1:
      parts.append(st.integers(rule.lo, 10_000).filter(lambda i: i % rule.multiple).map(str))
    return st.one_of(parts)
  parts = [garbage, st.floats(max_value=rule.lo, exclude_max=not rule.open_lo).map(repr)]
  if np.isfinite(rule.hi):
    parts.append(st.floats(min_value=rule.hi, exclude_min=not rule.open_hi).map(repr))
  return st.one_of(parts)


# --------------------------------------------------------------------------- options
def test_every_numeric_option_is_declared_with_a_rule():
  plain = [(w, f) for w, f, t in OPTIONS if not hasattr(t, 'rule')]
  assert not plain, f'options parsed without a validate rule: {plain}'
  assert len(OPTIONS) == 39   # animate 15, loop 11, prefs 11, sample 3... (a new one: add it)


@pytest.mark.parametrize('words,flag,converter', OPTIONS,
                         ids=[f'{" ".join(w)} {f}' for w, f, _ in OPTIONS])
def test_a_malformed_option_value_is_one_line(words, flag, converter, tmp_path, capfd):
  rule = converter.rule

  @SETTINGS
  @given(_bad_texts(rule))
  def check(text):
    line = _refused(_argv(words, [f'{flag}={text}'], tmp_path), capfd, tmp_path)
    assert flag in line, line

  check()


@pytest.mark.parametrize('words,flag,allowed', CHOICES,
                         ids=[f'{" ".join(w)} {f}' for w, f, _ in CHOICES])
def test_a_value_outside_an_options_choices_is_one_line(words, flag, allowed, tmp_path, capfd):
  for text in ('nope', '', allowed[0].upper() + '_'):
    line = _refused(_argv(words, [f'{flag}={text}'], tmp_path), capfd, tmp_path)
    assert flag in line and allowed[0] in line, line   # names the option and what is allowed


# --------------------------------------------------------------------------- config fields
def _bad_values(rule, default):
  if isinstance(rule, validate.Int):
    return st.one_of(st.integers(max_value=rule.lo - 1),
                     st.integers(rule.lo, 10**6).filter(lambda i: i % rule.multiple)
                     if rule.multiple > 1 else st.nothing(),
                     st.just(1.5), st.just('8'))
  if isinstance(rule, validate.Float):
    return st.one_of(st.sampled_from([float('nan'), float('inf'), -float('inf'), 'x']),
                     st.floats(max_value=rule.lo, exclude_max=not rule.open_lo),
                     st.floats(min_value=rule.hi, exclude_min=not rule.open_hi)
                     if np.isfinite(rule.hi) else st.nothing())
  if isinstance(rule, validate.Choice):
    return st.text(max_size=8).filter(lambda t: t not in rule.values)
  if isinstance(rule, validate.Widths):
    n = len(default)
    return st.one_of(st.lists(st.integers(1, 64), max_size=6).filter(lambda l: len(l) != n)
                     .map(tuple), st.just((0,) * n), st.just((-1,) * n))
  if isinstance(rule, validate.Steps):
    return st.one_of(st.just((5, 3)), st.just((0,)), st.just((4, 4)), st.just('(1,)'))
  if isinstance(rule, validate.Flag):
    return st.sampled_from([1, 'true', None])
  if isinstance(rule, validate.Text):
    return st.sampled_from([1, None, 2.5])
  if isinstance(rule, validate.Folder):
    return st.just(__file__)
  raise AssertionError(rule)


def _fields():
  seen, out = set(), []
  for name, variant in test_configs._every_variant():   # pylint: disable=protected-access
    config = test_configs._module(name).get_config(variant)   # pylint: disable=protected-access
    for key, value in validate.leaves(config).items():
      if (config.method, key) not in seen:
        seen.add((config.method, key))
        out.append((name, variant, key))
  return out


FIELDS = _fields()


def test_every_field_of_every_config_variant_has_a_rule_and_its_defaults_pass():
  for name, variant in test_configs._every_variant():   # pylint: disable=protected-access
    config = test_configs._module(name).get_config(variant)   # pylint: disable=protected-access
    for key in validate.leaves(config):
      assert validate.rule_for(key, config.method) is not None, (name, variant, key)
    validate.check(config, config)


@pytest.mark.parametrize('name,variant,key', FIELDS, ids=[f'{n}:{v} {k}' for n, v, k in FIELDS])
def test_a_malformed_config_field_is_one_line_naming_it(name, variant, key):
  from animgen.errors import InputError
  default = test_configs._module(name).get_config(variant)   # pylint: disable=protected-access
  rule = validate.rule_for(key, default.method)

  @SETTINGS
  @given(_bad_values(rule, validate.leaves(default)[key]))
  def check(value):
    tree = default.to_dict()
    *parents, leaf = key.split('.')
    node = tree
    for p in parents:
      node = node[p]
    node[leaf] = value
    config = ml_collections.ConfigDict(tree)   # any type: config_flags' own check is bypassed
    with pytest.raises(InputError) as e:
      validate.check(config, default)
    msg = str(e.value)
    assert '\n' not in msg and f'--config.{key}=' in msg, msg

  check()


MAIN_CASES = [
    ['--config.train.keep_checkpoints=0'], ['--config.batch_size=-1'],
    ['--config.train.log_every=0'], ['--config.optim.learning_rate=nan'],
    ["--config.model.widths=(1,2)"], ['--config.dtype=float7'], ['--config.image_size=12'],
    ['--config.train.num_steps=abc'], ['--config.data_dir=' + __file__], ['stray'],
    ['--config.dataset=nope/x'], ['--config.train.init_from=/nonexistent/run'],
    ['--workdir=' + __file__], ['--workdir=' + __file__ + '/run'], ['--mode=eval'],
    ['--mode=finalize'],
    ['--config=configs/landscape.py:nope'],
    ['--config.no_such_field=1'],
]


def test_animgen_main_refuses_malformed_overrides_before_any_work(tmp_path):
  """A subprocess each (absl flags are process-global): exit 2, one line, nothing written."""
  data = tmp_path / 'data'
  for extra in MAIN_CASES:
    workdir = tmp_path / 'run'
    args = ['-m', 'animgen.main', '--config=configs/landscape.py:smoke', f'--workdir={workdir}',
            f'--config.data_dir={data}'] + extra
    r = run_cli(args, timeout=300)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and 'Traceback' not in r.stderr, (extra,
                                                                                   r.stderr)
    assert lines[0].startswith('animgen: error: '), lines
    assert not workdir.exists() and not data.exists(), extra


# --------------------------------------------------------------------------- files
def _write(path, content: bytes):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(content)
  return str(path)


def _pickled_npz(path, **extra):
  np.savez(path, codes=np.array([{'a': 1}], dtype=object), **extra)
  return str(path)


def _head(path, n):
  with open(path, 'rb') as f:
    return f.read(n)


def _workdir_with(src, tmp, name, config_json=None, codebook=None):
  dest = os.path.join(tmp, name)
  shutil.copytree(src, dest)
  if config_json is not None:
    _write(os.path.join(dest, 'config.json'), config_json)
  if codebook is not None:
    path = os.path.join(dest, 'codebook_motion.npz')
    os.remove(path)
    codebook(path)
  return dest


@pytest.fixture(scope='module')
def prefs_model(tmp_path_factory):
  """A preference model fitted on a small random panel (as tests/test_preference_cli.py)."""
  import test_preference_cli
  from animgen.preference import panel
  d = tmp_path_factory.mktemp('fuzz_prefs')
  panel.write_panel(str(d / 'panel'), test_preference_cli._random_panel())  # pylint: disable=protected-access
  cli.main(['prefs', 'fit', str(d / 'panel'), '-o', str(d / 'model.npz')])
  return str(d / 'model.npz')


@pytest.fixture
def inputs(tmp_path, smoke_run, appearance_run, prefs_model):
  """Malformed files of every kind, in tmp_path/in (the outputs go to tmp_path/out)."""
  d = tmp_path / 'in'
  d.mkdir()
  (tmp_path / 'out').mkdir()
  src = smoke_run[1]
  black = d / 'black.png'
  from PIL import Image
  Image.new('RGB', (64, 48)).save(black)
  good_json = open(os.path.join(src, 'config.json'), 'rb').read()
  f = {
      'empty.jpg': _write(d / 'empty.jpg', b''),
      'text.png': _write(d / 'text.png', b'not an image'),
      'half.jpg': _write(d / 'half.jpg', _head(PHOTO, 300)),
      'emptydir': str(d / 'emptydir'),
      'empty.mp4': _write(d / 'empty.mp4', b''),
      'text.gif': _write(d / 'text.gif', b'GIF89a broken'),
      'half.mp4': _write(d / 'half.mp4', _head(TREE, 2000)),
      'black.png': str(black),
      'garbage.npz': _write(d / 'garbage.npz', b'PK\x03\x04 broken zip'),
      'pickled.npz': _pickled_npz(d / 'pickled.npz'),
      'nokeys.npz': (np.savez(d / 'nokeys.npz', other=np.zeros(3)), str(d / 'nokeys.npz'))[1],
      'bad.json': _write(d / 'bad.json', b'[[1, 2, 3'),
      'deep.json': _write(d / 'deep.json', b'[' * 100_000 + b']' * 100_000),
      'shape.json': _write(d / 'shape.json', b'[[1, 2]]'),
      'ratings.csv': _write(d / 'ratings.csv', b'\x00\x01garbage\n,,,\n'),
      'model.onnx': _write(d / 'model.onnx', b'not a model'),
      'model.xyz': _write(d / 'model.xyz', b'x'),
      'run_truncated': _workdir_with(src, d, 'run_truncated', good_json[:len(good_json) // 2]),
      'run_empty_obj': _workdir_with(src, d, 'run_empty_obj', b'{}'),
      'run_list': _workdir_with(src, d, 'run_list', b'[]'),
      'run_pickled_codebook': _workdir_with(src, d, 'run_pickled_codebook',
                                            codebook=_pickled_npz),
      'run_garbage_codebook': _workdir_with(
          src, d, 'run_garbage_codebook', codebook=lambda p: _write(p, b'garbage')),
      'run_no_config': str(d / 'emptydir'),
      'motion_run': src,
      'appearance_run': appearance_run[1],
      'prefs_model': prefs_model,
      'pth_dir': str(d / 'pth'),
      'one_gif_dir': str(d / 'gifs'),
  }
  os.makedirs(f['emptydir'])
  for name in ('PMNet_weight_5000.pth', 'EMNet_weight_5000.pth', 'codebook_m_5000.pkl'):
    _write(d / 'pth' / name, b'\x80\x04garbage pickle')
  os.makedirs(f['one_gif_dir'])
  shutil.copy(os.path.join(ROOT, 'data', 'clips', 'newtonscradle.gif'), f['one_gif_dir'])
  return tmp_path, f


def _file_cases():
  """(id, argv with IN:<file> placeholders and OUT for the output folder, what the one line
  must name: the file, folder or option at fault)."""
  a = ['animate']
  lp = ['loop', TREE, '-o', 'OUT/l.gif', '--min-period', '16']   # tree.mp4: 40 frames
  an = ['animate', PHOTO, '-o', 'OUT/a.gif', '--workdir', 'IN:motion_run', '--frames', '3']
  ap = an + ['--appearance-workdir', 'IN:appearance_run']
  return [
      *[(f'animate photo {k}', a + [f'IN:{k}', '-o', 'OUT/a.gif', '--workdir', 'IN:motion_run'],
         k) for k in ('empty.jpg', 'text.png', 'half.jpg', 'emptydir')],
      *[(f'loop video {k}', ['loop', f'IN:{k}', '-o', 'OUT/l.gif'], k)
        for k in ('empty.mp4', 'text.gif', 'half.mp4', 'emptydir', 'text.png')],
      *[(f'loop mask {k}', lp + ['--mask', f'IN:{k}'], k) for k in ('empty.jpg', 'text.png',
                                                                      'black.png')],
      *[(f'loop segmentation {k}', lp + ['--segmentation', f'IN:{k}'], k)
        for k in ('garbage.npz', 'pickled.npz', 'nokeys.npz', 'text.png')],
      *[(f'loop segmenter {k}', lp + ['--segmenter', f'IN:{k}'], k)
        for k in ('model.onnx', 'model.xyz', 'emptydir')],
      *[(f'loop prefs {k}', lp + ['--prefs', f'IN:{k}', '--user', 'u0'], k)
        for k in ('garbage.npz', 'pickled.npz', 'nokeys.npz')],
      ('loop prefs unknown user', lp + ['--prefs', 'IN:prefs_model', '--user', 'nobody'],
       'nobody'),
      *[(f'loop user-ratings {k}', lp + ['--prefs', 'IN:prefs_model', '--user-ratings',
                                         f'IN:{k}'], k)
        for k in ('ratings.csv', 'empty.jpg', 'emptydir')],
      *[(f'loop reuse-stage1 {k}', lp + ['--reuse-stage1', f'IN:{k}'], k)
        for k in ('garbage.npz', 'pickled.npz', 'nokeys.npz')],
      *[(f'animate arrows {k}', an + ['--arrows', f'IN:{k}'], k)
        for k in ('bad.json', 'deep.json', 'shape.json', 'empty.jpg')],
      *[(f'animate arrows text {t!r}', an + [f'--arrows={t}'], '--arrows')
        for t in ('', 'a,b,c', '1,2,3', '1,2,3,nan')],
      *[(f'animate workdir {k}', ['animate', PHOTO, '-o', 'OUT/a.gif', '--workdir', f'IN:{k}'],
         k.replace('run_no_config', 'emptydir'))
        for k in ('run_truncated', 'run_empty_obj', 'run_list', 'run_pickled_codebook',
                  'run_garbage_codebook', 'run_no_config', 'text.png')],
      *[(f'animate appearance-workdir {k}', an + ['--appearance-workdir', f'IN:{k}'], k)
        for k in ('motion_run', 'emptydir', 'text.png')],
      *[(f'animate patch {k}', ap + ['--patch', f'IN:{k}', '--patch-mask', 'IN:black.png'], k)
        for k in ('text.png', 'empty.jpg')],
      ('animate patch-mask all black', ap + ['--patch', PHOTO, '--patch-mask', 'IN:black.png'],
       '--patch-mask'),
      ('animate frames beyond memory', ['animate', PHOTO, '-o', 'OUT/a.gif', '--workdir',
                                        'IN:motion_run', '--frames', '99999'], '--frames'),
      ('convert pth without trust', ['convert', 'IN:pth_dir', '--motion-out', 'OUT/m',
                                     '--appearance-out', 'OUT/a'], '--trust-pickle'),
      ('convert pth garbage trusted', ['convert', 'IN:pth_dir', '--motion-out', 'OUT/m',
                                       '--appearance-out', 'OUT/a', '--trust-pickle'],
       'PMNet_weight_5000.pth'),
      ('convert empty dir', ['convert', 'IN:emptydir', '--motion-out', 'OUT/m'], 'emptydir'),
      ('prefs fit no panel', ['prefs', 'fit', 'IN:emptydir', '-o', 'OUT/m.npz'], 'emptydir'),
      ('prefs features no files', ['prefs', 'features', 'IN:emptydir', '-o', 'OUT/f.npz'],
       'emptydir'),
      *[(f'prefs features motion {k}', ['prefs', 'features', 'IN:one_gif_dir', '-o',
                                        'OUT/f.npz', '--motion-features', f'IN:{k}'], k)
        for k in ('pickled.npz', 'garbage.npz', 'nokeys.npz')],
      ('sample wrong method', ['sample', '--workdir', 'IN:motion_run', '-o', 'OUT/s.gif'],
       'landscape_motion'),
      ('sample no run', ['sample', '--workdir', 'IN:emptydir', '-o', 'OUT/s.gif'], 'emptydir'),
      ('datasets manual dir file', ['datasets', 'prepare', 'sky_timelapse/default',
                                    '--data-dir', 'OUT/tfds', '--manual-dir', 'IN:text.png'],
       'text.png'),
      ('datasets data dir file', ['datasets', 'prepare', 'synthetic_timelapse/tiny',
                                  '--data-dir', 'IN:text.png'], 'text.png'),
      ('datasets manual dir empty', ['datasets', 'prepare', 'sky_timelapse/default',
                                     '--data-dir', 'OUT/tfds', '--manual-dir', 'IN:emptydir'],
       'emptydir'),
      ('datasets unknown', ['datasets', 'prepare', 'nope/x', '--data-dir', 'OUT/tfds'],
       'nope/x'),
      # an output inside a file, or two outputs on one path: refused before any work
      ('loop labels-out under a file', lp + ['--labels-out', 'IN:text.png/l.npz'], 'text.png'),
      ('loop output under a file', ['loop', TREE, '-o', 'IN:text.png/l.gif', '--min-period',
                                    '16'], 'text.png'),
      ('animate output under a file', an[:2] + ['-o', 'IN:text.png/a.gif'] + an[4:],
       'text.png'),
      ('animate flow-output under a file', an + ['--flow-output', 'IN:text.png/f.gif'],
       'text.png'),
      ('sample attention under a file', ['sample', '--workdir', 'IN:motion_run', '-o',
                                         'OUT/s.gif', '--attention', 'IN:text.png/a.png'],
       'text.png'),
      ('sample attention is the output', ['sample', '--workdir', 'IN:motion_run', '-o',
                                          'OUT/s.png', '--attention', 'OUT/s.png'],
       '--attention'),
      ('convert out under a file', ['convert', 'IN:pth_dir', '--motion-out', 'IN:text.png/m',
                                    '--trust-pickle'], 'text.png'),
      ('prefs fit output under a file', ['prefs', 'fit', 'IN:emptydir', '-o',
                                         'IN:text.png/m.npz'], 'text.png'),
      ('datasets data dir under a file', ['datasets', 'prepare', 'synthetic_timelapse/tiny',
                                          '--data-dir', 'IN:text.png/tfds'], 'text.png'),
  ]


FILE_CASES = _file_cases()


@pytest.mark.parametrize('argv,culprit', [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_a_malformed_input_file_is_one_line(argv, culprit, inputs, capfd):
  root, files = inputs
  out = []
  for a in argv:
    for k, v in files.items():
      a = a.replace(f'IN:{k}', v)
    out.append(a.replace('OUT', str(root / 'out')))
  line = _refused(out, capfd, root)
  names = [culprit] + ([os.path.basename(files[culprit])] if culprit in files else [])
  assert any(n in line for n in names), (culprit, line)   # the line names what is at fault


def test_a_warning_raised_while_reading_a_bad_file_stays_off_the_error_line(tmp_path):
  """torch warns about the pickle protocol of a garbage .pth before refusing it: in a
  subprocess (pytest would catch the warning in-process) the error is still the one line."""
  for name in ('PMNet_weight_5000.pth', 'codebook_m_5000.pkl'):
    _write(tmp_path / 'pth' / name, b'\x80\x04garbage pickle')
  r = run_cli(['-m', 'animgen.cli', 'convert', str(tmp_path / 'pth'), '--motion-out',
               str(tmp_path / 'm'), '--trust-pickle'])
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert r.returncode == 2 and len(lines) == 1 and 'PMNet_weight_5000.pth' in lines[0], lines


def test_a_loop_beyond_memory_is_refused_with_the_estimate(tmp_path, capfd, monkeypatch):
  from animgen import media
  monkeypatch.setattr(media, 'available_memory', lambda: 64 << 20)
  line = _refused(['loop', TREE, '-o', str(tmp_path / 'l.gif'), '--min-period', '16'], capfd,
                  tmp_path)
  assert 'needs about' in line and 'GiB' in line and '--max-size' in line, line


def test_two_loops_writing_one_output_leave_one_intact_file(tmp_path):
  """Outputs are written to a temporary name and renamed: the last rename wins whole."""
  out = tmp_path / 'loop.gif'
  cmd = [sys.executable, '-m', 'animgen.cli', 'loop', os.path.join(ROOT, 'data', 'clips',
                                                                   'newtonscradle.gif'),
         '-o', str(out), '--max-size', '48', '--min-period', '8', '-q']
  procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for _ in range(2)]
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-2000:]
  from animgen import media
  frames, _ = media.read_video(str(out))
  assert len(frames) >= 8 and sorted(os.listdir(tmp_path)) == ['loop.gif', 'loop_labels.png']
