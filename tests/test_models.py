"""Network shapes and parameter counts against the official networks, and exact fast paths."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from animgen.models import layers
from animgen.models.landscape import Encoder, Predictor, count_params


def test_motion_predictor_matches_official_shape_and_size():
  p = Predictor()
  x, z = jnp.zeros((2, 256, 256, 3)), jnp.zeros((2, 8))
  variables = jax.eval_shape(p.init, jax.random.key(0), x, z)
  assert count_params(variables['params']) == 28_138_882  # official ConditionalMotionNet
  out = jax.eval_shape(p.apply, variables, x, z)
  assert out.shape == (2, 256, 256, 2)


def test_encoders_match_official_size():
  e = Encoder()
  v = jax.eval_shape(e.init, jax.random.key(0), jnp.zeros((1, 128, 128, 2)))
  assert count_params(v['params']) == 1_344_592          # motion encoder (2-channel flow)
  v = jax.eval_shape(e.init, jax.random.key(0), jnp.zeros((1, 128, 128, 3)))
  assert count_params(v['params']) == 1_345_616          # appearance encoder (RGB)
  mu, logvar = jax.eval_shape(e.apply, v, jnp.zeros((4, 128, 128, 3)))
  assert mu.shape == logvar.shape == (4, 8)


def test_motion_output_is_bounded_by_beta():
  p = Predictor(widths=(8, 16, 32), num_res_blocks=1)
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3)) * 3
  z = jax.random.normal(jax.random.key(2), (2, 8)) * 3
  v = p.init(jax.random.key(0), x, z)
  out = p.apply(v, x, z)
  assert float(jnp.abs(out).max()) <= 1 / 64 + 1e-7
  assert float(jnp.abs(out).max()) > 1e-5


def test_fast_paths_equal_plain_convs():
  x = jax.random.normal(jax.random.key(1), (2, 32, 24, 3))
  z = jax.random.normal(jax.random.key(2), (2, 8))
  fast = Predictor(widths=(8, 16, 32), num_res_blocks=1, beta=None)
  slow = Predictor(widths=(8, 16, 32), num_res_blocks=1, beta=None, fast=False)
  v = fast.init(jax.random.key(0), x, z)
  np.testing.assert_allclose(fast.apply(v, x, z), slow.apply(v, x, z), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize('winograd', [False, True])
def test_fast_paths_have_equal_gradients(monkeypatch, winograd):
  # winograd: every conv with a 2x2 / 3x3 stride-1 kernel takes the Winograd path (at the
  # paper's widths the res blocks and up-convolutions do; these test widths are below the bar).
  monkeypatch.setattr(layers, 'WINOGRAD_MIN_CHANNELS', 1 if winograd else 10**9)
  jax.config.update('jax_enable_x64', True)  # float32 is too coarse for biases before a norm
  try:
    x = jax.random.normal(jax.random.key(1), (2, 32, 24, 3), jnp.float64)
    z = jax.random.normal(jax.random.key(2), (2, 8), jnp.float64)
    kw = dict(widths=(8, 16, 32), num_res_blocks=1, beta=None, dtype=jnp.float64)
    fast, slow = Predictor(**kw), Predictor(fast=False, **kw)
    v = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), fast.init(jax.random.key(0), x, z))
    g_fast = jax.grad(lambda v: jnp.sum(fast.apply(v, x, z) ** 2))(v)
    g_slow = jax.grad(lambda v: jnp.sum(slow.apply(v, x, z) ** 2))(v)
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_slow)):
      np.testing.assert_allclose(a, b, atol=1e-9, rtol=1e-7)
  finally:
    jax.config.update('jax_enable_x64', False)


@pytest.mark.parametrize('m,k', [(2, 2), (2, 3), (4, 3)])
@pytest.mark.parametrize('shape', [(2, 8, 8, 3), (1, 9, 7, 4), (1, 13, 11, 2)])
def test_winograd_conv_is_exact_with_numerical_gradients(m, k, shape):
  jax.config.update('jax_enable_x64', True)
  try:
    rng = np.random.default_rng(k)
    x = jnp.asarray(rng.normal(size=shape))
    kernel = jnp.asarray(rng.normal(size=(k, k, shape[-1], 5)))
    conv = lambda x, kernel: layers.conv_winograd(x, kernel, m)
    y = conv(x, kernel)
    ref, vjp_ref = jax.vjp(layers.conv2d, x, kernel)
    np.testing.assert_allclose(y, ref, atol=1e-12)
    g = jnp.asarray(rng.normal(size=ref.shape))
    for a, b in zip(jax.vjp(conv, x, kernel)[1](g), vjp_ref(g)):
      np.testing.assert_allclose(a, b, atol=1e-11)
    check_grads(conv, (x, kernel), order=2, modes=['rev'])
  finally:
    jax.config.update('jax_enable_x64', False)


def test_conv2d_fast_takes_winograd_at_paper_widths():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(1, 10, 10, 128)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 128, 128)) / 30, jnp.float32)
  jaxpr = str(jax.make_jaxpr(layers.conv2d_fast)(x, kernel))
  assert 'f32[16,' in jaxpr and 'conv_general_dilated' not in jaxpr   # 16 Winograd products
  np.testing.assert_allclose(layers.conv2d_fast(x, kernel), layers.conv2d(x, kernel),
                             atol=2e-5, rtol=1e-4)


def test_winograd_takes_4x4_tiles_where_the_tiles_outweigh_the_kernel():
  # the paper-size res blocks (512 channels at 32x32 + padding): F(4x4) from batch 8, F(2x2) at 1
  assert layers.winograd_tile(3, (8, 34, 34, 512), 512) == 4
  assert layers.winograd_tile(3, (1, 34, 34, 512), 512) == 2
  assert layers.winograd_tile(2, (8, 34, 34, 1024), 1024) == 2     # F(m, 2x2) stays at m = 2
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(8, 20, 20, 128)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 128, 128)) / 30, jnp.float32)
  assert layers.winograd_tile(3, x.shape, 128) == 4
  jaxpr = str(jax.make_jaxpr(layers.conv2d_fast)(x, kernel))
  assert 'f32[36,' in jaxpr and 'conv_general_dilated' not in jaxpr   # 36 Winograd products
  np.testing.assert_allclose(layers.conv2d_fast(x, kernel), layers.conv2d(x, kernel),
                             atol=5e-5, rtol=1e-4)


def test_upsample_conv_rewrite_is_exact():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 7, 4)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(3, 3, 4, 6)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(6,)), jnp.float32)
  ref = layers.conv2d(layers.reflect_pad(layers.upsample_nearest(x), 1), k) + b
  np.testing.assert_allclose(layers.upsample2_conv3x3_reflect(x, k, b), ref, atol=1e-4)


def test_instance_norm_normalises_each_sample_and_channel():
  norm = layers.InstanceNorm()
  x = jax.random.normal(jax.random.key(0), (3, 8, 8, 5)) * 4 + 2
  v = norm.init(jax.random.key(1), x)
  v = {'params': {'scale': jnp.ones(5), 'bias': jnp.zeros(5)}}
  y = norm.apply(v, x)
  np.testing.assert_allclose(y.mean((1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(y.std((1, 2)), 1, atol=1e-4)


def test_encoder_batchnorm_train_vs_eval():
  e = Encoder(widths=(8, 8, 8, 8))
  x = jax.random.normal(jax.random.key(0), (4, 32, 32, 2)) * 5 + 3
  v = e.init(jax.random.key(1), x)
  mu_eval, _ = e.apply(v, x, train=False)
  (mu_train, _), upd = e.apply(v, x, train=True, mutable=['batch_stats'])
  assert not np.allclose(mu_eval, mu_train)  # batch statistics vs initial running averages
  before = jax.tree_util.tree_leaves(v['batch_stats'])
  after = jax.tree_util.tree_leaves(upd['batch_stats'])
  assert any(not np.allclose(a, b) for a, b in zip(before, after))  # running stats moved
