"""Colour-wheel visualisation of optical flow fields (pure jnp; works under jit and vmap); its
colour key as a labelled figure is animgen.plot.flow_key.

Convention: flow[..., 0] is the x (rightward) displacement and flow[..., 1] the y (downward,
image rows) displacement, in pixels. Hue encodes the direction and saturation the magnitude:
zero motion is white, motion at `max_mag` is a fully saturated colour, and motion beyond
`max_mag` is drawn at 75 % brightness so that clipped vectors stand out. Directions on screen:
right = red (hue 0), down = chartreuse (hue 1/4), left = cyan (hue 1/2), up = violet (hue 3/4).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_OUT_OF_RANGE_VALUE = 0.75


def hsv_to_rgb(h, s, v):
  """HSV in [0, 1] -> RGB in [0, 1]; broadcasts, stacks RGB on a new last axis."""
  def channel(n):
    k = jnp.mod(n + 6.0 * h, 6.0)
    return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)
  return jnp.stack([channel(5.0), channel(3.0), channel(1.0)], axis=-1)


def flow_to_rgb(flow, max_mag=None):
  """Renders a flow field [..., H, W, 2] as RGB [..., H, W, 3] in [0, 1].

  Args:
    flow: displacements (x, y) in the last axis; any leading batch/time axes.
    max_mag: magnitude shown fully saturated. None: the largest magnitude in the whole input
      (all leading axes together, so frames of one video share a scale). May be a traced value.

  Returns:
    float32 RGB; zero flow is white (1, 1, 1). Finite gradients everywhere, including at zero.
  """
  flow = jnp.asarray(flow)
  if flow.shape[-1] != 2:
    raise ValueError(f'flow must have 2 channels in the last axis, got shape {flow.shape}')
  if not jnp.issubdtype(flow.dtype, jnp.floating):
    flow = flow.astype(jnp.float32)
  u, v = flow[..., 0], flow[..., 1]
  sq = u * u + v * v
  nonzero = sq > 0
  # Double-where keeps sqrt and arctan2 (and their gradients) away from the origin.
  safe_sq = jnp.where(nonzero, sq, 1.0)
  mag = jnp.where(nonzero, jnp.sqrt(safe_sq), 0.0)
  angle = jnp.arctan2(jnp.where(nonzero, v, 0.0), jnp.where(nonzero, u, 1.0))
  hue = jnp.mod(angle / (2.0 * jnp.pi), 1.0)
  if max_mag is None:
    max_mag = jnp.max(mag)
  max_mag = jnp.asarray(max_mag, mag.dtype)
  ratio = mag / jnp.maximum(max_mag, jnp.finfo(mag.dtype).tiny)
  sat = jnp.clip(ratio, 0.0, 1.0)
  val = jnp.where(ratio > 1.0, _OUT_OF_RANGE_VALUE, 1.0).astype(mag.dtype)
  return hsv_to_rgb(hue, sat, val)


@functools.partial(jax.jit, static_argnums=0)
def colour_wheel(size: int = 128):
  """The legend for flow_to_rgb: a [size, size, 3] disc where the pixel at offset (dx, dy)
  from the centre shows the colour of flow (dx, dy); radius = max_mag. White outside the disc.
  """
  r = (size - 1) / 2.0
  coords = (jnp.arange(size, dtype=jnp.float32) - r) / max(r, 1e-6)
  yy, xx = jnp.meshgrid(coords, coords, indexing='ij')
  field = jnp.stack([xx, yy], axis=-1)
  rgb = flow_to_rgb(field, max_mag=1.0)
  inside = (xx * xx + yy * yy) <= 1.0
  return jnp.where(inside[..., None], rgb, 1.0)


def max_magnitude(flow) -> float:
  """The largest displacement length in `flow` [..., 2]: the radius of its colour key when
  flow_to_rgb ran with max_mag=None."""
  flow = jnp.asarray(flow, jnp.float32)
  return float(jnp.sqrt(jnp.max(jnp.sum(flow * flow, axis=-1))))
