"""`animgen prefs fit` and `animgen loop --prefs --user`: the model file, the per-user ranking
of new candidates, and one-line errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

from animgen import cli
from animgen.preference import command as prefs
from animgen.preference import features, models, panel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {'hand': len(features.HAND_NAMES), 'motion': features.MOTION_DIM, 'semantic': 64}


def _random_panel(m=40, n=30, seed=0):
  rng = np.random.default_rng(seed)
  parts = {k: rng.uniform(0, 1, (m, d)).astype(np.float32) for k, d in SIZES.items()}
  Y = rng.integers(1, 6, (m, n)).astype(float)
  Y[rng.random((m, n)) < 0.3] = np.nan
  return panel.Panel(Y, parts, np.asarray([f'c{i}' for i in range(m)]),
                     np.asarray([f'u{j}' for j in range(n)]), np.arange(m),
                     np.asarray(['water'] * m))


@pytest.fixture(scope='module')
def fitted(tmp_path_factory):
  d = tmp_path_factory.mktemp('prefs')
  p = _random_panel()
  panel.write_panel(str(d / 'panel'), p)
  cli.main(['prefs', 'fit', str(d / 'panel'), '-o', str(d / 'model.npz')])
  return d, p


def test_fit_writes_a_model_that_reads_back(fitted):
  d, p = fitted
  params, scales, sizes, users, V, _ = prefs.load_model(str(d / 'model.npz'))
  assert sizes == SIZES and list(users) == list(p.users) and V.shape[0] == len(p.ids)
  assert params.U.shape == (len(p.users), models.DIM) and np.isfinite(params.Y).all()
  seen = p.observed
  np.testing.assert_array_equal(params.Y[seen], p.ratings[seen])  # observed ratings kept
  assert set(scales) == set(features.PARTS)


def test_a_panel_cinemagraph_gets_its_completed_rating_per_user(fitted):
  """With k = 1 the nearest panel cinemagraph of a panel row is itself, so each user's
  rating of it is that user's completed rating: users with other tastes rank differently."""
  d, p = fitted
  params, _, _, _, V, _ = prefs.load_model(str(d / 'model.npz'))
  for j in range(len(p.users)):
    got = prefs.personal_ratings(params, V, V[:5], j, k=1)
    np.testing.assert_allclose(got, params.Y[:5, j], atol=1e-6)
  orders = {tuple(np.argsort(-prefs.personal_ratings(params, V, V, j, k=1), kind='stable')[:3])
            for j in range(len(p.users))}
  assert len(orders) > 1    # not one ranking for everyone


def test_rank_for_user_orders_by_predicted_rating(fitted):
  d, p = fitted
  parts = [{k: p.parts[k][i] for k in features.PARTS} for i in range(4)]
  ratings, order = prefs.rank_for_user(str(d / 'model.npz'), 'u2', parts)
  assert sorted(order) == [0, 1, 2, 3] and all(np.diff(ratings[order]) <= 0)
  with pytest.raises(Exception, match='--user nobody: not a user'):
    prefs.rank_for_user(str(d / 'model.npz'), 'nobody', parts)
  short = [{**parts[0], 'motion': parts[0]['motion'][:10]}]
  with pytest.raises(Exception, match='fitted on motion features of size 64'):
    prefs.rank_for_user(str(d / 'model.npz'), 'u2', short)


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'animgen.cli', *args], cwd=ROOT,
                        capture_output=True, text=True)


def test_loop_ranks_candidates_for_the_user(fitted, tmp_path):
  """A two-object clip with its segmentation: three candidates, ranked by the user's
  predicted ratings, the top one written to the output."""
  from animgen import media
  from animgen.looper import semantics
  d, _ = fitted
  video, responses = panel.synthetic_clip(np.random.default_rng(3), 48, 32, 2)
  media.write_video(str(tmp_path / 'clip.gif'), video, fps=10)
  labels = np.broadcast_to(responses.argmax(-1), video.shape[:3])
  np.savez(str(tmp_path / 'seg.npz'), labels=labels,
           classes=np.asarray(semantics.class_table().classes))
  r = _cli('loop', str(tmp_path / 'clip.gif'), '-o', str(tmp_path / 'c.gif'),
           '--min-period', '16', '--candidates', '2', '--segmentation', str(tmp_path / 'seg.npz'),
           '--prefs', str(d / 'model.npz'), '--user', 'u1')
  assert r.returncode == 0, r.stderr
  line = [l for l in r.stderr.splitlines() if 'predicted ratings of u1' in l]
  assert len(line) == 1 and line[0].count(',') == 2, r.stderr   # two objects and 'all'
  first = line[0].split(': ', 2)[2].split(',')[0].rsplit(' ', 1)[0]   # the top candidate
  assert f'(best: {first})' in r.stdout, (line, r.stdout)


@pytest.mark.parametrize('args, message', [
    (['loop', 'data/clips/newtonscradle.gif', '-o', 'x.gif', '--prefs', 'm.npz'],
     '--prefs goes with one of --user or --user-ratings'),
    (['loop', 'data/clips/newtonscradle.gif', '-o', 'x.gif', '--prefs', 'none.npz', '--user',
      'u1'], 'none.npz: not found'),
    (['prefs', 'fit', 'no_panel', '-o', 'x.npz'], 'no_panel: not a folder'),
    (['prefs', 'fit', 'data', '-o', 'x.txt'], 'use a .npz path'),
])
def test_prefs_bad_input_is_one_line_exit_2(tmp_path, args, message):
  args = [str(tmp_path / a) if a.startswith(('x.', 'none', 'no_panel')) else a for a in args]
  r = _cli(*args)
  assert r.returncode == 2 and message in r.stderr, r.stderr
  assert len(r.stderr.strip().splitlines()) == 1, r.stderr
  assert not list(tmp_path.iterdir())


def test_eval_writes_the_fig8_table_and_figures(tmp_path):
  p = _random_panel(m=24, n=12, seed=1)
  panel.write_panel(str(tmp_path / 'panel'), p)
  cli.main(['prefs', 'eval', str(tmp_path / 'panel'), '-o', str(tmp_path / 'out'), '-q'])
  import json
  from animgen.preference import baselines
  with open(tmp_path / 'out' / 'fig8_map.json') as f:
    table = json.load(f)
  assert list(table['models']) == list(baselines.MODELS)
  # CR ties every entry: its AP is the share of relevant entries, the same for every ranking
  assert all(0 <= v['map'] <= 1 for v in table['models'].values())
  assert set(baselines.JOINT) <= set(table['hyper'])
  for name in ('fig8_map.png', 'fig9_completed.png', 'fig10_tsne.png'):
    with open(tmp_path / 'out' / name, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_a_new_user_is_served_as_the_nearest_panel_user(fitted, tmp_path):
  d, p = fitted
  model = prefs.load_model(str(d / 'model.npz'))
  Y, ids = model[0].Y, model[5]
  for j in (2, 7):
    rows = ['cinemagraph,rating'] + [f'{ids[i]},{Y[i, j]:.4f}' for i in range(0, 40, 3)]
    (tmp_path / f'me{j}.csv').write_text('\n'.join(rows) + '\n')
    assert prefs.resolve_user(model, user_ratings=str(tmp_path / f'me{j}.csv'))[0] == j
    parts = [{k: p.parts[k][i] for k in features.PARTS} for i in range(5)]
    mine = prefs.rank_for_user(str(d / 'model.npz'), None, parts, str(tmp_path / f'me{j}.csv'))
    theirs = prefs.rank_for_user(str(d / 'model.npz'), f'u{j}', parts)
    np.testing.assert_array_equal(mine[0], theirs[0])
  (tmp_path / 'bad.csv').write_text('cinemagraph,rating\nnot_a_panel_one,3\n')
  with pytest.raises(Exception, match='not_a_panel_one is not one the model was fitted on'):
    prefs.resolve_user(model, user_ratings=str(tmp_path / 'bad.csv'))


def test_features_of_a_folder_of_cinemagraph_files_make_a_panel(tmp_path):
  """A real study's layout: cinemagraph files + ratings.csv -> prefs features -> a panel."""
  from animgen import media
  rng = np.random.default_rng(0)
  still = np.broadcast_to(rng.uniform(0.2, 0.8, (1, 32, 32, 3)), (12, 32, 32, 3)).copy()
  (tmp_path / 'study').mkdir()
  for name, moving in (('a2', True), ('a10', False), ('b1', True)):
    v = still.copy()
    if moving:
      for t in range(12):
        x = 4 + 2 * (t % 6)
        v[t, 10:18, x:x + 8] = 1.0
    media.write_video(str(tmp_path / 'study' / f'{name}.gif'), v, fps=10)
  out = tmp_path / 'study_panel'
  cli.main(['prefs', 'features', str(tmp_path / 'study'), '-o', str(out / 'cinemagraphs.npz'),
            '-q'])
  (out / 'ratings.csv').write_text('cinemagraph,user,rating\na2,x,4\na10,x,1\nb1,y,5\n')
  p = panel.load_panel(str(out))
  assert list(p.ids) == ['a2', 'a10', 'b1']   # natural order of the file stems
  motion = p.parts['motion']
  assert motion[0].sum() > 0 and motion[2].sum() > 0 and motion[1].sum() == 0
  assert p.ratings[1, 0] == 1 and np.isnan(p.ratings[1, 1])
  r = _cli('prefs', 'features', str(tmp_path / 'nothing'), '-o', str(tmp_path / 'x.npz'))
  assert r.returncode == 2 and 'not a folder' in r.stderr and not (tmp_path / 'x.npz').exists()
