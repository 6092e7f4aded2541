"""Animating Landscape networks (Endo et al. 2019, Appendix A.1, Tables 1-2).

`Predictor` is the shared U-Net body of the motion predictor P^M (2-channel backward flow,
tanh * beta) and the appearance predictor P^A (6-channel colour-transfer maps).
`Encoder` is BicycleGAN's resnet_128 latent encoder E^M / E^A (128x128 input, latent 8).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from animgen.models.layers import Conv, InstanceNorm, torch_bias_init, torch_default_init


def lrelu(x, slope):
  return jnp.where(x >= 0, x, slope * x)


class ResBlock(nn.Module):
  """Pre-activation residual block: (InstanceNorm -> LeakyReLU(0.1) -> conv3x3) x 2 + skip."""
  features: int
  fast: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = Conv(self.features, 3, fast=self.fast, dtype=self.dtype, name='conv1')(
        lrelu(InstanceNorm(name='norm1')(x), 0.1))
    h = Conv(self.features, 3, fast=self.fast, dtype=self.dtype, name='conv2')(
        lrelu(InstanceNorm(name='norm2')(h), 0.1))
    return x + h


class Predictor(nn.Module):
  """P^M / P^A (Table 1). x: [B, H, W, 3] in [-1, 1], z: [B, Z] -> [B, H, W, out_channels].

  With `beta` set (motion), the output is tanh(h) * beta: a backward flow in normalised
  [-1, 1] grid units (Sec. 4.1, beta = 64 in the paper's notation, 1/64 here as a factor).
  """
  out_channels: int = 2
  widths: Sequence[int] = (128, 256, 512)
  num_res_blocks: int = 5
  beta: float | None = 1.0 / 64.0
  fast: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, z):
    w1, w2, w3 = self.widths
    kw = dict(fast=self.fast, dtype=self.dtype)
    h1 = lrelu(Conv(w1, 5, 2, name='conv1', **kw)(x, z), 0.1)
    h2 = lrelu(InstanceNorm(name='norm2')(Conv(w2, 3, 2, name='conv2', **kw)(h1, z)), 0.1)
    h3 = lrelu(InstanceNorm(name='norm3')(Conv(w3, 3, 2, name='conv3', **kw)(h2, z)), 0.1)
    h = h3
    for i in range(self.num_res_blocks):
      h = ResBlock(w3, name=f'res{i + 1}', **kw)(h)
    h = Conv(w2, 3, upsample=True, name='upconv1', **kw)(jnp.concatenate([h, h3], -1))
    h = lrelu(InstanceNorm(name='upnorm1')(h), 0.1)
    h = Conv(w1, 3, upsample=True, name='upconv2', **kw)(jnp.concatenate([h, h2], -1))
    h = lrelu(InstanceNorm(name='upnorm2')(h), 0.1)
    h = Conv(self.out_channels, 5, upsample=True, name='upconv3', **kw)(
        jnp.concatenate([h, h1], -1))
    h = h.astype(jnp.float32)
    if self.beta is not None:
      return jnp.tanh(h) * self.beta
    return h


class EncoderBlock(nn.Module):
  """BicycleGAN BasicBlock: BN-LReLU-conv3x3(in->in)-BN-LReLU-conv3x3(in->out)-avgpool2,
  shortcut avgpool2-conv1x1(in->out)."""
  features: int

  @nn.compact
  def __call__(self, x, train: bool):
    cin = x.shape[-1]
    init = nn.initializers.xavier_normal()
    bn = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                   name=name)
    pool = lambda t: nn.avg_pool(t, (2, 2), (2, 2))
    h = nn.Conv(cin, (3, 3), padding=1, kernel_init=init, name='conv1')(
        lrelu(bn('norm1')(x), 0.2))
    h = nn.Conv(self.features, (3, 3), padding=1, kernel_init=init, name='conv2')(
        lrelu(bn('norm2')(h), 0.2))
    h = pool(h)
    s = nn.Conv(self.features, (1, 1), kernel_init=init, name='shortcut')(pool(x))
    return h + s


class Encoder(nn.Module):
  """E^M / E^A (Table 2, BicycleGAN resnet_128). x: [B, 128, 128, C] -> (mu, logvar) [B, Z].

  BatchNorm uses batch statistics in training and running averages in evaluation.
  """
  latent_dim: int = 8
  widths: Sequence[int] = (64, 128, 192, 256)

  @nn.compact
  def __call__(self, x, train: bool = False):
    init = nn.initializers.xavier_normal()  # official encoder uses Xavier init (official code)
    h = nn.Conv(self.widths[0], (4, 4), strides=(2, 2), padding=1, kernel_init=init,
                name='conv1')(x)
    for i, w in enumerate(self.widths[1:]):
      h = EncoderBlock(w, name=f'block{i + 1}')(h, train)
    h = lrelu(h, 0.2).mean(axis=(1, 2))  # AvgPool2d(8) on the final 8x8 map
    mu = nn.Dense(self.latent_dim, kernel_init=init, name='fc_mu')(h)
    logvar = nn.Dense(self.latent_dim, kernel_init=init, name='fc_logvar')(h)
    return mu, logvar


def count_params(tree) -> int:
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))


class LatentCritic(nn.Module):
  """The official code's latent discriminator (official train.py, Sec. 6.6):
  Linear(latent -> 128) -> ReLU -> Linear(1) -> Sigmoid, [B, Z] -> [B, 1] in (0, 1)."""
  hidden: int = 128

  @nn.compact
  def __call__(self, z):
    z = z.astype(jnp.float32)
    # PyTorch nn.Linear default init, as the official module has (official train.py).
    h = nn.Dense(self.hidden, kernel_init=torch_default_init,
                 bias_init=torch_bias_init(z.shape[-1]))(z)
    h = nn.relu(h)
    out = nn.Dense(1, kernel_init=torch_default_init, bias_init=torch_bias_init(self.hidden))(h)
    return nn.sigmoid(out)  # sigmoid kept although the loss is WGAN's (official train.py)


class LatentLSTM(nn.Module):
  """Appendix B, Table 3: Linear(128) -> LSTM(128) -> Linear(8); predicts the next appearance
  code from the current one."""
  latent_dim: int = 8
  hidden: int = 128

  def setup(self):
    self.fc_in = nn.Dense(self.hidden)
    self.cell = nn.OptimizedLSTMCell(self.hidden)
    self.fc_out = nn.Dense(self.latent_dim)

  def step(self, carry, z):
    """(carry, z_t [B, Z]) -> (carry, predicted z_{t+1} [B, Z])."""
    carry, h = self.cell(carry, self.fc_in(z))
    return carry, self.fc_out(h)

  def zero_carry(self, batch: int):
    return (jnp.zeros((batch, self.hidden)), jnp.zeros((batch, self.hidden)))

  def __call__(self, z):  # only for init
    return self.step(self.zero_carry(z.shape[0]), z)
