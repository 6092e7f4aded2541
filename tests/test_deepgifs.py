"""DeepGIFs: the bouncing-ball and Moving MNIST generators, the two-phase train step on 1 and 8
devices, the rollout table, and a smoke train + eval through the trainer."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animgen.datasets import bouncing_balls as bb
from animgen.datasets import moving_mnist as mm
from animgen.evaluators import rollout
from animgen.methods import deepgifs
from conftest import one_step_on_devices, smoke_config


# ----------------------------------------------------------------------------- bouncing balls


def _energy(v):
  return np.sum(np.square(v), axis=(-2, -1))


def test_ball_collisions_conserve_energy_and_momentum():
  # balls on colliding courses, no walls: only ball-ball collisions
  x0 = np.array([[2.0, 5.0], [8.0, 5.6], [5.0, 1.5]])
  v0 = np.array([[0.4, 0.0], [-0.3, 0.05], [0.0, 0.3]])
  pos, vel = bb.simulate_balls(None, 3, 30, x0=x0, v0=v0, walls=False)
  assert not np.allclose(vel[-1], v0)                       # they did collide
  np.testing.assert_allclose(_energy(vel), _energy(v0), rtol=1e-12)
  np.testing.assert_allclose(vel.sum(axis=1), np.broadcast_to(v0.sum(0), (30, 2)), atol=1e-12)
  # ball 0 came from the left at +0.4 and meets ball 1 head-on: it leaves to the left
  assert vel[-1, 0, 0] < 0 and vel[-1, 1, 0] > 0


def test_walls_keep_balls_in_the_box_and_energy_constant():
  rng = np.random.default_rng(3)
  pos, vel = bb.simulate_balls(rng, 3, 400)
  assert np.isclose(np.linalg.norm(vel[0]), bb.SPEED)         # |v| of all balls = 0.5
  np.testing.assert_allclose(_energy(vel), _energy(vel[0]), rtol=1e-12)
  assert pos.min() >= bb.RADIUS - 1e-12 and pos.max() <= bb.BOX - bb.RADIUS + 1e-12
  # walls were hit: some velocity component changed sign
  assert np.any(np.sign(vel[1:, :, 0]) != np.sign(vel[:-1, :, 0]))
  # one frame moves each ball by its velocity when nothing is hit (2 sub-steps of 1/2)
  free = np.all(np.sign(vel[1:]) == np.sign(vel[:-1]), axis=(1, 2)) & np.all(
      np.isclose(vel[1:], vel[:-1]), axis=(1, 2))
  np.testing.assert_allclose((pos[1:] - pos[:-1])[free], vel[:-1][free], atol=1e-12)


def test_render_is_the_rtrbm_bump():
  pos = np.array([[[5.0, 2.5]]])               # (x, y) in box units, on pixel (32, 16) at 64 px
  img = bb.render_balls(pos, 64)[0]
  assert img[16, 32] == pytest.approx(1.0)
  # at distance d: exp(-(d^2 / r^2)^4); pixel (16, 40) is 8 px = 1.25 box units away in x
  d = 8 * bb.BOX / 64
  assert img[16, 40] == pytest.approx(np.exp(-(d ** 2 / bb.RADIUS ** 2) ** 4))
  two = bb.render_balls(np.array([[[5.0, 2.5], [5.0, 2.5]]]), 64)[0]
  assert two.max() == 1.0                      # overlapping balls clip at 1


# ----------------------------------------------------------------------------- moving mnist


def test_digit_trajectories_stay_inside_with_speeds_2_to_6():
  rng = np.random.default_rng(0)
  for _ in range(50):
    pos, vel = mm.digit_trajectories(rng, 2, 40, 36)
    assert pos.min() >= 0 and pos.max() <= 36
    speed = np.linalg.norm(vel, axis=-1)                      # [T, 2], constant per digit
    np.testing.assert_allclose(speed, np.broadcast_to(speed[0], speed.shape))
    assert np.all((speed >= 2 - 1e-9) & (speed <= 6 + 1e-9))
    np.testing.assert_allclose(speed[0], np.round(speed[0]))  # integer speeds
    step = pos[1:] - pos[:-1]
    inside = (pos[1:] > 0) & (pos[1:] < 36)
    np.testing.assert_allclose(step[inside], vel[:-1][inside])  # free flight between walls


def test_compose_additive_by_default_and_max_overlap():
  d = np.zeros((2, 28, 28), np.uint8)
  d[0, 10:20, 10:20] = 200
  d[1, 10:20, 10:20] = 100
  same = np.zeros((1, 2, 2))                                 # both digits at the corner (0, 0)
  assert mm.compose(d, same, 64, additive=False).max() == 200
  assert mm.compose(d, same, 64, additive=True).max() == 255  # 300 clipped
  assert mm.compose(d, same, 64).max() == 255                 # the DeepGIFs script's sum
  # every config adds the digits as the DeepGIFs script, except the named `max` one
  assert {n for n, c in mm.CONFIGS.items() if not c.additive} == {'max'}
  d[1, 10:20, 10:20] = 40
  assert mm.compose(d, same, 64, additive=True).max() == 240
  apart = np.array([[[0.0, 0.0], [36.0, 36.0]]])
  f = mm.compose(d, apart, 64)[0].astype(int)
  assert f.sum() == d.astype(int).sum()                       # every digit pixel is inside
  assert f[46:56, 46:56].max() == 40 and f[10:20, 10:20].min() == 200


def test_moving_mnist_tiny_builder_and_disjoint_digits(tmp_path):
  import tensorflow_datasets as tfds
  tfds.disable_progress_bar()
  from animgen.datasets import digits
  _, labels = digits.load_digits()
  train, test = mm.split_mask(labels, 'train'), mm.split_mask(labels, 'test')
  assert not np.any(train & test) and np.all(train | test) and test.sum() == 500
  b = mm.make_builder(str(tmp_path), 'tiny')
  b.download_and_prepare(file_format='array_record')
  src = b.as_data_source(split='train')
  assert len(src) == 16
  rec = src[0]
  assert rec['frames'].shape == (6, 64, 64, 1) and rec['frames'].dtype == np.uint8
  assert rec['positions'].min() >= 0 and rec['positions'].max() <= 36
  assert rec['frames'][0].max() > 100


def test_moving_mnist_reads_a_users_mnist_by_split(tmp_path):
  """mnist_path: train clips use x_train only, test clips x_test only; no manual_dir -> error."""
  path = str(tmp_path / 'mnist.npz')
  np.savez(path, x_train=np.full((5, 28, 28), 7, np.uint8), y_train=np.zeros(5, np.uint8),
           x_test=np.full((3, 28, 28), 9, np.uint8), y_test=np.ones(3, np.uint8))
  b = mm.make_builder(str(tmp_path / 'tfds'), 'tiny', mnist_path=path, train_clips=3,
                      test_clips=2)
  b.download_and_prepare(file_format='array_record')
  for split, value in (('train', 7), ('test', 9)):
    src = b.as_data_source(split=split)
    values = np.unique(np.concatenate([np.asarray(src[i]['frames']).ravel()
                                       for i in range(len(src))]))
    assert value in values and set(values.tolist()) <= {0, value, 2 * value}   # 2v: overlap
  from animgen.errors import InputError
  with pytest.raises(InputError, match='manual_dir'):
    mm._mnist_in('')


# ----------------------------------------------------------------------------- metrics


def test_rollout_table_against_hand_computed_values():
  from animgen.ops.metrics import ssim
  n, t, h = 2, 4, 16
  truth = np.zeros((n, t, h, h, 1), np.float32)
  for k in range(t):
    truth[:, k] = 0.2 + 0.1 * k                               # frame k is the constant 0.2+0.1k
  pred = truth + 0.05                                         # every generated frame off by 0.05
  pred[:, 0] = truth[:, 0]
  table = rollout.rollout_table(pred, truth)
  np.testing.assert_allclose(table['psnr'], [10 * np.log10(1 / 0.05 ** 2)] * 3, rtol=1e-4)
  # copy-the-seed: frame k differs from the seed by 0.1 k
  np.testing.assert_allclose(table['psnr_copy'],
                             [10 * np.log10(1 / (0.1 * k) ** 2) for k in (1, 2, 3)], rtol=1e-4)
  # SSIM of constant images is the luminance term (2 a b + C1) / (a^2 + b^2 + C1), C1 = 0.01^2
  lum = lambda a, b: (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
  np.testing.assert_allclose(table['ssim'], [lum(0.2 + 0.1 * k + 0.05, 0.2 + 0.1 * k)
                                             for k in (1, 2, 3)], atol=5e-4)
  np.testing.assert_allclose(table['ssim_copy'], [lum(0.2, 0.2 + 0.1 * k) for k in (1, 2, 3)],
                             atol=5e-4)   # float32 variances of constant windows: ~1e-4 off
  assert float(ssim(truth[0, 1], truth[0, 1])) == pytest.approx(1.0)
  # identical frames: PSNR is capped instead of +inf
  assert rollout.rollout_table(truth, truth)['psnr'][0] == rollout.PSNR_CAP


# ----------------------------------------------------------------------------- training


def test_eight_devices_equal_one(tmp_path, data_dir):
  """One LSTM-phase step (sequences through encoder, LSTM, decoder and D) on 1 and 8 devices."""
  outs = one_step_on_devices(tmp_path, data_dir, [('', 'deepgifs', 'smoke', {})])
  a, b = outs[1], outs[8]
  for k in ('loss', 'loss_rec', 'loss_gan_g', 'loss_d', 'loss_kl', 'grad_norm'):
    np.testing.assert_allclose(a['metric/' + k], b['metric/' + k], rtol=1e-4, err_msg=k)
  lr = smoke_config(data_dir, 'deepgifs').optim.learning_rate
  checked = 0
  for k in a.files:
    if k == 'n' or k.startswith('metric/'):
      continue
    x, y = a[k], b[k]
    if '.params' in k:   # Adam's first step moves each weight by ~lr * sign(g)
      np.testing.assert_allclose(x, y, atol=2 * lr + 1e-6, err_msg=k)
    elif "['bias']" in k:  # conv biases before a BatchNorm have gradient 0 up to float noise
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-7, err_msg=k)
    else:                # Adam moments, BatchNorm statistics, counts
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-3 * float(np.abs(x).max()) + 1e-12,
                                 err_msg=k)
    checked += 1
  assert checked > 40


def test_smoke_vaegan_then_lstm_and_evaluate(tmp_path, data_dir):
  from animgen import sharding, trainer
  pre_dir, lstm_dir = str(tmp_path / 'vaegan'), str(tmp_path / 'lstm')
  pre_config = smoke_config(data_dir, 'deepgifs', **{'train.phase': 'vaegan'})
  pre = trainer.train_and_evaluate(pre_config, pre_dir)
  key = jax.random.split(jax.random.key(0), 3)[0]            # the trainer's init key (seed 0)
  fresh = deepgifs.DeepGIFs(pre_config).init(key, None)
  leaves = lambda t: [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]
  for x, y in zip(leaves(fresh.params['lstm']), leaves(pre.params['lstm'])):
    np.testing.assert_array_equal(x, y)                     # pretraining leaves the LSTM alone
  assert not np.allclose(leaves(fresh.params['encoder'])[-1], leaves(pre.params['encoder'])[-1])
  assert os.path.exists(os.path.join(pre_dir, 'samples', 'reconstruction_0000002.gif'))

  config = smoke_config(data_dir, 'deepgifs', **{'train.init_from': pre_dir})
  method = deepgifs.DeepGIFs(config)
  fresh = method.init(jax.random.key(5), None)
  start = trainer.warm_start(config, method, fresh, sharding.make_mesh())  # VAE-GAN, fresh LSTM
  for x, y in zip(leaves(start.params['lstm']), leaves(fresh.params['lstm'])):
    np.testing.assert_array_equal(x, y)
  for name in ('encoder', 'decoder', 'disc'):
    for x, y in zip(leaves(start.params[name]), leaves(pre.params[name])):
      np.testing.assert_array_equal(x, y)
  for x, y in zip(leaves(start.batch_stats), leaves(pre.batch_stats)):
    np.testing.assert_array_equal(x, y)
  state = trainer.train_and_evaluate(config, lstm_dir)
  assert not np.allclose(leaves(start.params['lstm'])[0], leaves(state.params['lstm'])[0])
  # sampling: frame 0 of the rollout is the seed frame itself
  out = method.sample(state, {'frames': np.full((2, 6, 32, 32, 1), 255, np.uint8)}, None)
  assert out['rollout'].shape == (2, 6, 32, 32, 3)
  np.testing.assert_allclose(np.asarray(out['rollout'][:, 0]), 1.0)
  assert os.path.exists(os.path.join(lstm_dir, 'samples', 'rollout_0000002.gif'))

  results = trainer.evaluate(config, lstm_dir)
  assert results['num_examples'] == 8
  table = json.load(open(os.path.join(lstm_dir, 'eval_rollout_2.json')))
  assert table['frames'] == [1, 2, 3, 4, 5] and table['num_clips'] == 8
  assert results['rollout_psnr'] == pytest.approx(np.mean(table['psnr']), abs=1e-3)
  # the copy-the-seed baseline drifts away from moving balls
  assert table['psnr_copy'][0] > table['psnr_copy'][-1]
  assert np.isfinite(results['recon_psnr']) and np.isfinite(results['next_psnr_copy'])
  from PIL import Image
  assert Image.open(os.path.join(lstm_dir, 'eval_rollout_2.png')).size[0] > 400
  strip = Image.open(os.path.join(lstm_dir, 'rollout_examples_2.png'))
  assert strip.size == (6 * 34, 3 * (2 * 32 + 6))


def test_init_from_without_checkpoint_is_a_user_error(tmp_path, data_dir):
  from animgen import sharding, trainer
  from animgen.errors import InputError
  config = smoke_config(data_dir, 'deepgifs', **{'train.init_from': str(tmp_path / 'none')})
  method = deepgifs.DeepGIFs(config)
  with pytest.raises(InputError, match='train.init_from=.*no config.json'):
    trainer.warm_start(config, method, method.init(jax.random.key(0), None),
                       sharding.make_mesh())


# ----------------------------------------------------------------------------- training logic


@pytest.fixture(scope='module')
def tiny(data_dir):
  """The smoke network (32 px, widths 4, 8, latent 8, LSTM 16) and a fresh state."""
  method = deepgifs.DeepGIFs(smoke_config(data_dir, 'deepgifs'))
  return method, method.init(jax.random.key(0), None)


def _zero_carry(method, b):
  h = method.config.model.lstm_hidden
  return jnp.zeros((b, h)), jnp.zeros((b, h))                # PyTorch nn.LSTM's default state


def _next_frame_mse_reference(method, state, x, rng):
  """MSE(x[:, 1:], pred[:, :-1]) written out: every frame encoded (train-mode BatchNorm), z
  sampled, the LSTM stepped from a zero state; the codes predicted from frames 0..T-2 are
  decoded as one batch and compared with frames 1..T-1."""
  p, s = state.params, state.batch_stats
  b, t = x.shape[:2]
  (mu, logvar), _ = method.encoder.apply(
      {'params': p['encoder'], 'batch_stats': s['encoder']}, x.reshape((b * t,) + x.shape[2:]),
      True, mutable=['batch_stats'])
  z = (mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)).reshape(b, t, -1)
  carry, pred = _zero_carry(method, b), []
  for k in range(t - 1):                                     # from frame k: a guess of k + 1
    carry, code = method.lstm.apply({'params': p['lstm']}, carry, z[:, k])
    pred.append(code)
  out, _ = method.decoder.apply({'params': p['decoder'], 'batch_stats': s['decoder']},
                                jnp.concatenate(pred), True, mutable=['batch_stats'])
  # pred was stacked time-major: out[k * b + i] is clip i's guess of frame k + 1
  out = jnp.moveaxis(out.reshape((t - 1, b) + x.shape[2:]), 0, 1)
  return jnp.mean(jnp.square(out - x[:, 1:]))


def test_lstm_phase_compares_prediction_t_with_frame_t_plus_1(tiny):
  method, state = tiny
  # frame k is the constant 85 k (+ noise): comparing with the wrong frame moves the MSE a lot
  noise = np.random.default_rng(0).integers(0, 20, (2, 4, 32, 32, 1))
  frames = np.clip(85 * np.arange(4)[None, :, None, None, None] + noise, 0, 255).astype(np.uint8)
  rng = jax.random.key(3)

  def both(state, frames):
    _, m = method.train_step(state, {'frames': frames}, rng)
    return m['loss_rec'], _next_frame_mse_reference(method, state, deepgifs.to_input(frames), rng)
  got, want = jax.jit(both)(state, frames)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_rollout_encodes_each_generated_frame_again(tiny):
  """Sec. 4.1: decode -> encode -> LSTM at every step (mu, running BatchNorm statistics),
  not the LSTM's own output fed back."""
  method, state = tiny
  seed = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 1)), jnp.float32)

  def run(state, seed):
    p, s = state.params, state.batch_stats
    enc = lambda x: method.encoder.apply({'params': p['encoder'],
                                          'batch_stats': s['encoder']}, x, False)[0]
    dec = lambda z: method.decoder.apply({'params': p['decoder'],
                                          'batch_stats': s['decoder']}, z, False)
    lstm = lambda c, z: method.lstm.apply({'params': p['lstm']}, c, z)
    carry, frames = _zero_carry(method, 2), [seed]
    fed, code, fed_frames = _zero_carry(method, 2), enc(seed), [seed]
    for _ in range(3):
      carry, z = lstm(carry, enc(frames[-1]))                # the generated frame, encoded again
      frames.append(dec(z))
      fed, code = lstm(fed, code)                            # the wrong loop: code fed back
      fed_frames.append(dec(code))
    return (method.rollout_from(state, seed, 4), jnp.stack(frames, 1),
            jnp.stack(fed_frames, 1))
  got, want, fed_back = jax.jit(run)(state, seed)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert np.abs(np.asarray(want - fed_back)).max() > 1e-3  # the two loops differ on this state


def test_decoder_is_linear_then_upsample_conv_bn_leaky_blocks_then_tanh():
  """The public VAEGAN_Gen decoder: Linear (no activation), per block nearest x2 + conv 3x3 +
  BatchNorm + LeakyReLU(0.01) (on the last block too), tanh; against NumPy (running BN stats)."""
  from animgen.models.deepgifs import Decoder
  net = Decoder(channels=1, widths=(2, 3), base=2)           # 2 blocks: 3 -> 2 -> 1 channels
  rng = np.random.default_rng(2)
  v = net.init(jax.random.key(0), jnp.zeros((1, 3)), False)
  rand = lambda a, lo, hi: rng.uniform(lo, hi, a.shape).astype(np.float32)
  v = {'params': jax.tree.map(lambda a: rand(a, -1, 1), v['params']),
       'batch_stats': {k: {'mean': rand(b['mean'], -1, 1), 'var': rand(b['var'], 0.5, 2)}
                       for k, b in v['batch_stats'].items()}}
  z = rng.normal(size=(2, 3)).astype(np.float32)
  got = jax.jit(lambda v, z: net.apply(v, z, False))(v, z)
  f64 = jax.tree.map(lambda a: np.asarray(a, np.float64), v)
  p, st = f64['params'], f64['batch_stats']
  h = (z @ p['fc']['kernel'] + p['fc']['bias']).reshape(2, 2, 2, 3)   # no activation
  for i in range(2):
    h = h.repeat(2, axis=1).repeat(2, axis=2)                          # nearest x2
    hp, (hh, ww) = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0))), h.shape[1:3]
    k = p[f'Conv_{i}']['kernel']                                       # [3, 3, Cin, Cout]
    h = sum(hp[:, a:a + hh, b:b + ww] @ k[a, b] for a in range(3) for b in range(3))
    h = h + p[f'Conv_{i}']['bias']
    bn, stats = p[f'BatchNorm_{i}'], st[f'BatchNorm_{i}']
    h = (h - stats['mean']) / np.sqrt(stats['var'] + 1e-5) * bn['scale'] + bn['bias']
    h = np.where(h > 0, h, 0.01 * h)                                   # LeakyReLU(0.01)
  np.testing.assert_allclose(got, np.tanh(h), atol=1e-5)


def _public_code_parameter_counts(latent, channels=1):
  """Parameters of the public PyTorch networks from their published layer list, by hand."""
  conv = lambda k, cin, cout: k * k * cin * cout + cout      # Conv2d with its bias
  bn = lambda c: 2 * c                                       # weight + bias (stats are buffers)
  lin = lambda i, o: i * o + o
  widths = [channels, 32, 64, 128, 256]
  stack = sum(conv(4, a, b) + bn(b) for a, b in zip(widths, widths[1:]))   # 64 -> 4 px
  flat = 4 * 4 * 256
  up = [256, 128, 64, 32, channels]
  decoder = lin(latent, flat) + sum(conv(3, a, b) + bn(b) for a, b in zip(up, up[1:]))
  torch_lstm = 4 * 200 * latent + 4 * 200 * 200 + 2 * 4 * 200   # W_ih, W_hh, b_ih, b_hh
  return {'encoder': stack + 2 * lin(flat, latent),          # fc_mu, fc_logvar
          'decoder': decoder,
          # flax's cell has one bias per gate where nn.LSTM has b_ih + b_hh (same function)
          'lstm': torch_lstm - 4 * 200 + lin(200, latent),
          'disc': stack + lin(flat, latent) + bn(latent) + lin(latent, 1)}


@pytest.mark.parametrize('variant, latent', [('', 95), ('balls', 20)])
def test_paper_network_has_the_public_code_parameter_count(data_dir, variant, latent):
  method = deepgifs.DeepGIFs(smoke_config(data_dir, 'deepgifs', variant or None))
  shapes = jax.eval_shape(method._fresh, jax.random.key(0)).params
  got = {k: sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(v))
         for k, v in shapes.items()}
  assert got == _public_code_parameter_counts(latent)


# ----------------------------------------------------------------------------- digit evaluation


def _digit_clips(n, frames, seed=0):
  """n Moving MNIST clips of the shipped test digits -> frames [n, T, 64, 64, 1] in [0, 1],
  positions [n, T, 2, 2], labels [n, 2]."""
  from animgen.evaluators import digits
  images, labels = digits.shipped_split('test')
  rng = np.random.default_rng(seed)
  out = [], [], []
  for _ in range(n):
    pick = rng.integers(0, len(images), 2)
    pos, _ = mm.digit_trajectories(rng, 2, frames, 64 - 28)
    for lst, v in zip(out, (mm.compose(images[pick], pos)[..., None] / 255.0, pos, labels[pick])):
      lst.append(v)
  return tuple(np.stack(v) for v in out)


def test_digit_crops_are_the_windows_at_the_corners():
  from animgen.evaluators import digits
  images, _ = digits.shipped_split('test')
  pos = np.array([[[3.2, 30.0], [36.0, 1.6]]] * 2)            # far apart: no overlap
  frames = (mm.compose(images[:2], pos)[None, ..., None])       # [1, 2, 64, 64, 1]
  got = digits.crops(frames, pos[None], 1)
  np.testing.assert_array_equal(got[..., 0], images[:2])       # (x, y) corners, rounded


def test_digit_classifier_finds_the_true_digits_and_not_the_copied_seed():
  from animgen.evaluators import digits
  classify, acc = digits.train_classifier(steps=300, batch=64, test_crops=300)
  assert acc > 0.8
  truth, positions, labels = _digit_clips(48, 11)
  found = digits.recognition(classify, truth, truth, positions, labels, 10)
  assert found['truth'] > 0.8 and found['generated'] == found['truth']
  assert found['copy_seed'] < 0.5 * found['truth']
  shifted = np.roll(truth, 4, axis=3)                          # the digits 4 px off
  assert digits.recognition(classify, shifted, truth, positions, labels, 10)['generated'] < (
      found['truth'])


def test_rollout_digit_evaluation_reads_the_records_and_refuses_other_datasets():
  import types
  from animgen.errors import InputError
  truth, positions, labels = _digit_clips(4, 6)
  src = [{'frames': (truth[i] * 255).astype(np.uint8), 'positions': positions[i],
          'labels': labels[i]} for i in range(4)]
  ctx = types.SimpleNamespace(config=types.SimpleNamespace(dataset='moving_mnist/tiny', seed=0))
  found = rollout._digits_found(ctx, src, truth, truth, 5, steps=2, batch=8)
  assert found['frame'] == 5 and found['generated'] == found['truth']
  assert {'copy_seed', 'classifier_test_acc'} <= set(found)
  ctx.config.dataset = 'bouncing_balls/tiny'
  with pytest.raises(InputError, match='digit_frame needs a moving_mnist dataset'):
    rollout._digits_found(ctx, src, truth, truth, 5, steps=2, batch=8)


def test_decoder_reaches_black_and_white_of_the_frames_it_learns(tiny):
  """The public decoder ends in BN + LeakyReLU + tanh: with its last BatchNorm giving -4 or +4
  everywhere (a few standard deviations), it must reach the data's black and white. On frames
  scaled to [-1, 1] it cannot draw black, and training collapses to a grey output."""
  method, state = tiny
  params = jax.tree.map(lambda x: x, state.params)
  dec = dict(params['decoder'])
  last = sorted(k for k in dec if k.startswith('BatchNorm'))[-1]
  black, white = (float(deepgifs.to_input(np.uint8(v))) for v in (0, 255))
  z = jnp.zeros((2, method.config.model.latent_dim))
  for level, target in ((-4.0, black), (4.0, white)):
    dec[last] = {'scale': jnp.zeros_like(dec[last]['scale']),
                 'bias': jnp.full_like(dec[last]['bias'], level)}
    out, _ = method.decode(dict(params, decoder=dec), state.batch_stats, z, False)
    assert np.abs(np.asarray(out) - target).max() < 0.05, (level, target, float(out.mean()))
