"""Algorithm 1's appearance schedule and the latent controls of Sec. 6.4 and Appendix B."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from animgen import animate
from animgen.errors import InputError
from animgen.methods import landscape_appearance


def test_appearance_repeats_follow_the_speed():
  assert animate.appearance_repeats(0.1) == 10 and animate.appearance_repeats(1.0) == 1
  with pytest.raises(InputError):
    animate.appearance_repeats(0.0)


def test_parse_arrows_string_and_json(tmp_path):
  a = animate.parse_arrows('1,2,3,4; 5,6,7,8')
  np.testing.assert_array_equal(a, [[1, 2, 3, 4], [5, 6, 7, 8]])
  f = tmp_path / 'arrows.json'
  f.write_text(json.dumps({'arrows': [[0, 0, 10, 0]]}))
  np.testing.assert_array_equal(animate.parse_arrows(str(f)), [[0, 0, 10, 0]])
  for bad in ('1,2,3', 'a,b,c,d', '1,1,1,1'):
    with pytest.raises(InputError):
      animate.parse_arrows(bad)


def test_arrow_maps_hold_the_backward_direction_on_the_arrow():
  u, m = animate.arrow_maps(np.array([[10.0, 50.0, 90.0, 50.0]]), 101, 101, 11)
  assert m[5, 1:10].all() and m.sum() == m[5].sum()   # one horizontal line of pixels
  np.testing.assert_allclose(u[5, 5], [-1.0, 0.0])    # motion to the right = backward flow left


def test_arrow_loss_margin():
  u = jnp.array([[[[1.0, 0.0]]]]); m = jnp.ones((1, 1, 1))
  same = jnp.array([[[[2.0, 0.0]]]]); ortho = jnp.array([[[[0.0, 1.0]]]])
  assert float(animate.arrow_loss(same, u, m)) == 0.0
  assert float(animate.arrow_loss(jnp.array([[[[1.0, 0.9]]]]), u, m)) == 0.0  # 42 deg: in margin
  np.testing.assert_allclose(float(animate.arrow_loss(ortho, u, m)), 0.25)   # (1 - 0 - 0.5)^2
  np.testing.assert_allclose(float(animate.arrow_loss(-same, u, m)), 2.25)   # (1 + 1 - 0.5)^2


def test_code_from_arrows_turns_the_flow_towards_the_arrow():
  # A stand-in predictor whose uniform backward flow is the first two latent components.
  predict = lambda x, z: jnp.broadcast_to(z[:, None, None, :2], x.shape[:3] + (2,))
  img = jnp.zeros((1, 16, 16, 3))
  arrows = np.array([[2.0, 8.0, 2.0, 1.0]])          # motion upwards
  z0 = np.array([0.3, 0.2, 0.0, 0.0], np.float32)     # flow pointing down-right at the start
  z, loss = animate.code_from_arrows(predict, img, arrows, 16, 16, z0, steps=300, lr=0.05)
  cos = z[1] / np.linalg.norm(z[:2])                  # backward flow should point down (+y)
  assert cos > 0.5 and loss < 1e-6
  np.testing.assert_array_equal(z[2:], 0.0)           # unused components keep no gradient


def test_code_from_patch_recovers_the_target_colour():
  # Stand-in P^A: C^w = 1, C^b = z[:3] everywhere, so the output is tanh(I + z[:3]).
  maps = lambda x, z: jnp.concatenate(
      [jnp.ones(x.shape), jnp.broadcast_to(z[:, None, None, :3], x.shape)], -1)
  rng = np.random.default_rng(0)
  img = jnp.asarray(rng.uniform(-0.5, 0.5, (1, 8, 8, 3)), jnp.float32)
  b = jnp.array([0.3, -0.2, 0.1])
  target = jnp.tanh(img + b)
  mask = jnp.zeros((1, 8, 8, 1)).at[:, 2:5, 2:5].set(1.0)
  target = target * mask + (1 - mask) * 0.9           # outside the mask the target is wrong
  z, loss = animate.code_from_patch(maps, img, target, mask, np.zeros(3, np.float32),
                                    steps=400, lr=0.05)
  np.testing.assert_allclose(z, b, atol=2e-3)
  assert loss < 1e-5


def test_latent_lstm_learns_a_rotation_and_rolls_out():
  theta = 0.3
  rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  rng = np.random.default_rng(0)
  seqs = []
  for n in (12, 16, 9):                              # variable lengths exercise the mask
    z = [rng.normal(size=2)]
    z[0] /= np.linalg.norm(z[0])
    for _ in range(n - 1):
      z.append(rot @ z[-1])
    seqs.append(np.asarray(z, np.float32))
  params, loss = landscape_appearance.train_latent_lstm(seqs, num_steps=600, lr=3e-3)
  var = np.mean(np.square(np.concatenate(seqs)))      # ~1 per component
  assert loss < 0.02 * var * 2
  roll = landscape_appearance.lstm_rollout(params, seqs[0][0], 5, latent_dim=2)
  np.testing.assert_allclose(roll[:5], seqs[0][:5], atol=0.15)


def test_mmd_is_small_for_prior_samples_and_grows_with_a_shift():
  import jax
  from animgen.ops import losses
  k1, k2 = jax.random.split(jax.random.key(0))
  prior = jax.random.normal(k1, (256, 8))
  same = jax.random.normal(k2, (256, 8))
  near = float(losses.mmd_imq(same, prior))
  far = float(losses.mmd_imq(same + 1.0, prior))
  assert abs(near) < 0.02 and far > 20 * max(abs(near), 1e-3)


_REG_KEY = {'vae': 'loss_kl', 'wae': 'loss_mmd', 'wae_gan': 'loss_adv'}


@pytest.mark.parametrize('kind', ['vae', 'wae', 'wae_gan'])
def test_latent_regularisation_in_training(data_dir, kind):
  import jax
  from conftest import smoke_config
  from animgen import input_pipeline
  from animgen.methods.landscape_common import LatentCritic, init_critic, regularised_code
  from animgen.methods.landscape_motion import LandscapeMotion
  config = smoke_config(data_dir, **{'model.latent_reg': kind, 'loss.lambda_latent': 0.5})
  mu = jnp.ones((4096, 2)); logvar = jnp.full((4096, 2), np.log(0.25))
  critic = None
  if kind == 'wae_gan':
    mu = jnp.asarray(np.random.default_rng(0).normal(size=(4096, 8)), jnp.float32)
    critic, _ = init_critic(config, jax.random.key(3))
  z, pen, met = regularised_code(config, mu, logvar, jax.random.key(1), critic)
  key = _REG_KEY[kind]
  if kind == 'vae':   # z ~ N(mu, 0.5^2); KL(N(1, 0.25) || N(0, 1)) = 2 x 0.5 (0.25 + 1 - 1 - ln 0.25)
    np.testing.assert_allclose(np.std(np.asarray(z), 0), 0.5, rtol=0.05)
    np.testing.assert_allclose(float(met['loss_kl']), 0.25 + 1 + np.log(4.0) - 1, rtol=1e-5)
  else:
    np.testing.assert_array_equal(z, mu)
  if kind == 'wae_gan':  # the encoder's WGAN term is -mean D(E(x)), D in (0, 1)
    d = LatentCritic().apply({'params': critic}, mu)
    np.testing.assert_allclose(float(met[key]), -float(jnp.mean(d)), rtol=1e-6)
    assert -1.0 < float(met[key]) < 0.0
  np.testing.assert_allclose(float(pen), 0.5 * float(met[key]), rtol=1e-6)
  method = LandscapeMotion(config, num_train=4)
  batch = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                      batch_size=config.batch_size)[0]
  state = method.init(jax.random.key(0), batch)
  _, metrics = jax.jit(method.train_step)(state, batch, jax.random.key(2))
  assert np.isfinite(float(metrics[key]))
  np.testing.assert_allclose(float(metrics['loss']), float(metrics['loss_p'] + metrics['loss_tv']
                                                           + 0.5 * metrics[key]), rtol=1e-5)


def _wae_gan_motion(data_dir, lam=0.5):
  """Smoke motion method with latent_reg='wae_gan', its first batch and initial state."""
  import jax
  from conftest import smoke_config
  from animgen import input_pipeline
  from animgen.methods.landscape_motion import LandscapeMotion
  config = smoke_config(data_dir, **{'model.latent_reg': 'wae_gan', 'loss.lambda_latent': lam})
  method = LandscapeMotion(config, num_train=4)
  batch = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                      batch_size=config.batch_size)[0]
  return config, method, batch, method.init(jax.random.key(0), batch)


def test_latent_critic_has_the_official_shapes_and_sigmoid_output(data_dir):
  import jax
  from conftest import smoke_config
  from animgen.methods.landscape_common import LatentCritic, init_critic
  config = smoke_config(data_dir, **{'model.latent_reg': 'wae_gan'})
  params, opt = init_critic(config, jax.random.key(0))
  shapes = {f'{k}/{n}': tuple(v.shape) for k, layer in params.items() for n, v in layer.items()}
  assert shapes == {'Dense_0/kernel': (8, 128), 'Dense_0/bias': (128,),
                    'Dense_1/kernel': (128, 1), 'Dense_1/bias': (1,)}
  assert sum(np.size(x) for x in jax.tree_util.tree_leaves(params)) == 8 * 128 + 128 + 128 + 1
  z = np.random.default_rng(0).normal(scale=3.0, size=(64, 8)).astype(np.float32)
  out = np.asarray(LatentCritic().apply({'params': params}, jnp.asarray(z)))
  p = jax.tree_util.tree_map(np.asarray, params)
  h = np.maximum(z @ p['Dense_0']['kernel'] + p['Dense_0']['bias'], 0.0)       # Linear, ReLU
  want = 1.0 / (1.0 + np.exp(-(h @ p['Dense_1']['kernel'] + p['Dense_1']['bias'])))  # Sigmoid
  assert out.shape == (64, 1) and np.all((out > 0) & (out < 1))
  np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
  # PyTorch nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); Adam state starts at 0
  assert np.abs(p['Dense_0']['kernel']).max() <= 8 ** -0.5
  assert np.abs(p['Dense_1']['kernel']).max() <= 128 ** -0.5
  assert int(opt[0].count) == 0


def test_wae_gan_critic_step_clips_weights_and_uses_a_tenth_of_the_lr(data_dir):
  import jax
  from animgen.methods.landscape_common import LatentCritic, critic_update
  config, method, batch, state = _wae_gan_motion(data_dir)
  step = jax.jit(method.train_step)
  leaves = lambda t: [np.asarray(x) for x in jax.tree_util.tree_leaves(t)]
  # from weights far outside [-0.01, 0.01]: after one step every weight is clipped into it
  big = jax.tree_util.tree_map(lambda w: 10.0 * w + 0.05 * jnp.sign(w), state.critic)
  assert all(np.abs(w).max() > 0.01 for w in leaves(big))
  new, metrics = step(state.replace(critic=big), batch, jax.random.key(2))
  for w in leaves(new.critic):
    assert np.abs(w).max() <= 0.01 and np.isclose(np.abs(w).max(), 0.01)
  assert np.isfinite(float(metrics['critic_gap']))
  # from weights inside the range (no clipping): Adam's first step moves each weight by the
  # learning rate (|m_hat / sqrt(v_hat)| = 1), which must be 0.1 x optim.learning_rate
  rng = np.random.default_rng(0)
  small = jax.tree_util.tree_map(
      lambda w: jnp.asarray(rng.uniform(-0.005, 0.005, w.shape), jnp.float32), state.critic)
  new, _ = step(state.replace(critic=small), batch, jax.random.key(2))
  delta = max(np.abs(a - b).max() for a, b in zip(leaves(new.critic), leaves(small)))
  np.testing.assert_allclose(delta, 0.1 * config.optim.learning_rate, rtol=1e-3)
  assert int(jax.tree_util.tree_leaves(new.critic_opt_state)[0]) == 1   # one critic step
  # the critic step raises D(prior) - D(codes) for codes far from N(0, I)
  codes = jnp.asarray(rng.normal(2.0, 1.0, (64, 8)), jnp.float32)
  prior = jax.random.normal(jax.random.key(5), codes.shape, jnp.float32)  # as critic_update draws
  gap = lambda c: float(jnp.mean(LatentCritic().apply({'params': c}, prior))
                        - jnp.mean(LatentCritic().apply({'params': c}, codes)))
  after, met = critic_update(config, state.replace(critic=small), codes, jax.random.key(5))
  np.testing.assert_allclose(float(met['critic_gap']), gap(small), rtol=1e-5)
  assert gap(after.critic) > gap(small)
  # train.restart_at re-initialises the critic and its Adam state with P^M and E^M; the jitted
  # step's lax.cond accepts the restart branch (traced only, not compiled)
  from animgen.methods.landscape_motion import LandscapeMotion
  config.train.restart_at = (1,)
  shapes = jax.eval_shape(LandscapeMotion(config, num_train=4).train_step, new, batch,
                          jax.random.key(2))[0]
  assert jax.tree_util.tree_structure(shapes) == jax.tree_util.tree_structure(new)
  restarted = method._restart(new)
  fresh = method.init(jax.random.key(config.seed + 1), None)
  for a, b in zip(leaves((restarted.critic, restarted.critic_opt_state)),
                  leaves((fresh.critic, fresh.critic_opt_state))):
    np.testing.assert_array_equal(a, b)


def test_wae_gan_critic_term_reaches_the_encoder_only(data_dir):
  """Same state, batch and key with lambda_latent 0.5 and 0: the predictor's update is the same,
  E^M's differs, and it raises D(E^M(x)) (codes pushed towards what the critic calls prior)."""
  import jax
  from animgen.methods.landscape_common import LatentCritic, encode_dist
  outs = {}
  for lam in (0.5, 0.0):
    config, method, batch, state = _wae_gan_motion(data_dir, lam)
    fields = jax.random.normal(jax.random.key(7), state.motion_fields.shape) * 0.02
    state = state.replace(motion_fields=fields)  # informative encoder inputs, not all zero
    new, _ = jax.jit(method.train_step)(state, batch, jax.random.key(2))
    field = fields[batch['clip_id']]
    mu = encode_dist(method.encoder, config.model.encoder_size, new.params, state.batch_stats,
                     field, True)[0]
    outs[lam] = (new.params, float(jnp.mean(LatentCritic().apply({'params': state.critic}, mu))))
  flat = lambda p: [np.asarray(x) for x in jax.tree_util.tree_leaves(p)]
  for a, b in zip(flat(outs[0.5][0]['predictor']), flat(outs[0.0][0]['predictor'])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  enc = [(a, b) for a, b in zip(flat(outs[0.5][0]['encoder']), flat(outs[0.0][0]['encoder']))]
  changed = sum(int(np.sum(~np.isclose(a, b, rtol=0, atol=1e-6))) for a, b in enc)
  assert changed > 0.05 * sum(a.size for a, _ in enc)
  assert outs[0.5][1] > outs[0.0][1]


@pytest.mark.parametrize('module', ['landscape', 'landscape_appearance'])
def test_wae_gan_smoke_training_checkpoints_the_critic(data_dir, tmp_path, module):
  """Jitted wae_gan train steps with finite losses, an orbax checkpoint of the whole state, and
  trainer.restore_for_eval bringing the critic and its Adam state back."""
  import jax
  from conftest import smoke_config
  from animgen import checkpoint, input_pipeline, trainer
  from animgen.methods import get_method
  config = smoke_config(data_dir, module,
                        **{'model.latent_reg': 'wae_gan', 'loss.lambda_latent': 0.5})
  method = get_method(config.method)(config, num_train=4)
  ds = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                   batch_size=config.batch_size)
  step = jax.jit(method.train_step)
  state = method.init(jax.random.key(0), None)
  for i in range(2):
    state, metrics = step(state, ds[i], jax.random.key(10 + i))
    assert np.isfinite(float(metrics['loss'])) and np.isfinite(float(metrics['critic_gap']))
  assert all(np.abs(np.asarray(w)).max() <= 0.01 for w in jax.tree_util.tree_leaves(state.critic))
  ckpt = checkpoint.Checkpointer(str(tmp_path), keep=1)
  ckpt.save(2, checkpoint.strip_frozen(method, state), force=True)
  ckpt.close()
  _, _, restored, at = trainer.restore_for_eval(config, str(tmp_path))
  assert at == 2 and type(restored) is type(state)
  for a, b in zip(jax.tree_util.tree_leaves((state.critic, state.critic_opt_state)),
                  jax.tree_util.tree_leaves((restored.critic, restored.critic_opt_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert int(jax.tree_util.tree_leaves(restored.critic_opt_state)[0]) == 2  # two critic steps


def test_restart_freeze_and_lr_drop_against_plain_steps(data_dir):
  """train.restart_at (R,) with train.restart_freeze F and optim.lr_drop_at (D,), R = 1, F = 1,
  D = 2, against a reference run with the same restart only (restarting twice is restarting
  once: _restart takes fresh networks from a fixed key). The step that starts at R runs on
  fresh networks and Adam moments with the fields kept, and keeps the fields fixed for steps
  R .. R + F - 1; every update from step D on is lr_decay times the reference one, also after
  the restart has reset Adam's own step count."""
  import jax
  from conftest import smoke_config
  from animgen import input_pipeline
  from animgen.methods.landscape_motion import LandscapeMotion
  restart = {'train.restart_at': (1,)}
  config = smoke_config(data_dir, **restart, **{'train.restart_freeze': 1,
                                                'optim.lr_drop_at': (2,), 'optim.lr_decay': 0.1})
  method, ref = LandscapeMotion(config, 4), LandscapeMotion(smoke_config(data_dir, **restart), 4)
  ds = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                   batch_size=config.batch_size)
  step, ref_step = jax.jit(method.train_step), jax.jit(ref.train_step)
  leaves = lambda s: jax.tree_util.tree_leaves(s.params)
  states = [method.init(jax.random.key(0), None)]
  for i in range(3):
    new, _ = step(states[-1], ds[i], None)
    want, _ = ref_step(states[-1], ds[i], None)
    if i < 2:   # step 0 plain, step 1 a plain step from the restarted state: no drop before D
      for a, b in zip(leaves(new), leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    else:       # step 2 = D: lr_decay times the reference update
      flat = lambda s: np.concatenate([np.ravel(x) for x in leaves(s)])
      moved, plain = flat(new) - flat(states[-1]), flat(want) - flat(states[-1])
      assert np.abs(plain).max() > 1e-4  # Adam's second step after the restart moves every weight
      np.testing.assert_allclose(moved, 0.1 * plain, rtol=2e-3, atol=1e-7)
    states.append(new)
  # the restart happened: after step 1 every weight is within Adam's first step (~lr) of the
  # fresh networks, which the weights before it are far from
  fresh = leaves(method._restart(states[1]))
  lr = config.optim.learning_rate
  gap = lambda s: max(float(np.abs(a - b).max()) for a, b in zip(leaves(s), fresh))
  assert gap(states[2]) <= 1.01 * lr < 0.1 * gap(states[1]), (gap(states[2]), gap(states[1]))
  fields = [s.motion_fields for s in states]
  assert not np.array_equal(fields[1], fields[0])     # step 0 writes the fields
  np.testing.assert_array_equal(fields[2], fields[1])  # step R = 1 keeps them (F = 1)
  assert not np.array_equal(fields[3], fields[2])     # step 2 writes them again
