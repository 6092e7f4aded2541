"""DeepGIFs networks (Malik, Troute & Capoor, Sec. 4.1): VAE encoder / decoder, latent LSTM and
discriminator. NHWC, images in [0, 1].

BatchNorm follows PyTorch's defaults (the public code is PyTorch): running-average momentum
0.1 (flax momentum 0.9) and epsilon 1e-5.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from animgen.models.layers import LSTMCell, upsample_nearest
from animgen.ops.conv import conv2d, fast_kernels_enabled, upsample2_conv3x3

LEAK = 0.01   # LeakyReLU slope of the public code (PyTorch default)


def _bn(train: bool, name: str | None = None):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class ConvStack(nn.Module):
  """Sec. 4.1.1: conv 4x4, stride 2, padding 1 -> BatchNorm -> LeakyReLU, per width.
  [B, 64, 64, C] -> flattened [B, 4 * 4 * widths[-1]]."""
  widths: Sequence[int] = (32, 64, 128, 256)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    for w in self.widths:
      x = nn.Conv(w, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), dtype=self.dtype)(x)
      x = nn.leaky_relu(_bn(train)(x), LEAK)
    return x.reshape(x.shape[0], -1)


class UpConv(nn.Module):
  """Nearest x2 upsampling, then flax's Conv(features, (3, 3), padding=1) (same parameters); on
  CPU computed as one 2x2 conv to the four output phases (ops.conv.upsample2_conv3x3)."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    x, kernel, bias = x.astype(self.dtype), kernel.astype(self.dtype), bias.astype(self.dtype)
    if fast_kernels_enabled():
      return upsample2_conv3x3(x, kernel, bias, 'zeros')
    up = jnp.pad(upsample_nearest(x, 2), ((0, 0), (1, 1), (1, 1), (0, 0)))
    return conv2d(up, kernel) + bias


class Encoder(nn.Module):
  """q(z | x): the conv stack, then two fully connected heads mu and log-variance (Sec. 4.1.1).
  [B, H, W, C] -> (mu, logvar) each [B, latent_dim]."""
  latent_dim: int = 95
  widths: Sequence[int] = (32, 64, 128, 256)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    h = ConvStack(self.widths, self.dtype, name='stack')(x, train)
    mu = nn.Dense(self.latent_dim, dtype=self.dtype, name='fc_mu')(h)
    logvar = nn.Dense(self.latent_dim, dtype=self.dtype, name='fc_logvar')(h)
    return mu.astype(jnp.float32), logvar.astype(jnp.float32)


class Decoder(nn.Module):
  """The encoder's inverse (Sec. 4.1.1), as the public code's VAEGAN_Gen: Linear to a
  base x base (4x4) map of widths[-1] channels with no activation, then per width a block of
  nearest-neighbour upsampling x2 + conv 3x3 + BatchNorm + LeakyReLU(0.01), the last block to
  `channels`, then tanh. [B, latent] -> [B, base * 2^len(widths), ..., channels] (64 x 64)."""
  channels: int = 1
  widths: Sequence[int] = (32, 64, 128, 256)
  base: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool):
    w = list(self.widths)[::-1]                       # 256, 128, 64, 32
    h = nn.Dense(self.base * self.base * w[0], dtype=self.dtype, name='fc')(z)
    h = h.reshape(z.shape[0], self.base, self.base, w[0])   # public code: no activation here
    for i, c in enumerate(w[1:] + [self.channels]):   # 128, 64, 32, C
      h = UpConv(c, dtype=self.dtype, name=f'Conv_{i}')(h)   # the names of nn.Conv's params
      h = nn.leaky_relu(_bn(train)(h), LEAK)          # public code: BN + LeakyReLU on all 4
    return jnp.tanh(h).astype(jnp.float32)


class _LatentStep(nn.Module):
  latent_dim: int
  hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry, z):
    carry, h = LSTMCell(self.hidden, dtype=self.dtype, name='cell')(carry, z)
    return carry, nn.Dense(self.latent_dim, dtype=self.dtype, name='fc')(h).astype(jnp.float32)


class LatentLSTM(nn.Module):
  """Sec. 4.1.2: one LSTM layer (hidden and cell 200) on the latent code, and a fully
  connected layer from its output back to the latent size. One step: (carry, z) -> (carry, z')."""
  latent_dim: int = 95
  hidden: int = 200
  dtype: Any = jnp.float32

  def setup(self):
    self.step = _LatentStep(self.latent_dim, self.hidden, self.dtype)

  def __call__(self, carry, z):
    return self.step(carry, z)

  def initialize_carry(self, batch: int):
    """(c, h) = zeros: the public code calls nn.LSTM without (h0, c0), PyTorch's zero state."""
    zeros = jnp.zeros((batch, self.hidden), jnp.float32)
    return zeros, zeros

  def unroll(self, carry, zs):
    """zs [B, T, latent] -> (carry, next-step codes [B, T, latent]) (teacher forcing), as one
    scan over time (a Python loop compiles in time proportional to T)."""
    scan = nn.scan(lambda module, c, z: module(c, z), variable_broadcast='params',
                   split_rngs={'params': False}, in_axes=1, out_axes=1)
    return scan(self.step, carry, zs)


class Discriminator(nn.Module):
  """Sec. 4.1.3: the encoder's conv stack -> fc(latent_dim) -> BatchNorm -> LeakyReLU -> fc(1).
  [B, H, W, C] -> real/fake logits [B] (trained with binary cross-entropy)."""
  latent_dim: int = 95
  widths: Sequence[int] = (32, 64, 128, 256)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    h = ConvStack(self.widths, self.dtype, name='stack')(x, train)
    h = nn.Dense(self.latent_dim, dtype=self.dtype, name='fc')(h)
    h = nn.leaky_relu(_bn(train, 'bn_fc')(h), LEAK)
    return nn.Dense(1, dtype=self.dtype, name='logit')(h)[:, 0].astype(jnp.float32)


class DigitClassifier(nn.Module):
  """The digit (10 classes) of a 28x28 crop [B, 28, 28, 1] in [0, 1] around one Moving MNIST
  digit: the judge of the rollout digit evaluation (ours; the paper shows samples only)."""

  @nn.compact
  def __call__(self, x):
    h = x
    for width in (32, 64):
      h = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2))(h))
    h = nn.relu(nn.Dense(128)(h.reshape(h.shape[0], -1)))
    return nn.Dense(10)(h)
