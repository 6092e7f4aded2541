"""Sync-DRAW's Gaussian filterbank attention (ops/filterbank.py): gradients, exact patch reads,
write after read, the Gaussian's width and the parameter ranges."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from animgen.ops import filterbank as fb


@pytest.fixture
def x64():
  old = jax.config.jax_enable_x64
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', old)


def _raw(a, b, k, g_p, g_q, delta, sigma2, beta):
  """Raw linear outputs that give these attention parameters (inverse of attention_params)."""
  return np.array([np.arctanh(2 * g_p / (a + 1) - 1), np.arctanh(2 * g_q / (b + 1) - 1),
                   np.log(sigma2), np.log(delta * (k - 1) / (max(a, b) - 1)), np.log(beta)])


def test_read_and_write_gradients_order2(x64):
  rng = np.random.default_rng(0)
  a, b, k = 6, 5, 3
  raw = jnp.asarray(rng.normal(size=(5,)) * 0.5)
  x = jnp.asarray(rng.random((a, b)))
  w = jnp.asarray(rng.normal(size=(k, k)))

  def read_write(raw, x, w):
    p = fb.attention_params(raw, a, b, k)
    fp, fq = fb.filterbanks(p, a, b, k)
    return fb.read(x, fp, fq, p['beta']), fb.write(w, fp, fq, p['beta'])

  check_grads(read_write, (raw, x, w), order=2, modes=('rev',))


def test_cuboid_read_and_write_gradients_order2(x64):
  rng = np.random.default_rng(1)
  n, a, b, k = 4, 5, 5, 2
  raw = jnp.asarray(rng.normal(size=(fb.NUM_CUBOID_PARAMS,)) * 0.5)
  x = jnp.asarray(rng.random((n, a, b)))
  w = jnp.asarray(rng.normal(size=(k, k, k)))

  def banks(raw):
    p = fb.cuboid_params(raw, n, a, b, k)
    return (fb.temporal_filterbank(p, n, k),) + fb.filterbanks(p, a, b, k) + (p['beta'],)

  def read_write(r, x, w):
    banks_ = banks(r)
    return fb.read_cuboid(x, *banks_), fb.write_cuboid(w, *banks_)

  check_grads(read_write, (raw, x, w), order=2, modes=('rev',))


def test_sharp_filterbank_reads_the_known_patch_and_write_puts_it_back():
  a, b, k = 12, 10, 4
  x = np.random.default_rng(2).random((a, b)).astype(np.float32)
  # centres 3..6 (rows) and 5..8 (columns), 1-based, stride 1, sigma -> 0, beta 2.5
  raw = _raw(a, b, k, g_p=4.5, g_q=6.5, delta=1.0, sigma2=1e-3, beta=2.5)
  p = fb.attention_params(jnp.asarray(raw, jnp.float32), a, b, k)
  np.testing.assert_allclose(fb.centres(p['gp'], p['delta'], k), [3, 4, 5, 6], atol=1e-4)
  fp, fq = fb.filterbanks(p, a, b, k)
  glimpse = fb.read(jnp.asarray(x), fp, fq, p['beta'])
  np.testing.assert_allclose(glimpse, 2.5 * x[2:6, 4:8], atol=1e-4)       # Eq. 5
  back = fb.write(glimpse, fp, fq, p['beta'])                              # Eq. 10: beta cancels
  expect = np.zeros_like(x)
  expect[2:6, 4:8] = x[2:6, 4:8]
  np.testing.assert_allclose(back, expect, atol=1e-4)


def test_cuboid_sharp_filterbank_reads_a_sub_volume():
  n, a, b, k = 6, 8, 8, 2
  x = np.random.default_rng(3).random((n, a, b)).astype(np.float32)
  raw = np.concatenate([_raw(a, b, k, 3.5, 5.5, 1.0, 1e-3, 1.0),
                        [np.arctanh(2 * 4.5 / (n + 1) - 1), np.log(1e-3),
                         np.log(1.0 * (k - 1) / (n - 1))]])
  p = fb.cuboid_params(jnp.asarray(raw, jnp.float32), n, a, b, k)
  fz = fb.temporal_filterbank(p, n, k)
  assert fz.shape == (k, n)                                                # F_Z is K x N
  out = fb.read_cuboid(jnp.asarray(x), fz, *fb.filterbanks(p, a, b, k), p['beta'])
  np.testing.assert_allclose(out, x[3:5, 2:4, 4:6], atol=1e-4)


def test_gaussian_has_standard_deviation_sigma_and_centred_grid():
  # exp(-(a - mu)^2 / (2 sigma^2)): the row, as a distribution over a, has std sigma. The public
  # code's exp(-((a - mu) / (2 sigma^2))^2) would give std sqrt(2) sigma^2 (= 12.7 here).
  size, k, sigma = 101, 5, 3.0
  f = fb.filterbank(jnp.array(51.0), jnp.array(10.0), jnp.array(sigma ** 2), size, k)
  np.testing.assert_allclose(f.sum(-1), 1.0, rtol=1e-6)
  pos = np.arange(1, size + 1)
  mean = (f * pos).sum(-1)
  std = np.sqrt((f * (pos - mean[:, None]) ** 2).sum(-1))
  np.testing.assert_allclose(mean, [31, 41, 51, 61, 71], atol=1e-3)       # centred on g = 51
  np.testing.assert_allclose(std, sigma, rtol=1e-3)


def test_attention_parameters_map_into_the_frame():
  a, b, k = 64, 48, 8
  raw = jnp.asarray(np.random.default_rng(4).normal(size=(1000, 5)) * 20.0, jnp.float32)
  p = fb.attention_params(raw, a, b, k)
  assert float(p['gp'].min()) >= 0 and float(p['gp'].max()) <= a + 1
  assert float(p['gq'].min()) >= 0 and float(p['gq'].max()) <= b + 1
  for key in ('sigma2', 'delta', 'beta'):
    assert float(p[key].min()) > 0, key
  zero = fb.attention_params(jnp.zeros(5), a, b, k)
  assert float(zero['gp']) == pytest.approx((a + 1) / 2)                 # g~ = 0: frame centre
  # delta~ = 1 spreads the K centres over the whole frame: first 1, last max(A, B)
  np.testing.assert_allclose(np.asarray(fb.centres(zero['gp'], zero['delta'], k))[[0, -1]],
                             [(a + 1) / 2 - (a - 1) / 2, (a + 1) / 2 + (a - 1) / 2], rtol=1e-6)
