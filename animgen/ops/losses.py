"""Loss terms shared by the methods. Pure jnp; shapes NHWC."""
import jax
import jax.numpy as jnp


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
  """Eq. 1, Endo 2019, as the official code's mean squared error."""
  return jnp.mean(jnp.square(a - b))


def edge_weighted_tv(field: jax.Array, guide: jax.Array, sigma: float = 0.1) -> jax.Array:
  """Eqs. 2-3, Endo 2019: sum over right/upper neighbours of w(I_p, I_q) |B_p - B_q|_1.

  field [B, H, W, C] (flow or colour-transfer maps), guide [B, H, W, 3] (the image whose edges
  stop the smoothing). w = exp(-|I_p - I_q|_1 / sigma). Averaged over pixels, as the official
  code's mean-reduced loss (the paper writes a sum; the weights lambda were tuned for the mean).
  """
  def term(axis):
    d_field = jnp.sum(jnp.abs(jnp.diff(field, axis=axis)), axis=-1)
    d_guide = jnp.sum(jnp.abs(jnp.diff(guide, axis=axis)), axis=-1)
    return jnp.mean(jnp.exp(-d_guide / sigma) * d_field)
  return term(1) + term(2)


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mu, exp(logvar)) || N(0, I)) summed over the last axis, averaged over the rest."""
  return jnp.mean(-0.5 * jnp.sum(1.0 + logvar - jnp.square(mu) - jnp.exp(logvar), axis=-1))
