"""Loss terms shared by the methods. Pure jnp; shapes NHWC."""
import jax
import jax.numpy as jnp


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
  """Eq. 1, Endo 2019, as the official code's mean squared error."""
  return jnp.mean(jnp.square(a - b))


def edge_weighted_tv(field: jax.Array, guide: jax.Array, sigma: float = 0.1) -> jax.Array:
  """Eqs. 2-3, Endo 2019: sum over right/upper neighbours of w(I_p, I_q) |B_p - B_q|_1.

  field [B, H, W, C] (flow or colour-transfer maps), guide [B, H, W, 3] (the image whose edges
  stop the smoothing). w = exp(-|I_p - I_q|_1 / sigma). Averaged over pixels and the field's
  channels, as the official code's torch.mean over w * |dB| (the paper writes sums; the weights
  lambda were tuned for the mean). The guide's difference is summed over its channels (Eq. 3).
  """
  def term(axis):
    d_field = jnp.mean(jnp.abs(jnp.diff(field, axis=axis)), axis=-1)
    d_guide = jnp.sum(jnp.abs(jnp.diff(guide, axis=axis)), axis=-1)
    return jnp.mean(jnp.exp(-d_guide / sigma) * d_field)
  return term(1) + term(2)


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mu, exp(logvar)) || N(0, I)) summed over the last axis, averaged over the rest."""
  return jnp.mean(-0.5 * jnp.sum(1.0 + logvar - jnp.square(mu) - jnp.exp(logvar), axis=-1))


def mmd_imq(z: jax.Array, prior: jax.Array, scales=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)):
  """Unbiased MMD^2 between samples z [B, D] and prior samples [B, D] with inverse multiquadric
  kernels C / (C + |x - y|^2), C = 2 D s (WAE-MMD, Tolstikhin et al. 2017, sum over scales s)."""
  n, d = z.shape
  off = 1.0 - jnp.eye(n)
  def k(a, b):
    d2 = jnp.sum(jnp.square(a[:, None] - b[None]), -1)
    return sum((2.0 * d * s) / (2.0 * d * s + d2) for s in scales)
  within = (jnp.sum(k(z, z) * off) + jnp.sum(k(prior, prior) * off)) / (n * (n - 1))
  return within - 2.0 * jnp.mean(k(z, prior))


def gram(features: jax.Array) -> jax.Array:
  """Gram matrix [B, C, C] of NHWC features, normalised by C*H*W (Johnson et al. 2016; Eq. 7
  leaves the normalisation open)."""
  b, h, w, c = features.shape
  f = features.reshape(b, h * w, c)
  return jnp.einsum('bpi,bpj->bij', f, f) / (c * h * w)


def style_loss(features_a, features_b) -> jax.Array:
  """Eq. 7: sum over layers of the mean squared difference of Gram matrices."""
  return sum(mse(gram(a), gram(b)) for a, b in zip(features_a, features_b))


def content_loss(features_a, features_b) -> jax.Array:
  """Eq. 9: sum over layers of the mean squared feature difference."""
  return sum(mse(a, b) for a, b in zip(features_a, features_b))


def _adaptive_bins(n: int, cells: int):
  """Start/end of each of `cells` average-pooling bins over n pixels (adaptive pooling rule:
  start = floor(i n / cells), end = ceil((i + 1) n / cells))."""
  return [((i * n) // cells, -((-(i + 1) * n) // cells)) for i in range(cells)]


def spatial_pyramid(x: jax.Array, cells: int = 32) -> jax.Array:
  """Eq. 8's SP with pyramid height one: average of each cell of a cells x cells grid,
  [B, H, W, C] -> [B, cells, cells, C]. Exact block means when H and W divide evenly."""
  b, h, w, c = x.shape
  if h % cells == 0 and w % cells == 0:
    return x.reshape(b, cells, h // cells, cells, w // cells, c).mean(axis=(2, 4))
  rows = jnp.stack([x[:, s:e].mean(axis=1) for s, e in _adaptive_bins(h, cells)], axis=1)
  return jnp.stack([rows[:, :, s:e].mean(axis=2) for s, e in _adaptive_bins(w, cells)], axis=2)


def spatial_pyramid_loss(a: jax.Array, b: jax.Array, cells: int = 32) -> jax.Array:
  """Eq. 8: mean squared difference of the cell averages."""
  return mse(spatial_pyramid(a, cells), spatial_pyramid(b, cells))


def gaussian_kl_pair(mu_q, logvar_q, mu_p, logvar_p) -> jax.Array:
  """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) summed over the last axis (elementwise
  over the rest): 0.5 * sum(logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1).
  With mu_p = logvar_p = 0 it is the standard-normal KL (Kingma & Welling, App. B)."""
  return 0.5 * jnp.sum(logvar_p - logvar_q
                       + (jnp.exp(logvar_q) + jnp.square(mu_q - mu_p)) * jnp.exp(-logvar_p)
                       - 1.0, axis=-1)


def bce_with_logits(logits: jax.Array, target) -> jax.Array:
  """Elementwise binary cross-entropy of sigmoid(logits) against target in [0, 1], computed
  stably as softplus(logits) - target * logits."""
  return jax.nn.softplus(logits) - target * logits


def gan_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Discriminator loss -log D(x) - log(1 - D(G(z))), averaged (Goodfellow et al. 2014)."""
  return jnp.mean(bce_with_logits(real_logits, 1.0)) + jnp.mean(bce_with_logits(fake_logits, 0.0))


def gan_g_loss(fake_logits: jax.Array) -> jax.Array:
  """Non-saturating generator loss -log D(G(z)), averaged (Image2GIF Eq. 2, DeepGIFs' BCE)."""
  return jnp.mean(bce_with_logits(fake_logits, 1.0))
