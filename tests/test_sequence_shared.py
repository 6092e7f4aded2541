"""Pieces shared by the sequence methods: ConvLSTM / KL / GAN gradients, metrics, digits."""
import gzip
import os

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest

from animgen.datasets import digits
from animgen.errors import InputError
from animgen.models.layers import ConvLSTMCell
from animgen.ops import losses, metrics


@pytest.fixture
def x64():
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', False)


def test_convlstm_cell_gradients_and_peepholes(x64):
  cell = ConvLSTMCell(3, kernel_size=3, dtype=jnp.float64)
  r = np.random.default_rng(0)
  carry = (jnp.asarray(r.standard_normal((1, 4, 4, 3))), jnp.asarray(r.standard_normal((1, 4, 4, 3))))
  x = jnp.asarray(r.standard_normal((1, 4, 4, 2)))
  params = cell.init(jax.random.key(0), carry, x)
  params = jax.tree.map(lambda p: p + 0.3 * jnp.asarray(r.standard_normal(p.shape)), params)

  def f(p, c, h, x):
    (c2, h2), _ = cell.apply(p, (c, h), x)
    return jnp.sum(c2 * h2) + jnp.sum(jnp.sin(h2))
  check_grads(f, (params, *carry, x), order=2, modes=['rev'], atol=1e-5, rtol=1e-5)
  # a hand computation of one position: gates from the two convs plus the peepholes
  (c2, h2), out = cell.apply(params, carry, x)
  pp = params['params']
  def conv(v, k):
    return jax.lax.conv_general_dilated(v, k, (1, 1), 'SAME',
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  g = conv(x, pp['input']['kernel']) + pp['input']['bias'] + conv(carry[1], pp['hidden']['kernel'])
  gi, gf, gc, go = np.split(np.asarray(g), 4, -1)
  c0 = np.asarray(carry[0])
  sig = lambda v: 1 / (1 + np.exp(-v))
  c_ref = sig(gf + pp['peep_f'] * c0) * c0 + sig(gi + pp['peep_i'] * c0) * np.tanh(gc)
  h_ref = sig(go + pp['peep_o'] * c_ref) * np.tanh(c_ref)
  np.testing.assert_allclose(c2, c_ref, rtol=1e-10)
  np.testing.assert_allclose(h2, h_ref, rtol=1e-10)
  np.testing.assert_allclose(out, h2)


def test_kl_and_gan_losses(x64):
  r = np.random.default_rng(1)
  mq, lq, mp, lp = (jnp.asarray(r.standard_normal((2, 5))) for _ in range(4))
  check_grads(losses.gaussian_kl_pair, (mq, lq, mp, lp), order=2, modes=['rev'])
  check_grads(losses.gaussian_kl, (mq, lq), order=2, modes=['rev'])
  # against a Monte-Carlo estimate of E_q[log q - log p] for one 1-d pair
  s = 0.5 * r.standard_normal(400_000) + 1.0    # q = N(1, 0.25), p = N(-0.5, 4)
  logq = -0.5 * np.log(2 * np.pi * 0.25) - (s - 1.0) ** 2 / 0.5
  logp = -0.5 * np.log(2 * np.pi * 4.0) - (s + 0.5) ** 2 / 8.0
  kl = losses.gaussian_kl_pair(jnp.array([1.0]), jnp.log(jnp.array([0.25])),
                               jnp.array([-0.5]), jnp.log(jnp.array([4.0])))
  assert float(kl) == pytest.approx(np.mean(logq - logp), abs=3e-3)
  assert float(losses.gaussian_kl(mq, lq)) == pytest.approx(
      float(jnp.mean(losses.gaussian_kl_pair(mq, lq, 0.0, 0.0))))
  logits = jnp.asarray(r.standard_normal(6))
  check_grads(losses.gan_g_loss, (logits,), order=2, modes=['rev'])
  check_grads(losses.gan_d_loss, (logits, -logits), order=2, modes=['rev'])
  d = jax.nn.sigmoid(logits)
  assert float(losses.gan_g_loss(logits)) == pytest.approx(float(-jnp.mean(jnp.log(d))))
  assert float(losses.gan_d_loss(logits, -logits)) == pytest.approx(
      float(-jnp.mean(jnp.log(d)) - jnp.mean(jnp.log(1 - jax.nn.sigmoid(-logits)))))
  # stable for large logits where the naive log(sigmoid) underflows
  assert np.isfinite(float(losses.gan_g_loss(jnp.array([-200.0]))))


def test_metrics_match_skimage():
  from skimage.metrics import peak_signal_noise_ratio, structural_similarity
  r = np.random.default_rng(2)
  a = r.random((3, 40, 40, 3)).astype(np.float32)
  b = np.clip(a + 0.08 * r.standard_normal(a.shape), 0, 1).astype(np.float32)
  p, s = np.asarray(metrics.psnr(a, b)), np.asarray(metrics.ssim(a, b))
  for i in range(3):
    assert p[i] == pytest.approx(peak_signal_noise_ratio(a[i], b[i], data_range=1), rel=1e-5)
    assert s[i] == pytest.approx(structural_similarity(
        a[i], b[i], data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False), abs=1e-4)
  assert metrics.ssim(a[None], a[None]).shape == (1, 3)
  assert float(metrics.ssim(a[:1], a[:1])[0]) == pytest.approx(1.0, abs=1e-5)


def test_digits_shipped_and_full_mnist_formats(tmp_path):
  x, y = digits.load_digits()
  assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
  assert np.bincount(y).tolist() == [500] * 10
  assert x.max() == 255 and 0.05 < (x > 127).mean() < 0.3   # ink on a black background
  # the full-MNIST options: keras mnist.npz and the original idx files (gzipped)
  np.savez(tmp_path / 'mnist.npz', x_train=x[:30], y_train=y[:30], x_test=x[30:40],
           y_test=y[30:40])
  xt, yt = digits.load_digits(str(tmp_path / 'mnist.npz'), 'test')
  np.testing.assert_array_equal(xt, x[30:40])
  folder = tmp_path / 'idx'
  os.makedirs(folder)
  for prefix, (xs, ys) in {'train': (x[:20], y[:20]), 't10k': (x[20:25], y[20:25])}.items():
    with gzip.open(folder / f'{prefix}-images-idx3-ubyte.gz', 'wb') as f:
      f.write(bytes([0, 0, 8, 3]) + b''.join(int(n).to_bytes(4, 'big') for n in xs.shape)
              + xs.tobytes())
    with gzip.open(folder / f'{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
      f.write(bytes([0, 0, 8, 1]) + len(ys).to_bytes(4, 'big') + ys.tobytes())
  xa, ya = digits.load_digits(str(folder), 'all')
  np.testing.assert_array_equal(xa, x[:25])
  np.testing.assert_array_equal(ya, y[:25])
  with pytest.raises(InputError, match='does not exist'):
    digits.load_digits(str(tmp_path / 'nope.npz'))
  (tmp_path / 'bad.npz').write_bytes(b'not a zip')
  with pytest.raises(InputError, match='mnist.npz'):
    digits.load_digits(str(tmp_path / 'bad.npz'))
