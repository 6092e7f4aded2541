"""The evaluation protocol of Oh et al. 2017 supp. Sec. 3.2 and the mAP of Fig. 8.

10 % of the observed ratings are a validation set (for the parameter grids), the rest is split
into 9 folds for cross-validation, so each test fold is as large as the validation set.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from animgen.preference import baselines

# supp. Sec. 2: the grids of the validation search (lambda_R = lambda_theta tied)
LAMBDA_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
BASIS_GRID = (5, 10, 15, 20, 25, 30, 35, 40, 45)
# Relevant = rated 4 or 5: the product suggests a user's best cinemagraphs, and 4-5 stars are
# the ratings above the neutral 3, towards "would share it in an instant" (Sec. 4.1), i.e. liked
RELEVANT_AT = 4


class Split(NamedTuple):
  """Index pairs (rows, cols) of observed entries: the validation set and the folds."""
  val: tuple
  folds: list


def split_protocol(mask, rng, val_frac=0.1, folds=9) -> Split:
  """supp. Sec. 3.2: a random val_frac of the observed entries as validation, the rest in
  `folds` random folds of (nearly) equal size; disjoint, together all observed entries."""
  rows, cols = np.nonzero(np.asarray(mask, bool))
  order = rng.permutation(len(rows))
  cut = int(round(val_frac * len(rows)))
  pick = lambda ix: (rows[np.sort(ix)], cols[np.sort(ix)])
  return Split(pick(order[:cut]), [pick(ix) for ix in np.array_split(order[cut:], folds)])


def train_mask(mask, *held_out):
  """The observed mask without the held-out index pairs."""
  out = np.array(mask, bool)
  for rows, cols in held_out:
    out[rows, cols] = False
  return out


def average_precision(scores, relevant) -> float:
  """AP of a ranking by descending score: sum over the distinct score levels of (recall gain) x
  (precision at that level); tied scores enter together (sklearn's convention), so a constant
  prediction scores the share of relevant items. NaN without relevant items."""
  scores, relevant = np.asarray(scores, np.float64), np.asarray(relevant, bool)
  if not relevant.any():
    return float('nan')
  levels, inverse = np.unique(-scores, return_inverse=True)           # best level first
  hits = np.bincount(inverse, weights=relevant, minlength=len(levels))
  seen = np.bincount(inverse, minlength=len(levels))
  precision = np.cumsum(hits) / np.cumsum(seen)
  return float((hits * precision).sum() / relevant.sum())


def mean_ap(Y_true, predictions, test_idx, relevant_at=RELEVANT_AT) -> float:
  """Per user: rank the user's test entries by predicted rating, relevant = true rating >=
  relevant_at; AP over the users with a relevant test entry, averaged."""
  rows, cols = test_idx
  truth = np.asarray(Y_true)[rows, cols]
  predictions = np.asarray(predictions)
  aps = [average_precision(predictions[cols == j], truth[cols == j] >= relevant_at)
         for j in np.unique(cols)]
  aps = [a for a in aps if not np.isnan(a)]
  return float(np.mean(aps)) if aps else float('nan')


def rmse(Y_true, predictions, test_idx) -> float:
  rows, cols = test_idx
  return float(np.sqrt(np.mean((np.asarray(Y_true)[rows, cols] - predictions) ** 2)))


def _held_out(Y, mask):
  return np.where(mask, Y, np.nan)


def tune(name, Y, mask, V, split: Split, rng, grid=None, base=None, tie=True):
  """Grid search of one model on the validation split (trained on all but the validation
  entries, scored by mAP); grid: {hyper: values}, default supp. Sec. 2's lambda x d grid, with
  lambda_theta = lambda_R for the joint models when tie. The full grid is 63 fits: pass a
  smaller one for speed. -> (best hyper, [(hyper, mAP)] in grid order; ties: the first)."""
  grid = {'lambda_R': LAMBDA_GRID, 'd': BASIS_GRID} if grid is None else grid
  seed = int(rng.integers(2 ** 31))
  fit = train_mask(mask, split.val)
  table = []
  for values in itertools.product(*grid.values()):
    hyper = dict(base or {}, **dict(zip(grid, values)))
    if tie and 'lambda_R' in hyper and name in baselines.JOINT:
      hyper['lambda_theta'] = hyper['lambda_R']
    pred = baselines.fit_predict(name, _held_out(Y, fit), fit, V, split.val,
                                 np.random.default_rng(seed), **hyper)
    table.append((hyper, mean_ap(Y, pred, split.val)))
  best = max(range(len(table)), key=lambda i: (np.nan_to_num(table[i][1], nan=-1.0), -i))
  return table[best][0], table


def cross_validate(models, Y, mask, V, rng, hyper=None, split: Split = None):
  """9-fold cross-validation on the non-validation entries (supp. Sec. 3.2): each fold is the
  test set of a model trained on the other folds. -> {model: (mAP mean over folds, mAP std
  (ddof 0), RMSE mean)}. Each (model, fold) draws from its own seeded generator, so a result
  does not depend on which other models run."""
  split = split_protocol(mask, rng) if split is None else split
  seed = int(rng.integers(2 ** 31))
  names = list(baselines.MODELS)
  out = {}
  for name in models:
    aps, errs = [], []
    for k, fold in enumerate(split.folds):
      fit = train_mask(mask, split.val, fold)
      g = np.random.default_rng([seed, k, names.index(name)])
      pred = baselines.fit_predict(name, _held_out(Y, fit), fit, V, fold, g,
                                   **(hyper or {}).get(name, {}))
      aps.append(mean_ap(Y, pred, fold))
      errs.append(rmse(Y, pred, fold))
    out[name] = (float(np.mean(aps)), float(np.std(aps)), float(np.mean(errs)))
  return out
