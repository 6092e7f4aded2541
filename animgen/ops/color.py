"""Colour transfer of Animating Landscape's appearance predictor (Endo et al. 2019, Sec. 4.2)."""
import jax
import jax.numpy as jnp


def split_maps(maps: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[..., 6] predictor output -> (C^w, C^b), each [..., 3] (the official al, bl order)."""
  if maps.shape[-1] != 6:
    raise ValueError(f'colour-transfer maps need 6 channels (3 scale + 3 bias), got {maps.shape}')
  return maps[..., :3], maps[..., 3:]


def color_transfer(maps: jax.Array, image: jax.Array) -> jax.Array:
  """Eqs. 5-6: O = tanh(C^w * I + C^b), image and output in [-1, 1], NHWC.

  `maps` may be at a lower resolution than `image` (generation applies maps predicted at the
  network size to the full-resolution photo); they are then resized bilinearly first.
  """
  if maps.shape[-3:-1] != image.shape[-3:-1]:
    from animgen.ops.warp import resize
    maps = resize(maps, image.shape[-3], image.shape[-2])
  w, b = split_maps(maps)
  return jnp.tanh(w * image + b)


def affine_colour_fit(source: jax.Array, target: jax.Array) -> jax.Array:
  """Per image, the global affine colour map (3x3 matrix + offset) that brings `source` closest
  to `target` in least squares, applied to `source`: [B, H, W, 3] -> [B, H, W, 3].

  An evaluation reference, not a model: it sees the target. It is the best any spatially
  constant colour transfer can do; what remains is the change that moved (clouds) or varies in
  space (a horizon glow).
  """
  b = source.shape[0]
  a = source.reshape(b, -1, 3)
  a = jnp.concatenate([a, jnp.ones_like(a[..., :1])], axis=-1)            # [B, N, 4]
  normal = jnp.einsum('bni,bnj->bij', a, a) + 1e-6 * jnp.eye(4)
  m = jnp.linalg.solve(normal, jnp.einsum('bni,bnj->bij', a, target.reshape(b, -1, 3)))
  return jnp.einsum('bni,bij->bnj', a, m).reshape(source.shape)
