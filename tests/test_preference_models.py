"""The preference model of Oh 2017 Sec. 4: matrix completion, the auto-encoder with missing
values, the Gauss-Newton step of Eq. 8, the joint model against the baselines of Fig. 8, and
the evaluation protocol of supp. Sec. 3.2."""
import numpy as np
import pytest

from animgen.preference import baselines, evaluate, models


def _missing(rng, shape, share):
  """A mask with about `share` observed, at least two per row and column."""
  mask = rng.random(shape) < share
  mask[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = True
  mask[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = True
  return mask


def test_svt_completes_a_rank_2_matrix():
  rng = np.random.default_rng(0)
  X = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 30))
  mask = rng.random(X.shape) < 0.5
  Xc = models.svt_complete(np.where(mask, X, np.nan), mask)
  np.testing.assert_array_equal(Xc[mask], X[mask])
  err = np.linalg.norm((Xc - X)[~mask]) / np.linalg.norm(X[~mask])
  assert err < 0.05, err


def test_laplacian_eigenmap_separates_two_groups_of_users():
  rng = np.random.default_rng(0)
  taste = np.where(np.arange(20) < 8, 1.0, -1.0)                 # 8 users vs 12
  Yc = 3 + np.outer(rng.normal(size=30), taste) + rng.normal(0, 0.2, (30, 20))
  U0 = models.laplacian_eigenmap(Yc, dim=3, neighbours=10)      # > 8: one connected graph
  assert U0.shape == (20, 3)
  np.testing.assert_allclose(np.sqrt((U0 ** 2).mean(0)), 1.0)
  a, b = U0[:8, 0], U0[8:, 0]                                    # the Fiedler vector
  assert abs(a.mean() - b.mean()) > 1.0 and max(a.std(), b.std()) < 0.1, U0[:, 0]


def test_theta_is_the_ridge_solution_also_for_wide_context_features():
  rng = np.random.default_rng(0)
  m, n, k, D, lam = 15, 6, 3, 40, 0.1                            # D > m: solved in V's row space
  U, V, Y = rng.normal(size=(n, k)), rng.normal(size=(m, D)), rng.uniform(1, 5, (m, n))
  mask = rng.random((m, n)) < 0.6
  Vr, B = models._context_basis(V)
  tu, tv, b = models._split_theta(models.fit_theta(U, Y, mask, Vr, lam), k)
  rows, cols = np.nonzero(mask)
  X = np.concatenate([U[cols], V[rows], np.ones((len(rows), 1))], 1)
  want = np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ Y[rows, cols])
  np.testing.assert_allclose(np.concatenate([tu, B @ tv, [b]]), want, atol=1e-8)


def _two_d_panel(m=80, n=40, share=0.6, seed=0):
  """Users from a 2-d latent z: y_ij = 3 + 1.5 tanh(a_i . z_j + b_i), no noise."""
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, 2))
  a, b = rng.normal(size=(m, 2)), rng.normal(0, 0.5, m)
  Y = 3 + 1.5 * np.tanh(a @ z.T + b[:, None])
  return Y, _missing(rng, Y.shape, share)


@pytest.fixture(scope='module')
def aem():
  Y, mask = _two_d_panel()
  init = models.svt_complete(np.where(mask, Y, np.nan), mask)
  params = models.aem_fit(np.where(mask, Y, np.nan), mask, dim=2, d=10, iters=8,
                          rng=np.random.default_rng(0))
  return Y, mask, init, params


def test_aem_reconstructs_a_2d_panel_and_beats_the_user_mean(aem):
  Y, mask, _, p = aem
  recon = models.rbf_apply(p.Mh, p.U).T          # M_h(U), [m, n]
  rms_obs = np.sqrt(np.mean((recon - Y)[mask] ** 2))
  assert rms_obs < 0.35, rms_obs                                 # ratings span 1.5 - 4.5
  user_mean = np.nanmean(np.where(mask, Y, np.nan), 0)
  rms_mean = np.sqrt(np.mean((user_mean[None] - Y)[~mask] ** 2))
  rms_miss = np.sqrt(np.mean((p.Y - Y)[~mask] ** 2))
  assert rms_miss < 0.6 * rms_mean, (rms_miss, rms_mean)
  assert p.history[-1] < p.history[0]


def test_aem_updates_missing_entries_only(aem):
  Y, mask, init, p = aem
  np.testing.assert_array_equal(p.Y[mask], Y[mask])               # exactly the ratings
  assert np.mean(np.abs(p.Y - init)[~mask] > 1e-6) > 0.9          # moved from the MC init


def _random_problem(seed=0, m=12, n=5, k=3, d=4, D=3, mapping='rbf'):
  rng = np.random.default_rng(seed)
  if mapping == 'rbf':
    Ml = models.RBF(rng.normal(size=(d, m)), rng.uniform(2, 4, d), rng.normal(size=(k, d + 1)))
    Mh = models.RBF(rng.normal(size=(d, k)), rng.uniform(1, 2, d), rng.normal(size=(m, d + 1)))
  else:
    Ml, Mh = models.Linear(rng.normal(size=(k, m + 1))), models.Linear(rng.normal(size=(m, k + 1)))
  Y = rng.uniform(1, 5, (m, n))
  mask = _missing(rng, (m, n), 0.5)
  V, theta = rng.normal(size=(m, D)), rng.normal(size=k + D + 1)
  return Y, mask, rng.normal(size=(n, k)), V, Ml, Mh, theta


@pytest.mark.parametrize('mapping', ['rbf', 'linear'])
def test_gauss_newton_jacobian_is_the_finite_difference_one(mapping):
  Y, mask, U, V, Ml, Mh, theta = _random_problem(mapping=mapping)
  k, lam, j = U.shape[1], 0.3, 1
  o, p = mask[:, j].astype(float), (~mask[:, j]).astype(float)
  tu, c = theta[:k], V @ theta[k:-1] + theta[-1]
  u, y, h = U[j], Y[:, j], 1e-6
  res = lambda u, y: np.asarray(models.user_residuals(u, y, o, Ml, Mh, tu, c, lam))
  with models.jax.enable_x64(True):
    J = np.asarray(models.dense_jacobian(models.jacobian_blocks(u, y, o, Ml, Mh, tu), p, lam))
    fd = [(res(u + h * e, y) - res(u - h * e, y)) / (2 * h) for e in np.eye(k)]
    fd += [(res(u, y + h * e) - res(u, y - h * e)) / (2 * h) if pi else np.zeros(len(fd[0]))
           for e, pi in zip(np.eye(len(y)), p)]
  assert np.abs(J).max() > 0.1
  np.testing.assert_allclose(J, np.stack(fd, 1), atol=1e-7)


def test_gauss_newton_step_solves_the_damped_normal_equations_and_lowers_eq8():
  Y, mask, U, V, Ml, Mh, theta = _random_problem(seed=1)
  k, lam, j, mu = U.shape[1], 0.3, 2, 0.05
  o, p = mask[:, j].astype(float), (~mask[:, j]).astype(float)
  tu, c = theta[:k], V @ theta[k:-1] + theta[-1]
  with models.jax.enable_x64(True):
    blocks = models.jacobian_blocks(U[j], Y[:, j], o, Ml, Mh, tu)
    r = models.user_residuals(U[j], Y[:, j], o, Ml, Mh, tu, c, lam)
    free = np.concatenate([np.ones(k, bool), p > 0])              # u and the missing y
    J = np.asarray(models.dense_jacobian(blocks, p, lam))[:, free]
    dz = np.linalg.solve(J.T @ J + mu * np.eye(free.sum()), -J.T @ np.asarray(r))
    q = models._normal_parts(blocks, r, p, lam)
    u2, y2 = models._damped_step(U[j], Y[:, j], p, q, lam, mu)
  np.testing.assert_allclose(np.asarray(u2) - U[j], dz[:k], atol=1e-9)
  np.testing.assert_allclose((np.asarray(y2) - Y[:, j])[p > 0], dz[k:], atol=1e-9)
  before = models.eq8_loss(U, Y, mask, V, Ml, Mh, theta, lam)
  U2, Y2 = models.gn_step(U, Y, mask, Ml, Mh, lam, tu, c)
  assert models.eq8_loss(U2, Y2, mask, V, Ml, Mh, theta, lam) < 0.9 * before
  np.testing.assert_array_equal(Y2[mask], Y[mask])


def test_gauss_newton_step_makes_no_lapack_calls():
  """jaxlib 0.10's batched LAPACK kernels can deadlock XLA's CPU pool (models._spd_solve)."""
  Y, mask, U, V, Ml, Mh, theta = _random_problem()
  m, n = Y.shape
  with models.jax.enable_x64(True):
    hlo = models._gn_users.lower(U, Y, mask * 1.0, ~mask * 1.0, Ml, Mh, theta[:3], np.zeros(m),
                                 0.1, np.asarray(models.DAMPING)).as_text()
  assert 'lapack' not in hlo.lower() and 'custom_call' not in hlo


def _taste_panel(m=150, n=45, D=8, groups=3, seed=0):
  """3 taste groups: user j in group g rates 3 + 1.3 z(V w_g) + noise, rounded to 1-5; no
  taste shared by all groups, so one global model cannot rank well."""
  rng = np.random.default_rng(seed)
  V = rng.normal(size=(m, D))
  w = rng.normal(size=(groups, D))
  s = V @ w[rng.integers(0, groups, n)].T
  Y = np.clip(np.round(3 + 1.3 * s / s.std() + rng.normal(0, 0.5, s.shape)), 1, 5)
  return Y, _missing(rng, Y.shape, 0.6), V


def test_joint_rbf_beats_global_rf_and_rand_on_taste_groups():
  Y, mask, V = _taste_panel()
  split = evaluate.split_protocol(mask, np.random.default_rng(0), folds=9)
  split = evaluate.Split(split.val, split.folds[:2])
  res = evaluate.cross_validate(['Rand', 'G-RF', 'Joint (RBF)'], Y, mask, V,
                                np.random.default_rng(1), split=split)
  joint, grf, rand = (res[k][0] for k in ('Joint (RBF)', 'G-RF', 'Rand'))
  assert joint > grf + 0.1 and joint > rand + 0.1, res


def test_joint_fit_params_predict_and_new_user_feature():
  Y, mask, V = _taste_panel(m=60, n=30, seed=1)
  p = models.joint_fit(np.where(mask, Y, np.nan), mask, V, dim=4, d=8, iters=3)
  np.testing.assert_array_equal(p.Y[mask], Y[mask])
  f = models.joint_predict(p, V[:5], 2)
  tu, tv, b = p.theta[:4], p.theta[4:-1], p.theta[-1]
  np.testing.assert_allclose(f, p.U[2] @ tu + V[:5] @ tv + b)
  y_new = np.where(mask[:, 7], Y[:, 7], np.nan)                  # user 7's own ratings
  u = models.user_feature(p, y_new)
  np.testing.assert_allclose(u, models.rbf_apply(p.Ml, p.Y[:, 7][None])[0])


def test_average_precision_by_hand():
  assert evaluate.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(
      (1 / 1 + 2 / 3) / 2)
  # a tie enters as one block: precision 1/2 at the tied top, 2/3 after the third item
  assert evaluate.average_precision([1, 1, 0], [1, 0, 1]) == pytest.approx((0.5 + 2 / 3) / 2)
  assert np.isnan(evaluate.average_precision([1, 2], [0, 0]))
  Y = np.array([[5, 1], [2, 2], [4, 3]], float)
  test = (np.array([0, 1, 2, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 1]))
  pred = np.array([1, 2, 3, 3, 2, 1])                            # user 1 has nothing liked
  assert evaluate.mean_ap(Y, pred, test) == pytest.approx((1 + 2 / 3) / 2)


def test_split_protocol_is_disjoint_and_covers_the_observed_entries():
  mask = _missing(np.random.default_rng(0), (50, 20), 0.6)
  split = evaluate.split_protocol(mask, np.random.default_rng(3))
  parts = [split.val] + list(split.folds)
  keys = np.concatenate([r * 20 + c for r, c in parts])
  assert len(keys) == len(np.unique(keys)) == mask.sum()
  np.testing.assert_array_equal(np.sort(keys), np.flatnonzero(mask))
  assert len(split.folds) == 9 and abs(len(split.val[0]) - 0.1 * mask.sum()) <= 1
  sizes = [len(f[0]) for f in split.folds]
  assert max(sizes) - min(sizes) <= 1
  again = evaluate.split_protocol(mask, np.random.default_rng(3))
  np.testing.assert_array_equal(again.folds[4][0], split.folds[4][0])


def test_cross_validation_and_tuning_are_seeded():
  Y, mask, V = _taste_panel(m=40, n=12, seed=2)
  run = lambda names: evaluate.cross_validate(names, Y, mask, V, np.random.default_rng(5))
  assert run(['Rand']) == {'Rand': run(['G-RF', 'Rand'])['Rand']}
  split = evaluate.split_protocol(mask, np.random.default_rng(0))
  best, table = evaluate.tune('G-RF', Y, mask, V, split, np.random.default_rng(0),
                              grid={'n_estimators': [1, 10], 'min_samples_leaf': [1, 40]},
                              tie=False)
  assert len(table) == 4 and best == max(table, key=lambda t: t[1])[0]
  assert list(baselines.MODELS) == ['Rand', 'CR', 'G-RF', 'I-RF', 'S-RF + MC', 'S-RF + AEm',
                                    'MC', 'Joint (Lin.)', 'Joint (RBF)']
