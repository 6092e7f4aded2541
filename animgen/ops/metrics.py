"""Image-quality metrics for evaluation: PSNR and SSIM from dm-pix (pure JAX), per image.

Inputs [..., H, W, C] with values in [0, max_val]; the result has the leading shape.
Tests cross-check both against skimage.metrics.
"""
import dm_pix
import jax
import jax.numpy as jnp


def psnr(a: jax.Array, b: jax.Array, max_val: float = 1.0) -> jax.Array:
  """10 log10(max_val^2 / MSE) per image. Identical images give +inf."""
  mse = jnp.mean(jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32)), axis=(-3, -2, -1))
  return 10.0 * jnp.log10(max_val ** 2 / mse)


def ssim(a: jax.Array, b: jax.Array, max_val: float = 1.0) -> jax.Array:
  """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, k1 0.01, k2 0.03) per image,
  averaged over channels, via dm_pix.ssim."""
  lead = a.shape[:-3]
  a2 = a.reshape((-1,) + a.shape[-3:]).astype(jnp.float32)
  b2 = b.reshape((-1,) + b.shape[-3:]).astype(jnp.float32)
  return dm_pix.ssim(a2, b2, max_val=max_val).reshape(lead)
