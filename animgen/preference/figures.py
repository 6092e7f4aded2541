"""The figures of `animgen prefs eval`: Oh 2017 Fig. 8 (mAP per model), Fig. 9 (the missing
pattern and the matrices completed by MC and by the joint model) and Fig. 10 (t-SNE of the
joint model's user features)."""
import os

import numpy as np

from animgen import plot


def fig8(path, table):
  """Bar chart of mAP (std over the folds) per model, in Fig. 8's order."""
  fig = plot.new_figure(720, 360)
  ax = fig.add_subplot()
  names = list(table)
  ax.bar(range(len(names)), [table[n][0] for n in names], yerr=[table[n][1] for n in names],
         color=['#999999'] * 2 + ['#4c72b0'] * (len(names) - 4) + ['#dd8452'] * 2, capsize=3)
  ax.set_xticks(range(len(names)), names, rotation=30, ha='right')
  ax.set_ylabel('mAP (relevant: rated 4 or 5)')
  ax.set_title('rating prediction, 9-fold cross-validation (Oh 2017 Fig. 8)')
  lo = min(table[n][0] - table[n][1] for n in names)
  ax.set_ylim(max(0.0, lo - 0.05), None)
  return plot.save(fig, path)


def fig9(path, ratings, completed):
  """Fig. 9: the missing pattern and each completed matrix (rows sorted by mean rating)."""
  order = np.argsort(np.nanmean(ratings, 1))
  panels = [('missing pattern (white: rated)', (~np.isnan(ratings)).astype(float), 'gray')]
  panels += [(name, m, 'viridis') for name, m in completed.items()]
  fig = plot.new_figure(300 * len(panels), 420)
  for k, (title, m, cmap) in enumerate(panels):
    ax = fig.add_subplot(1, len(panels), k + 1)
    im = ax.imshow(np.asarray(m)[order], aspect='auto', cmap=cmap, interpolation='nearest',
                   vmin=0 if cmap == 'gray' else 1, vmax=1 if cmap == 'gray' else 5)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('user')
    ax.set_ylabel('cinemagraph' if k == 0 else '')
    if cmap != 'gray':
      fig.colorbar(im, ax=ax, label='rating')
  return plot.save(fig, path)


def fig10(path, U, groups=None, seed=0):
  """Fig. 10: t-SNE (scikit-learn) of the user features, coloured by the panel's hidden taste
  group where it has one."""
  from sklearn.manifold import TSNE
  xy = TSNE(2, perplexity=min(15.0, (len(U) - 1) / 3), random_state=seed,
            init='pca').fit_transform(np.asarray(U, np.float64))
  fig = plot.new_figure(440, 400)
  ax = fig.add_subplot()
  if groups is None:
    ax.scatter(xy[:, 0], xy[:, 1], s=18)
  else:
    for g in np.unique(groups):
      ax.scatter(*xy[groups == g].T, s=18, label=f'taste group {g}')
    ax.legend(fontsize=8)
  ax.set_title(f't-SNE of {len(U)} user features (joint model, RBF)')
  ax.set_xticks([])
  ax.set_yticks([])
  return plot.save(fig, path)


def write_all(folder, p, table, params, seed=0, truth=None):
  """Figs. 8-10 of a panel into `folder`; params: the joint model (RBF) fitted on all ratings."""
  from animgen.preference import models
  completed = {'MC (SVT)': models.svt_complete(p.ratings, p.observed),
               'Joint (RBF)': np.clip(params.Y, 1, 5)}
  groups = None if truth is None else np.asarray(truth['group'])
  return [fig8(os.path.join(folder, 'fig8_map.png'), table),
          fig9(os.path.join(folder, 'fig9_completed.png'), p.ratings, completed),
          fig10(os.path.join(folder, 'fig10_tsne.png'), params.U, groups, seed)]
