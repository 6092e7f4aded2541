"""DeepGIFs: the bouncing-ball and Moving MNIST generators, the two-phase train step on 1 and 8
devices, the rollout table, and a smoke train + eval through the trainer."""
import json
import os

import jax
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


def test_compose_max_and_additive_overlap():
  d = np.zeros((2, 28, 28), np.uint8)
  d[0, 10:20, 10:20] = 200
  d[1, 10:20, 10:20] = 100
  same = np.zeros((1, 2, 2))                                 # both digits at the corner (0, 0)
  assert mm.compose(d, same, 64, additive=False).max() == 200
  assert mm.compose(d, same, 64, additive=True).max() == 255  # 300 clipped
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
    assert set(values.tolist()) == {0, value}
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
