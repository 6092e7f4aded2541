"""The preference model of Oh et al. 2017 Sec. 4 (supp. Sec. 2 "Model 2").

Y [m, n]: 1-5 ratings of m cinemagraphs by n users, NaN where missing (observed mask Omega);
V [m, D]: context features (rows = cinemagraphs); U [n, dim]: latent user features. The
auto-encoder is over users: M_l maps a user's ratings y_j = Y[:, j] to u_j, M_h maps back.

  svt_complete, laplacian_eigenmap   the initialisation (convex MC, then a Laplacian eigenmap)
  RBF, Linear, fit_rbf, fit_linear   the mappings M(x) = W [K(x); 1]
  user_residuals, gn_step            Eq. 8 per user and its Gauss-Newton step on (U, Y_missing)
  aem_fit                            Carreira et al.'s auto-encoder with missing values (Eq. 9)
  joint_fit                          the joint model (Eqs. 8-10)
  joint_predict, joint_complete      its ratings: f of Eq. 10, or its completed matrix
  user_feature                       u of a new user from partial ratings

Numerics: the optimisation runs in float64 (inside `jax.enable_x64`): Eq. 8 weighs L_recon by
lambda = 1/(nm) ~ 4e-5 against L_reg, so the Gauss-Newton normal matrix spans ~7 decades.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

# supp. Sec. 2: the parameters chosen on the validation set
DIM = 25
NUM_BASIS = 25
LAMBDA_R = 0.1
LAMBDA_THETA = 0.1
# RBF width = scale * median distance between the k-means centres; the scale is chosen by
# hold-out cross-validation (supp. Sec. 2: "{sigma} by cross validation"; the grid is ours)
SIGMA_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
# Levenberg damping: mu = lam * these (lam: the weight of Eq. 9 in the step's loss); each user
# keeps the candidate (or no step) with the lowest loss, so a step never raises it (plain
# Gauss-Newton, 0, can overshoot where the RBF Jacobians change fast); 0 is tried first
DAMPING = (0.0, 0.1, 1.0, 10.0, 100.0, 1000.0)


def _float64(fn):
  """Runs fn with JAX's 64-bit types enabled (module docstring: why)."""
  @functools.wraps(fn)
  def run(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)
  return run


def _one_blas_thread(fn):
  """Runs fn with one BLAS/OpenMP thread: its matrices are small, and more threads only
  contend with XLA's (measured 3x faster on 2 busy cores)."""
  @functools.wraps(fn)
  def run(*args, **kwargs):
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
      return fn(*args, **kwargs)
  return run


# ------------------------------------------------------------------ matrix completion (init)


@jax.jit
def _svt_loop(M, mask, tau, step, tol, max_iters):
  """Cai, Candes & Shen 2010, Alg. 1: X = D_tau(Z); Z += step P_Omega(M - X) until converged."""
  norm_m = jnp.linalg.norm(mask * M)
  spectral = jnp.sqrt(jnp.linalg.eigvalsh((mask * M).T @ (mask * M))[-1])
  k0 = jnp.ceil(tau / (step * spectral))        # their "kicking": skip the all-zero iterates
  z0 = k0 * step * mask * M

  def shrink(Z):
    # D_tau by the eigenvectors of Z^T Z (n x n, n << m): an order faster than the SVD on CPU
    s2, vecs = jnp.linalg.eigh(Z.T @ Z)
    s = jnp.sqrt(jnp.maximum(s2, 0.0))
    return (Z @ vecs) * (jnp.maximum(s - tau, 0.0) / jnp.maximum(s, 1e-300)) @ vecs.T

  def cond(state):
    _, k, err = state
    return (k < max_iters) & (err > tol)

  def body(state):
    Z, k, _ = state
    resid = mask * (M - shrink(Z))
    return Z + step * resid, k + 1, jnp.linalg.norm(resid) / norm_m

  Z, _, _ = jax.lax.while_loop(cond, body, (z0, 0, jnp.inf))
  return shrink(Z)


@_float64
def svt_complete(Y, mask, tau=None, step=None, tol=1e-4, max_iters=500):
  """-> [m, n] completed matrix, observed entries kept: singular value thresholding (Cai et al.
  2010) with their defaults tau = 5 sqrt(mn), step = 1.2 mn / |Omega|, on Y minus its observed
  mean (the mean would otherwise cost the nuclear norm a large singular value; our choice)."""
  mask = np.asarray(mask, bool)
  Y = np.asarray(Y, np.float64)
  m, n = Y.shape
  if m < n:                                     # the loop's Gram matrix is over the columns
    return svt_complete(Y.T, mask.T, tau, step, tol, max_iters).T
  mean = Y[mask].mean()
  M = np.where(mask, Y - mean, 0.0)
  tau = 5.0 * np.sqrt(m * n) if tau is None else tau
  step = 1.2 * m * n / max(mask.sum(), 1) if step is None else step
  X = np.asarray(_svt_loop(M, mask.astype(np.float64), tau, step, tol, max_iters)) + mean
  return np.where(mask, Y, X)


def laplacian_eigenmap(Yc, dim=DIM, neighbours=10):
  """-> U0 [n, dim]: Belkin & Niyogi 2003 over the users (columns of the completed matrix). A
  symmetrised kNN graph with heat-kernel weights exp(-d^2 / t), t = mean squared kNN distance
  (their heat kernel; t from the data since the paper gives none); the generalised problem
  L f = mu D f, trivial eigenvector dropped; columns scaled to unit RMS (eigenvectors have no
  scale; unit RMS puts u on the scale of standardised features)."""
  X = np.asarray(Yc, np.float64).T
  n = len(X)
  if not 0 < dim < n:
    raise ValueError(f'laplacian_eigenmap: dim {dim} must be in [1, {n - 1}] for {n} users')
  d2 = np.maximum(((X[:, None] - X[None]) ** 2).sum(-1), 0.0)
  k = min(neighbours, n - 1)
  near = np.argsort(d2, axis=1)[:, 1:k + 1]
  adj = np.zeros((n, n), bool)
  adj[np.repeat(np.arange(n), k), near.ravel()] = True
  adj |= adj.T
  t = max(d2[np.arange(n)[:, None], near].mean(), 1e-12)
  W = np.where(adj, np.exp(-d2 / t), 0.0)
  deg = np.maximum(W.sum(1), 1e-12)
  half = 1.0 / np.sqrt(deg)
  _, vecs = np.linalg.eigh(np.eye(n) - half[:, None] * W * half[None])   # D^-1/2 L D^-1/2
  F = half[:, None] * vecs[:, 1:dim + 1]
  return F / np.maximum(np.sqrt((F ** 2).mean(0)), 1e-12)


# ------------------------------------------------------------------------------- mappings


class RBF(NamedTuple):
  """Gaussian RBF network (supp. Sec. 2): M(x) = W [K(x); 1], kappa_i = exp(-|x - mu_i|^2 /
  (2 sigma_i^2)). W [out, d + 1]: its last column is a bias (our choice)."""
  centres: jnp.ndarray   # [d, in]
  sigmas: jnp.ndarray    # [d]
  W: jnp.ndarray         # [out, d + 1]


class Linear(NamedTuple):
  """M(x) = W [x; 1] for "Joint (Lin.)" (supp. footnote 2: then the model is a matrix
  factorisation). W [out, in + 1]: its last column is the bias."""
  W: jnp.ndarray         # [out, in + 1]


def _kernel(M: RBF, X):
  d2 = (X ** 2).sum(-1)[:, None] - 2 * X @ M.centres.T + (M.centres ** 2).sum(-1)[None]
  return jnp.exp(-0.5 * jnp.maximum(d2, 0.0) / M.sigmas[None] ** 2)


def design(M, X):
  """[N, in] -> [N, p]: the regressors of the mapping's least squares, [K(x); 1] or [x; 1]."""
  X = jnp.asarray(X)
  K = _kernel(M, X) if isinstance(M, RBF) else X
  return jnp.concatenate([K, jnp.ones((len(X), 1), K.dtype)], 1)


def mapping_apply(M, X):
  """[N, in] -> [N, out]."""
  return design(M, X) @ M.W.T


@_float64
def rbf_apply(M, X):
  """[N, in] -> [N, out] as float64 numpy (mapping_apply is the JAX form the steps trace)."""
  return np.asarray(mapping_apply(M, np.asarray(X, np.float64)))


def mapping_jacobian(M, x):
  """dM/dx at one point x [in] -> [out, in]."""
  if isinstance(M, Linear):
    return M.W[:, :-1]
  k = _kernel(M, x[None])[0]
  A = M.W[:, :-1] * (k / M.sigmas ** 2)[None]
  return -A @ (x[None] - M.centres)


def ridge(Phi, T, lam):
  """-> W [out, p] minimising |T - Phi W^T|^2 + lam |W|^2 (float64; the dual form when p > N)."""
  Phi, T = np.asarray(Phi, np.float64), np.asarray(T, np.float64)
  N, p = Phi.shape
  if p <= N:
    return np.linalg.solve(Phi.T @ Phi + lam * np.eye(p), Phi.T @ T).T
  return (Phi.T @ np.linalg.solve(Phi @ Phi.T + lam * np.eye(N), T)).T


def _kmeans(X, d, seed, init=None):
  from sklearn.cluster import KMeans
  # warm start from the previous centres when the alternation refits ("update {mu} by k-means")
  if init is not None and len(init) == d:
    km = KMeans(d, init=np.asarray(init), n_init=1, random_state=seed)
  else:
    km = KMeans(d, n_init=3, random_state=seed)
  return km.fit(X).cluster_centers_


def _sqdist(X, C):
  return np.maximum((X ** 2).sum(1)[:, None] - 2 * X @ C.T + (C ** 2).sum(1)[None], 0.0)


def fit_rbf(X, T, d=NUM_BASIS, lambda_R=LAMBDA_R, rng=None, sigma_grid=SIGMA_SCALES,
            holdout=0.2, init=None):
  """-> RBF mapping X [N, in] to T [N, out]: centres by k-means (at most N), one width for all
  basis functions chosen on a hold-out share of the rows, then W by ridge on all rows."""
  rng = np.random.default_rng(0) if rng is None else rng
  X, T = np.asarray(X, np.float64), np.asarray(T, np.float64)
  N = len(X)
  d = min(d, N)
  centres = _kmeans(X, d, int(rng.integers(2 ** 31)), init)
  gaps = np.sqrt(_sqdist(centres, centres))
  base = np.median(gaps[gaps > 0]) if (gaps > 0).any() else 1.0
  d2 = _sqdist(X, centres)
  order = rng.permutation(N)
  cut = max(1, int(round(holdout * N)))
  val, fit = order[:cut], order[cut:]

  def regressors(scale):
    return np.concatenate([np.exp(-0.5 * d2 / (scale * base) ** 2), np.ones((N, 1))], 1)

  errors = []
  for scale in sigma_grid:
    K = regressors(scale)
    errors.append(np.mean((K[val] @ ridge(K[fit], T[fit], lambda_R).T - T[val]) ** 2))
  scale = sigma_grid[int(np.argmin(errors))]
  return RBF(centres, np.full(d, scale * base), ridge(regressors(scale), T, lambda_R))


def fit_linear(X, T, lambda_R=LAMBDA_R):
  """-> Linear mapping X [N, in] to T [N, out] by ridge."""
  X = np.asarray(X, np.float64)
  return Linear(ridge(np.concatenate([X, np.ones((len(X), 1))], 1), T, lambda_R))


# ------------------------------------------------------------------- Eq. 8, Gauss-Newton


def user_residuals(u, y, o, Ml, Mh, theta_u, c, lam):
  """Eq. 8 for one user as residuals whose squared norm is its loss (R_M, R_f are constant in
  (U, Y_missing)): [o (y - c - theta_u.u) (Eq. 10 on Omega; c_i = theta_v.v_i + b);
  sqrt(lam) (u - M_l(y)); sqrt(lam) (y - M_h(u))] (Eq. 9)."""
  s = jnp.sqrt(lam)
  r_reg = o * (y - c - u @ theta_u)
  r_l = s * (u - mapping_apply(Ml, y[None])[0])
  r_h = s * (y - mapping_apply(Mh, u[None])[0])
  return jnp.concatenate([r_reg, r_l, r_h])


def jacobian_blocks(u, y, o, Ml, Mh, theta_u):
  """-> (F [m, dim], Jl [dim, m], Jh [m, dim]): d r_reg/du = -o theta_u^T (supp.: the df/du
  term added when updating U), dM_l/dy and dM_h/du; the rest of the Jacobian is identities."""
  F = -o[:, None] * theta_u[None]
  return F, mapping_jacobian(Ml, y), mapping_jacobian(Mh, u)


def dense_jacobian(blocks, p, lam):
  """The full Jacobian of `user_residuals` in (u, y) [2m + dim, dim + m], with the columns of
  observed y entries (p = 0) zero: they are constants."""
  F, Jl, Jh = blocks
  s = jnp.sqrt(lam)
  m, k = F.shape
  top = jnp.concatenate([F, jnp.zeros((m, m))], 1)
  mid = jnp.concatenate([s * jnp.eye(k), -s * Jl * p[None]], 1)
  low = jnp.concatenate([-s * Jh, s * jnp.diag(p)], 1)
  return jnp.concatenate([top, mid, low], 0)


def _normal_parts(blocks, r, p, lam):
  """The damping-free parts of the normal equations J^T J dz = -J^T r in (u, y_missing)."""
  F, Jl, Jh = blocks
  m, k = F.shape
  s = jnp.sqrt(lam)
  r_reg, r_l, r_h = r[:m], r[m:m + k], r[m + k:]
  A = Jl * p[None]                                     # observed y entries are constants
  Huy = -lam * (A + Jh.T * p[None])
  gu = F.T @ r_reg + s * r_l - s * Jh.T @ r_h
  gy = p * (-s * A.T @ r_l + s * r_h)
  return dict(A=A, Huy=Huy, gu=gu, gy=gy, Huu=F.T @ F + lam * (jnp.eye(k) + Jh.T @ Jh),
              AA=A @ A.T, HH=Huy @ Huy.T, HA=Huy @ A.T, Agy=A @ gy, Hgy=Huy @ gy)


def _spd_solve(A, B):
  """A^-1 B for symmetric positive definite A [k, k] by Gauss-Jordan elimination (no pivoting
  needed for SPD) in plain jnp ops: jaxlib 0.10's batched LAPACK kernels wait on the XLA CPU
  thread pool they run in, and two of them at once wedged a 2-core run for good."""
  k = A.shape[0]

  def eliminate(i, M):
    row = M[i] / M[i, i]
    return (M - jnp.outer(M[:, i], row)).at[i].set(row)

  return jax.lax.fori_loop(0, k, eliminate, jnp.concatenate([A, B], 1))[:, k:]


def _damped_step(u, y, p, q, lam, mu):
  """The Levenberg-damped Gauss-Newton step (J^T J + mu I) dz = -J^T r: the y block is
  lam A^T A + (lam + mu) I on the missing entries, so Woodbury (C) and the Schur complement on
  u (S) solve it with dim x dim systems only; q = _normal_parts."""
  k = len(u)
  a = 1.0 / (lam + mu)
  C = jnp.eye(k) / lam + a * q['AA']
  CiHA = _spd_solve(C, jnp.concatenate([q['HA'].T, q['Agy'][:, None]], 1))
  S = q['Huu'] + mu * jnp.eye(k) - a * q['HH'] + a * a * q['HA'] @ CiHA[:, :k]
  rhs = -q['gu'] + a * q['Hgy'] - a * a * q['HA'] @ CiHA[:, k]
  du = _spd_solve(S, rhs[:, None])[:, 0]
  x = -q['gy'] - q['Huy'].T @ du
  dy = a * x - a * a * q['A'].T @ _spd_solve(C, (q['A'] @ x)[:, None])[:, 0]
  return u + du, y + p * dy


def _user_gn(u, y, o, p, Ml, Mh, theta_u, c, lam, mus):
  """One user's step: every damping in mus, keeping the lowest loss (or no step)."""
  blocks = jacobian_blocks(u, y, o, Ml, Mh, theta_u)
  r = user_residuals(u, y, o, Ml, Mh, theta_u, c, lam)
  q = _normal_parts(blocks, r, p, lam)
  us, ys = jax.vmap(lambda mu: _damped_step(u, y, p, q, lam, mu))(mus * lam)
  loss = jax.vmap(lambda a, b: jnp.sum(user_residuals(a, b, o, Ml, Mh, theta_u, c, lam) ** 2))
  losses = jnp.concatenate([loss(us, ys), jnp.sum(r ** 2)[None]])
  best = jnp.argmin(jnp.where(jnp.isfinite(losses), losses, jnp.inf))
  return jnp.concatenate([us, u[None]])[best], jnp.concatenate([ys, y[None]])[best]


@jax.jit
def _gn_users(U, Y, o, p, Ml, Mh, theta_u, c, lam, mus):
  step = jax.vmap(_user_gn, in_axes=(0, 1, 1, 1, None, None, None, None, None, None),
                  out_axes=(0, 1))
  return step(U, Y, o, p, Ml, Mh, theta_u, c, lam, mus)


@_float64
def gn_step(U, Y, mask, Ml, Mh, lam, theta_u=None, c=None, mus=DAMPING):
  """One Gauss-Newton step on (U, Y_missing) of Eq. 8 with the mappings and theta fixed (supp.
  Sec. 2); theta_u None: Eq. 9 alone (AEm). Users decouple, so the step is vmapped over them.
  Y [m, n] holds the ratings on mask and the current Y_missing elsewhere; -> (U, Y)."""
  mask = np.asarray(mask, bool)
  Y = np.asarray(Y, np.float64)
  m, n = Y.shape
  o = mask.astype(np.float64) if theta_u is not None else np.zeros((m, n))
  theta_u = np.zeros(U.shape[1]) if theta_u is None else theta_u
  c = np.zeros(m) if c is None else c
  U2, Y2 = _gn_users(np.asarray(U, np.float64), Y, o, (~mask).astype(np.float64), Ml, Mh,
                     jnp.asarray(theta_u, jnp.float64), jnp.asarray(c, jnp.float64), lam,
                     jnp.asarray(mus, jnp.float64))
  return np.asarray(U2), np.where(mask, Y, np.asarray(Y2))    # Y_Omega is kept constant


# ------------------------------------------------------------------------ the fitted model


class Params(NamedTuple):
  """A fitted AEm / joint model. theta = [theta_u (dim); theta_v (D); b] or None (AEm)."""
  U: np.ndarray          # [n, dim] user features
  Y: np.ndarray          # [m, n] ratings with Y_missing completed
  Ml: object             # RBF or Linear: ratings [m] -> u
  Mh: object             # RBF or Linear: u -> ratings [m]
  theta: Optional[np.ndarray]
  history: np.ndarray    # the Eq. 8 (or Eq. 9) loss after each Gauss-Newton step


def _context_basis(V):
  """V [m, D] -> (Vr [m, r], B [D, r]) with V = Vr B^T: the ridge solution theta_v lies in the
  row space of V, so theta is solved on the r <= m columns of Vr (exact, and fast for D >> m)."""
  V = np.asarray(V, np.float64)
  if V.shape[1] <= V.shape[0]:
    return V, None
  a, s, bt = np.linalg.svd(V, full_matrices=False)
  return a * s, bt.T


def fit_theta(U, Y, mask, Vr, lambda_theta=LAMBDA_THETA):
  """Eq. 10's theta by ridge: the normal equations of the rows [u_j; v_i; 1], (i, j) in Omega,
  summed in closed form (bias penalised too: R_f = lambda_theta |theta|^2)."""
  O = np.asarray(mask, np.float64)
  Yo = np.where(mask, Y, 0.0)
  per_user, per_row = O.sum(0), O.sum(1)
  uu = U.T @ (per_user[:, None] * U)
  vv = Vr.T @ (per_row[:, None] * Vr)
  uv = U.T @ O.T @ Vr
  u1, v1 = U.T @ per_user, Vr.T @ per_row
  H = np.block([[uu, uv, u1[:, None]], [uv.T, vv, v1[:, None]],
                [u1[None], v1[None], np.array([[O.sum()]])]])
  g = np.concatenate([U.T @ Yo.sum(0), Vr.T @ Yo.sum(1), [Yo.sum()]])
  return np.linalg.solve(H + lambda_theta * np.eye(len(g)), g)


def _split_theta(theta, k):
  return theta[:k], theta[k:-1], theta[-1]


def _fit_mappings(U, Y, mapping, d, lambda_R, rng, previous):
  """The two AE regressions of supp. Sec. 2 between the users' ratings (rows of Y^T) and U."""
  if mapping == 'linear':
    return fit_linear(Y.T, U, lambda_R), fit_linear(U, Y.T, lambda_R)
  init_l, init_h = (None, None) if previous is None else (previous[0].centres,
                                                          previous[1].centres)
  return (fit_rbf(Y.T, U, d, lambda_R, rng, init=init_l),
          fit_rbf(U, Y.T, d, lambda_R, rng, init=init_h))


@_float64
def recon_loss(U, Y, Ml, Mh, lambda_R=LAMBDA_R):
  """Eq. 9: |U - M_l(Y)|^2 + |Y - M_h(U)|^2 + lambda_R (|W_l|^2 + |W_h|^2)."""
  el = U - np.asarray(mapping_apply(Ml, Y.T))
  eh = Y.T - np.asarray(mapping_apply(Mh, U))
  return float((el ** 2).sum() + (eh ** 2).sum() + lambda_R * (
      (np.asarray(Ml.W) ** 2).sum() + (np.asarray(Mh.W) ** 2).sum()))


def eq8_loss(U, Y, mask, V, Ml, Mh, theta, lam, lambda_R=LAMBDA_R, lambda_theta=LAMBDA_THETA):
  """Eq. 8: L_reg (Eq. 10) + lam L_recon (Eq. 9)."""
  tu, tv, b = _split_theta(np.asarray(theta), U.shape[1])
  f = (U @ tu)[None] + (np.asarray(V, np.float64) @ tv)[:, None] + b
  reg = ((np.where(mask, Y - f, 0.0)) ** 2).sum() + lambda_theta * (theta ** 2).sum()
  return float(reg + lam * recon_loss(U, Y, Ml, Mh, lambda_R))


def _init(Y, mask, dim):
  """supp. Sec. 2: Y_missing from convex MC, U from a dim-d Laplacian eigenmap of it."""
  Yc = svt_complete(Y, mask)
  return laplacian_eigenmap(Yc, dim), Yc


@_one_blas_thread
def aem_fit(Y, mask, dim=DIM, d=NUM_BASIS, lambda_R=LAMBDA_R, iters=10, mapping='rbf',
            rng=None):
  """Carreira et al.'s auto-encoder with missing values: alternately the two mappings given
  (U, Y_missing), then a Gauss-Newton step on Eq. 9 given the mappings. -> Params (theta None)."""
  rng = np.random.default_rng(0) if rng is None else rng
  mask = np.asarray(mask, bool)
  U, Yc = _init(Y, mask, dim)
  maps, history = None, []
  for _ in range(iters):
    maps = _fit_mappings(U, Yc, mapping, d, lambda_R, rng, maps)
    U, Yc = gn_step(U, Yc, mask, *maps, 1.0)        # Eq. 9 alone: its weight is immaterial
    history.append(recon_loss(U, Yc, *maps, lambda_R))
  maps = _fit_mappings(U, Yc, mapping, d, lambda_R, rng, maps)
  return Params(U, Yc, *maps, None, np.asarray(history))


@_one_blas_thread
def joint_fit(Y, mask, V, mapping='rbf', dim=DIM, d=NUM_BASIS, lambda_R=LAMBDA_R,
              lambda_theta=LAMBDA_THETA, iters=10, lam=None, rng=None):
  """Eqs. 8-10 by supp. Sec. 2's alternation: (M_l, M_h, theta) by three least-squares fits,
  then (U, Y_missing) by a Gauss-Newton step on Eq. 8; lam = 1/(nm) (Sec. 4). -> Params."""
  rng = np.random.default_rng(0) if rng is None else rng
  mask = np.asarray(mask, bool)
  m, n = mask.shape
  lam = 1.0 / (n * m) if lam is None else lam
  U, Yc = _init(Y, mask, dim)
  Vr, B = _context_basis(V)
  maps, history = None, []
  for _ in range(iters):          # one Gauss-Newton step per alternation (our choice)
    maps = _fit_mappings(U, Yc, mapping, d, lambda_R, rng, maps)
    theta = fit_theta(U, Yc, mask, Vr, lambda_theta)
    tu, tv, b = _split_theta(theta, dim)
    U, Yc = gn_step(U, Yc, mask, *maps, lam, tu, Vr @ tv + b)
    history.append(eq8_loss(U, Yc, mask, Vr, *maps, theta, lam, lambda_R, lambda_theta))
  maps = _fit_mappings(U, Yc, mapping, d, lambda_R, rng, maps)
  tu, tv, b = _split_theta(fit_theta(U, Yc, mask, Vr, lambda_theta), dim)
  theta = np.concatenate([tu, tv if B is None else B @ tv, [b]])
  return Params(U, Yc, *maps, theta, np.asarray(history))


def joint_predict(params: Params, V_rows, user_idx):
  """Eq. 10's regressor f(v, u_j) = theta^T [u_j; v; 1] for context rows V_rows [N, D] and
  their users user_idx [N] (or one int)."""
  tu, tv, b = _split_theta(params.theta, params.U.shape[1])
  u = params.U[np.broadcast_to(np.asarray(user_idx), (len(V_rows),))]
  return u @ tu + np.asarray(V_rows, np.float64) @ tv + b


def joint_complete(params: Params, rows, cols):
  """The model's ratings of entries (rows, cols) of the fitted matrix: its completed Y (the
  auto-encoder tower's Y_missing, Fig. 9c). For ranking one user's cinemagraphs this is the
  personal prediction: f adds theta_u.u_j to every rating of user j, so f ranks them alike for
  all users."""
  return params.Y[np.asarray(rows), np.asarray(cols)]


@_float64
def user_feature(params: Params, y_partial):
  """u of a new user from partial ratings y_partial [m] (NaN = missing): the missing entries
  filled from the known user nearest on the given ratings (Sec. 4, "finding a similar other
  user"), then M_l."""
  y = np.asarray(y_partial, np.float64)
  given = ~np.isnan(y)
  gaps = ((params.Y[given] - y[given, None]) ** 2).mean(0)
  filled = np.where(given, y, params.Y[:, int(np.argmin(gaps))])
  return rbf_apply(params.Ml, filled[None])[0]
