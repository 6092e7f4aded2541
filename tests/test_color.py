"""Colour transfer (Eqs. 5-6) and the appearance losses (Eqs. 7-9): gradients and values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from animgen.ops import color, losses


@pytest.fixture
def x64():
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', False)


def test_affine_colour_fit_recovers_a_colour_matrix_and_is_least_squares():
  rng = np.random.default_rng(1)
  src = rng.uniform(-1, 1, size=(2, 6, 5, 3))
  m = rng.normal(size=(2, 3, 3)) * 0.5 + np.eye(3)
  off = rng.normal(size=(2, 1, 1, 3)) * 0.1
  exact = np.einsum('bhwi,bij->bhwj', src, m) + off
  fit = np.asarray(color.affine_colour_fit(jnp.asarray(src, jnp.float32),
                                           jnp.asarray(exact, jnp.float32)))
  np.testing.assert_allclose(fit, exact, atol=1e-4)
  noisy = exact + rng.normal(size=exact.shape)      # not affine: the numpy least-squares answer
  fit = np.asarray(color.affine_colour_fit(jnp.asarray(src, jnp.float32),
                                           jnp.asarray(noisy, jnp.float32)))
  for i in range(2):
    a = np.concatenate([src[i].reshape(-1, 3), np.ones((30, 1))], 1)
    w = np.linalg.lstsq(a, noisy[i].reshape(-1, 3), rcond=None)[0]
    np.testing.assert_allclose(fit[i], (a @ w).reshape(6, 5, 3), atol=1e-4)


def test_color_transfer_values():
  rng = np.random.default_rng(0)
  img = rng.uniform(-1, 1, size=(2, 5, 4, 3)).astype(np.float32)
  maps = rng.normal(size=(2, 5, 4, 6)).astype(np.float32)
  out = np.asarray(color.color_transfer(jnp.asarray(maps), jnp.asarray(img)))
  np.testing.assert_allclose(out, np.tanh(maps[..., :3] * img + maps[..., 3:]), atol=1e-6)
  # w = 0 turns the image into the flat colour tanh(b)
  flat = color.color_transfer(jnp.concatenate([jnp.zeros((1, 5, 4, 3)),
                                               jnp.full((1, 5, 4, 3), 0.5)], -1), img[:1])
  np.testing.assert_allclose(np.asarray(flat), np.tanh(0.5), atol=1e-6)


def test_color_transfer_resizes_low_resolution_maps():
  img = jnp.ones((1, 8, 6, 3)) * 0.3
  maps = jnp.concatenate([jnp.full((1, 4, 3, 3), 2.0), jnp.full((1, 4, 3, 3), -0.1)], -1)
  out = color.color_transfer(maps, img)
  assert out.shape == (1, 8, 6, 3)
  np.testing.assert_allclose(np.asarray(out), np.tanh(2.0 * 0.3 - 0.1), atol=1e-6)


def test_color_transfer_rejects_wrong_channels():
  with pytest.raises(ValueError, match='6 channels'):
    color.color_transfer(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4, 3)))


def test_color_transfer_gradients_order2(x64):
  rng = np.random.default_rng(1)
  img = jnp.asarray(rng.uniform(-1, 1, size=(1, 3, 4, 3)))
  maps = jnp.asarray(rng.normal(size=(1, 3, 4, 6)) * 0.5)
  check_grads(color.color_transfer, (maps, img), order=2, modes=['fwd', 'rev'], eps=1e-4)


def test_gram_values():
  rng = np.random.default_rng(2)
  f = rng.normal(size=(2, 3, 5, 4))
  g = np.asarray(losses.gram(jnp.asarray(f, jnp.float32)))
  flat = f.reshape(2, 15, 4)
  expected = np.stack([x.T @ x for x in flat]) / (4 * 15)
  np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)
  assert np.allclose(g, np.transpose(g, (0, 2, 1)))


def test_style_and_content_losses_are_zero_only_for_equal_features():
  rng = np.random.default_rng(3)
  a = [jnp.asarray(rng.normal(size=(1, 4, 4, 2)), jnp.float32) for _ in range(2)]
  assert float(losses.style_loss(a, a)) == 0.0 and float(losses.content_loss(a, a)) == 0.0
  # a spatial permutation keeps the Gram matrix (style) but not the features (content)
  perm = [x[:, ::-1] for x in a]
  assert float(losses.style_loss(a, perm)) < 1e-10
  assert float(losses.content_loss(a, perm)) > 0.1


@pytest.mark.parametrize('shape', [(64, 96), (40, 50)])
def test_spatial_pyramid_matches_cell_means(shape):
  h, w = shape
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, h, w, 3)).astype(np.float32)
  got = np.asarray(losses.spatial_pyramid(jnp.asarray(x), 32))
  expected = np.zeros((2, 32, 32, 3), np.float32)
  for i in range(32):
    for j in range(32):
      r0, r1 = (i * h) // 32, -(-(i + 1) * h // 32)
      c0, c1 = (j * w) // 32, -(-(j + 1) * w // 32)
      expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_appearance_loss_gradients_order2(x64):
  rng = np.random.default_rng(5)
  a = jnp.asarray(rng.normal(size=(1, 6, 5, 2)))
  b = jnp.asarray(rng.normal(size=(1, 6, 5, 2)))
  check_grads(lambda x: losses.style_loss([x], [b]), (a,), order=2, modes=['fwd', 'rev'])
  check_grads(lambda x: losses.spatial_pyramid_loss(x, b, 4), (a,), order=2,
              modes=['fwd', 'rev'])
