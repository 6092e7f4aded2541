"""animgen convert: official Animating Landscape PyTorch checkpoints -> animgen runs.

The official networks are re-expressed in PyTorch in tests/official_landscape.py (from their
layer facts; written for the tests, not copied), so that their state dicts carry the official
key names. The same random weights go through them and through animgen's converted flax
networks.
"""
import copy
import os
import pickle

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import torch  # the `convert` extra of the README's test command installs it

from animgen import convert
from animgen.errors import InputError
from animgen.models.landscape import Encoder, Predictor
from animgen.ops import color
from official_landscape import (NZ, TEncoder, TPredictor, appearance_out, motion_out,
                                randomise_bn, state_dict, write_model_dir)

# Small but official-shaped: the key names do not depend on the widths. w1 = 80 keeps the
# last up-convolution on the same fast path as the full-size network (6 * 5 * 5 <= 2 * w1).
WIDTHS = (80, 24, 40)
ENC_WIDTHS = (16, 24, 32, 40)
TOL = 1e-4


@pytest.fixture(scope='module')
def nets():
  torch.manual_seed(0)
  return {'PMNet': TPredictor(2, WIDTHS).eval(), 'PANet': TPredictor(6, WIDTHS).eval(),
          'EMNet': randomise_bn(TEncoder(2, ENC_WIDTHS), 1).eval(),
          'EANet': randomise_bn(TEncoder(3, ENC_WIDTHS), 2).eval()}


def _inputs(b=2, size=64, seed=0):
  rng = np.random.default_rng(seed)
  x_rgb = rng.uniform(-1, 1, (b, size, size, 3)).astype(np.float32)  # NHWC, RGB
  z = rng.normal(size=(b, NZ)).astype(np.float32)
  x_bgr_nchw = torch.from_numpy(np.ascontiguousarray(x_rgb[..., ::-1].transpose(0, 3, 1, 2)))
  return x_rgb, z, x_bgr_nchw, torch.from_numpy(z)


def _nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _max_diff(a, b):
  return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# ----------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize('fast', [True, False])
def test_motion_predictor_matches_torch(nets, fast):
  pm = state_dict(nets['PMNet'])
  assert 'res5.in2.shift' in pm and 'conv1.conv2d.weight' in pm  # official names
  arch = convert.predictor_arch(pm)
  assert arch == {'widths': WIDTHS, 'num_res_blocks': 5, 'latent_dim': NZ, 'out_channels': 2}
  params = convert.predictor_params(pm, 'motion')
  model = Predictor(out_channels=2, widths=WIDTHS, num_res_blocks=5, beta=1 / 64, fast=fast)
  x, z, tx, tz = _inputs()
  ours = jax.jit(model.apply)({'params': params}, jnp.asarray(x), jnp.asarray(z))
  with torch.no_grad():
    ref = _nhwc(motion_out(nets['PMNet'], tx, tz))  # flow (x, y): no channel reordering
  assert np.abs(ref).max() > 1e-3
  assert _max_diff(ours, ref) < TOL


def test_appearance_predictor_matches_torch(nets):
  pa = state_dict(nets['PANet'])
  assert 'fc1.weight' in pa  # the official unused head is skipped
  params = convert.predictor_params(pa, 'appearance')
  model = Predictor(out_channels=6, widths=WIDTHS, num_res_blocks=5, beta=None)
  x, z, tx, tz = _inputs(seed=1)
  maps = jax.jit(model.apply)({'params': params}, jnp.asarray(x), jnp.asarray(z))
  with torch.no_grad():
    y, al, bl = appearance_out(nets['PANet'], tx, tz)
  # Official maps act on BGR channels; ours on RGB.
  ref_maps = np.concatenate([_nhwc(al)[..., ::-1], _nhwc(bl)[..., ::-1]], -1)
  assert _max_diff(maps, ref_maps) < TOL
  out = color.color_transfer(maps, jnp.asarray(x))
  assert _max_diff(out, _nhwc(y)[..., ::-1]) < TOL


@pytest.mark.parametrize('kind', ['motion', 'appearance'])
def test_encoder_matches_torch(nets, kind):
  name = 'EMNet' if kind == 'motion' else 'EANet'
  sd = state_dict(nets[name])
  assert 'conv.1.conv.0.running_var' in sd and 'conv.3.shortcut.1.weight' in sd
  assert convert.encoder_arch(sd)['widths'] == ENC_WIDTHS
  params, stats = convert.encoder_variables(sd, kind)
  enc = Encoder(latent_dim=NZ, widths=ENC_WIDTHS)
  rng = np.random.default_rng(3)
  if kind == 'motion':
    x = (rng.normal(size=(2, 128, 128, 2)) / 64).astype(np.float32)
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  else:
    x = rng.uniform(-1, 1, (2, 128, 128, 3)).astype(np.float32)
    tx = torch.from_numpy(np.ascontiguousarray(x[..., ::-1].transpose(0, 3, 1, 2)))
  variables = {'params': params, 'batch_stats': stats}
  mu, logvar = enc.apply(variables, jnp.asarray(x), train=False)
  net = nets[name]
  with torch.no_grad():
    ref_mu, ref_logvar = net(tx)  # eval mode: running statistics
    assert _max_diff(mu, ref_mu.numpy()) < TOL
    assert _max_diff(logvar, ref_logvar.numpy()) < TOL
    net.train()  # batch statistics (what the official test code ran) agree too
    try:
      ref_train = net(tx)[0].numpy()
    finally:
      net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
      net.eval()
  (mu_train, _), _ = enc.apply(variables, jnp.asarray(x), train=True, mutable=['batch_stats'])
  assert _max_diff(mu_train, ref_train) < TOL


def test_official_sizes_match_animgen_defaults():
  """Full-size official state dicts map onto animgen's default networks, shape for shape."""
  torch.manual_seed(0)
  for nout, kind in ((2, 'motion'), (6, 'appearance')):
    sd = state_dict(TPredictor(nout, widths=(128, 256, 512)))
    params = convert.predictor_params(sd, kind)
    want = jax.eval_shape(lambda: Predictor(out_channels=nout).init(
        jax.random.key(0), jnp.zeros((1, 256, 256, 3)), jnp.zeros((1, NZ))))['params']
    convert._check_tree('predictor', params, want)
    n = sum(v.size for v in jax.tree_util.tree_leaves(params))
    # The official code counts 28,167,564 for the appearance net with its unused fc1 (512 * 6 + 6).
    assert n == {2: 28_138_882, 6: 28_167_564 - (512 * 6 + 6)}[nout]
  for cin in (2, 3):
    sd = state_dict(TEncoder(cin, widths=(64, 128, 192, 256)))
    params, stats = convert.encoder_variables(sd, {2: 'motion', 3: 'appearance'}[cin])
    want = jax.eval_shape(lambda: Encoder().init(jax.random.key(0),
                                                 jnp.zeros((1, 128, 128, cin))))
    convert._check_tree('encoder', params, want['params'])
    convert._check_tree('batch_stats', stats, want['batch_stats'])


# ----------------------------------------------------------------------------- files
MOTION_BOOK = np.random.default_rng(5).normal(size=(7, NZ))             # float64, like KMeans
APPEARANCE_BOOK = [np.random.default_rng(6 + i).normal(size=(n, NZ)).astype(np.float32)
                   for i, n in enumerate((4, 1, 6))]


def _model_dir(path, nets, epoch=7, legacy=False, emnet=True, codebooks=True):
  """An official-style model folder written with torch.save (legacy: the pre-1.6 format)."""
  nets = {k: v for k, v in nets.items() if emnet or k != 'EMNet'}
  books = (MOTION_BOOK, APPEARANCE_BOOK) if codebooks else (None, None)
  return write_model_dir(path, nets, epoch, *books, legacy=legacy)


# one compiled program per network (a Partial's parameters are arguments), not one per operation
_jit_call = jax.jit(lambda fn, *args: fn(*args))


@pytest.mark.parametrize('legacy', [False, True])
def test_pth_round_trip_through_load_run(tmp_path, nets, legacy, capsys):
  from animgen import animate
  model_dir = _model_dir(tmp_path / 'models', nets, legacy=legacy)
  out_m, out_a = str(tmp_path / 'runs' / 'motion'), str(tmp_path / 'runs' / 'appearance')
  done = convert.convert(model_dir, out_m, out_a, epoch=7, trust_pickle=True)
  assert done == {'motion': out_m, 'appearance': out_a}
  assert 'warning' in capsys.readouterr().err
  assert sorted(os.listdir(tmp_path / 'runs')) == ['appearance', 'motion']  # no temp folders

  motion = animate.motion_model(out_m)
  predict, book, state = motion.predict, motion.codebook, motion.run.state
  config = motion.run.config
  assert config.image_size == 256 and tuple(config.model.widths) == WIDTHS
  assert motion.run.converted_from['epoch'] == 7     # config.json records the conversion
  assert state.motion_fields.shape[0] == len(MOTION_BOOK)
  np.testing.assert_allclose(book, MOTION_BOOK.astype(np.float32))
  x, z, tx, tz = _inputs(b=1, seed=4)
  with torch.no_grad():
    ref = _nhwc(motion_out(nets['PMNet'], tx, tz))
    ref_mu = nets['EMNet'](torch.zeros(1, 2, 128, 128) + 0.01)[0].numpy()
  assert _max_diff(_jit_call(predict, jnp.asarray(x), jnp.asarray(z)), ref) < TOL
  mu, _ = Encoder(NZ, ENC_WIDTHS).apply(
      {'params': state.params['encoder'], 'batch_stats': state.batch_stats},
      jnp.zeros((1, 128, 128, 2)) + 0.01)
  assert _max_diff(mu, ref_mu) < TOL

  appearance = animate.appearance_model(out_a)
  maps_fn, encode_fn, seqs = appearance.maps, appearance.encode, appearance.sequences
  config_a = appearance.run.config
  assert config_a.method == 'landscape_appearance' and len(seqs) == len(APPEARANCE_BOOK)
  for got, want in zip(seqs, APPEARANCE_BOOK):
    np.testing.assert_array_equal(got, want)
  with torch.no_grad():
    _, al, bl = appearance_out(nets['PANet'], tx, tz)
    img = np.random.default_rng(8).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    # a converted run encodes with batch statistics, as the official test code (BN train mode)
    ref_code = copy.deepcopy(nets['EANet']).train()(torch.from_numpy(
        np.ascontiguousarray(img[..., ::-1].transpose(0, 3, 1, 2))))[0].numpy()
  ref_maps = np.concatenate([_nhwc(al)[..., ::-1], _nhwc(bl)[..., ::-1]], -1)
  assert _max_diff(_jit_call(maps_fn, jnp.asarray(x), jnp.asarray(z)), ref_maps) < TOL
  assert _max_diff(encode_fn(jnp.asarray(img)), ref_code) < TOL


def test_missing_motion_encoder_keeps_init(tmp_path, nets):
  from animgen import animate
  model_dir = _model_dir(tmp_path / 'models', nets, emnet=False, codebooks=False)
  out_m = str(tmp_path / 'motion')
  done = convert.convert(model_dir, out_m, None, epoch=7)
  assert list(done) == ['motion']
  motion = animate.motion_model(out_m)
  book, state = motion.codebook, motion.run.state
  assert book is None and state.motion_fields.shape[0] == 1
  assert state.params['encoder']['conv1']['kernel'].shape == (4, 4, 2, 64)  # default config


def _one_line(e):
  msg = str(e.value)
  assert msg and '\n' not in msg, msg
  return msg


def test_codebooks_refused_without_trust_pickle(tmp_path, nets):
  model_dir = _model_dir(tmp_path / 'models', nets)
  out = tmp_path / 'out'
  with pytest.raises(InputError) as e:
    convert.convert(model_dir, str(out / 'm'), str(out / 'a'), epoch=7)
  assert '--trust-pickle' in _one_line(e) and 'codebook_m_7.pkl' in str(e.value)
  assert not out.exists()


def test_cli_exit_code_and_trust_flag(tmp_path, nets, capsys):
  from animgen import cli, runtime
  model_dir = _model_dir(tmp_path / 'models', nets)
  parser = cli._Parser(prog='animgen')
  convert.register(parser.add_subparsers(dest='command', required=True,
                                         parser_class=cli._Parser))
  base = ['convert', model_dir, '--epoch', '7', '--motion-out', str(tmp_path / 'm'),
          '--appearance-out', str(tmp_path / 'a')]
  with pytest.raises(SystemExit) as e, runtime.user_errors():
    args = parser.parse_args(base)
    args.func(args)
  assert e.value.code == 2
  err = [l for l in capsys.readouterr().err.splitlines() if l.startswith('animgen: error')]
  assert len(err) == 1 and '--trust-pickle' in err[0]
  assert not (tmp_path / 'm').exists() and not (tmp_path / 'a').exists()

  args = parser.parse_args(base + ['--trust-pickle'])
  assert args.trust_pickle and args.epoch == 7
  done = convert.cmd_convert(args)
  assert set(done) == {'motion', 'appearance'}
  captured = capsys.readouterr()
  assert 'warning' in captured.err and 'animgen animate' in captured.out
  # progress on stderr (no terminal here: one line per stage), results on stdout
  for stage in ('read 6 official file(s): ', 'write the motion run ', 'write the appearance run '):
    assert f'animgen convert: {stage}' in captured.err, captured.err
  assert 'animgen convert' not in captured.out

  args = parser.parse_args(base[:4] + ['--motion-out', str(tmp_path / 'm2'), '--appearance-out',
                                       str(tmp_path / 'a2'), '--trust-pickle', '-q'])
  convert.cmd_convert(args)
  assert 'animgen convert' not in capsys.readouterr().err  # -q: no progress
  with np.load(tmp_path / 'a' / 'codebook_appearance.npz') as d:
    assert d['offsets'].tolist() == [0, 4, 5, 11]


def test_cli_wired():
  from animgen import cli
  args = cli.build_parser().parse_args(['convert', 'models', '--trust-pickle'])
  assert args.func is convert.cmd_convert and args.epoch == 5000
  assert args.motion_out == 'runs/landscape'


def test_hostile_pickle_refused_even_when_trusted(tmp_path, nets):
  model_dir = _model_dir(tmp_path / 'models', nets, codebooks=False)

  class Evil:
    def __reduce__(self):
      return (os.system, ('echo pwned',))

  with open(os.path.join(model_dir, 'codebook_m_7.pkl'), 'wb') as f:
    pickle.dump(Evil(), f, protocol=2)
  with pytest.raises(InputError) as e:
    convert.convert(model_dir, str(tmp_path / 'm'), None, epoch=7, trust_pickle=True)
  assert 'system' in _one_line(e)
  assert not (tmp_path / 'm').exists()


@pytest.mark.parametrize('damage', ['missing', 'unexpected', 'shape', 'swapped', 'nan'])
def test_malformed_state_dict(nets, damage):
  sd = state_dict(nets['PMNet'])
  kind = 'motion'
  if damage == 'missing':
    del sd['res3.in1.scale']
  elif damage == 'unexpected':
    sd['extra.weight'] = np.zeros(3, np.float32)
  elif damage == 'shape':
    sd['in4.shift'] = np.zeros(5, np.float32)
  elif damage == 'swapped':
    kind = 'appearance'
  elif damage == 'nan':
    sd['deconv2.conv2d.bias'] = sd['deconv2.conv2d.bias'] * np.nan
  with pytest.raises(InputError) as e:
    convert.predictor_params(sd, kind, 'PMNet_weight_5000.pth')
  msg = _one_line(e)
  assert 'PMNet_weight_5000.pth' in msg
  expect = {'missing': 'res3.in1.scale', 'unexpected': 'extra.weight', 'shape': 'in4.shift',
            'swapped': 'PMNet', 'nan': 'NaN'}[damage]
  assert expect in msg
  enc = state_dict(nets['EANet'])
  with pytest.raises(InputError) as e:
    convert.encoder_variables(enc, 'motion', 'EANet')  # 3-channel encoder as E^M
  _one_line(e)
  with pytest.raises(InputError) as e:
    convert.encoder_variables(sd, 'motion', 'x.pth')  # a predictor as encoder
  _one_line(e)


def test_bad_files(tmp_path, nets, monkeypatch):
  bad = tmp_path / 'PMNet_weight_5000.pth'
  bad.write_bytes(b'not a checkpoint')
  with pytest.raises(InputError) as e:
    convert.load_state_dict(str(bad))
  assert 'PMNet_weight_5000.pth' in _one_line(e)
  torch.save([1, 2], str(bad))
  with pytest.raises(InputError) as e:
    convert.load_state_dict(str(bad))
  _one_line(e)
  with pytest.raises(InputError) as e:  # no weights of that epoch: the ones found are listed
    convert.convert(str(tmp_path), str(tmp_path / 'm'), str(tmp_path / 'a'), epoch=100)
  assert '5000' in _one_line(e)
  # PANet without EANet
  (tmp_path / 'PANet_weight_5000.pth').write_bytes(b'')
  with pytest.raises(InputError) as e:
    convert.convert(str(tmp_path), str(tmp_path / 'm'), str(tmp_path / 'a'))
  assert 'EANet' in _one_line(e)
  # out folder exists
  model_dir = _model_dir(tmp_path / 'models', nets, codebooks=False)
  (tmp_path / 'taken').mkdir()
  (tmp_path / 'taken' / 'f').write_text('x')
  with pytest.raises(InputError) as e:
    convert.convert(model_dir, str(tmp_path / 'taken'), None, epoch=7)
  assert 'taken' in _one_line(e)
  monkeypatch.setitem(__import__('sys').modules, 'torch', None)
  with pytest.raises(InputError) as e:
    convert.load_state_dict(str(bad))
  assert "pip install 'animgen[convert]'" in _one_line(e)


def test_failure_leaves_nothing(tmp_path, nets, monkeypatch):
  model_dir = _model_dir(tmp_path / 'models', nets, codebooks=False)
  out = tmp_path / 'out'
  out.mkdir()

  def boom(*a, **k):
    raise RuntimeError('disk full')

  monkeypatch.setattr(convert, 'build_appearance_run', boom)
  with pytest.raises(RuntimeError):
    convert.convert(model_dir, str(out / 'm'), str(out / 'a'), epoch=7)
  assert os.listdir(out) == []


def test_codebook_validation():
  assert convert.motion_codebook(MOTION_BOOK, NZ).dtype == np.float32
  with pytest.raises(InputError) as e:
    convert.motion_codebook(np.zeros((3, 5)), NZ, 'codebook_m_5000.pkl')
  assert 'codebook_m_5000.pkl' in _one_line(e)
  with pytest.raises(InputError) as e:
    convert.appearance_codebook([np.zeros((3, NZ)), np.zeros((2, 4))], NZ)
  assert 'sequence 1' in _one_line(e)
  with pytest.raises(InputError):
    convert.appearance_codebook(np.zeros((3, NZ)), NZ)
