"""Image2GIF: the synthetic patterns, the DQN's TD target, the Sec. 5 metrics and a smoke run."""
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animgen.datasets import image2gif_patterns as pats
from animgen.methods import image2gif
from conftest import ROOT, one_step_on_devices

sys.path.insert(0, ROOT)


def _config(data_dir, variant='smoke'):
  from configs.image2gif import get_config
  c = get_config(variant)
  c.data_dir = data_dir
  return c


# ----------------------------------------------------------------------------- dataset


def test_o_and_eight_paths_close_and_i_goes_back_and_forth():
  room = 20.0
  dx, dy, ang, sx, sy = pats.trajectory('O', 21, room)
  assert (dx[0], dy[0]) == pytest.approx((dx[-1], dy[-1]), abs=1e-9)   # the O closes
  assert dy.max() == pytest.approx(room) and dx[1] < 0                  # CCW from the top: left
  np.testing.assert_allclose(np.hypot(dx, dy - room / 2), room / 2)     # a circle
  dx, dy, *_ = pats.trajectory('eight', 21, room)
  assert (dx[-1], dy[-1]) == pytest.approx((0.0, 0.0), abs=1e-9)
  assert dx[:10].min() < -1 and dx[:10].max() > 1                        # both sides of the 8
  dx, dy, *_ = pats.trajectory('I', 27, room)
  np.testing.assert_array_equal(dx, 0.0)
  assert dy[13] == pytest.approx(room) and dy[-1] == pytest.approx(0.0)
  np.testing.assert_allclose(dy[:14], dy[::-1][:14])                     # back the same way
  dx, dy, *_ = pats.trajectory('L', 26, room)
  stem = dx == 0
  assert stem[:12].all() and dy[-1] == pytest.approx(room) and dx[-1] == pytest.approx(room)
  assert np.all(np.diff(dy) >= 0) and np.all(np.diff(dx) >= 0)


def test_rotate_is_counter_clockwise_about_a_fixed_centre_and_scale_keeps_it():
  # a thin bar turned by +45 degrees reaches up-right on screen (counter-clockwise)
  bar = pats.rectangle_mask(32.0, 32.0, 30.0, 2.0, np.pi / 4)
  assert bar[32 - 9, 32 + 9] and not bar[32 + 9, 32 + 9]
  tex = pats.make_textures()
  for pattern in ('rotate', 'scale'):
    frames, masks, length = pats.render_sequence(pattern, 'train', 5, 21, tex)
    m = masks[:length].astype(float)
    ys, xs = np.mgrid[0:64, 0:64]
    cx = (m * xs).sum((1, 2)) / m.sum((1, 2))
    cy = (m * ys).sum((1, 2)) / m.sum((1, 2))
    assert np.ptp(cx) < 0.6 and np.ptp(cy) < 0.6, pattern               # the centre stays
    assert np.ptp(m.sum((1, 2))) > 10 or pattern == 'rotate'             # the area changes
    assert (masks[0] != masks[length // 4]).sum() > 10                   # it does move


def test_sequences_are_padded_with_black_and_masks_mark_the_object():
  tex = pats.make_textures()
  for p in pats.PATTERNS:
    frames, masks, length = pats.render_sequence(p, 'test', 3, 27, tex)
    t = pats.MAX_LENGTHS[p]
    assert int(np.ceil(0.75 * t)) <= length <= t
    assert frames[length:].max() == 0 and masks[length:].max() == 0     # black padding
    on = masks[:length].astype(bool)
    assert on.sum((1, 2)).min() >= 40                                   # object in every frame
    colours = frames[:length][on]
    assert np.ptp(colours, axis=0).max() == 0                            # one colour
    # the background is still: pixels off the object in both frames are equal
    off = ~on[0] & ~on[-1]
    np.testing.assert_array_equal(frames[0][off], frames[length - 1][off])


def test_tiny_builder_holds_every_pattern(data_dir):
  from animgen import input_pipeline
  builder = input_pipeline.prepare('image2gif_patterns/tiny_all', data_dir)
  src = builder.as_data_source(split='test')
  assert len(src) == 6 and len(builder.as_data_source(split='train')) == 12
  recs = [src[i] for i in range(6)]
  assert sorted(int(r['pattern']) for r in recs) == list(range(6))
  for r in recs:
    assert r['frames'].shape == (27, 64, 64, 3) and r['masks'].shape == (27, 64, 64)
    assert r['masks'][int(r['length']) - 1].sum() > 0 and r['masks'][int(r['length']):].sum() == 0


# ----------------------------------------------------------------------------- networks


def test_deconv_is_flax_conv_transpose_with_its_gradients():
  import flax.linen as nn
  from animgen.models.image2gif import Deconv
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 6))
  ref = nn.ConvTranspose(5, (5, 5), strides=(2, 2), padding='SAME')
  params = ref.init(jax.random.key(1), x)
  params = jax.tree.map(lambda a: a + 0.1, params)       # a non-zero bias too
  np.testing.assert_allclose(Deconv(5).apply(params, x), ref.apply(params, x), atol=1e-5)
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  g_ref = jax.jit(jax.grad(loss(ref), argnums=(0, 1)))(params, x)
  g_new = jax.jit(jax.grad(loss(Deconv(5)), argnums=(0, 1)))(params, x)
  for a, b in zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_new)):
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_dqn_rollout_decodes_the_frames_its_actions_were_chosen_on(data_dir):
  m = image2gif.Image2GIF(_config(data_dir, 'smoke,dqn'))
  state = m.init(jax.random.key(0), None)
  x = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3), minval=-1.0, maxval=1.0)

  @jax.jit
  def both(params, x):
    hs = m.states(params, x, 4)
    actions, seen, frames = m.act(params, x, hs, jax.random.key(2), 0.5)
    again, seen2, actions2 = m.policy_rollout(params, x, 4, jax.random.key(2), 0.5)
    return actions, seen, frames, again, seen2, actions2
  actions, seen, frames, again, seen2, actions2 = both(state.params, x)
  np.testing.assert_array_equal(np.swapaxes(actions, 0, 1), actions2)
  np.testing.assert_allclose(np.swapaxes(frames, 0, 1), again, atol=1e-5)
  np.testing.assert_allclose(seen[0], x)                       # the first state is the input
  np.testing.assert_allclose(seen[1:], frames[:-1], atol=1e-6)  # then the previous frame
  assert actions.min() >= 0 and actions.max() < 3


def test_remat_gives_the_same_loss_and_gradients(data_dir):
  """model.remat decodes and discriminates one time step at a time under jax.checkpoint: the
  loss and every gradient equal the all-at-once path."""
  out = {}
  for remat in (False, True):
    c = _config(data_dir, 'smoke,dqn')
    c.model.remat = remat
    m = image2gif.Image2GIF(c)
    state = m.init(jax.random.key(0), None)
    r = np.random.default_rng(0)
    batch = {'frames': jnp.asarray(r.integers(0, 256, (2, 6, 64, 64, 3), dtype=np.uint8)),
             'length': jnp.asarray([6, 4], jnp.int32)}
    gq = {k: v for k, v in state.params.items() if k != 'discriminator'}
    f = jax.jit(jax.value_and_grad(lambda p, d: m.loss(p, d, state.target_q, batch,
                                                       jax.random.key(3), 0.5)[0], argnums=(0, 1)))
    out[remat] = f(gq, state.params['discriminator'])
  (l0, g0), (l1, g1) = out[False], out[True]
  assert float(l0) == pytest.approx(float(l1), rel=1e-5)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6 * float(np.abs(a).max()) + 1e-9)
  assert len(jax.tree.leaves(g0)) > 10


def test_dense_lstm_variant_generates_a_sequence(data_dir):
  m = image2gif.Image2GIF(_config(data_dir, 'smoke,dense'))
  state = m.init(jax.random.key(0), None)
  lstm = state.params['generator']['cell']
  assert 'peep_i' not in lstm and lstm['ii']['kernel'].shape == (4, 4)  # dense LSTM on a 4-d z
  frames = np.zeros((2, 5, 64, 64, 3), np.uint8)
  frames[:, 0] = 200
  gen, truth, valid = jax.jit(m.generate)(state.params, {
      'frames': jnp.asarray(frames), 'length': jnp.array([5, 3])})
  assert gen.shape == (2, 5, 64, 64, 3)
  np.testing.assert_allclose(gen[:, 0], 200 / 255, rtol=1e-6)    # frame 0 is the input
  assert float(jnp.std(gen[:, 1] - gen[:, 2])) > 0               # the LSTM state moves
  np.testing.assert_array_equal(valid, [[1, 1, 1, 1], [1, 1, 0, 0]])


# ----------------------------------------------------------------------------- DQN and metrics


def test_td_target_of_a_hand_made_transition():
  reward = jnp.array([[-0.5, -0.25]])
  next_q = jnp.array([[[1.0, 3.0, 2.0], [4.0, 0.0, 0.0]]])
  done = jnp.array([[0.0, 1.0]])
  y = image2gif.td_target(reward, next_q, done, 0.9)
  np.testing.assert_allclose(y, [[-0.5 + 0.9 * 3.0, -0.25]])   # 2.2, and r alone at the end


def test_centres_of_known_masks():
  mask = np.zeros((64, 64))
  mask[10:20, 20:30] = 1                                     # rows 10..19, cols 20..29
  np.testing.assert_allclose(image2gif.object_centre(jnp.asarray(mask)), [25.0, 15.0])
  frame = np.zeros((64, 64, 3))
  frame[30:39, 10:19] = (1.0, 0.2, 0.0)                      # 9x9 square, centre (14.5, 34.5)
  frame[50:53, 50:53] = (1.0, 0.2, 0.0)                      # a smaller distractor
  found = image2gif.sliding_window_centre(jnp.asarray(frame), jnp.array([1.0, 0.2, 0.0]))
  np.testing.assert_allclose(found, [14.5, 34.5], atol=1e-5)


class _Fixed(image2gif.Image2GIF):
  """generate() returns a fixed pair, so that the metrics can be checked by hand."""

  def __init__(self, config, gen, truth, valid):
    super().__init__(config)
    self._pair = (jnp.asarray(gen), jnp.asarray(truth), jnp.asarray(valid))

  def generate(self, params, batch):
    return self._pair


def test_metrics_against_hand_computed_values(data_dir):
  t, n = 5, 3   # 5 stored frames, true length 3: generated frames 1, 2 count, 3 and 4 do not
  truth = np.zeros((1, t, 64, 64, 3))
  truth[0, :, :, :] = np.array([0.0, 0.2, 0.4, 0.9, 0.1])[:, None, None, None]
  masks = np.zeros((1, t, 64, 64), np.uint8)
  gen = truth.copy()
  for k in range(1, n):                                        # object at (24.5 + k, 20.5)
    truth[0, k, 16:25, 20 + k:29 + k] = (1.0, 0.0, 0.0)
    masks[0, k, 16:25, 20 + k:29 + k] = 1
    gen[0, k, 19:28, 24 + k:33 + k] = (1.0, 0.0, 0.0)          # the same object moved by (4, 3)
  gen[0, n:] = 0.5                                             # padding: must not count
  valid = np.arange(1, t)[None] < n
  m = _Fixed(_config(data_dir), gen, truth, valid)
  out = jax.device_get(m.sequence_metrics(None, {'masks': jnp.asarray(masks)}))
  np.testing.assert_allclose(out['centre_distance'], [5.0], rtol=1e-5)
  # PSNR: each frame differs from the truth in two 9x9 squares of (1, 0, 0) vs background
  expect = []
  for k in range(1, n):
    mse = np.mean(np.square(gen[0, k] - truth[0, k]))
    expect.append(10 * np.log10(1.0 / mse))
  np.testing.assert_allclose(out['psnr'], [np.mean(expect)], rtol=1e-5)
  # Table 3 constant baseline on the differences (d + 1) / 2 against 0.5
  dt = (np.diff(truth[0], axis=0)[:n - 1] + 1) / 2
  expect = [10 * np.log10(1.0 / np.mean(np.square(d - 0.5))) for d in dt]
  np.testing.assert_allclose(out['const_diff_psnr'], [np.mean(expect)], rtol=1e-5)
  # a perfect generation: centre distance 0, PSNR capped at 100, SSIM 1
  m = _Fixed(_config(data_dir), truth, truth, valid)
  out = jax.device_get(m.sequence_metrics(None, {'masks': jnp.asarray(masks)}))
  np.testing.assert_allclose(out['centre_distance'], [0.0], atol=1e-5)
  np.testing.assert_allclose(out['psnr'], [100.0])
  np.testing.assert_allclose(out['ssim'], [1.0], atol=1e-5)
  np.testing.assert_allclose(out['diff_ssim'], [1.0], atol=1e-5)


# ----------------------------------------------------------------------------- training


def test_one_step_rnn_and_dqn_equal_on_one_and_eight_devices(tmp_path, data_dir):
  # the DQN variant's step holds the whole RNN generator's step and the DQN's TD step
  outs = one_step_on_devices(tmp_path, data_dir, [('smoke,dqn/', 'image2gif', 'smoke,dqn', {})])
  a, b = outs[1], outs[8]
  assert 'smoke,dqn/metric/loss_td' in a.files and 'smoke,dqn/metric/loss_g' in a.files
  lr = _config(data_dir).optim.learning_rate
  checked = 0
  for k in a.files:
    if k == 'n':
      continue
    x, y = a[k], b[k]
    if '/metric/' in k:
      np.testing.assert_allclose(x, y, rtol=1e-4, err_msg=k)
    elif ".params" in k or '.target_q' in k:   # Adam's first step moves a weight by ~lr
      np.testing.assert_allclose(x, y, atol=2 * lr + 1e-6, err_msg=k)
    else:  # Adam moments, step. A first-conv bias gradient sums 8 x 26 x 32 x 32 nearly
      # cancelling terms: its summation order (per device) moves it by ~0.3 % of its largest entry
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=5e-3 * float(np.abs(x).max()) + 1e-12,
                                 err_msg=k)
    checked += 1
  assert checked > 40
  # the smoke DQN copies its target network every 2 steps: after one step it is still the init
  online = [k for k in a.files if k.startswith('smoke,dqn/') and ".params['q']" in k]
  assert online
  for k in online:
    t = k.replace(".params['q']", '.target_q')
    assert not np.allclose(a[k], a[t])        # the online network moved, the target did not


def test_smoke_train_and_eval_through_the_trainer(tmp_path, data_dir):
  from animgen import trainer
  config = _config(data_dir, 'smoke,dqn')
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(config, workdir)
  results = trainer.evaluate(config, workdir)
  assert results['step'] == 2 and results['num_examples'] == 6
  tables = json.load(open(os.path.join(workdir, 'eval_tables_2.json')))
  assert tables['model'] == 'RNN+DQN'
  assert sorted(tables['per_pattern']) == sorted(pats.PATTERNS)
  for p, row in tables['per_pattern'].items():
    assert row['count'] == 1
    assert 0 < row['psnr'] < 60 and 0 <= row['centre_distance'] < 64
    assert results[f'psnr/{p}'] == pytest.approx(row['psnr'])
  # the means over patterns of the per-pattern figures are the eval_step means (1 per pattern)
  assert results['psnr'] == pytest.approx(np.mean([r['psnr'] for r in tables['per_pattern'].values()]),
                                          rel=1e-5)
  assert os.path.isfile(os.path.join(workdir, 'samples', 'generated_0000002.gif'))
  assert 'Table 4' in open(os.path.join(workdir, 'eval_tables_2.md')).read()
