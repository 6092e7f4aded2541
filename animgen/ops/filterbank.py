"""Gaussian filterbank attention of Sync-DRAW (Mittal et al. 2017, Sec. 3.1.1 and 3.1.3).

Per frame and time step a linear map of the decoder state gives five numbers
(g~_p, g~_q, log sigma^2, log delta~, log beta). They become a K x A and a K x B bank of
normalised Gaussians (Eqs. 1-4) that read a K x K glimpse, beta * F_p x F_q^T (Eq. 5), or write
a K x K window back onto the A x B frame, (1 / beta) F_p^T w F_q (Eq. 10).

Where DRAW's public code (inherited by Sync-DRAW's) differs, this follows the paper: the
Gaussian is exp(-(a - mu)^2 / (2 sigma^2)) (not ((a - mu) / (2 sigma^2))^2), the grid offsets
u - K/2 - 0.5 for u = 1..K are centred on g, and every division is a float division.

Pixel coordinates are 1-based (a = 1..A), as in Eqs. 3-4; frames are [..., A, B] (rows, columns).
All functions are pure jnp and broadcast over leading axes.
"""
import jax
import jax.numpy as jnp

NUM_PARAMS = 5          # g~_p, g~_q, log sigma^2, log delta~, log beta per frame
NUM_CUBOID_PARAMS = 8   # + g~_z, log sigma_z^2, log delta~_z for the temporal bank F_Z
_EPS = 1e-8             # floor of the normalisation constants Z (all-but-zero rows)


def attention_params(raw: jax.Array, height: int, width: int, k: int) -> dict:
  """raw [..., 5] (a linear map of h_dec) -> centres, stride, variance and intensity.

  g_p = (A + 1)/2 (g~_p + 1), g_q = (B + 1)/2 (g~_q + 1) and delta = (max(A, B) - 1)/(K - 1)
  delta~ (Sec. 3.1.1; its N is the grid size K, as in DRAW). sigma^2, delta~ and beta come in
  log scale so that they are positive (Sec. 3.1.2). g~ = tanh(raw) keeps the centres inside
  [0, A + 1] x [0, B + 1] ("to ensure g~ ... lie within the frame dimensions", Sec. 3.1.1).
  Returns {'gp', 'gq', 'delta', 'sigma2', 'beta'}, each [...].
  """
  g_p = (height + 1) / 2.0 * (jnp.tanh(raw[..., 0]) + 1.0)
  g_q = (width + 1) / 2.0 * (jnp.tanh(raw[..., 1]) + 1.0)
  sigma2 = jnp.exp(raw[..., 2])
  delta = (max(height, width) - 1) / max(k - 1, 1) * jnp.exp(raw[..., 3])
  beta = jnp.exp(raw[..., 4])
  return {'gp': g_p, 'gq': g_q, 'delta': delta, 'sigma2': sigma2, 'beta': beta}


def centres(g: jax.Array, delta: jax.Array, k: int) -> jax.Array:
  """mu_u = g + (u - K/2 - 0.5) delta for u = 1..K (Eqs. 1-2): [...] -> [..., K], centred on g."""
  offsets = jnp.arange(1, k + 1, dtype=g.dtype) - k / 2.0 - 0.5
  return g[..., None] + offsets * delta[..., None]


def filterbank(g: jax.Array, delta: jax.Array, sigma2: jax.Array, size: int, k: int) -> jax.Array:
  """F[u, a] = exp(-(a - mu_u)^2 / (2 sigma^2)) / Z_u, a = 1..size (Eqs. 3-4) -> [..., K, size].

  Each row sums to one (Z_u = sum_a of the row, floored at 1e-8)."""
  mu = centres(g, delta, k)                                        # [..., K]
  a = jnp.arange(1, size + 1, dtype=mu.dtype)
  f = jnp.exp(-jnp.square(a - mu[..., None]) / (2.0 * sigma2[..., None, None]))
  return f / jnp.maximum(jnp.sum(f, axis=-1, keepdims=True), _EPS)


def filterbanks(params: dict, height: int, width: int, k: int):
  """The pair (F_p [..., K, A], F_q [..., K, B]) of one attention."""
  fp = filterbank(params['gp'], params['delta'], params['sigma2'], height, k)
  fq = filterbank(params['gq'], params['delta'], params['sigma2'], width, k)
  return fp, fq


def read(x: jax.Array, fp: jax.Array, fq: jax.Array, beta: jax.Array) -> jax.Array:
  """Eq. 5: beta F_p x F_q^T. x [..., A, B], fp [..., K, A], fq [..., K, B] -> [..., K, K]."""
  return beta[..., None, None] * jnp.einsum('...ua,...ab,...vb->...uv', fp, x, fq)


def write(w: jax.Array, fp: jax.Array, fq: jax.Array, beta: jax.Array) -> jax.Array:
  """Eq. 10: (1 / beta) F_p^T w F_q. w [..., K, K] -> [..., A, B]."""
  return jnp.einsum('...ua,...uv,...vb->...ab', fp, w, fq) / beta[..., None, None]


# ------------------------------------------------------------------ cuboid baseline (Sec. 4.1)
def cuboid_params(raw: jax.Array, frames: int, height: int, width: int, k: int) -> dict:
  """raw [..., 8] -> the spatial parameters of attention_params plus a temporal bank's centre
  g_z = (N + 1)/2 (g~_z + 1), variance sigma_z^2 and stride delta_z = (N - 1)/(K - 1) delta~_z
  (the DRAW rules applied to the frame axis of length N)."""
  p = attention_params(raw[..., :5], height, width, k)
  p['gz'] = (frames + 1) / 2.0 * (jnp.tanh(raw[..., 5]) + 1.0)
  p['sigma2_z'] = jnp.exp(raw[..., 6])
  p['delta_z'] = (frames - 1) / max(k - 1, 1) * jnp.exp(raw[..., 7])
  return p


def temporal_filterbank(params: dict, frames: int, k: int) -> jax.Array:
  """F_Z [..., K, N]: K Gaussians over the N frames of the GIF (Sec. 4.1)."""
  return filterbank(params['gz'], params['delta_z'], params['sigma2_z'], frames, k)


def read_cuboid(x, fz, fp, fq, beta):
  """beta sum_{n,a,b} F_Z[s, n] F_p[u, a] F_q[v, b] x[n, a, b]: x [..., N, A, B] -> [..., K, K, K]."""
  return beta[..., None, None, None] * jnp.einsum('...sn,...ua,...nab,...vb->...suv',
                                                  fz, fp, x, fq)


def write_cuboid(w, fz, fp, fq, beta):
  """(1 / beta) sum_{s,u,v} F_Z[s, n] F_p[u, a] F_q[v, b] w[s, u, v]: [..., K, K, K] -> [..., N, A, B]."""
  return jnp.einsum('...sn,...ua,...suv,...vb->...nab', fz, fp, w, fq) / beta[..., None, None, None]


def window_box(params: dict, k: int):
  """The attention window's extent in 1-based pixels: (top, left, bottom, right) = the first and
  last filter centres along each axis (for drawing Fig. 4)."""
  half = (k - 1) / 2.0 * params['delta']
  return (params['gp'] - half, params['gq'] - half, params['gp'] + half, params['gq'] + half)
