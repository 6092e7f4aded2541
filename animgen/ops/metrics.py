"""Image-quality metrics for evaluation: PSNR and SSIM from dm-pix (pure JAX), per image.

Inputs [..., H, W, C] with values in [0, max_val]; the result has the leading shape.
Tests cross-check both against skimage.metrics.
"""
import dm_pix
import jax
import jax.numpy as jnp


def _flat(a, b):
  """[..., H, W, C] pair -> float32 [N, H, W, C] pair and the leading shape (dm-pix wants rank 4)."""
  lead = a.shape[:-3]
  flat = lambda x: x.reshape((-1,) + x.shape[-3:]).astype(jnp.float32)
  return flat(a), flat(b), lead


def psnr(a: jax.Array, b: jax.Array, max_val: float = 1.0, cap: float | None = None) -> jax.Array:
  """10 log10(max_val^2 / MSE) per image via dm_pix.psnr; identical images give +inf, or `cap`
  dB when given (a cap keeps means over many images finite)."""
  a2, b2, lead = _flat(a, b)
  out = dm_pix.psnr(a2 / max_val, b2 / max_val).reshape(lead)
  return out if cap is None else jnp.minimum(out, cap)


def ssim(a: jax.Array, b: jax.Array, max_val: float = 1.0) -> jax.Array:
  """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, k1 0.01, k2 0.03) per image,
  averaged over channels, via dm_pix.ssim."""
  a2, b2, lead = _flat(a, b)
  return dm_pix.ssim(a2, b2, max_val=max_val).reshape(lead)
