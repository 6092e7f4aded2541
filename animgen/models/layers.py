"""Shared flax.linen layers (NHWC). Parameters keep the layout of a plain conv so that
official checkpoints convert one-to-one; the fast paths (animgen/ops/conv.py) are exact
rewrites of the plain convolution."""
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from animgen.ops.conv import (conv2d, conv2d_fast, fast_kernels_enabled,
                              upsample2_conv3x3, upsample_conv_reflect_small_out)


# PyTorch's default conv init (kaiming_uniform a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_default_init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def torch_bias_init(fan_in: int) -> Callable:
  bound = 1.0 / float(fan_in) ** 0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """x: [B, H, W, C] -> [B, H + 2p, W + 2p, C] with reflection (edge excluded)."""
  if pad == 0:
    return x
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """[B, H, W, C] -> [B, fH, fW, C]."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, factor, w, factor, c))
  return x.reshape(b, h * factor, w * factor, c)


class Conv(nn.Module):
  """Conv with reflection padding, PyTorch default init, and optional exact fast paths.

  `z` (if given, [B, Z]) is tiled and concatenated to the input channels before the conv
  (Table 1, Concat(z)); with the fast paths its contribution is added as a per-sample bias,
  which is exact because a reflection-padded constant map stays constant. The fast paths run
  where `fast` is set and ops.conv.fast_kernels_enabled() (CPU); elsewhere the conv is XLA's.
  """
  features: int
  kernel_size: int
  stride: int = 1
  pad: Optional[int] = None  # default: kernel_size // 2
  upsample: bool = False     # nearest x2 upsample before the conv (Table 1, Upsample(2))
  fast: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, z=None):
    k = self.kernel_size
    pad = k // 2 if self.pad is None else self.pad
    cin = x.shape[-1] + (0 if z is None else z.shape[-1])
    kernel = self.param('kernel', torch_default_init, (k, k, cin, self.features))
    bias = self.param('bias', torch_bias_init(cin * k * k), (self.features,))
    x = x.astype(self.dtype)
    fast = self.fast and fast_kernels_enabled()
    if self.upsample and fast and k == 3 and pad == 1 and z is None and self.stride == 1:
      return upsample2_conv3x3(x, kernel, bias)
    if (self.upsample and fast and z is None and self.stride == 1
        and pad < 2 * min(x.shape[1:3])
        and self.features * k * k <= x.shape[-1]):
      return upsample_conv_reflect_small_out(x, kernel, bias, pad)
    conv = conv2d_fast if fast else conv2d
    if self.upsample:
      x = upsample_nearest(x)
    if z is not None and fast:
      kx, kz = kernel[:, :, :x.shape[-1]], kernel[:, :, x.shape[-1]:]
      y = conv(reflect_pad(x, pad), kx, self.stride)
      zb = jnp.einsum('bz,zo->bo', z.astype(self.dtype), kz.sum((0, 1)).astype(self.dtype))
      return y + (bias.astype(self.dtype) + zb)[:, None, None, :]
    if z is not None:
      zt = jnp.broadcast_to(z[:, None, None, :].astype(x.dtype), x.shape[:3] + z.shape[-1:])
      x = jnp.concatenate([x, zt], axis=-1)
    return conv(reflect_pad(x, pad), kernel, self.stride) + bias.astype(self.dtype)


class InstanceNorm(nn.Module):
  """Per-sample, per-channel normalisation over H, W with biased variance.

  Official custom InstanceNorm: eps 1e-9, scale initialised U(0, 1), shift 0 (official code).
  """
  epsilon: float = 1e-9

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.uniform(1.0), (c,))
    shift = self.param('bias', nn.initializers.zeros, (c,))
    xf = x.astype(jnp.float32)
    mean = xf.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(xf - mean).mean(axis=(1, 2), keepdims=True)
    y = (xf - mean) * jax.lax.rsqrt(var + self.epsilon)
    return (y * scale + shift).astype(x.dtype)


# Dense LSTM for the sequence methods (DeepGIFs' latent LSTM, Sync-DRAW's encoder/decoder and
# caption BiLSTM, Image2GIF's dense variant): flax's cell, carry (c, h), gates i, f, g, o.
LSTMCell = nn.OptimizedLSTMCell


class ConvLSTMCell(nn.Module):
  """Convolutional LSTM of Shi et al. 2015 (Eq. 3), with its peephole (Hadamard) terms.

    i = sigmoid(W_xi * X + W_hi * H + W_ci o C + b_i)
    f = sigmoid(W_xf * X + W_hf * H + W_cf o C + b_f)
    C' = f o C + i o tanh(W_xc * X + W_hc * H + b_c)
    o = sigmoid(W_xo * X + W_ho * H + W_co o C' + b_o)
    H' = o o tanh(C')

  * is a 'SAME' convolution, o the elementwise product; the peephole weights W_c* are per
  position and channel ([H, W, C]), as in the paper. Inputs NHWC; carry (C, H) each
  [B, H, W, features]. Use as nn.scan / a Python loop over time (`__call__(carry, x)`).
  """
  features: int
  kernel_size: int = 3
  peephole: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry, x):
    c, h = carry
    k = (self.kernel_size, self.kernel_size)
    gates = (nn.Conv(4 * self.features, k, padding='SAME', use_bias=True, dtype=self.dtype,
                     name='input')(x)
             + nn.Conv(4 * self.features, k, padding='SAME', use_bias=False, dtype=self.dtype,
                       name='hidden')(h))
    gi, gf, gc, go = jnp.split(gates, 4, axis=-1)
    if self.peephole:
      shape = c.shape[1:]
      w_ci = self.param('peep_i', nn.initializers.zeros, shape)
      w_cf = self.param('peep_f', nn.initializers.zeros, shape)
      w_co = self.param('peep_o', nn.initializers.zeros, shape)
      gi, gf = gi + w_ci * c, gf + w_cf * c
    i, f = jax.nn.sigmoid(gi), jax.nn.sigmoid(gf)
    c_new = f * c + i * jnp.tanh(gc)
    if self.peephole:
      go = go + w_co * c_new
    h_new = jax.nn.sigmoid(go) * jnp.tanh(c_new)
    return (c_new, h_new), h_new

  @staticmethod
  def initialize_carry(batch_shape_hw: tuple, features: int, dtype=jnp.float32):
    """Zero (C, H) for inputs [B, H, W, *]: batch_shape_hw = (B, H, W)."""
    z = jnp.zeros(tuple(batch_shape_hw) + (features,), dtype)
    return z, z
