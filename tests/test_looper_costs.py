"""animgen.looper.costs against direct per-pixel formulas of Oh et al. 2017, Eq. 1-7."""
import copy
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animgen.looper import costs

T, H, W, K, Q = 24, 5, 5, 4, 4
LOOPS = (8, 12, 16, 20, 24)  # minimum period 8 so that LCMs go up to 120
TOL = dict(rtol=1e-5, atol=1e-7)
EDGES = {1: [((i, j), (i, j + 1)) for i in range(H) for j in range(W - 1)],
         0: [((i, j), (i + 1, j)) for i in range(H - 1) for j in range(W)]}


# Oh et al. 2017 supplementary parameter table, transcribed: the reference below uses these
# numbers, the code under test its own defaults (costs.Params()), so every test of this file
# also pins the defaults to the paper (lambda_s = 10/sqrt(K) and Liao's 100 are in Ref.gamma_s)
PAPER = types.SimpleNamespace(alpha1=1.0, alpha2=15.0, w=0.2, lambda_t=125.0, alpha_inf=1000.0,
                              p_short=20, lambda_sta=100.0, alpha_sta=0.03, sigma_x=0.9,
                              sigma_t=1.2)


class Ref:
  """The cost terms written per pixel straight from the paper, in float64."""

  def __init__(self, video, semantics, natural, target, params):
    self.V, self.natural, self.target, self.pr = video.astype(np.float64), natural, target, params
    self.F = None
    if semantics is not None:
      F = semantics.astype(np.float64)
      self.F = F / F.sum(-1, keepdims=True)

  def sq(self, y, i, j):
    """(1-w) Phi_V + w Phi_F between frames i and j of pixel y (one pair of Eq. 2, 4)."""
    dv = np.sum((self.V[i, y[0], y[1]] - self.V[j, y[0], y[1]]) ** 2) / 3
    if self.F is None:
      return dv
    df = np.sum((self.F[i, y[0], y[1]] - self.F[j, y[0], y[1]]) ** 2) / K
    return (1 - self.pr.w) * dv + self.pr.w * df

  def gamma_t(self, y):
    d = [np.linalg.norm(self.V[t + 1, y[0], y[1]] - self.V[t, y[0], y[1]]) for t in range(T - 1)]
    lam = self.pr.lambda_t if self.natural[y] else self.pr.lambda_t / 2
    return 1 / (1 + lam * mad(d))

  def gamma_s(self, x, z):
    if self.F is None:
      d = [np.linalg.norm(self.V[t, x[0], x[1]] - self.V[t, z[0], z[1]]) for t in range(T)]
      return 1 / (1 + 100 * mad(d))
    hist = lambda y: np.bincount(self.F[:, y[0], y[1]].argmax(-1), minlength=K) / T
    return 1 / (1 + 10 / math.sqrt(K) * np.linalg.norm(hist(x) - hist(z)))

  def temporal(self, y, p, s):
    if p == 1:
      return 0.0
    if p == T:  # no pair inside the clip: the frames joined at the seam
      pairs = [0, 0]
      ends = [T - 1, T - 1]
    else:
      first = s if s + p < T else (s - 2 if s >= 2 else s - 1)
      second = s - 1 if s > 0 else (s + 1 if s + p + 1 < T else s)
      pairs, ends = [first, second], [first + p, second + p]
    return self.gamma_t(y) * sum(self.sq(y, a, b) for a, b in zip(pairs, ends))

  def e_static(self):
    N = gaussian_neighbourhood(self.V, self.pr.sigma_x, self.pr.sigma_t)
    out = np.zeros((H, W))
    for i in range(H):
      for j in range(W):
        d = [np.linalg.norm(N[t + 1, i, j] - N[t, i, j]) for t in range(T - 1)]
        out[i, j] = self.pr.alpha_sta * min(1.0, self.pr.lambda_sta * mad(d))
    return out

  def label(self, y, p, e_static):
    if p == 1:
      return e_static[y] * self.target[y]
    if p <= self.pr.p_short:
      return self.pr.alpha_inf * self.natural[y]
    return 0.0

  def D(self, y, p1, s1, p2, s2):
    """Eq. 4 for one pixel by iterating over one common period of the two loops."""
    lcm = math.lcm(p1, p2)
    phi = lambda t, p, s: s + (t - s) % p
    return sum(self.sq(y, phi(t, p1, s1), phi(t, p2, s2)) for t in range(lcm)) / lcm

  def spa(self, x, z, lx, lz):
    return self.gamma_s(x, z) * (self.D(x, *lx, *lz) + self.D(z, *lx, *lz))


def mad(d):
  d = np.asarray(d)
  return np.median(np.abs(d - np.median(d)))


def gaussian_neighbourhood(V, sigma_x, sigma_t):
  """Gaussian-weighted spatio-temporal average, radius ceil(3 sigma), edge-replicated borders."""
  rt, rx = math.ceil(3 * sigma_t), math.ceil(3 * sigma_x)
  t, i, j = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), indexing='ij')
  out, total = 0.0, 0.0
  for dt in range(-rt, rt + 1):
    for di in range(-rx, rx + 1):
      for dj in range(-rx, rx + 1):
        wgt = math.exp(-dt ** 2 / (2 * sigma_t ** 2) - (di ** 2 + dj ** 2) / (2 * sigma_x ** 2))
        out = out + wgt * V[np.clip(t + dt, 0, T - 1), np.clip(i + di, 0, H - 1),
                            np.clip(j + dj, 0, W - 1)]
        total += wgt
  return out / total


def draw_labels(rng, shape):
  """Random labels: loops with s + p <= T, statics at any multiple of q."""
  p = rng.choice((1,) + LOOPS, shape)
  top = np.where(p == 1, T - 1, T - p) // Q
  return p.astype(np.int32), (Q * (rng.integers(0, 1000, shape) % (top + 1))).astype(np.int32)


@pytest.fixture(scope='module', params=[True, False], ids=['semantic', 'liao'])
def case(request):
  rng = np.random.default_rng(7 if request.param else 8)
  # flicker + noise of a per-pixel amplitude: E_static clips at some pixels, not at others
  amp = np.exp(rng.uniform(np.log(1e-3), np.log(0.4), (1, H, W, 1)))
  wave = rng.standard_normal((T, 1, 1, 3)) + 0.5 * rng.standard_normal((T, H, W, 3))
  video = np.clip(0.5 + amp * wave, 0, 1).astype(np.float32)
  semantics = None
  if request.param:  # unnormalised responses: build_problem renormalises per pixel
    semantics = (rng.random((T, H, W, K)) * rng.uniform(0.5, 2, (1, H, W, 1))).astype(np.float32)
  natural, target = rng.random((H, W)) < 0.5, rng.random((H, W)) < 0.5
  problem = costs.build_problem(video, costs.Params(), semantics=semantics, natural=natural,
                                target=target)
  return problem, Ref(video, semantics, natural, target, PAPER), rng


def test_problem_layout(case):
  problem, _, _ = case
  C = 3 + K if problem.U.shape[-1] > 3 else 3
  assert problem.U.shape == (H, W, T, C) and problem.cum.shape == (H, W, T + 1, C + 1)
  assert problem.lag.shape == (T // Q - 1, T // Q + 1, H, W)
  assert problem.gamma_right.shape == (H, W - 1) and problem.gamma_down.shape == (H - 1, W)
  leaves = jax.tree_util.tree_leaves(problem)
  assert all(leaf.dtype in (np.float32, np.int32, bool) for leaf in leaves)


def test_gammas(case):
  problem, ref, _ = case
  want_t = [[ref.gamma_t((i, j)) for j in range(W)] for i in range(H)]
  np.testing.assert_allclose(problem.gamma_t, want_t, **TOL)
  for axis, field in ((1, problem.gamma_right), (0, problem.gamma_down)):
    want = np.array([ref.gamma_s(x, z) for x, z in EDGES[axis]]).reshape(field.shape)
    np.testing.assert_allclose(field, want, **TOL)
  assert np.ptp(np.asarray(problem.gamma_right)) > 0.05  # not a constant


def test_e_static(case):
  problem, ref, _ = case
  want = ref.e_static()
  clipped = np.isclose(want, ref.pr.alpha_sta)
  assert clipped.any() and (~clipped).sum() >= 5  # both branches of min(1, .) are exercised
  np.testing.assert_allclose(problem.e_static_all, want, **TOL)
  np.testing.assert_allclose(problem.e_static, want * ref.target, **TOL)
  np.testing.assert_allclose(costs.retarget(problem, None).e_static, want, **TOL)


def test_temporal(case):
  problem, ref, rng = case
  # s = 0, s + p = T (s >= 2 and s = 1), p = T, and unquantised starts hitting every fallback
  special = [(8, 0), (8, 16), (20, 4), (24, 0), (12, 12), (1, 5), (23, 0), (23, 1), (22, 1),
             (21, 3), (9, 14)]
  p, s = draw_labels(rng, (H * W,))
  p[:len(special)], s[:len(special)] = zip(*special)
  p, s = p.reshape(H, W), s.reshape(H, W)
  want = [[ref.temporal((i, j), p[i, j], s[i, j]) for j in range(W)] for i in range(H)]
  np.testing.assert_allclose(costs.temporal_cost(problem, p, s), want, **TOL)
  assert np.all(np.asarray(want)[p > 1] > 0)


def test_label(case):
  problem, ref, rng = case
  p = rng.choice((1, 4, 8, 20, 24), (H, W)).astype(np.int32)
  e_static = np.asarray(problem.e_static_all)
  want = [[ref.label((i, j), p[i, j], e_static) for j in range(W)] for i in range(H)]
  got = costs.label_cost(problem, p)
  np.testing.assert_allclose(got, want, **TOL)
  assert np.any(np.asarray(got) == 1000) and np.any((p > 1) & (p <= 20) & ~ref.natural)


# (p1, s1, p2, s2): every case of D_y
PAIRS = [(1, 0, 1, 20), (1, 4, 1, 4), (1, 12, 1, 8),                 # both static
         (1, 8, 8, 4), (1, 20, 24, 0), (1, 0, 12, 12),                # static / loop
         (16, 8, 1, 0), (20, 0, 1, 12),                               # loop / static
         (8, 0, 8, 16), (8, 12, 8, 0), (12, 0, 12, 4), (16, 8, 16, 0),  # equal periods,
         (8, 4, 8, 4), (24, 0, 24, 0),                                # incl. |s1 - s2| >= p
         (8, 0, 12, 4), (12, 8, 20, 4), (8, 16, 20, 0), (16, 4, 20, 0),  # gcd 4
         (8, 4, 16, 8), (16, 0, 24, 0), (24, 0, 8, 12),               # gcd 8
         (12, 4, 24, 0), (20, 4, 12, 0), (12, 12, 8, 8), (1, 16, 16, 4)]


def test_pair_distance(case):
  problem, ref, rng = case
  pairs = np.array(PAIRS, np.int32)[rng.permutation(len(PAIRS))].reshape(H, W, 4)
  got = costs.pair_distance(problem, *np.moveaxis(pairs, -1, 0))
  want = [[ref.D((i, j), *pairs[i, j]) for j in range(W)] for i in range(H)]
  np.testing.assert_allclose(got, want, **TOL)
  # on a crop: the pixels of column 1.. with the labels of edge-shaped arrays
  sub = pairs[:, 1:]
  got = costs.pair_distance(problem, *np.moveaxis(sub, -1, 0), cols=slice(1, None))
  want = [[ref.D((i, j + 1), *sub[i, j]) for j in range(W - 1)] for i in range(H)]
  np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize('chunk', [3, 4096])
@pytest.mark.parametrize('regime', ['sparse', 'dense', 'equal'])
def test_pair_distance_regimes(case, monkeypatch, chunk, regime):
  """The elements that need extra work (a still label, or more than costs._DENSE_STEPS lag
  steps) are evaluated on their own in chunks when they are few and with every element when they
  are many: both give D_y, at any chunk size (3: two chunks of four elements, one part-filled)."""
  problem, ref, rng = case
  monkeypatch.setattr(costs, '_CHUNK', chunk)
  n = H * W
  p1 = np.full(n, 8, np.int32)          # equal periods: at most two lag steps
  s1, s2 = rng.choice([0, 4, 8, 12, 16], n), rng.choice([0, 4, 8, 12, 16], n)
  p2 = p1.copy()
  few = {'sparse': 4, 'dense': 10, 'equal': 0}[regime]
  pick = rng.permutation(n)
  still, heavy = pick[:few], pick[few:2 * few]
  p1[still], s1[still] = 1, rng.choice([0, 4, 20], few)              # a still label
  p2[heavy], s2[heavy] = 12, rng.choice([0, 4, 8, 12], few)          # gcd 4: 5 lag steps
  if regime == 'equal':  # identical labels cost nothing and take no work
    s2[pick[:5]] = s1[pick[:5]]
  labels = [a.reshape(H, W).astype(np.int32) for a in (p1, s1, p2, s2)]
  assert 4 * few < n if regime == 'sparse' else 4 * few > n or regime == 'equal'
  got = jax.jit(lambda *a: costs.pair_distance(*a))(problem, *labels)  # traced with this chunk
  want = [[ref.D((i, j), *(int(a[i, j]) for a in labels)) for j in range(W)] for i in range(H)]
  np.testing.assert_allclose(got, want, **TOL)
  got = costs.pair_distance(problem, *(a[:, 1:] for a in labels), cols=slice(1, None))
  np.testing.assert_allclose(got, np.asarray(want)[:, 1:], **TOL)


@pytest.mark.parametrize('axis', [0, 1])
def test_spatial_cost(case, axis):
  problem, ref, rng = case
  shape = (H, W - 1) if axis == 1 else (H - 1, W)
  (px, sx), (pz, sz) = draw_labels(rng, shape), draw_labels(rng, shape)
  got = costs.spatial_cost(problem, px, sx, pz, sz, axis)
  lx, lz = np.stack([px, sx], -1).reshape(-1, 2), np.stack([pz, sz], -1).reshape(-1, 2)
  want = [ref.spa(x, z, a, b) for (x, z), a, b in zip(EDGES[axis], lx, lz)]
  np.testing.assert_allclose(got, np.reshape(want, shape), **TOL)


def test_energy_of_a_labelling(case):
  """Sum of unary and pairwise over a labelling = Eq. 1 evaluated directly."""
  problem, ref, rng = case
  n = 6
  P, S = draw_labels(rng, (n, H, W))
  lab = rng.integers(0, n, (H, W)).astype(np.int32)
  prob = costs.with_labels(problem, P, S)
  label = lambda y: (P[lab[y], y[0], y[1]], S[lab[y], y[0], y[1]])
  e_static = ref.e_static()
  want_u = np.array([[ref.temporal((i, j), *label((i, j)))
                      + ref.pr.alpha1 * ref.label((i, j), label((i, j))[0], e_static)
                      for j in range(W)] for i in range(H)])
  got_u = jax.jit(costs.unary)(prob, lab)
  np.testing.assert_allclose(got_u, want_u, **TOL)
  total_got, total_want = np.asarray(got_u, np.float64).sum(), want_u.sum()
  for axis in (1, 0):
    x, z = (lab[:, :-1], lab[:, 1:]) if axis == 1 else (lab[:-1], lab[1:])
    got = jax.jit(costs.pairwise, static_argnums=3)(prob, x, z, axis)
    want = np.array([ref.pr.alpha2 * ref.spa(a, b, label(a), label(b)) for a, b in EDGES[axis]])
    np.testing.assert_allclose(got, want.reshape(got.shape), **TOL)
    total_got += np.asarray(got, np.float64).sum()
    total_want += want.sum()
  np.testing.assert_allclose(total_got, total_want, rtol=1e-5)


def test_vmap_over_targets(case):
  """Candidates share the tables: retarget and unary vmap over target maps."""
  problem, ref, rng = case
  targets = rng.random((3, H, W)) < 0.5
  P, S = draw_labels(rng, (2, H, W))
  P[0][rng.random((H, W)) < 0.5] = 1
  probs = jax.vmap(costs.retarget, in_axes=(None, 0))(costs.with_labels(problem, P, S), targets)
  got = jax.vmap(costs.unary, in_axes=(0, None))(probs, np.zeros((H, W), np.int32))
  e_static = ref.e_static()
  for target, u in zip(targets, got):
    ref = copy.copy(ref)
    ref.target = target
    want = [[ref.temporal((i, j), P[0, i, j], S[0, i, j])
             + ref.label((i, j), P[0, i, j], e_static) for j in range(W)] for i in range(H)]
    np.testing.assert_allclose(u, want, **TOL)


def test_pairwise_loops_equals_pairwise_when_every_label_loops():
  rng = np.random.default_rng(7)
  T, H, W = 24, 5, 6
  video = jnp.asarray(rng.uniform(0, 1, (T, H, W, 3)).astype(np.float32))
  prob = costs.build_problem(video, costs.Params())
  P = jnp.asarray(rng.choice([8, 12, 16], (3, H, W)), jnp.int32)
  S = jnp.asarray((rng.integers(0, 3, (3, H, W)) * 4) % (T - P + 1) // 4 * 4, jnp.int32)
  prob = costs.with_labels(prob, P, S)
  la, lb = (jnp.asarray(rng.integers(0, 3, (H, W - 1)), jnp.int32) for _ in range(2))
  full = costs.pairwise(prob, la, lb, 1)
  assert float(jnp.max(full)) > 0
  np.testing.assert_allclose(costs.pairwise_loops(prob, la, lb, 1), full, rtol=1e-6)


@pytest.mark.parametrize('n', [1, 2, 7, 60, 89, 129])  # 129: past the sorting network
def test_median0_equals_numpy_median_with_ties(n):
  rng = np.random.default_rng(n)
  x = np.round(rng.normal(size=(n, 5, 6)) * 2) / 2  # coarse grid: many ties
  x[:, 0, 0] = 3.0                                   # all equal
  got = np.asarray(costs.median0(jnp.asarray(x, jnp.float32)))
  np.testing.assert_allclose(got, np.median(x, axis=0), rtol=0, atol=1e-6)


def test_mads_groups_arrays_of_different_lengths():
  rng = np.random.default_rng(0)
  ds = [rng.random((59, 4, 5)), rng.random((60, 4, 4)), rng.random((59, 3, 5)),
        rng.random((60, 3, 5)), rng.random((70, 2, 2))]
  got = costs.mads(*(jnp.asarray(d, jnp.float32) for d in ds))
  for g, d in zip(got, ds):
    assert g.shape == d.shape[1:]
    want = np.median(np.abs(d - np.median(d, axis=0)), axis=0)
    np.testing.assert_allclose(np.asarray(g), want, rtol=0, atol=1e-6)
