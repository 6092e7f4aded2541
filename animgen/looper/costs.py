"""The video-loop energy of Oh et al. 2017 (Eq. 1-7, on Liao et al. 2013), vectorised over pixels.

A label at pixel x is (p, s): period p (1 = static) and start s; the loop shows V(x, phi(x, t)),
phi(x, t) = s + ((t - s) mod p). Photometric and semantic terms are folded into one signal
U = [sqrt((1-w)/3) V, sqrt(w/K) F], so that every term is a sum of squared norms of U
differences (docs/looper.md, "Energy"); `unary` and `pairwise` are what the solver calls.
"""
import dataclasses
import functools
import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Params:
  """Oh supp. parameter table."""
  alpha1: float = 1.0            # E_label weight
  alpha2: float = 15.0           # E_spa weight
  w: float = 0.2                 # semantic balance in E_temp, E_spa
  lambda_t: float = 125.0        # gamma_t on natural pixels; half of it elsewhere
  lambda_s: float | None = None  # None: 10/sqrt(K) with semantics, 100 (Liao) without
  alpha_inf: float = 1000.0      # short-period penalty on natural pixels
  p_short: int = 20
  lambda_sta: float = 100.0
  alpha_sta: float = 0.03        # doubled by callers for a user-edited target map
  sigma_x: float = 0.9           # N(.) in E_static, space
  sigma_t: float = 1.2           # N(.) in E_static, time
  q: int = 4                     # periods and starts are multiples of q


@flax.struct.dataclass
class Problem:
  """Everything per pixel that the cost terms read. Per-pixel arrays end in (H, W)."""
  # Time tables are pixel-major ([H, W, time, ...]): a per-pixel gather then reads one
  # contiguous slice per pixel (~5x faster on XLA:CPU than gathering [T, C, H, W] elementwise).
  U: jax.Array             # [H, W, T, C] folded signal minus its temporal mean per pixel
  cum: jax.Array           # [H, W, T+1, C+1] prefix sums over time of [U, ||U||^2]
  lag: jax.Array           # [n_lags, n_f, H, W] G_L(f), L = q, 2q, .. < T; f = 0, q, .. <= T
                           # (time-major: one-element gathers are faster so)
  gamma_t: jax.Array       # [H, W]
  gamma_right: jax.Array   # [H, W-1] gamma_s of the edge (i, j) - (i, j+1)
  gamma_down: jax.Array    # [H-1, W] gamma_s of the edge (i, j) - (i+1, j)
  e_static: jax.Array      # [H, W] alpha_sta min(1, ...) * pi_ID
  e_static_all: jax.Array  # [H, W] the same before the target mask (for `retarget`)
  natural: jax.Array       # [H, W] bool
  P: jax.Array             # [L, H, W] int32 period of label index lambda at x
  S: jax.Array             # [L, H, W] int32 start of label index lambda at x
  params: Params = flax.struct.field(pytree_node=False, default=Params())


@functools.lru_cache(maxsize=None)
def _merge_network(n):
  """Comparators (a, b), a < b, of Batcher's odd-even merge sort for n inputs (any n)."""
  pairs, p = [], 1
  while p < n:
    k = p
    while k >= 1:
      for j in range(k % p, n - k, 2 * k):
        for i in range(min(k, n - j - k)):
          if (i + j) // (2 * p) == (i + j + k) // (2 * p):
            pairs.append((i + j, i + j + k))
      k //= 2
    p *= 2
  return tuple(pairs)


def _median_rows(rows):
  """Median of a list of same-shape arrays, elementwise, by a sorting network."""
  rows = list(rows)
  n = len(rows)
  for a, b in _merge_network(n):
    rows[a], rows[b] = jnp.minimum(rows[a], rows[b]), jnp.maximum(rows[a], rows[b])
  return 0.5 * (rows[(n - 1) // 2] + rows[n // 2])


# Longest time axis given to the sorting network: its compile time grows ~n log^2 n (2 s at
# n = 64, 9 s at 128 for the two medians of a MAD, and XLA's fusion pass runs out of memory near
# 300); longer axes sort. At 960x540 one median of 89 frames takes 0.07 s so, 4.6 s by XLA's sort.
_NETWORK_MAX = 128


def median0(x):
  """jnp.median(x, axis=0), exactly. For n <= 128 by a sorting network over the time axis: the
  ~500 min/max comparators of n = 60 inputs fuse into one elementwise kernel (only those that
  reach the two middle outputs are kept), ~50x faster than XLA:CPU's sort at 256x256."""
  if x.shape[0] > _NETWORK_MAX:
    return jnp.median(x, axis=0)
  return _median_rows(x[i] for i in range(x.shape[0]))


def mads(*ds):
  """Median absolute deviation over axis 0 (Liao 2013) of each array; arrays with the same
  length along axis 0 share one kernel. Both medians are elementwise over pixels (no [T, ...]
  broadcast of the first), so XLA fuses them without recomputing the first per frame."""
  out = [None] * len(ds)
  for n in sorted({d.shape[0] for d in ds}):
    group = [i for i, d in enumerate(ds) if d.shape[0] == n]
    flat = jnp.concatenate([ds[i].reshape(n, -1) for i in group], axis=1)
    if n > _NETWORK_MAX:
      mad = jnp.median(jnp.abs(flat - jnp.median(flat, axis=0)), axis=0)
    else:
      rows = [flat[t] for t in range(n)]
      m = _median_rows(rows)
      mad = _median_rows(jnp.abs(r - m) for r in rows)
    sizes = np.cumsum([ds[i][0].size for i in group])[:-1]
    for i, part in zip(group, jnp.split(mad, sizes)):
      out[i] = part.reshape(ds[i].shape[1:])
  return out


def _norm(x):
  return jnp.sqrt(jnp.sum(x * x, axis=-1))


def _blur(x, sigma, axis):
  """1-D Gaussian blur along `axis`, radius ceil(3 sigma), edge (replicate) padding."""
  r = math.ceil(3 * sigma)
  k = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (r, r)
  xp = jnp.pad(x, pad, mode='edge')
  n = x.shape[axis]
  return sum(ki / sum(k) * jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i, ki in enumerate(k))


def prefix0(x):
  """Prefix sums over axis 0 with a leading zero: [T, ...] -> [T+1, ...]. A sequential scan:
  XLA:CPU lowers jnp.cumsum to a windowed reduction, O(T^2) adds (4x slower at T = 60)."""
  step = lambda c, v: (c + v, c + v)
  return jnp.concatenate([jnp.zeros_like(x[:1]), jax.lax.scan(step, jnp.zeros_like(x[0]), x)[1]])


# Pixels per tile of `_lag_tables`: one tile's time series (T x C floats each) stay in cache
# while every lag is taken from them.
_LAG_TILE = 1024


def _lag_tables(U, q):
  """G_L(f) = sum_{f' < f} ||U(f') - U(f'+L)||^2 at f = 0, q, .. <= T, for L = q, 2q, .. < T,
  from the pixel-major U [H, W, T, C] -> [n_lags, n_f, H, W]. Computed per tile of pixels
  (`lax.map`), all lags of a tile at once: the video is read once, not once per lag."""
  H, W, T, C = U.shape
  nb = T // q  # f = 0, q, .., nb q: prefix sums of q-frame block sums
  lags = range(q, T, q)
  if not len(lags):
    return jnp.zeros((0, nb + 1, H, W), U.dtype)
  n = H * W
  tile = min(_LAG_TILE, n)
  x = jnp.pad(U.reshape(n, T, C), ((0, -n % tile), (0, 0), (0, 0)))

  def one(x):  # [tile, T, C] -> [n_lags, nb + 1, tile]
    x = jnp.transpose(x, (1, 2, 0))   # pixels innermost: the arithmetic runs along them
    rows = []
    for L in lags:
      d = jnp.sum((x[L:] - x[:-L]) ** 2, axis=1)
      # zeros past T - L: the same as clamping f at T - L (nb q > T - q >= T - L)
      d = jnp.pad(d, ((0, nb * q - (T - L)), (0, 0)))
      rows.append(d.reshape(nb, q, tile).sum(1))
    blocks, run = jnp.stack(rows), [jnp.zeros((len(lags), tile), U.dtype)]
    for b in range(nb):
      run.append(run[-1] + blocks[:, b])
    return jnp.stack(run, 1)
  out = jax.lax.map(one, x.reshape(-1, tile, T, C))         # [n_tiles, n_lags, nb + 1, tile]
  out = jnp.moveaxis(out, 0, 2).reshape(len(lags), nb + 1, -1)[..., :n]
  return out.reshape(len(lags), nb + 1, H, W)


def build_problem(video, params: Params = Params(), semantics=None, natural=None,
                  target=None) -> Problem:
  """Problem for video [T, H, W, 3] in [0, 1].

  semantics: F [T, H, W, K] or None; natural: bool [H, W] union of natural-class candidate maps
  (None: none); target: bool [H, W] candidate map pi_ID (None: all, Liao's static term).
  The label tables hold one static label (1, 0) until `with_labels`.
  """
  V = jnp.asarray(video, jnp.float32)
  _, H, W, _ = V.shape
  natural = jnp.zeros((H, W), bool) if natural is None else jnp.asarray(natural, bool)
  F = None if semantics is None else jnp.asarray(semantics, jnp.float32)
  return retarget(_build(V, F, natural, params), target)


@functools.partial(jax.jit, static_argnames='params')
def _build(V, F, natural, params):
  """build_problem on arrays (natural given, no target yet)."""
  _, H, W, _ = V.shape
  # Eq. 7: N = V blurred with sigma_t in time, sigma_x in space (V centred in time first: the
  # same differences N(t+1) - N(t), less float32 cancellation)
  N = V - jnp.mean(V, axis=0)
  N = _blur(_blur(_blur(N, params.sigma_t, 0), params.sigma_x, 1), params.sigma_x, 2)
  temporal = (_norm(V[1:] - V[:-1]), _norm(N[1:] - N[:-1]))
  if F is None:
    U = math.sqrt(1 / 3) * V
    lambda_s = 100.0 if params.lambda_s is None else params.lambda_s
    # Liao 2013: gamma_s = 1 / (1 + lambda_s MAD_t ||V(x,t) - V(z,t)||)
    mad_v, mad_n, right, down = mads(*temporal, _norm(V[:, :, :-1] - V[:, :, 1:]),
                                      _norm(V[:, :-1] - V[:, 1:]))
  else:
    F = F / jnp.maximum(jnp.sum(F, axis=-1, keepdims=True), 1e-12)  # Oh footnote 5
    K = F.shape[-1]
    U = jnp.concatenate([math.sqrt((1 - params.w) / 3) * V, math.sqrt(params.w / K) * F], -1)
    lambda_s = 10 / math.sqrt(K) if params.lambda_s is None else params.lambda_s
    # Eq. 5: h^ = histogram over time of argmax_k F, normalised to sum 1
    h = jnp.mean(jax.nn.one_hot(jnp.argmax(F, axis=-1), K), axis=0)
    right, down = _norm(h[:, :-1] - h[:, 1:]), _norm(h[:-1] - h[1:])
    mad_v, mad_n = mads(*temporal)
  gamma_right, gamma_down = 1 / (1 + lambda_s * right), 1 / (1 + lambda_s * down)
  # centring changes no distance and keeps the float32 prefix sums well conditioned
  U = U - jnp.mean(U, axis=0)                                                   # [T, H, W, C]
  cum = prefix0(jnp.concatenate([U, jnp.sum(U * U, axis=-1, keepdims=True)], axis=-1))
  pixel_major = lambda a: jnp.moveaxis(a, 0, 2)

  # Eq. 3
  lambda_t = jnp.where(natural, params.lambda_t, params.lambda_t / 2)
  gamma_t = 1 / (1 + lambda_t * mad_v)
  e_all = params.alpha_sta * jnp.minimum(1.0, params.lambda_sta * mad_n)
  U = pixel_major(U)
  return Problem(
      U=U, cum=pixel_major(cum), lag=_lag_tables(U, params.q), gamma_t=gamma_t,
      gamma_right=gamma_right, gamma_down=gamma_down, e_static=e_all, e_static_all=e_all,
      natural=natural,
      P=jnp.ones((1, H, W), jnp.int32), S=jnp.zeros((1, H, W), jnp.int32), params=params)


def retarget(problem: Problem, target) -> Problem:
  """The problem for another candidate map pi_ID (bool [H, W]; None: all pixels)."""
  if target is None:
    return problem.replace(e_static=problem.e_static_all)
  return problem.replace(e_static=problem.e_static_all * jnp.asarray(target, jnp.float32))


def with_labels(problem: Problem, P, S) -> Problem:
  """The problem with label tables P, S ([L, H, W]: label lambda at x is (P, S)[lambda, x])."""
  return problem.replace(P=jnp.asarray(P, jnp.int32), S=jnp.asarray(S, jnp.int32))


def _at(table, i):
  """table [N, ..., h, w] at the per-pixel index i [h, w] along axis 0 -> [..., h, w]."""
  i = jnp.clip(i, 0, table.shape[0] - 1)
  i = i.reshape((1,) * (table.ndim - i.ndim) + i.shape)
  return jnp.take_along_axis(table, i, axis=0)[0]


def _px(table, i):
  """Pixel-major table [h, w, N, ...] at the per-pixel index i [h, w] (axis 2) -> [h, w, ...]."""
  i = jnp.clip(i, 0, table.shape[2] - 1)
  i = i.reshape(i.shape + (1,) * (table.ndim - 2))
  return jnp.take_along_axis(table, i, axis=2)[:, :, 0]


def _sqdist(a, b):
  """Squared norm over the channel axis of [h, w, C] arrays."""
  return jnp.sum((a - b) ** 2, axis=-1)


def temporal_cost(problem: Problem, p, s):
  """E_temp (Eq. 2, 3) for per-pixel labels p, s ([H, W]); 0 for static pixels (Liao 2013)."""
  U = problem.U
  T = U.shape[2]
  fits = lambda a: (a >= 0) & (a + p < T)
  first = jnp.where(fits(s), s, s - 2)  # our choice at s + p = T: mirror of the s = 0 rule
  second = jnp.where(fits(s - 1), s - 1, s + 1)  # docs: (s+1, s+p+1) at s = 0
  first, second = jnp.where(fits(first), first, second), jnp.where(fits(second), second, first)
  cost = 0.0
  for a in (first, second):
    # p = T: no pair fits; clamping compares the two frames at the seam, U(0) and U(T-1)
    a = jnp.clip(a, 0, jnp.maximum(T - 1 - p, 0))
    cost = cost + _sqdist(_px(U, a), _px(U, jnp.minimum(a + p, T - 1)))
  return jnp.where(p > 1, problem.gamma_t * cost, 0.0)


def label_cost(problem: Problem, p):
  """E_label (Eq. 6) for per-pixel periods p ([H, W])."""
  short = (p > 1) & (p <= problem.params.p_short) & problem.natural
  return jnp.where(p == 1, problem.e_static, jnp.where(short, problem.params.alpha_inf, 0.0))


def unary(problem: Problem, lab):
  """E_temp + alpha1 E_label of giving pixel x the label index lab[x] ([H, W])."""
  p, s = _at(problem.P, lab), _at(problem.S, lab)
  return temporal_cost(problem, p, s) + problem.params.alpha1 * label_cost(problem, p)


# Lag steps that every element takes in `_lag_sum`: two neighbours with equal periods need at
# most two. The elements with more (unequal periods), and the pairs with a still label, are few
# away from period boundaries: they are evaluated on their own, gathered into chunks (`_sparse`).
_DENSE_STEPS = 2
_CHUNK = 4096


def _sparse(mask, fn, args, dtype, dense=None):
  """fn(valid, *args) on the elements where the flat bool `mask` is set, 0 elsewhere: only those
  elements are evaluated, gathered into chunks of _CHUNK (valid [chunk] marks the chunk's real
  elements; args are flat arrays of mask's length, given to fn gathered). dense(): the same
  values on all elements at once, taken instead when more than a quarter are set (chunks cost
  more than a dense pass then); outside vmap only one of the two runs."""
  size = mask.shape[0]
  chunk = min(_CHUNK, size)

  def body(c, total, order):
    idx = jax.lax.dynamic_slice(order, (c * chunk,), (chunk,))
    valid = idx < size
    value = fn(valid, *(a[jnp.minimum(idx, size - 1)] for a in args))
    return total.at[idx].add(jnp.where(valid, value, 0), mode='drop')
  n = jnp.sum(mask)

  def chunked():
    order = jnp.nonzero(mask, size=-(-size // chunk) * chunk, fill_value=size)[0]
    return jax.lax.fori_loop(0, -(-n // chunk), lambda c, t: body(c, t, order), zeros())
  zeros = lambda: jnp.zeros(size, dtype)
  if dense is None:
    return jax.lax.cond(n > 0, chunked, zeros)
  full = lambda: jnp.where(mask, dense(), 0).astype(dtype)
  return jax.lax.switch((n > 0).astype(jnp.int32) + (4 * n > size), (zeros, chunked, full))


def _floordiv(a, b):
  """a // b of int arrays by a float32 division, exact while |a| + b < 2^24: the quotient's
  rounding error is below 1/b, its distance to the next integer. XLA:CPU does not vectorise an
  integer division by a per-element divisor (~10x slower at 256x256)."""
  return jnp.floor(a.astype(jnp.float32) / b.astype(jnp.float32)).astype(jnp.int32)


@functools.lru_cache(maxsize=None)
def _gcd_table(n):
  """gcd(i, j) for 0 <= i, j <= n: a lookup instead of jnp.gcd's Euclid loop over the grid."""
  return np.gcd.outer(np.arange(n + 1), np.arange(n + 1)).astype(np.int32)


def _lag_sum(G, q, g, p1, s1, p2, s2, both, pixels):
  """Sum of ||U(i) - U(j)||^2 over i in [s1, s1+p1), j in [s2, s2+p2), j - i = L != 0 with
  g | L, from the lag tables G [n_lags, n_f, H, W], summed over the grid pixels `pixels` (a
  list of flat pixel-index arrays of the labels' shape, e.g. both pixels of an edge); 0 where
  `both` is False.

  Each element visits only its own lags: the multiples of its g between s2 - s1 - p1 and
  s2 + p2 - s1 (where the two windows overlap), at most (p1 + p2) / g of them. All elements
  take the first _DENSE_STEPS together and the few with more go on in chunks (`_sparse`), so a
  few boundary pixels with ~20 steps do not make every pixel of the grid take ~20."""
  n_lags, n_f = G.shape[:2]
  flat = G.reshape(n_lags * n_f, -1)
  first = -_floordiv(s1 + p1 - 1 - s2, g) * g     # the smallest multiple of g >= s2 - s1 - p1 + 1
  count = jnp.where(both, _floordiv(s2 + p2 - 1 - s1 - first, g) + 1, 0)
  args = [jnp.ravel(a) for a in (first, count, g, p1, s1, p2, s2, *pixels)]

  def value(k, first, count, g, p1, s1, p2, s2, *pix):
    L = first + k * g
    # L > 0: i in [s1, s1+p1) with i + L in [s2, s2+p2); L < 0: the same with the labels swapped
    pos = L > 0
    sa, pa, sb, pb = (jnp.where(pos, a, b) for a, b in ((s1, s2), (p1, p2), (s2, s1), (p2, p1)))
    m = jnp.abs(L)
    lo, hi = jnp.maximum(sa, sb - m), jnp.minimum(sa + pa, sb + pb - m)
    row = jnp.clip(m // q - 1, 0, n_lags - 1) * n_f
    top, bottom = row + jnp.clip(hi // q, 0, n_f - 1), row + jnp.clip(lo // q, 0, n_f - 1)
    v = sum(flat[top, x] - flat[bottom, x] for x in pix)
    return jnp.where((k < count) & (m > 0) & (hi > lo), v, 0.0)

  steps = lambda lo, hi, sub, total: jax.lax.fori_loop(
      lo, hi, lambda k, t: t + value(k, *sub), total)
  dense = steps(0, jnp.minimum(jnp.max(count, initial=0), _DENSE_STEPS), args,
                jnp.zeros(args[0].shape, G.dtype))

  def tail(valid, *sub):
    sub = list(sub)
    sub[1] = jnp.where(valid, sub[1], 0)
    return steps(_DENSE_STEPS, jnp.max(sub[1]), sub, jnp.zeros(valid.shape, G.dtype))
  rest = lambda: steps(_DENSE_STEPS, jnp.max(count, initial=0), args, jnp.zeros_like(dense))
  return (dense + _sparse(args[1] > _DENSE_STEPS, tail, args, G.dtype, rest)).reshape(p1.shape)


def pair_distance(problem: Problem, p1, s1, p2, s2, rows=slice(None), cols=slice(None),
                  loops_only=False):
  """D_y(l1, l2) = (1/LCM) sum_{t < LCM} ||U(y, phi1(t)) - U(y, phi2(t))||^2 at the pixels
  y = [rows, cols] of the grid; labels are arrays of that shape. Loops (p > 1) need s and p
  multiples of q; static starts may be any frame. loops_only: every label loops (stage 1), so
  the still-pixel cases are skipped."""
  return _pair_sum(problem, p1, s1, p2, s2, [(rows, cols)], loops_only)


def _pair_sum(problem: Problem, p1, s1, p2, s2, sides, loops_only=False):
  """Sum of `pair_distance` over the pixel sets `sides` ([(rows, cols), ..]) with the same
  labels, in one pass over the labels."""
  grid = problem.gamma_t.shape
  U, cum, q = problem.U, problem.cum, problem.params.q
  T = U.shape[2]
  # every (i, j) with i = j (mod g) occurs once per LCM
  g = jnp.asarray(_gcd_table(T))[jnp.clip(p1, 0, T), jnp.clip(p2, 0, T)]
  both = (p1 > 1) & (p2 > 1)  # pairs with a still pixel take no lag steps
  work = (p1 != p2) | (s1 != s2)   # D(l, l) = 0: equal labels take no work at all
  index = jnp.arange(grid[0] * grid[1], dtype=jnp.int32).reshape(grid)
  pixels = [index[rows, cols] for rows, cols in sides]
  loops = _lag_sum(problem.lag, q, jnp.maximum(g, 1), p1, s1, p2, s2, both & work, pixels)
  loops = loops * jnp.maximum(g, 1) / (p1 * p2).astype(loops.dtype)  # / LCM = g / (p1 p2)
  if loops_only:
    return loops
  # A still label (p = 1) with frame f against the window [s, s + p) of the other label (p = 1
  # if it is still too): (1/p) sum_j ||U(f) - U(j)||^2 = ||U(f)||^2 - 2 U(f).mean_j U(j)
  # + mean_j ||U(j)||^2 from the prefix sums; two still labels take the exact difference.
  still1 = p1 == 1
  frame = jnp.where(still1, s1, s2)
  s, p = jnp.where(still1, s2, s1), jnp.where(still1, p2, p1)
  c = U.shape[-1]
  U_px, cum_px = U.reshape((-1,) + U.shape[2:]), cum.reshape((-1,) + cum.shape[2:])

  def one_still(u, win, u_s, p):
    one = jnp.sum(u * u - 2 * u * win[..., :c] / p[..., None], axis=-1) + win[..., c] / p
    return jnp.where(p == 1, _sqdist(u, u_s), jnp.maximum(one, 0.0))

  def chunk(_, frame, s, p, *pix):   # the elements with a still label, gathered
    at = lambda table, x, f: table[x, jnp.clip(f, 0, table.shape[1] - 1)]
    return sum(one_still(at(U_px, x, frame), at(cum_px, x, s + p) - at(cum_px, x, s),
                         at(U_px, x, s), p) for x in pix)

  def dense():   # every element: gathered at full size, then cropped (cropping the
    total = 0.0  # [H, W, T, C] tables first would copy them)
    for rows, cols in sides:
      at = lambda table, i: _px(table, jnp.zeros(grid, i.dtype).at[rows, cols].set(i))[rows, cols]
      total = total + one_still(at(U, frame), at(cum, s + p) - at(cum, s), at(U, s), p)
    return total.ravel()
  args = [jnp.ravel(a) for a in (frame, s, p, *pixels)]
  still = _sparse(jnp.ravel(~both & work), chunk, args, U.dtype, dense)
  return jnp.where(both, loops, still.reshape(p1.shape))


def _sides(axis):
  """(rows, cols) of the first and of the second pixel of every edge along `axis`."""
  head, tail, every = slice(None, -1), slice(1, None), slice(None)
  return ((head, every), (tail, every)) if axis == 0 else ((every, head), (every, tail))


def spatial_cost(problem: Problem, p_x, s_x, p_z, s_z, axis, loops_only=False):
  """E_spa (Eq. 4, 5) of the edges along `axis` (1: right, [H, W-1]; 0: down, [H-1, W]) with
  labels (p_x, s_x) on their first pixel and (p_z, s_z) on their second."""
  gamma = problem.gamma_right if axis == 1 else problem.gamma_down
  return gamma * _pair_sum(problem, p_x, s_x, p_z, s_z, _sides(axis), loops_only)


def pairwise(problem: Problem, la, lb, axis, loops_only=False):
  """alpha2 E_spa of the edges along `axis` with label indices la on their first pixel and lb on
  their second (edge-shaped int arrays)."""
  (rx, cx), (rz, cz) = _sides(axis)
  px, sx = _at(problem.P[:, rx, cx], la), _at(problem.S[:, rx, cx], la)
  pz, sz = _at(problem.P[:, rz, cz], lb), _at(problem.S[:, rz, cz], lb)
  return problem.params.alpha2 * spatial_cost(problem, px, sx, pz, sz, axis, loops_only)


def pairwise_loops(problem: Problem, la, lb, axis):
  """`pairwise` for label tables in which every label loops (p > 1, stage 1): the same values,
  without evaluating the still-pixel cases."""
  return pairwise(problem, la, lb, axis, loops_only=True)
