"""Fast conv kernels (ops/conv.py): equal to the plain convolution, numerical gradients (order 2,
float64), the Winograd tile choice, and the backend switch."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from animgen.ops import conv


@pytest.fixture
def x64():
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', False)


def _assert_equals_reference(fn, ref, args, rng, numerical=True):
  """fn(*args) and its VJP equal ref's (float64); then order-2 numerical gradients of fn."""
  y, vjp = jax.vjp(fn, *args)
  y_ref, vjp_ref = jax.vjp(ref, *args)
  np.testing.assert_allclose(y, y_ref, atol=1e-12)
  g = jnp.asarray(rng.normal(size=y_ref.shape))
  for a, b in zip(vjp(g), vjp_ref(g)):
    np.testing.assert_allclose(a, b, atol=1e-11)
  if numerical:
    check_grads(fn, args, order=2, modes=['rev'])


def _upsample_reflect(x, pad):
  """Nearest x2 upsample, then reflection padding (the reference the rewrites must equal)."""
  x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')


def _upsample_zeros(x):
  """Nearest x2 upsample, then zero padding by 1 (DeepGIFs' decoder blocks)."""
  x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def test_fast_kernels_are_on_for_cpu_only():
  assert conv.fast_kernels_enabled('cpu')
  assert not conv.fast_kernels_enabled('gpu')
  assert not conv.fast_kernels_enabled('tpu')
  assert conv.fast_kernels_enabled() == (jax.default_backend() == 'cpu')


def test_plain_conv_has_numerical_gradients(x64):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(1, 5, 6, 2)))
  kernel = jnp.asarray(rng.normal(size=(3, 3, 2, 3)))
  check_grads(lambda x, k: conv.conv2d(x, k, 2), (x, kernel), order=2, modes=['fwd', 'rev'])


_WINOGRAD_SHAPES = [(2, 8, 8, 3), (1, 9, 7, 4), (1, 13, 11, 2)]


@pytest.mark.parametrize('m,k', [(2, 2), (2, 3), (4, 3)])
@pytest.mark.parametrize('shape', _WINOGRAD_SHAPES)
def test_winograd_conv_is_exact_with_numerical_gradients(x64, m, k, shape):
  """Value and VJP equal the plain conv for every tile and shape; order-2 numerical gradients
  (the costly part) once per tile, each tile on another shape."""
  rng = np.random.default_rng(k)
  x = jnp.asarray(rng.normal(size=shape))
  kernel = jnp.asarray(rng.normal(size=(k, k, shape[-1], 5)))
  fn = jax.jit(lambda x, kernel: conv.conv_winograd(x, kernel, m))
  numerical = _WINOGRAD_SHAPES.index(shape) == [(2, 2), (2, 3), (4, 3)].index((m, k))
  _assert_equals_reference(fn, conv.conv2d, (x, kernel), rng, numerical)


# (kernel shape, stride, the custom VJP conv2d_fast must take, or None for a plain dot)
_FAST_CASES = {
    '1x1_dot': ((1, 1, 3, 4), 1, None),
    'shift_sum': ((2, 2, 8, 2), 1, '_shift_sum'),
    'shift_sum_fewer_outputs': ((3, 3, 8, 6), 1, '_shift_sum'),   # 6 < 8 < 6 x 9 (last deconv)
    'gemm_5x5': ((5, 5, 2, 3), 1, '_conv2d_gemm'),
    'gemm_stride2': ((3, 3, 2, 3), 2, '_conv2d_gemm'),
    'winograd_4x4_3x3': ((3, 3, 2, 1), 1, '_conv_winograd_tiled'),  # winograd_tile picks m = 4
}


@pytest.mark.parametrize('case', sorted(_FAST_CASES))
def test_conv2d_fast_paths_are_exact_with_numerical_gradients(x64, monkeypatch, case):
  kshape, stride, kernel_name = _FAST_CASES[case]
  if kernel_name == '_conv_winograd_tiled':
    monkeypatch.setattr(conv, 'WINOGRAD_MIN_CHANNELS', 1)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(1, 7, 6, kshape[2])))
  kernel = jnp.asarray(rng.normal(size=kshape))
  fn = lambda x, kernel: conv.conv2d_fast(x, kernel, stride)
  jaxpr = str(jax.make_jaxpr(fn)(x, kernel))
  assert 'conv_general_dilated' not in jaxpr
  if kernel_name:
    assert f'name={kernel_name}' in jaxpr
  if case == 'winograd_4x4_3x3':
    assert conv.winograd_tile(3, x.shape, 1) == 4 and 'f64[36,' in jaxpr
  # conv_winograd's test above checks the Winograd kernels' numerical gradients
  _assert_equals_reference(fn, lambda x, kernel: conv.conv2d(x, kernel, stride), (x, kernel), rng,
                           numerical=kernel_name != '_conv_winograd_tiled')


def test_conv2d_fast_takes_winograd_at_paper_widths():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(1, 10, 10, 128)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 128, 128)) / 30, jnp.float32)
  jaxpr = str(jax.make_jaxpr(conv.conv2d_fast)(x, kernel))
  assert 'f32[16,' in jaxpr and 'conv_general_dilated' not in jaxpr   # 16 Winograd products
  np.testing.assert_allclose(conv.conv2d_fast(x, kernel), conv.conv2d(x, kernel),
                             atol=2e-5, rtol=1e-4)


def test_winograd_takes_4x4_tiles_where_the_tiles_outweigh_the_kernel():
  # the paper-size res blocks (512 channels at 32x32 + padding): F(4x4) from batch 8, F(2x2) at 1
  assert conv.winograd_tile(3, (8, 34, 34, 512), 512) == 4
  assert conv.winograd_tile(3, (1, 34, 34, 512), 512) == 2
  assert conv.winograd_tile(2, (8, 34, 34, 1024), 1024) == 2     # F(m, 2x2) stays at m = 2
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(8, 20, 20, 128)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 128, 128)) / 30, jnp.float32)
  assert conv.winograd_tile(3, x.shape, 128) == 4
  jaxpr = str(jax.make_jaxpr(conv.conv2d_fast)(x, kernel))
  assert 'f32[36,' in jaxpr and 'conv_general_dilated' not in jaxpr   # 36 Winograd products
  np.testing.assert_allclose(conv.conv2d_fast(x, kernel), conv.conv2d(x, kernel),
                             atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize('padding', ['reflect', 'zeros'])
def test_upsample_conv_rewrite_is_exact(padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 7, 4)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(3, 3, 4, 6)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(6,)), jnp.float32)
  up = _upsample_reflect(x, 1) if padding == 'reflect' else _upsample_zeros(x)
  ref = conv.conv2d(up, k) + b
  np.testing.assert_allclose(conv.upsample2_conv3x3(x, k, b, padding), ref, atol=1e-4)


@pytest.mark.parametrize('padding', ['reflect', 'zeros'])
def test_upsample_conv_rewrite_has_numerical_gradients(x64, padding):
  rng = np.random.default_rng(2)
  args = (jnp.asarray(rng.normal(size=(1, 3, 4, 2))), jnp.asarray(rng.normal(size=(3, 3, 2, 3))),
          jnp.asarray(rng.normal(size=(3,))))
  up = (lambda x: _upsample_reflect(x, 1)) if padding == 'reflect' else _upsample_zeros
  ref = lambda x, k, b: conv.conv2d(up(x), k) + b
  fn = lambda x, k, b: conv.upsample2_conv3x3(x, k, b, padding)
  _assert_equals_reference(fn, ref, args, rng)


def test_upsample_conv_small_out_is_exact_with_numerical_gradients(x64):
  # the final up-convolution's shape: few outputs (Cout k^2 <= Cin), so per-tap 1x1 products
  k, pad = 5, 2
  rng = np.random.default_rng(k)
  args = (jnp.asarray(rng.normal(size=(1, 3, 4, 2 * k * k))),
          jnp.asarray(rng.normal(size=(k, k, 2 * k * k, 2))), jnp.asarray(rng.normal(size=(2,))))
  fn = lambda x, kernel, b: conv.upsample_conv_reflect_small_out(x, kernel, b, pad)
  ref = lambda x, kernel, b: conv.conv2d(_upsample_reflect(x, pad), kernel) + b
  _assert_equals_reference(fn, ref, args, rng)


@pytest.mark.parametrize('k,shape', [(5, (2, 8, 8, 3)), (5, (1, 4, 6, 2)), (3, (1, 6, 4, 2)),
                                     (7, (1, 8, 6, 2)), (5, (1, 5, 6, 2))])
def test_stride2_same_conv_input_gradient_by_phases_is_exact(x64, k, shape):
  # the phase-conv input gradient on even sizes (Image2GIF's 5x5/2 stacks), XLA's on odd ones
  rng = np.random.default_rng(k)
  args = (jnp.asarray(rng.normal(size=shape)), jnp.asarray(rng.normal(size=(k, k, shape[-1], 3))))
  ref = lambda x, kernel: conv.conv2d(x, kernel, 2, 'SAME')
  _assert_equals_reference(conv.conv2d_s2_same, ref, args, rng, numerical=shape[1] == 8)
