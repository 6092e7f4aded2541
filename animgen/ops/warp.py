"""Bilinear backward warping (Endo 2019 Sec. 4.1, WARP) with align_corners=True semantics.

Flows are in normalised grid units: x_n = 2 x / (W - 1) - 1, so a flow of 2 / (W - 1) moves
one pixel. Channel order (dx, dy). Out-of-range samples use border or reflection padding.
"""
import jax
import jax.numpy as jnp
import numpy as np


def identity_grid(h: int, w: int, dtype=jnp.float32) -> jax.Array:
  """[H, W, 2] normalised (x, y) coordinates of every pixel centre, in [-1, 1]."""
  ys = jnp.linspace(-1.0, 1.0, h, dtype=dtype)
  xs = jnp.linspace(-1.0, 1.0, w, dtype=dtype)
  return jnp.stack(jnp.meshgrid(xs, ys, indexing='xy'), axis=-1)


def pixels_to_normalised(flow_px: jax.Array, h: int, w: int) -> jax.Array:
  """A displacement in pixels [..., 2] -> normalised grid units."""
  return flow_px * jnp.array([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], flow_px.dtype)


def normalised_to_pixels(flow: jax.Array, h: int, w: int) -> jax.Array:
  return flow * jnp.array([(w - 1) / 2.0, (h - 1) / 2.0], flow.dtype)


def _reflect(coord, size):
  """Reflect a pixel coordinate into [0, size - 1] (align_corners=True reflection)."""
  if size == 1:
    return jnp.zeros_like(coord)
  period = 2.0 * (size - 1)
  c = jnp.abs(jnp.mod(coord, period))
  return jnp.where(c > size - 1, period - c, c)


def sample(image: jax.Array, coords: jax.Array, padding: str = 'border') -> jax.Array:
  """Bilinear sample of image [B, H, W, C] at normalised coords [B, h, w, 2] -> [B, h, w, C]."""
  b, h, w, c = image.shape
  x = (coords[..., 0] + 1.0) * 0.5 * (w - 1)
  y = (coords[..., 1] + 1.0) * 0.5 * (h - 1)
  if padding == 'reflection':
    x, y = _reflect(x, w), _reflect(y, h)
  elif padding != 'border':
    raise ValueError(f'unknown padding {padding!r}')
  x = jnp.clip(x, 0.0, w - 1)
  y = jnp.clip(y, 0.0, h - 1)
  x0 = jnp.clip(jnp.floor(x), 0, max(w - 2, 0))
  y0 = jnp.clip(jnp.floor(y), 0, max(h - 2, 0))
  fx, fy = (x - x0)[..., None], (y - y0)[..., None]
  x0i, y0i = x0.astype(jnp.int32), y0.astype(jnp.int32)
  x1i, y1i = jnp.minimum(x0i + 1, w - 1), jnp.minimum(y0i + 1, h - 1)
  flat = image.reshape(b, h * w, c)

  def gather(yi, xi):
    idx = (yi * w + xi).reshape(b, -1)
    return jnp.take_along_axis(flat, idx[..., None], axis=1).reshape(yi.shape + (c,))

  top = gather(y0i, x0i) * (1 - fx) + gather(y0i, x1i) * fx
  bottom = gather(y1i, x0i) * (1 - fx) + gather(y1i, x1i) * fx
  return top * (1 - fy) + bottom * fy


def backward_warp(image: jax.Array, flow: jax.Array, padding: str = 'border') -> jax.Array:
  """O(p) = I(p + B(p)). image [B, H, W, C], flow [B, H, W, 2] normalised -> [B, H, W, C]."""
  h, w = image.shape[1:3]
  grid = identity_grid(h, w, flow.dtype)[None] + flow
  return sample(image, grid, padding)


def shrink(x, max_size: int, min_side: int = 1):
  """[B, H, W, C] resized (antialiased) so that its longer side is at most max_size (0: as it
  is; never enlarged), each side at least min_side -> float32 numpy in [0, 1]."""
  h, w = x.shape[1:3]
  if max_size and max(h, w) > max_size:
    scale = max_size / max(h, w)
    x = resize(jnp.asarray(x, jnp.float32), max(min_side, round(h * scale)),
               max(min_side, round(w * scale)))
  return np.clip(np.asarray(x, np.float32), 0.0, 1.0)


def resize(x: jax.Array, h: int, w: int, method: str = 'bilinear') -> jax.Array:
  """[B, H, W, C] -> [B, h, w, C]. Normalised flows keep their values under resizing."""
  if x.shape[1:3] == (h, w):
    return x
  antialias = method != 'nearest' and (h < x.shape[1] or w < x.shape[2])
  return jax.image.resize(x, (x.shape[0], h, w, x.shape[3]), method, antialias=antialias)
