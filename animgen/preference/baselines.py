"""The models of Oh et al. 2017 Fig. 8 (supp. Sec. 3.2), in its order, with one signature:

  fit_predict(name, Y_train, mask_train, V, test_idx, rng, **hyper) -> predictions [N]

Y_train [m, n] (only the entries on mask_train are read), V [m, D] context features, test_idx
(rows, cols) the entries to predict, rng a numpy Generator (every random draw comes from it).
"""

from __future__ import annotations

import numpy as np

from animgen.preference import models

RF_TREES = 10                 # supp. Sec. 3.2: "10 number of ensembles"


def _forest(rng, **hyper):
  from sklearn.ensemble import RandomForestRegressor
  # a third of the features per split and leaves of >= 5: the defaults of MATLAB's TreeBagger
  # for regression (the paper's implementation is MATLAB; it gives no RF settings)
  opts = dict(n_estimators=RF_TREES, max_features=1 / 3, min_samples_leaf=5, n_jobs=1)
  opts.update(hyper)
  return RandomForestRegressor(random_state=int(rng.integers(2 ** 31)), **opts)


def _clip(y):
  return np.clip(y, 1.0, 5.0)


def rand(Y, mask, V, test, rng):
  """Rand: a uniform guess in [1, 5] (continuous, so rankings have no ties)."""
  return rng.uniform(1.0, 5.0, len(test[0]))


def constant(Y, mask, V, test, rng, rate=3.0):
  """CR: the constant rating 3."""
  return np.full(len(test[0]), float(rate))


def global_rf(Y, mask, V, test, rng, **hyper):
  """G-RF: one RF for all users on the context feature v."""
  rows, cols = np.nonzero(mask)
  forest = _forest(rng, **hyper).fit(V[rows], Y[rows, cols])
  return forest.predict(V[test[0]])


def individual_rf(Y, mask, V, test, rng, **hyper):
  """I-RF: one RF per user on v (a user with fewer than 2 ratings gets their mean, or 3)."""
  rows, cols = test
  out = np.empty(len(rows))
  for j in np.unique(cols):
    rated = np.nonzero(mask[:, j])[0]
    here = cols == j
    if len(rated) < 2:
      out[here] = Y[rated, j].mean() if len(rated) else 3.0
      continue
    out[here] = _forest(rng, **hyper).fit(V[rated], Y[rated, j]).predict(V[rows[here]])
  return out


def mc_user_features(Yc, dim=models.DIM):
  """25-d user features of MC: the completed matrix's top right singular vectors scaled by the
  square roots of their singular values (Yc ~ (A s^1/2)(B s^1/2)^T)."""
  _, s, vt = np.linalg.svd(Yc, full_matrices=False)
  dim = min(dim, len(s))
  return vt[:dim].T * np.sqrt(s[:dim])


def subjective_rf(Y, mask, V, test, rng, U, **hyper):
  """S-RF: one RF for all users on [v; u]."""
  rows, cols = np.nonzero(mask)
  forest = _forest(rng, **hyper).fit(np.concatenate([V[rows], U[cols]], 1), Y[rows, cols])
  return forest.predict(np.concatenate([V[test[0]], U[test[1]]], 1))


def srf_mc(Y, mask, V, test, rng, dim=models.DIM, tau=None, **hyper):
  """S-RF + MC: u from the SVT-completed matrix."""
  U = mc_user_features(models.svt_complete(Y, mask, tau=tau), dim)
  return subjective_rf(Y, mask, V, test, rng, U, **hyper)


def srf_aem(Y, mask, V, test, rng, dim=models.DIM, d=models.NUM_BASIS,
            lambda_R=models.LAMBDA_R, iters=10, **hyper):
  """S-RF + AEm: u from Carreira et al.'s auto-encoder with missing values."""
  U = models.aem_fit(Y, mask, dim=dim, d=d, lambda_R=lambda_R, iters=iters, rng=rng).U
  return subjective_rf(Y, mask, V, test, rng, U, **hyper)


def mc(Y, mask, V, test, rng, tau=None):
  """MC: the SVT-completed matrix's entries (no context feature)."""
  return _clip(models.svt_complete(Y, mask, tau=tau)[test])


def _joint(mapping):
  def fit(Y, mask, V, test, rng, **hyper):
    params = models.joint_fit(Y, mask, V, mapping=mapping, rng=rng, **hyper)
    return _clip(models.joint_complete(params, *test))
  fit.__doc__ = f'Joint ({mapping}): Eqs. 8-10 with {mapping} mappings.'
  return fit


MODELS = {
    'Rand': rand,
    'CR': constant,
    'G-RF': global_rf,
    'I-RF': individual_rf,
    'S-RF + MC': srf_mc,
    'S-RF + AEm': srf_aem,
    'MC': mc,
    'Joint (Lin.)': _joint('linear'),
    'Joint (RBF)': _joint('rbf'),
}


JOINT = ('Joint (Lin.)', 'Joint (RBF)')


def fit_predict(name, Y_train, mask_train, V, test_idx, rng, **hyper):
  """Trains model `name` on the entries of mask_train and predicts the test entries."""
  if name not in MODELS:
    raise KeyError(f'{name!r}: not a model; use one of {", ".join(MODELS)}')
  mask = np.asarray(mask_train, bool)
  Y = np.where(mask, np.asarray(Y_train, np.float64), np.nan)
  rows, cols = (np.asarray(i, int) for i in test_idx)
  return np.asarray(MODELS[name](Y, mask, np.asarray(V, np.float64), (rows, cols), rng,
                                 **hyper), np.float64)
