"""Warp and loss ops: gradients (order 2, float64) and values against known answers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from animgen.ops import losses, warp


@pytest.fixture
def x64():
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', False)


def test_warp_gradients_order2(x64):
  rng = np.random.default_rng(0)
  img = jnp.asarray(rng.uniform(size=(2, 6, 7, 3)))
  # keep sample points off integer pixel positions and inside, where bilinear is smooth
  flow = jnp.asarray(rng.uniform(0.1, 0.4, size=(2, 6, 7, 2))) * 2.0 / 6.0
  flow = flow * jnp.asarray(rng.choice([-1.0, 1.0], size=(2, 6, 7, 2)))
  inner = lambda i, f: warp.backward_warp(i, f)[:, 1:-1, 1:-1]
  check_grads(inner, (img, flow), order=2, modes=['fwd', 'rev'], eps=1e-4)


@pytest.mark.parametrize('padding', ['border', 'reflection'])
def test_warp_translation_equals_shift(padding):
  rng = np.random.default_rng(1)
  img = jnp.asarray(rng.uniform(size=(1, 9, 11, 3)), jnp.float32)
  # backward flow of +2 px in x: O(x, y) = I(x + 2, y)
  flow = jnp.zeros((1, 9, 11, 2)).at[..., 0].set(2 * 2.0 / 10)
  out = warp.backward_warp(img, flow, padding)
  np.testing.assert_allclose(out[:, :, :-2], img[:, :, 2:], atol=1e-5)
  if padding == 'border':
    np.testing.assert_allclose(out[:, :, -1], img[:, :, -1], atol=1e-5)
  else:  # reflection about the last column: x = 11 -> 9
    np.testing.assert_allclose(out[:, :, -1], img[:, :, -3], atol=1e-5)


def test_warp_subpixel_is_bilinear():
  img = jnp.arange(20, dtype=jnp.float32).reshape(1, 4, 5, 1)
  flow = jnp.zeros((1, 4, 5, 2)).at[..., 0].set(0.25 * 2 / 4).at[..., 1].set(0.5 * 2 / 3)
  out = warp.backward_warp(img, flow)
  # I(x, y) = 5 y + x is linear, so interior samples equal 5 (y + .5) + (x + .25)
  ys, xs = np.mgrid[0:3, 0:4]
  np.testing.assert_allclose(out[0, :3, :4, 0], 5 * (ys + 0.5) + xs + 0.25, atol=1e-5)


def test_tv_gradients_order2(x64):
  rng = np.random.default_rng(2)
  field = jnp.asarray(rng.normal(size=(2, 5, 6, 2)))
  guide = jnp.asarray(rng.uniform(size=(2, 5, 6, 3)))
  check_grads(lambda f, g: losses.edge_weighted_tv(f, g, 0.1), (field, guide), order=2,
              modes=['fwd', 'rev'], eps=1e-5)


def test_tv_values():
  # constant field -> 0; a vertical edge in the field under a flat guide -> full penalty
  guide = jnp.zeros((1, 4, 4, 3))
  assert float(losses.edge_weighted_tv(jnp.ones((1, 4, 4, 2)), guide)) == 0.0
  field = jnp.zeros((1, 4, 4, 2)).at[:, :, 2:, 0].set(1.0)
  # one jump per row (4 rows) out of 4 x 3 horizontal pairs in one of the 2 channels, weight 1
  np.testing.assert_allclose(losses.edge_weighted_tv(field, guide), 4 / 12 / 2, rtol=1e-6)
  # the same jump under an image edge of L1 size 0.3 is down-weighted by exp(-3)
  guide_edge = guide.at[:, :, 2:, 0].set(0.3)
  np.testing.assert_allclose(losses.edge_weighted_tv(field, guide_edge),
                             4 / 12 / 2 * np.exp(-3), rtol=1e-5)


def test_tv_matches_official_reduction():
  # the official train.py: torch.mean(exp(-sum_c |dI| / sigma) * |dB|) over every element of
  # the [1, C, H, W-1] (and [1, C, H-1, W]) differences, for each axis, summed
  rng = np.random.default_rng(5)
  field = rng.normal(size=(1, 7, 9, 3))
  guide = rng.uniform(-1, 1, size=(1, 7, 9, 3))
  official = 0.0
  for axis in (1, 2):
    w = np.exp(-np.sum(np.abs(np.diff(guide, axis=axis)), axis=-1, keepdims=True) / 0.1)
    official += np.mean(w * np.abs(np.diff(field, axis=axis)))
  np.testing.assert_allclose(losses.edge_weighted_tv(jnp.asarray(field), jnp.asarray(guide)),
                             official, rtol=1e-5)


def test_unit_conversions_round_trip():
  f = jnp.asarray(np.random.default_rng(3).normal(size=(3, 2)), jnp.float32)
  np.testing.assert_allclose(
      warp.normalised_to_pixels(warp.pixels_to_normalised(f, 9, 17), 9, 17), f, rtol=1e-6)
  # one pixel step in x at width 17 is 2/16 in normalised units
  np.testing.assert_allclose(warp.pixels_to_normalised(jnp.array([1.0, 1.0]), 9, 17),
                             [2 / 16, 2 / 8])
