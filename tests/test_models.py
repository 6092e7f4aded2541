"""Network shapes and parameter counts against the official networks, the exact fast paths
of the Conv layer (kernels: tests/test_conv.py) and their switch per backend."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animgen.models import image2gif, layers
from animgen.models.landscape import Encoder, Predictor, count_params
from animgen.ops import conv


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
  monkeypatch.setattr(conv, 'WINOGRAD_MIN_CHANNELS', 1 if winograd else 10**9)
  jax.config.update('jax_enable_x64', True)  # float32 is too coarse for biases before a norm
  try:
    x = jax.random.normal(jax.random.key(1), (2, 32, 24, 3), jnp.float64)
    z = jax.random.normal(jax.random.key(2), (2, 8), jnp.float64)
    kw = dict(widths=(8, 16, 32), num_res_blocks=1, beta=None, dtype=jnp.float64)
    fast, slow = Predictor(**kw), Predictor(fast=False, **kw)
    v = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), fast.init(jax.random.key(0), x, z))
    g_fast = jax.jit(jax.grad(lambda v: jnp.sum(fast.apply(v, x, z) ** 2)))(v)
    g_slow = jax.jit(jax.grad(lambda v: jnp.sum(slow.apply(v, x, z) ** 2)))(v)
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_slow)):
      np.testing.assert_allclose(a, b, atol=1e-9, rtol=1e-7)
  finally:
    jax.config.update('jax_enable_x64', False)


def _custom_vjp_names(fn, *args):
  """Names of the custom-VJP kernels in fn's jaxpr, and whether it has an XLA convolution."""
  jaxpr = str(jax.make_jaxpr(fn)(*args))
  return set(re.findall(r'custom_vjp_call\[\s*name=(\w+)', jaxpr)), 'conv_general_dilated' in jaxpr


def test_fast_paths_are_off_where_the_backend_is_not_cpu(monkeypatch):
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  z = jax.random.normal(jax.random.key(2), (2, 8))
  fast = Predictor(widths=(8, 16, 32), num_res_blocks=1, beta=None)
  plain = Predictor(widths=(8, 16, 32), num_res_blocks=1, beta=None, fast=False)
  v = fast.init(jax.random.key(0), x, z)
  monkeypatch.setattr(jax, 'default_backend', lambda: 'cpu')
  names, has_conv = _custom_vjp_names(fast.apply, v, x, z)
  assert '_conv2d_gemm' in names and not has_conv     # CPU: the kernels of ops/conv.py
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  names, has_conv = _custom_vjp_names(fast.apply, v, x, z)
  assert not names and has_conv                      # GPU: XLA's convolution only
  # the same numbers as the plain convs (which test_fast_paths_equal_plain_convs compares to
  # the CPU kernels' numbers)
  y_gpu = jax.jit(lambda *a: fast.apply(*a))(v, x, z)
  np.testing.assert_array_equal(y_gpu, jax.jit(plain.apply)(v, x, z))


def test_deconv_takes_the_plain_conv_where_the_backend_is_not_cpu(monkeypatch):
  d = image2gif.Deconv(4)
  x = jax.random.normal(jax.random.key(3), (2, 4, 4, 8))
  v = d.init(jax.random.key(0), x)
  monkeypatch.setattr(jax, 'default_backend', lambda: 'cpu')
  assert _custom_vjp_names(d.apply, v, x) == ({'_conv2d_gemm'}, False)
  y_cpu = d.apply(v, x)
  monkeypatch.setattr(jax, 'default_backend', lambda: 'tpu')
  assert _custom_vjp_names(d.apply, v, x) == (set(), True)
  np.testing.assert_allclose(d.apply(v, x), y_cpu, atol=1e-5, rtol=1e-5)


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
