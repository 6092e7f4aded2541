"""Image2GIF networks (Zhou et al. 2018, Sec. 3 and 5.1): recurrent generator, DQN, discriminator.

Generator, the paper's layout (Fig. 2, Sec. 5.1; `recurrent='dense'`, `rgb_conv=False`): 4 conv
layers 5x5 stride 2 (64, 128, 256, 512; ReLU) encode the 64x64 input to a 4x4x512 map; a linear
layer with tanh gives the code z (64 synthetic / 512 real); an LSTM (hidden size z_dim) takes z at
every time step; each step's LSTM state (concatenated with the DQN's one-hot action, Fig. 3) is
projected linearly to a 4x4x512 map (ReLU) and decoded by 4 deconv layers 5x5 stride 2 (256, 128,
64 with ReLU, then RGB with tanh). The decoder is shared over time. The two linear layers are
ours: Sec. 5.1 lists only the conv/deconv layers, and a 64-d z needs one on each side (DCGAN's
project-and-reshape, Radford 2015).

animgen's own variant (`recurrent='convlstm'`, `rgb_conv=True`, configs/image2gif.py:convlstm):
z is a 3x3 conv of the 4x4 map to z_dim channels (tanh), the recurrence a ConvLSTM (Shi 2015) on
that map, and the decoder 4 deconvs to (512, 256, 128, 64) channels (ReLU) then a 5x5 stride-1
conv to RGB with tanh.

DQN (Sec. 3.2, 5.1): the encoder's layers, then a linear Q-vector of N actions (no tanh).
Discriminator (Sec. 3.1): a binary CNN per frame (ours, the paper gives no layout: the encoder's
layers with LeakyReLU 0.2, then one logit).
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from animgen.models.layers import ConvLSTMCell, LSTMCell
from animgen.ops.conv import conv2d, conv2d_fast, conv2d_s2_same, fast_kernels_enabled


def _subpixel_kernel(kernel):
  """A 5x5 stride-2 transposed-conv kernel [5, 5, I, O] -> the 3x3 kernel [3, 3, I, 4 O] of its
  four output phases (row phase, column phase, O): output pixel (2m + r) reads input rows
  m + d for the taps k = 2 d + 3 - r (the 'SAME' alignment of lax.conv_transpose)."""
  k, _, cin, cout = kernel.shape
  rows = []
  for dy in (-1, 0, 1):
    cols = []
    for dx in (-1, 0, 1):
      taps = []
      for ry in range(2):
        for rx in range(2):
          ky, kx = 2 * dy + 3 - ry, 2 * dx + 3 - rx
          ok = 0 <= ky < k and 0 <= kx < k
          taps.append(kernel[ky, kx] if ok else jnp.zeros((cin, cout), kernel.dtype))
      cols.append(jnp.concatenate(taps, axis=-1))
    rows.append(jnp.stack(cols))
  return jnp.stack(rows)


class Deconv(nn.Module):
  """Exactly flax's ConvTranspose(features, (5, 5), strides=(2, 2), padding='SAME') (same
  parameters), computed as one 3x3 conv to the four output phases and a depth-to-space: XLA:CPU
  runs the zero-dilated transposed conv ~4x slower. [B, H, W, I] -> [B, 2H, 2W, O]."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (5, 5, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    x = x.astype(self.dtype)
    k3 = _subpixel_kernel(kernel.astype(self.dtype))
    conv = conv2d_fast if fast_kernels_enabled() else conv2d
    y = conv(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), k3)   # [B, H, W, 4 O]
    b, h, w, _ = x.shape
    y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, self.features) + bias.astype(self.dtype)


class StridedConv(nn.Module):
  """Exactly flax's Conv(features, (5, 5), strides=(2, 2), padding='SAME') (same parameters); on
  CPU its input gradient runs as a phase conv (ops.conv.conv2d_s2_same), not XLA's slow one."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (5, 5, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    y = conv2d_s2_same(x, kernel) if fast_kernels_enabled() else conv2d(x, kernel, 2, 'SAME')
    return y + bias.astype(self.dtype)


class ConvStack(nn.Module):
  """4 conv 5x5 stride 2 layers (Sec. 5.1), [B, 64, 64, C] -> [B, 4, 4, widths[-1]]."""
  widths: tuple = (64, 128, 256, 512)
  leaky: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    for i, w in enumerate(self.widths):
      x = StridedConv(w, dtype=self.dtype, name=f'conv{i}')(x)
      x = nn.leaky_relu(x, 0.2) if self.leaky else nn.relu(x)
    return x


class Decoder(nn.Module):
  """The decoding part, shared over time (Sec. 5.1): state -> frame [B, 64, 64, 3] in [-1, 1].

  A state vector [B, D] is first projected (linear, ReLU; ours) to a 4x4 map of widths[0]
  channels; a 4x4 map [B, 4, 4, C] (ConvLSTM state and tiled action) is used as it is.
  rgb_conv=False (Sec. 5.1): 4 deconvs 5x5 stride 2 to widths[1:] and RGB, ReLU then tanh last.
  rgb_conv=True (ours, the ConvLSTM variant): 4 deconvs to widths (ReLU), a 5x5 conv to RGB, tanh.
  """
  widths: tuple = (512, 256, 128, 64)
  rgb_conv: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h):
    if h.ndim == 2:
      base = self.widths[0]
      h = nn.relu(nn.Dense(4 * 4 * base, dtype=self.dtype, name='project')(h))
      h = h.reshape(h.shape[0], 4, 4, base)
    outs = tuple(self.widths) if self.rgb_conv else tuple(self.widths[1:]) + (3,)
    for i, w in enumerate(outs):
      h = Deconv(w, dtype=self.dtype, name=f'deconv{i}')(h)
      h = h if i == len(outs) - 1 and not self.rgb_conv else nn.relu(h)
    if self.rgb_conv:  # ours: a stride-1 conv to RGB after the 4 deconvs reach 64 px
      h = nn.Conv(3, (5, 5), padding='SAME', dtype=self.dtype, name='rgb')(h)
    return jnp.tanh(h)   # tanh on the last layer (Sec. 5.1)


class Generator(nn.Module):
  """Recurrent generator. Use `encode` once, then `step` and `decode` per frame (see `__call__`).

  Shapes: image [B, 64, 64, 3] in [-1, 1]; code [B, Z] (dense) or [B, 4, 4, Z] (convlstm);
  action one-hot [B, N] (N = 0 without the DQN); frame [B, 64, 64, 3] in [-1, 1].
  """
  widths: tuple = (64, 128, 256, 512)
  decoder_widths: tuple = (512, 256, 128, 64)
  z_dim: int = 64
  recurrent: str = 'dense'         # 'dense': an LSTM on the z vector (Sec. 3.1); 'convlstm': ours
  rgb_conv: bool = False           # True: ours, a 5x5 conv to RGB after the 4 deconvs
  dtype: Any = jnp.float32

  def setup(self):
    if self.recurrent not in ('convlstm', 'dense'):
      raise ValueError(f"model.recurrent must be 'convlstm' or 'dense', not {self.recurrent!r}")
    self.encoder = ConvStack(self.widths, dtype=self.dtype)
    if self.recurrent == 'convlstm':
      self.to_z = nn.Conv(self.z_dim, (3, 3), padding='SAME', dtype=self.dtype)
      self.cell = ConvLSTMCell(self.z_dim, kernel_size=3, dtype=self.dtype)
    else:
      self.to_z = nn.Dense(self.z_dim, dtype=self.dtype)
      self.cell = LSTMCell(self.z_dim)
    self.decoder = Decoder(self.decoder_widths, self.rgb_conv, dtype=self.dtype)

  def encode(self, image):
    """z = tanh(fc or conv(encoder(x))) (Sec. 5.1: tanh on the encoder's output layer)."""
    f = self.encoder(image)
    if self.recurrent == 'dense':
      f = f.reshape(f.shape[0], -1)
    return jnp.tanh(self.to_z(f))

  def initial_carry(self, code):
    z = jnp.zeros(code.shape[:-1] + (self.z_dim,), code.dtype)
    return z, z

  def step(self, carry, code):
    """One LSTM step with the image code as input -> (carry, state h)."""
    return self.cell(carry, code)

  def decode(self, h, action=None):
    """Frame from the LSTM state and, with the DQN, its one-hot action (Fig. 3)."""
    if action is not None and action.shape[-1]:
      a = action.astype(h.dtype)
      if h.ndim == 4:  # tile the action over the 4x4 state map
        a = jnp.broadcast_to(a[:, None, None, :], h.shape[:3] + a.shape[-1:])
      h = jnp.concatenate([h, a], axis=-1)
    return self.decoder(h)

  def __call__(self, image, actions):
    """Rollout with given one-hot actions [B, T, N] -> frames [B, T, 64, 64, 3]."""
    code = self.encode(image)
    carry = self.initial_carry(code)
    frames = []
    for t in range(actions.shape[1]):
      carry, h = self.step(carry, code)
      frames.append(self.decode(h, actions[:, t]))
    return jnp.stack(frames, axis=1)


class QNetwork(nn.Module):
  """DQN: the encoder's layers and a linear Q-vector of `num_actions` (Sec. 5.1, no tanh)."""
  widths: tuple = (64, 128, 256, 512)
  num_actions: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frame):
    f = ConvStack(self.widths, dtype=self.dtype, name='encoder')(frame)
    return nn.Dense(self.num_actions, dtype=jnp.float32, name='q')(f.reshape(f.shape[0], -1))


class Discriminator(nn.Module):
  """Binary real/fake CNN per frame (Sec. 3.1) -> logits [B]."""
  widths: tuple = (64, 128, 256, 512)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frame):
    f = ConvStack(self.widths, leaky=True, dtype=self.dtype, name='encoder')(frame)
    return nn.Dense(1, dtype=jnp.float32, name='logit')(f.reshape(f.shape[0], -1))[:, 0]
