"""Image2GIF: the synthetic patterns, the paper's networks, the DQN's Q-learning, the Sec. 5
metrics with their baselines and a smoke run."""
import json
import os
import shutil
import sys

import flax.linen as nn
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


def test_default_config_is_one_pattern_at_its_own_length(tmp_path):
  from animgen.errors import InputError
  from configs.image2gif import LENGTHS, PATTERNS, get_config
  assert PATTERNS == pats.PATTERNS and LENGTHS == pats.MAX_LENGTHS
  c = get_config()
  assert (c.dataset, c.batch_size, c.train.num_steps) == ('image2gif_patterns/paper_I', 64, 6000)
  assert c.sample.num_frames == 27 and get_config('pattern=scale').sample.num_frames == 17
  assert (c.model.recurrent, c.model.rgb_conv, c.model.z_dim) == ('dense', False, 64)
  assert get_config('cpu').dataset == 'image2gif_patterns/small_all'
  for p in pats.PATTERNS:
    assert get_config(f'dqn,pattern={p}').dataset == f'image2gif_patterns/paper_{p}'
    assert get_config(f'cpu,pattern={p}').dataset == f'image2gif_patterns/{p}'
    assert get_config(f'smoke,pattern={p}').dataset == f'image2gif_patterns/tiny_{p}'
    for name in (f'paper_{p}', p, f'tiny_{p}'):   # stored at the pattern's own length, unpadded
      b = pats.Image2gifPatterns(config=name, data_dir=str(tmp_path))
      assert b.info.features['frames'].shape == (pats.MAX_LENGTHS[p], 64, 64, 3), name
  assert pats.Image2gifPatterns(config='paper_O', data_dir=str(tmp_path)).builder_config \
      .train_per_pattern == 95_000
  with pytest.raises(InputError, match='pattern=Z'):
    get_config('pattern=Z')


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize('layer,shape', [
    ('Deconv', (2, 4, 4, 6)), ('StridedConv', (2, 8, 8, 6)), ('StridedConv', (1, 64, 64, 3))])
def test_conv_layers_are_flax_layers_with_their_gradients(layer, shape):
  # Deconv == ConvTranspose and StridedConv == Conv 5x5/2 'SAME': parameters, values, gradients
  from animgen.models import image2gif
  x = jax.random.normal(jax.random.key(0), shape)
  ref = (nn.ConvTranspose if layer == 'Deconv' else nn.Conv)(
      5, (5, 5), strides=(2, 2), padding='SAME')
  params = ref.init(jax.random.key(1), x)
  new = getattr(image2gif, layer)(5)
  assert jax.tree.map(jnp.shape, new.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, params)
  params = jax.tree.map(lambda a: a + 0.1, params)       # a non-zero bias too
  np.testing.assert_allclose(new.apply(params, x), ref.apply(params, x), atol=1e-5)
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  g_ref = jax.jit(jax.grad(loss(ref), argnums=(0, 1)))(params, x)
  g_new = jax.jit(jax.grad(loss(new), argnums=(0, 1)))(params, x)
  for a, b in zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_new)):
    np.testing.assert_allclose(a, b, atol=1e-4)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_paper_generator_layers_and_parameter_count(data_dir):
  """Sec. 5.1 with the default config: 4 conv 5x5 stride 2 (64, 128, 256, 512), z 64, an LSTM,
  the 4x4x512 map, 4 deconv 5x5 stride 2 (256, 128, 64, RGB); the DQN the encoder and N = 64."""
  enc, dec, z, n, k = [3, 64, 128, 256, 512], [512, 256, 128, 64, 3], 64, 64, 5
  conv = lambda a, b: k * k * a * b + b            # a 5x5 (de)conv with bias
  dense = lambda a, b: a * b + b
  encoder = sum(conv(a, b) for a, b in zip(enc, enc[1:]))      # 4,306,560
  lstm = 4 * z * z + 4 * (z * z + z)   # 4 gates: input weights, recurrent weights and bias
  decoder = sum(conv(a, b) for a, b in zip(dec, dec[1:]))      # 4,306,051
  rnn = encoder + dense(4 * 4 * 512, z) + lstm + dense(z, 4 * 4 * 512) + decoder
  assert rnn == 9_702_467
  m = image2gif.Image2GIF(_config(data_dir, 'dqn'))
  params = jax.eval_shape(m.init, jax.random.key(0), None).params
  g = params['generator']
  for i in range(4):
    assert g['encoder'][f'conv{i}']['kernel'].shape == (k, k, enc[i], enc[i + 1])
    assert g['decoder'][f'deconv{i}']['kernel'].shape == (k, k, dec[i], dec[i + 1])
  assert g['to_z']['kernel'].shape == (4 * 4 * 512, z) and g['cell']['hi']['kernel'].shape == (z, z)
  assert g['decoder']['project']['kernel'].shape == (z + n, 4 * 4 * 512)   # state and one-hot
  assert set(g['decoder']) == {'project'} | {f'deconv{i}' for i in range(4)}
  assert _count(g) == rnn + n * 4 * 4 * 512
  assert _count(params['q']) == encoder + dense(4 * 4 * 512, n)
  rnn_only = image2gif.Image2GIF(_config(data_dir, ''))
  assert _count(jax.eval_shape(rnn_only.init, jax.random.key(0), None).params['generator']) == rnn
  # the feature maps: 64 -> 32 -> 16 -> 8 -> 4 px, and back from the 4x4x512 map to 64x64 RGB
  _, inter = jax.eval_shape(lambda p: m.generator.apply(
      {'params': p}, jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 1, n)),
      capture_intermediates=True, mutable=['intermediates']), g)
  inter = inter['intermediates']
  for i, size in enumerate((32, 16, 8, 4)):
    assert inter['encoder'][f'conv{i}']['__call__'][0].shape == (1, size, size, enc[i + 1])
  for i, size in enumerate((8, 16, 32, 64)):
    assert inter['decoder'][f'deconv{i}']['__call__'][0].shape == (1, size, size, dec[i + 1])


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


def test_convlstm_variant_generates_a_sequence(data_dir):
  m = image2gif.Image2GIF(_config(data_dir, 'smoke,convlstm'))
  state = m.init(jax.random.key(0), None)
  g = state.params['generator']
  assert 'peep_i' in g['cell'] and g['cell']['input']['kernel'].shape == (3, 3, 4, 16)
  assert g['decoder']['rgb']['kernel'].shape == (5, 5, 4, 3) and 'project' not in g['decoder']
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


class _HandGenerator(nn.Module):
  """Frame t of every sequence is the constant image speed * t (the action changes nothing)."""

  def setup(self):
    self.speed = self.param('speed', lambda _: jnp.float32(0.1))

  def encode(self, image):
    return jnp.zeros((image.shape[0], 1))

  def initial_carry(self, code):
    return code

  def step(self, carry, code):
    return carry + 1.0, carry + 1.0                     # the state h is the time step t

  def decode(self, h, action=None):
    return jnp.broadcast_to(self.speed * h[:, :, None, None], (h.shape[0], 64, 64, 3))

  def __call__(self, image, actions):
    return self.decode(self.step(self.initial_carry(self.encode(image)), None)[1])[:, None]


class _HandQ(nn.Module):
  """Q(s, a) = mean(s) * w[a]."""

  @nn.compact
  def __call__(self, frame):
    return jnp.mean(frame, axis=(1, 2, 3))[:, None] * self.param('w', nn.initializers.zeros, (3,))


class _HandD(nn.Module):
  """A discriminator whose logit is one parameter (0: -log D = log 2 for every frame)."""

  @nn.compact
  def __call__(self, frame):
    return jnp.broadcast_to(self.param('logit', nn.initializers.zeros, ()), frame.shape[:1])


W_ONLINE, W_TARGET = np.array([1.0, 3.0, 2.0]), np.array([4.0, -1.0, 0.0])


def _hand_model(data_dir, **dqn):
  c = _config(data_dir, 'smoke,dqn')
  c.loss.lambda_adv, c.dqn.gamma = 0.5, 0.9
  c.dqn.update(dqn)
  m = image2gif.Image2GIF(c)
  m.generator, m.qnet, m.discriminator = _HandGenerator(), _HandQ(), _HandD()
  state = m.init(jax.random.key(0), None)
  params = dict(state.params, q={'w': jnp.asarray(W_ONLINE)})
  return m, state.replace(params=params, target_q={'w': jnp.asarray(W_TARGET)})


def _hand_batch():
  """Two sequences of 4 stored frames (uint8 u -> u / 127.5 - 1), true lengths 4 and 3."""
  u = np.array([[204, 153, 153, 204], [153, 102, 153, 0]], np.uint8)   # 0.6 .2 .2 .6 / .2 -.2 .2 -1
  frames = np.broadcast_to(u[:, :, None, None, None], (2, 4, 64, 64, 3))
  return {'frames': jnp.asarray(frames), 'length': jnp.array([4, 3])}


def test_one_q_learning_transition_through_the_real_loss(data_dir):
  """Generated frame t is 0.1 t; Q_online(s, a) = mean(s) * (1, 3, 2)[a] (greedy action 1),
  Q_target(s', a) = mean(s') * (4, -1, 0)[a]; gamma 0.9, lambda_adv 0.5, -log D = log 2."""
  m, state = _hand_model(data_dir)
  gq = {k: v for k, v in state.params.items() if k != 'discriminator'}
  _, (pred, _, _, out) = m.loss(gq, state.params['discriminator'], state.target_q, _hand_batch(),
                                jax.random.key(1), 0.0)
  np.testing.assert_allclose(pred[:, :, 0, 0, 0], [[0.1, 0.2, 0.3]] * 2, rtol=1e-6)
  adv = 0.5 * np.log(2.0)
  # (mean of the state, squared error of the frame its action produced, mean of that next frame,
  # None at the last true frame)
  steps = [(0.6, 0.1 ** 2, 0.1), (0.1, 0.0, 0.2), (0.2, 0.3 ** 2, None),     # length 4
           (0.2, 0.3 ** 2, 0.1), (0.1, 0.0, None)]                           # length 3 (+ pad)
  huber, rewards = [], []
  for s, se, nxt in steps:
    r = -(se + adv / 12288)        # minus the frame's Eq. 3 loss (squared norm) per value
    y = r if nxt is None else r + 0.9 * 4.0 * nxt      # max over the TARGET network: action 0
    e = abs(3.0 * s - y)                               # the online Q of the state's action
    huber.append(0.5 * e ** 2 if e <= 1 else e - 0.5)
    rewards.append(r)
  # Eq. 1: each frame's squared error summed over its 64 x 64 x 3 values, padding included
  np.testing.assert_allclose(out['loss_mse'], 12288 * np.mean([.01, 0, .09, .09, 0, 1.3 ** 2]),
                             rtol=1e-5)
  np.testing.assert_allclose(out['loss_td'], np.mean(huber), rtol=1e-5)
  np.testing.assert_allclose(out['reward'], np.mean(rewards), rtol=1e-5)
  np.testing.assert_allclose(out['q_mean'], 3.0 * np.mean([s for s, *_ in steps]), rtol=1e-5)
  np.testing.assert_allclose(out['loss'], out['loss_g'] + out['loss_td'], rtol=1e-6)


def test_target_network_refreshes_every_n_steps_and_epsilon_follows_the_step(data_dir):
  m, state = _hand_model(data_dir, target_update_every=3, epsilon_steps=4)
  step = jax.jit(m.train_step)
  epsilons = []
  for k in range(1, 7):
    before_q, before_target = state.params['q']['w'], state.target_q['w']
    state, metrics = step(state, _hand_batch(), jax.random.key(k))
    epsilons.append(float(metrics['epsilon']))
    online = state.params['q']['w']
    assert not np.allclose(online, before_q), k                      # the online net learns
    expect = online if k % 3 == 0 else before_target
    np.testing.assert_array_equal(state.target_q['w'], expect, err_msg=f'step {k}')
  assert not np.allclose(state.target_q['w'], W_TARGET)
  np.testing.assert_allclose(epsilons, [1.0, 0.775, 0.55, 0.325, 0.1, 0.1], rtol=1e-6)


def test_epsilon_schedule_at_start_middle_end_and_after(data_dir):
  m = image2gif.Image2GIF(_config(data_dir, 'dqn'))      # 1.0 -> 0.1 over 2,000 steps
  got = [float(m.epsilon(jnp.int32(s))) for s in (0, 500, 1000, 2000, 2001, 10_000)]
  np.testing.assert_allclose(got, [1.0, 0.775, 0.55, 0.1, 0.1, 0.1], rtol=1e-6)


def test_centres_of_known_masks_and_the_sliding_object():
  mask = np.zeros((64, 64))
  mask[10:20, 20:30] = 1                                     # rows 10..19, cols 20..29
  np.testing.assert_allclose(image2gif.object_centre(jnp.asarray(mask)), [25.0, 15.0])
  truth, frame, mask = np.full((64, 64, 3), 0.3), np.full((64, 64, 3), 0.3), np.zeros((64, 64))
  truth[30:39, 10:19], mask[30:39, 10:19] = (1.0, 0.2, 0.0), 1      # a 9x9 object
  frame[33:42, 14:23] = (1.0, 0.2, 0.0)                      # found 4 px right, 3 px down
  frame[2:7, 50:55] = (1.0, 0.2, 0.0)                        # a smaller one of the same colour
  offset = image2gif.template_offset(jnp.asarray(frame), jnp.asarray(truth), jnp.asarray(mask))
  np.testing.assert_allclose(offset, [4.0, 3.0], atol=1e-4)
  # a blank frame: every offset that keeps the object inside ties; their mean
  blank = image2gif.template_offset(jnp.full((64, 64, 3), 0.5), jnp.asarray(truth),
                                    jnp.asarray(mask))
  np.testing.assert_allclose(blank, [(-10 + 45) / 2, (-30 + 25) / 2], atol=1e-3)


def test_mean_frame_is_over_the_true_output_frames_of_evenly_spaced_records():
  from animgen.evaluators.tables import mean_output_frame
  rec = lambda values, length: {'frames': np.broadcast_to(
      np.array(values, np.uint8)[:, None, None, None], (4, 64, 64, 3)), 'length': length}
  records = [rec([10, 20, 30, 0], 3), rec([99, 99, 99, 99], 4), rec([0, 40, 50, 60], 4)]
  mean, used = mean_output_frame(records, max_sequences=2)       # records 0 and 2
  assert used == 2 and mean.shape == (64, 64, 3)
  np.testing.assert_allclose(mean, (20 + 30 + 40 + 50 + 60) / 5 / 255, rtol=1e-6)
  every = (20 + 30 + 3 * 99 + 40 + 50 + 60) / 8 / 255
  np.testing.assert_allclose(mean_output_frame(records)[0], every, rtol=1e-6)


class _Fixed(image2gif.Image2GIF):
  """generate() returns a fixed pair, so that the metrics can be checked by hand."""

  def __init__(self, config, gen, truth, valid):
    super().__init__(config)
    self._pair = (jnp.asarray(gen), jnp.asarray(truth), jnp.asarray(valid))

  def generate(self, params, batch):
    return self._pair


def _psnr(a, b):
  return 10 * np.log10(1.0 / np.mean(np.square(a - b)))


def test_metrics_and_baselines_against_hand_computed_values(data_dir):
  t, n = 5, 3   # 5 stored frames, true length 3: generated frames 1, 2 count, 3 and 4 do not
  truth = np.zeros((1, t, 64, 64, 3))
  truth[0, :, :, :] = np.array([0.0, 0.2, 0.4, 0.9, 0.1])[:, None, None, None]
  masks = np.zeros((1, t, 64, 64), np.uint8)
  gen = truth.copy()
  for k in range(n):                                           # object at (24.5 + k, 20.5)
    truth[0, k, 16:25, 20 + k:29 + k] = (1.0, 0.0, 0.0)
    masks[0, k, 16:25, 20 + k:29 + k] = 1
    if k:
      gen[0, k, 19:28, 24 + k:33 + k] = (1.0, 0.0, 0.0)        # the same object moved by (4, 3)
  gen[0, 0] = truth[0, 0]                                      # frame 0: the input
  gen[0, n:] = 0.5                                             # padding: must not count
  valid = np.arange(1, t)[None] < n
  m = _Fixed(_config(data_dir), gen, truth, valid)
  rows = jax.device_get(jax.jit(m.table_metrics)(None, {'masks': jnp.asarray(masks)},
                                                 jnp.full((64, 64, 3), 0.3)))
  model, copy, mean = rows['model'], rows['copy_input'], rows['mean_frame']
  np.testing.assert_allclose(model['centre_distance'], [5.0], rtol=1e-5)
  np.testing.assert_allclose(copy['centre_distance'], [(1 + 2) / 2], rtol=1e-5)  # k px back
  # the blank mean frame: every inside offset ties, mean offset (7.5 - k, 11.5) (dx, dy)
  np.testing.assert_allclose(mean['centre_distance'],
                             [np.mean([np.hypot(7.5 - k, 11.5) for k in (1, 2)])], rtol=1e-4)
  x, mean_seq = truth[0, 0], np.full((64, 64, 3), 0.3)
  d = lambda v: (np.diff(np.asarray(v), axis=0)[:n - 1] + 1) / 2       # Table 3's differences
  for row, frames in ((model, gen[0]), (copy, [x] * t), (mean, [x] + [mean_seq] * (t - 1))):
    np.testing.assert_allclose(row['psnr'], [np.mean([_psnr(frames[k], truth[0, k])
                                                      for k in range(1, n)])], rtol=1e-5)
    np.testing.assert_allclose(row['diff_psnr'], [np.mean([_psnr(a, b) for a, b in zip(
        d(frames), d(truth[0]))])], rtol=1e-5)
  np.testing.assert_allclose(copy['diff_psnr'], [np.mean([_psnr(0.5, b) for b in d(truth[0])])],
                             rtol=1e-5)                         # the Constant: zero differences
  alone = jax.jit(m.sequence_metrics)(None, {'masks': masks})    # eval_step: the model's row
  for f in model:
    np.testing.assert_allclose(model[f], alone[f], rtol=1e-6)
  # a perfect generation: centre distance 0, PSNR capped at 100, SSIM 1
  m = _Fixed(_config(data_dir), truth, truth, valid)
  out = jax.device_get(jax.jit(m.sequence_metrics)(None, {'masks': jnp.asarray(masks)}))
  np.testing.assert_allclose(out['centre_distance'], [0.0], atol=1e-5)
  np.testing.assert_allclose(out['psnr'], [100.0])
  np.testing.assert_allclose(out['ssim'], [1.0], atol=1e-5)
  np.testing.assert_allclose(out['diff_ssim'], [1.0], atol=1e-5)


# ----------------------------------------------------------------------------- training


def test_one_step_rnn_and_dqn_equal_on_one_and_eight_devices(tmp_path, data_dir):
  # the DQN variant's step holds the whole RNN generator's step and the DQN's TD step (smoke:
  # model.remat off, ~10x faster here; test_remat_gives_the_same_loss_and_gradients ties the paths)
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


@pytest.fixture(scope='module')
def dqn_run(tmp_path_factory, data_dir):
  """The 2-step smoke RNN+DQN run, trained and evaluated once -> (config, workdir, results)."""
  from conftest import shared_run
  config = _config(data_dir, 'smoke,dqn')
  workdir, _, results = shared_run(tmp_path_factory, 'image2gif_smoke_dqn', config, evaluate=True)
  return config, workdir, results


def test_smoke_train_and_eval_through_the_trainer(dqn_run):
  _, workdir, results = dqn_run
  assert results['step'] == 2 and results['num_examples'] == 6
  tables = json.load(open(os.path.join(workdir, 'eval_tables_2.json')))
  assert tables['model'] == 'RNN+DQN' and tables['mean_frame_sequences'] == 12  # all train
  assert sorted(tables['per_pattern']) == sorted(pats.PATTERNS)
  for p, row in tables['per_pattern'].items():
    assert row['count'] == 1
    assert 0 < row['psnr'] < 60 and 0 <= row['centre_distance'] < 64
    assert results[f'psnr/{p}'] == pytest.approx(row['psnr'])
    for b, base in row['baselines'].items():
      assert 0 < base['psnr'] < 60 and 0 <= base['centre_distance'] < 64, (p, b)
      assert results[f'{b}/diff_psnr/{p}'] == pytest.approx(base['diff_psnr'])
    if p in ('I', 'O', 'L', 'eight'):  # the copied input shows the object where it started
      assert row['baselines']['copy_input']['centre_distance'] > 1, p
  # the means over patterns of the per-pattern figures are the eval_step means (1 per pattern)
  assert results['psnr'] == pytest.approx(np.mean([r['psnr'] for r in tables['per_pattern'].values()]),
                                          rel=1e-5)
  assert os.path.isfile(os.path.join(workdir, 'samples', 'generated_0000002.gif'))
  md = open(os.path.join(workdir, 'eval_tables_2.md')).read()
  assert 'Table 4' in md
  assert md.count('| Copy the input frame |') == md.count('| Mean training frame |') == 3


# ----------------------------------------------------------------------------- real cinemagraphs


@pytest.fixture(scope='module')
def cinemagraphs(tmp_path_factory):
  """Seven cinemagraphs cut from the shipped clips: the two files as they are (tree.mp4: 52
  frames at 8 fps, 6.5 s; newtonscradle.gif: 40 frames at 50 fps, 0.8 s), smaller GIF / MP4
  cuts of them and a folder of PNG frames -> (folder, {cinemagraph: its number of clips})."""
  from PIL import Image
  from animgen import media
  root = tmp_path_factory.mktemp('cinemagraphs')
  for name in ('tree.mp4', 'newtonscradle.gif'):
    shutil.copy(os.path.join(ROOT, 'data', 'clips', name), root / name)
  small = media.to_uint8(media.read_video(root / 'tree.mp4')[0])[:, ::4, ::4]     # 60 x 80
  media.write_video(root / 'a.gif', small[:50], fps=10)         # 5 s: three clips
  media.write_video(root / 'b.mp4', small[10:38], fps=8)        # 3.5 s: two
  media.write_video(root / 'c.mp4', small[:16], fps=8)          # 2 s: one
  cradle = media.to_uint8(media.read_video(root / 'newtonscradle.gif')[0])
  media.write_video(root / 'd.gif', cradle[::-1], fps=50)       # 0.8 s: one
  os.makedirs(root / 'e')
  for t in range(12):                                           # 12 frames at 30 fps: one
    Image.fromarray(small[t]).save(root / 'e' / f'{t}.png')
  return str(root), {'tree.mp4': 3, 'newtonscradle.gif': 1, 'a.gif': 3, 'b.mp4': 2, 'c.mp4': 1,
                     'd.gif': 1, 'e': 1}


def test_cinemagraph_clips_and_frames_follow_sec_4_2_and_5_3():
  from animgen.datasets import cinemagraph_folder as cg
  assert cg.clip_starts(52, 8.0) == [0, 22, 44]          # 6.5 s: three, first and last at the ends
  assert cg.clip_starts(30, 8.0) == [0, 22]              # 3.75 s: two
  assert cg.clip_starts(24, 8.0) == [0] and cg.clip_starts(40, 50.0) == [0]   # <= 3 s: one
  assert cg.sample_indices(22, 52, 8.0).tolist() == [22, 23, 25, 26, 28, 29]  # within 1 s
  assert cg.sample_indices(0, 40, 50.0).tolist() == [0, 8, 16, 23, 31, 39]    # < 1 s: all of it
  assert cg.sample_indices(0, 5, 30.0) is None           # fewer than 1 + 5 frames


def _records(builder, split):
  src = builder.as_data_source(split=split)
  return [src[i] for i in range(len(src))]


def _square_by_hand(path, index, box):
  """Frames `index` of a clip, cropped to `box` and resized to 64 px by PIL (bilinear)."""
  from PIL import Image
  from animgen import media
  video = media.to_uint8(media.read_video(path)[0])
  return np.stack([np.asarray(Image.fromarray(video[i]).crop(box).resize(
      (64, 64), Image.Resampling.BILINEAR)) for i in index])


def test_cinemagraph_folder_splits_whole_cinemagraphs_into_1_plus_5_frames(cinemagraphs,
                                                                           tmp_path):
  from animgen import input_pipeline
  from animgen.datasets import clip_folders, common
  folder, clips = cinemagraphs
  prepared = [{s: _records(input_pipeline.prepare('cinemagraph_folder/default',
                                                  str(tmp_path / d), folder), s)
               for s in ('train', 'test')} for d in ('one', 'two')]
  for s in ('train', 'test'):                                  # prepared twice: the same
    assert [r['cinemagraph'] for r in prepared[0][s]] == [r['cinemagraph'] for r in prepared[1][s]]
    for a, b in zip(prepared[0][s], prepared[1][s]):
      np.testing.assert_array_equal(a['frames'], b['frames'])
  recs = prepared[0]
  names = {s: [r['cinemagraph'].decode() for r in recs[s]] for s in recs}
  want = clip_folders.seeded_split(sorted(clips, key=common.natural_key), 0, 0.15)
  assert sorted(set(names['test'])) == want['test'] and len(want['test']) == 1  # 0.15 of 7
  assert set(names['train']).isdisjoint(names['test'])       # no cinemagraph in both splits
  every, every_name = recs['train'] + recs['test'], names['train'] + names['test']
  assert {n: every_name.count(n) for n in clips} == clips    # all clips of every cinemagraph
  for r in every:
    assert r['frames'].shape == (6, 64, 64, 3) and r['frames'].dtype == np.uint8
  by = {(n, int(r['clip'])): r['frames'] for n, r in zip(every_name, every)}
  tree, cradle = (40, 0, 280, 240), (25, 0, 175, 150)        # the centred squares
  for name, clip, index, box in (('tree.mp4', 1, [22, 23, 25, 26, 28, 29], tree),
                                 ('tree.mp4', 2, [44, 45, 47, 48, 50, 51], tree),
                                 ('newtonscradle.gif', 0, [0, 8, 16, 23, 31, 39], cradle)):
    np.testing.assert_array_equal(by[name, clip], _square_by_hand(os.path.join(folder, name),
                                                                  index, box), err_msg=name)


def test_cinemagraph_folder_bad_layouts_are_one_line_errors(tmp_path):
  from PIL import Image
  from animgen import input_pipeline, media
  from animgen.errors import InputError
  m = tmp_path / 'm'
  for d in ('empty', 'loose', 'one', 'nothing/docs', 'short'):
    (m / d).mkdir(parents=True)
  (m / 'a_file').write_text('x')
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(m / 'loose' / '1.png')
  shutil.copy(os.path.join(ROOT, 'data', 'clips', 'newtonscradle.gif'), m / 'one')
  (m / 'nothing' / 'docs' / 'a.txt').write_text('x')
  for name in ('s1.gif', 's2.gif'):                             # 3 frames each: no 1 + 5
    media.write_video(m / 'short' / name, np.random.default_rng(0).random((3, 8, 8, 3)), fps=10)
  prepare = lambda d: input_pipeline.prepare('cinemagraph_folder/default', str(tmp_path / 'd'), d)
  for manual, fragment in ((m / 'missing', 'does not exist'), (m / 'empty', 'is empty'),
                           (m / 'a_file', 'is a file'), (m / 'loose', 'lie directly in'),
                           (m / 'one', 'holds one cinemagraph (newtonscradle.gif)'),
                           (m / 'nothing', 'no cinemagraph files or folders of frames'),
                           ('', 'no manual_dir given'),
                           (m / 'short', 'has 6 frames within its first second')):
    with pytest.raises(InputError) as e:
      prepare(str(manual))
    msg = str(e.value)
    assert '\n' not in msg and msg.startswith('cinemagraph_folder: ') and fragment in msg, msg
    if manual != m / 'short':
      assert '<manual_dir>/*.gif|mp4' in msg and '--config.manual_dir=DIR' in msg, msg
  assert not [d for _, ds, _ in os.walk(tmp_path / 'd') for d in ds
              if d.startswith(('1.0.0', 'incomplete'))]          # nothing half-prepared


def test_real_config_refuses_to_train_without_manual_dir(tmp_path):
  from conftest import run_cli
  from configs.image2gif import get_config
  c = get_config('real')
  assert (c.dataset, c.model.z_dim, c.model.num_actions, c.loss.lambda_adv, c.batch_size,
          c.train.num_steps, c.sample.num_frames) == ('cinemagraph_folder/default', 512, 512,
                                                      0.05, 64, 13_500, 6)
  assert c.data.flip and c.data.resized_crop == 56 and c.evals.metrics.type == 'metrics'
  r = run_cli(['-m', 'animgen.main', '--config=configs/image2gif.py:real',
               f'--config.data_dir={tmp_path / "d"}', f'--workdir={tmp_path / "w"}'], timeout=300)
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith('animgen: error: cinemagraph_folder: no '
                                                 'manual_dir given'), lines
  assert '<manual_dir>/*.gif|mp4' in lines[0] and '--config.manual_dir=DIR' in lines[0]
  assert not os.path.exists(tmp_path / 'w')


def test_real_training_crops_one_window_per_sequence_and_flips_across_time(data_dir):
  from animgen import input_pipeline
  from animgen.ops import warp
  frames = np.random.default_rng(0).integers(0, 256, (4, 6, 64, 64, 3), dtype=np.uint8)
  out = np.asarray(jax.jit(image2gif.random_resized_crop, static_argnums=2)(
      jnp.asarray(frames), jax.random.key(0), 56))
  windows = np.stack([frames[:, :, y:y + 56, x:x + 56] for y in range(9) for x in range(9)])
  every = np.asarray(jax.jit(lambda w: warp.resize(w, 64, 64))(
      jnp.asarray(windows.reshape(-1, 56, 56, 3), jnp.float32))).reshape((81,) + frames.shape)
  err = np.abs(every - out[None]).max(axis=(3, 4, 5))             # [window, sequence, frame]
  assert err.min(0).max() < 1e-2                                  # each frame: one window...
  best = err.argmin(0)
  assert (best == best[:, :1]).all() and len(set(best[:, 0])) > 1  # ... fixed across time
  # train_step crops: a 64 px window is no crop, a 56 px one changes the loss (x ramp frames)
  m, state = _hand_model(data_dir)
  ramp = np.broadcast_to((np.arange(64) * 4).astype(np.uint8)[:, None], (2, 4, 64, 64, 3))
  batch = {'frames': jnp.asarray(ramp), 'length': jnp.array([4, 4])}
  mse = {}
  for crop in (0, 64, 56):
    m.config.data.resized_crop = crop
    mse[crop] = float(jax.jit(m.train_step)(state, batch, jax.random.key(1))[1]['loss_mse'])
  assert mse[64] == mse[0] and abs(mse[56] - mse[0]) > 1e-4, mse
  # a real record (frames only) and the pipeline's flips of :real, across every frame
  ex = m.make_example({'frames': frames[0]}, None, True)
  assert set(ex) == {'frames', 'length'} and ex['length'] == 6
  real, flipped = _config(data_dir, 'real'), 0
  for seed in range(8):
    got = input_pipeline.augment(real, ex, np.random.default_rng(seed))['frames']
    if not np.array_equal(got, ex['frames']):
      np.testing.assert_array_equal(got, ex['frames'][:, :, ::-1])
      flipped += 1
  assert 0 < flipped < 8
  assert input_pipeline.augment(_config(data_dir), ex, np.random.default_rng(0)) is ex


def test_real_figures_without_masks_are_tables_2_and_3(data_dir):
  truth = np.random.default_rng(0).random((2, 6, 64, 64, 3)).astype(np.float32)
  gen = truth.copy()
  gen[:, 1:] = np.clip(gen[:, 1:] + 0.1, 0, 1)
  m = _Fixed(_config(data_dir, 'real'), gen, truth, np.ones((2, 5), bool))
  out = jax.device_get(jax.jit(m.sequence_metrics)(None, {}))
  assert set(out) == {'psnr', 'ssim', 'diff_psnr', 'diff_ssim'}
  np.testing.assert_allclose(out['psnr'], [np.mean([_psnr(gen[b, k], truth[b, k])
                                                    for k in range(1, 6)]) for b in range(2)],
                             rtol=1e-5)


def test_cli_animate_image2gif_writes_the_methods_cinemagraph(dqn_run, tmp_path, capsys):
  from animgen import cli, media, runs
  from animgen.datasets.cinemagraph_folder import square_frames
  config, workdir, _ = dqn_run
  photo = os.path.join(ROOT, 'data', 'photos', 'china.jpg')
  gif, pngs = tmp_path / 'china.gif', tmp_path / 'frames'
  assert cli.main(['animate', photo, '-o', str(gif), '-o', str(pngs), '--method', 'image2gif',
                   '--workdir', workdir, '-q']) == 0
  n = config.sample.num_frames                                   # 27: the data's length
  assert capsys.readouterr().out.startswith(
      f'animgen: wrote {n} frames at 64x64 (Image2GIF RNN+DQN, step 2): {gif}, {pngs}')
  run = runs.load(workdir, 'image2gif')
  x = square_frames(media.to_uint8(media.read_image(photo))[None])[0]
  assert x.shape == (64, 64, 3)
  want = media.to_uint8(np.asarray(jax.jit(run.method.cinemagraph, static_argnums=2)(
      run.state.params, x, n)))
  np.testing.assert_array_equal(media.to_uint8(media.read_video(str(pngs))[0]), want)
  np.testing.assert_array_equal(want[0], x)                      # the photo, then generated
  assert np.abs(want[1].astype(int) - x).mean() > 5
  frames = media.to_uint8(media.read_video(str(gif))[0])
  assert frames.shape == (n, 64, 64, 3)
  assert np.abs(frames[:2].astype(int) - want[:2]).mean() < 4    # GIF: a 256-colour palette


def test_cli_animate_image2gif_bad_input_is_one_line_and_writes_nothing(dqn_run, tmp_path,
                                                                        capsys):
  from animgen import cli
  workdir = dqn_run[1]
  photo = os.path.join(ROOT, 'data', 'photos', 'china.jpg')
  (tmp_path / 'cut.jpg').write_bytes(open(photo, 'rb').read()[:5000])
  (tmp_path / 'norun').mkdir()
  out = str(tmp_path / 'o.gif')
  for args, fragment in (
      ([str(tmp_path / 'nope.jpg'), '-o', out, '--workdir', workdir], 'nope.jpg'),
      ([str(tmp_path / 'cut.jpg'), '-o', out, '--workdir', workdir], 'cut.jpg'),
      ([photo, '-o', out, '--workdir', str(tmp_path / 'norun')],
       'no trained Image2GIF model in'),
      ([photo, '-o', str(tmp_path / 'o.xyz'), '--workdir', workdir], '.xyz'),
      ([photo, '-o', out, '--workdir', workdir, '--z-index', '1'],
       '--z-index is an Animating Landscape option'),
      ([photo, '-o', out, '--workdir', workdir, '--frames', '1'], "--frames: '1'"),
      ([photo, '-o', out, '--workdir', workdir, '--fps', '0'], "--fps: '0'")):
    with pytest.raises(SystemExit) as e:
      cli.main(['animate'] + args + ['--method', 'image2gif', '-q'])
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith('animgen: error: ') and fragment in lines[0], lines
  assert sorted(os.listdir(tmp_path)) == ['cut.jpg', 'norun']
