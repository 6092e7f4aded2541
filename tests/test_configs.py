"""configs/: every variant builds, arguments parse big_vision-style, bad ones are one line."""
import glob
import importlib
import importlib.util
import os
import re
import sys

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from animgen.errors import InputError
from conftest import ROOT, run_cli

sys.path.insert(0, ROOT)
from configs import common  # noqa: E402

MODULES = ('landscape', 'landscape_appearance', 'image2gif', 'deepgifs', 'syncdraw')
# combinations the repository's tests, docs and module docstrings use
COMBINED = {
    'landscape': ['folder,res=64', 'folder,smoke=true', 'sky,smoke=true', 'cpu,smoke=false'],
    'landscape_appearance': ['folder,res=64', 'folder,smoke=true'],
    'image2gif': ['cpu,dqn', 'smoke,dqn', 'smoke,dense', 'cpu,real'],
    'deepgifs': ['balls_vaegan', 'cpu_vaegan', 'cpu_balls', 'cpu_balls_vaegan', 'smoke_vaegan'],
    'syncdraw': ['cpu,captions', 'cpu,cuboid', 'two_digit,captions', 'smoke,captions',
                 'smoke,two_digit', 'smoke,tgif'],
}


def _module(name):
  return importlib.import_module(f'configs.{name}')


def _every_variant():
  for name in MODULES:
    yield name, None
    yield name, ''
    for v in list(_module(name).VARIANTS) + COMBINED.get(name, []):
      yield name, v


def _flat(d, prefix=''):
  out = {}
  for k, v in d.items():
    out.update(_flat(v, f'{prefix}{k}.') if isinstance(v, dict) else {prefix + k: v})
  return out


def _one_line_error(fn, *fragments):
  with pytest.raises(InputError) as e:
    fn()
  msg = str(e.value)
  assert msg and '\n' not in msg, msg
  for f in fragments:
    assert f in msg, msg
  return msg


# ----------------------------------------------------------------------------- every variant


@pytest.mark.parametrize('name,variant', list(_every_variant()))
def test_variant_builds_and_round_trips(name, variant):
  c = _module(name).get_config(variant)
  assert isinstance(c, ml_collections.ConfigDict)
  d = c.to_dict()
  assert ml_collections.ConfigDict(d).to_dict() == d
  assert os.path.isfile(os.path.join(ROOT, 'animgen', 'methods', f'{c.method}.py')), c.method
  shared = _flat(common.base('m', 'd', batch_size=1, num_steps=1, learning_rate=1.0,
                             b1=0.5).to_dict())
  assert set(shared) <= set(_flat(d)), set(shared) - set(_flat(d))


def test_default_is_no_argument():
  for name in MODULES:
    m = _module(name)
    assert m.get_config().to_dict() == m.get_config(None).to_dict() == m.get_config('').to_dict()


@pytest.mark.parametrize('name', MODULES)
def test_docstring_documents_every_variant_and_option(name):
  m = _module(name)
  for v in m.VARIANTS:
    assert f':{v}' in m.__doc__ or f' {v},' in m.__doc__ or f' {v} ' in m.__doc__, v
  for key in getattr(m, 'OPTIONS', {}):
    assert f'{key}=<' in m.__doc__, key


def test_every_config_reference_in_the_repository_builds():
  """`configs/<name>.py[:arg]` in README, docs, colab, bench and the configs' docstrings."""
  files = [os.path.join(ROOT, 'README.md')] + [
      f for pattern in ('docs/**/*.md', 'colab/*.ipynb', 'bench/*.py', 'configs/*.py')
      for f in glob.glob(os.path.join(ROOT, pattern), recursive=True)]
  refs = set()
  for f in files:
    refs |= set(re.findall(r'configs/(\w+)\.py(?::([\w,=.]+))?', open(f).read()))
  assert ('landscape', 'cpu_large') in refs and ('deepgifs', 'cpu_balls_vaegan') in refs
  for name, arg in sorted(refs):
    if name != 'common':
      _module(name).get_config(arg.rstrip('.,') or None)


# ----------------------------------------------------------------------------- pinned variants


def test_landscape_cpu_large_continues_the_default_cpu_workdir():
  from animgen.main import default_workdir
  m = _module('landscape')
  cpu, large = m.get_config('cpu'), m.get_config('cpu_large')
  assert large.train.init_from == default_workdir('configs/landscape.py:cpu')
  assert large.train.init_from == 'runs/landscape_cpu'
  assert (large.dataset, large.train.num_steps, large.optim.lr_drop_at) == (
      'synthetic_timelapse/large', 3500, (2500,))
  assert (large.train.restart_at, large.train.restart_freeze) == ((), 0)
  assert (cpu.train.restart_at, cpu.train.init_from, cpu.image_size) == ((500,), '', 64)
  # with options, the :cpu run of the same options
  assert m.get_config('cpu_large,res=32').train.init_from == default_workdir(
      'configs/landscape.py:cpu,res=32')


def test_deepgifs_lstm_phase_starts_from_its_vaegan_workdir():
  from animgen.main import default_workdir
  m = _module('deepgifs')
  for v in ('', 'balls', 'cpu', 'cpu_balls', 'balls_cpu'):
    c = m.get_config(v)
    pre = f'{v}_vaegan' if v else 'vaegan'
    assert c.train.phase == 'lstm'
    assert c.train.init_from == default_workdir(f'configs/deepgifs.py:{pre}'), v
    p = m.get_config(pre)
    assert (p.train.phase, p.train.init_from, p.model.widths) == ('vaegan', '', c.model.widths)
  assert m.get_config('smoke').train.init_from == ''
  cpu, cpu_pre = m.get_config('cpu'), m.get_config('cpu_vaegan')
  assert (cpu.batch_size, cpu.train.num_steps) == (8, 1600)
  assert (cpu_pre.batch_size, cpu_pre.train.num_steps) == (32, 1500)
  assert m.get_config('balls_cpu_vaegan').to_dict() == m.get_config('vaegan_cpu_balls').to_dict()


def test_combined_variants_follow_their_documented_order():
  i2g = _module('image2gif')
  assert i2g.get_config('smoke,real').model.z_dim == 512    # left to right: the later wins
  assert i2g.get_config('real,smoke').model.z_dim == 4
  c = i2g.get_config('cpu,dqn')
  assert (c.model.dqn, c.batch_size, c.model.widths) == (True, 8, (8, 16, 32, 64))
  sd = _module('syncdraw')
  assert sd.get_config('smoke,cpu').to_dict() == sd.get_config('cpu,smoke').to_dict()
  assert sd.get_config('smoke,cpu').batch_size == 8          # listed order: smoke after cpu
  assert sd.get_config('two_digit,smoke').dataset == 'bouncing_mnist/two_digit_tiny'
  assert sd.get_config('smoke,tgif').dataset == 'tgif/tiny'
  assert sd.get_config('captions,two_digit').model.caption_length == 16


def test_smoke_variants_run_every_periodic_action():
  for name in MODULES:
    t = _module(name).get_config('smoke').train
    for every in (t.log_every, t.checkpoint_every, t.sample_every):
      assert 0 < every <= t.num_steps and t.num_steps <= 4, (name, t)


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize('name', ['landscape', 'landscape_appearance'])
def test_res_sets_the_frame_size_and_caps_the_encoder(name):
  m = _module(name)
  for variant, res, encoder in (('cpu', 64, 64), ('cpu', 48, 48), ('cpu', 128, 64),
                                ('', 256, 128), ('', 96, 96), ('smoke', 16, 16)):
    base = _flat(m.get_config(variant).to_dict())
    got = _flat(m.get_config(f'{variant},res={res}').to_dict())
    assert (got['image_size'], got['model.encoder_size']) == (res, encoder)
    changed = {k for k in base if base[k] != got[k]}
    assert changed <= {'image_size', 'model.encoder_size', 'train.init_from'}, changed
  assert m.get_config('cpu,res=64').to_dict() == m.get_config('cpu').to_dict()
  assert m.get_config('res=64,cpu').to_dict() == m.get_config('cpu').to_dict()


@pytest.mark.parametrize('name', ['landscape', 'landscape_appearance'])
def test_folder_trains_on_clip_folders_stored_at_the_frame_size(name):
  from animgen.datasets import clip_folders
  m = _module(name)
  c = m.get_config('folder')
  assert (c.dataset, c.image_size, c.manual_dir) == ('clip_folders/s256', 256, '')
  for res in (16, 64, 96, 512):
    got = m.get_config(f'folder,res={res}')
    assert (got.dataset, got.image_size) == (f'clip_folders/s{res}', res)
    assert res in clip_folders.SIZES                         # a builder config of that size
  # smoke=true: the :smoke run on the variant's data, nothing else changed
  smoke, flat_smoke = m.get_config('folder,smoke=true'), _flat(m.get_config('smoke').to_dict())
  got = _flat(smoke.to_dict())
  assert {k for k in got if got[k] != flat_smoke[k]} == {'dataset'}
  assert smoke.dataset == 'clip_folders/s32'
  assert m.get_config('folder,smoke=false').to_dict() == c.to_dict()
  assert m.get_config('folder,smoke=true,res=16').dataset == 'clip_folders/s16'
  assert m.get_config('smoke,smoke=true').to_dict() == m.get_config('smoke').to_dict()


@pytest.mark.parametrize('value', ['abc', '60', '8', '64.0', 'true', ''])
def test_bad_res_value_is_one_line(value):
  for name in ('landscape', 'landscape_appearance'):
    _one_line_error(lambda: _module(name).get_config(f'cpu,res={value}'), f'res={value}',
                    f'configs/{name}.py')


def test_parse_arg_parses_ints_floats_bools_and_text():
  opts = {'n': int, 'lr': float, 'flag': bool, 'tag': str}
  a = common.parse_arg(' a , n=3,lr=1e-3,flag=false,tag=7x', 'c.py', ['a', 'b'], opts)
  assert a == common.Arg('a', ('a',), {'n': 3, 'lr': 1e-3, 'flag': False, 'tag': '7x'},
                         ('n=3', 'lr=1e-3', 'flag=false', 'tag=7x'))
  assert type(a.options['n']) is int and a.options['flag'] is False
  b = common.parse_arg('lr=2,flag=True,tag=1', 'c.py', ['a'], opts)
  assert b.options == {'lr': 2.0, 'flag': True, 'tag': '1'} and type(b.options['lr']) is float
  assert common.parse_arg(None, 'c.py', ['a']) == common.Arg('', (), {}, ())
  assert common.parse_arg('a,b', 'c.py', ['a', 'b'], combine=True).names == ('a', 'b')
  assert common.parse_arg('b_a', 'c.py', ['a', 'b'], separator='_').names == ('b', 'a')
  for bad, fragment in (('n=2.5', 'n=2.5'), ('flag=1', 'flag=1'), ('n=x', 'n=x'),
                        ('lr=fast', 'lr=fast'), ('c', "'c'"), ('a,b', 'one variant'),
                        ('m=1', "'m'")):
    _one_line_error(lambda: common.parse_arg(bad, 'c.py', ['a', 'b'], opts), fragment, 'c.py')


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize('name', MODULES)
def test_unknown_variant_and_option_are_one_line(name):
  m = _module(name)
  msg = _one_line_error(lambda: m.get_config('nosuch'), "unknown variant 'nosuch'",
                        f'configs/{name}.py')
  for v in m.VARIANTS:
    assert v in msg, (v, msg)
  for key in getattr(m, 'OPTIONS', {}):
    assert f'{key}=' in msg
  msg = _one_line_error(lambda: m.get_config('smoke,bogus=1'), "unknown option 'bogus'")
  assert ('res=<int>' in msg) == ('res' in getattr(m, 'OPTIONS', {})), msg


def test_contradictory_variants_are_one_line():
  _one_line_error(lambda: _module('landscape').get_config('cpu,sky'), 'one variant', 'cpu,sky')
  _one_line_error(lambda: _module('deepgifs').get_config('cpu,balls'), 'one variant')
  _one_line_error(lambda: _module('deepgifs').get_config('cpu_bals'), "'bals'")
  _one_line_error(lambda: _module('syncdraw').get_config('tgif,captions'), 'tgif', 'captions')


# ----------------------------------------------------------------------------- entry point


def _flag_config(argv):
  """The config that animgen.main's --config flag gives for argv (a fresh FlagValues)."""
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file', flag_values=fv,
                                  lock_config=True, sys_argv=argv)
  fv(argv)
  return fv.config


def test_config_flag_passes_the_argument_and_overrides():
  path = os.path.join(ROOT, 'configs', 'landscape.py')
  c = _flag_config(['prog', f'--config={path}:cpu,res=48', '--config.train.num_steps=3',
                    "--config.optim.lr_drop_at=(2,)"])
  want = _module('landscape').get_config('cpu,res=48')
  want.train.num_steps = 3
  want.optim.lr_drop_at = (2,)
  assert c.to_dict() == want.to_dict() and c.image_size == 48
  with pytest.raises(AttributeError):
    c.new_field = 1                                    # lock_config=True, as animgen.main
  c = _flag_config(['prog', f'--config={path}:cpu,res=64'])
  assert c.to_dict() == _module('landscape').get_config('cpu').to_dict()
  path = os.path.join(ROOT, 'configs', 'syncdraw.py')
  assert _flag_config(['prog', f'--config={path}:cpu,captions']).model.captions is True


def test_config_flag_reports_the_configs_input_error():
  path = os.path.join(ROOT, 'configs', 'landscape.py')
  with pytest.raises(InputError, match="unknown variant 'nosuch'"):
    _flag_config(['prog', f'--config={path}:nosuch'])


def test_config_file_loads_by_path_from_another_directory(tmp_path, monkeypatch):
  """`animgen convert` and config_flags load a config by its path, with the repository root
  not on sys.path."""
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(sys, 'path', [p for p in sys.path if p not in ('', '.', ROOT)])
  for mod in [k for k in sys.modules if k == 'configs' or k.startswith('configs.')]:
    monkeypatch.delitem(sys.modules, mod)
  spec = importlib.util.spec_from_file_location(
      '_by_path_landscape', os.path.join(ROOT, 'configs', 'landscape_appearance.py'))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  assert mod.get_config('cpu').image_size == 64


def test_main_reports_an_unknown_variant_in_one_line(tmp_path):
  r = run_cli(['-m', 'animgen.main', '--config=configs/landscape.py:nosuch',
               f'--workdir={tmp_path / "w"}'], timeout=120)
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr[-1500:])
  assert "unknown variant 'nosuch'" in lines[0] and 'cpu_large' in lines[0], lines[0]
  assert not os.path.exists(tmp_path / 'w')
