"""The simulated user panel (Oh 2017 Sec. 4 has no public study): its statistics, its
calibration to the paper's rating spread, the observation pattern, the files and their errors,
and the clips' candidates from the looper."""

import numpy as np
import pytest

from animgen.errors import InputError
from animgen.preference import panel


def test_rating_stats_by_hand():
  Y = np.array([[1, 5, 1, 5],          # std 2
                [3, 3, 3, np.nan],     # std 0
                [2, 3, 2, 3]])         # std 0.5
  s = panel.rating_stats(Y)
  assert s['share_std_above_1'] == pytest.approx(1 / 3)
  assert s['share_std_below_0.5'] == pytest.approx(1 / 3)
  assert s['observed'] == pytest.approx(11 / 12)


def _truth(m=200, n=59, d=30, seed=0):
  rng = np.random.default_rng(seed)
  return panel.taste_truth(rng.normal(size=(m, d)), rng, num_users=n, groups=4), rng


def test_calibration_gives_the_papers_spread_and_groups_share_taste():
  truth, _ = _truth()
  strength = panel.calibrate(truth, 0)
  y = panel.ratings_from(truth, np.random.default_rng(0), strength)
  s = panel.rating_stats(y)
  assert abs(s['share_std_above_1'] - panel.PAPER_SHARE_STD_ABOVE_1) < 0.03, s
  assert s['share_std_below_0.5'] < 0.05, s
  assert set(np.unique(y)) <= {1, 2, 3, 4, 5}
  # users of one group agree more with each other than with other groups
  c = np.corrcoef(truth['scores'].T)
  same = truth['group'][:, None] == truth['group'][None]
  off = ~np.eye(len(c), dtype=bool)
  assert c[same & off].mean() > c[~same].mean() + 0.3


def test_calibration_survives_heavy_tailed_features():
  """Log-normal context features (heavy right tails, as flow magnitudes have): the spread still
  comes out as the paper's (standardised instead of Gaussianised, 8.5 % have std < 0.5)."""
  rng = np.random.default_rng(3)
  V = np.exp(2 * rng.normal(size=(200, 30)))
  truth = panel.taste_truth(V, rng, num_users=59, groups=4)
  y = panel.ratings_from(truth, np.random.default_rng(0), panel.calibrate(truth, 0))
  s = panel.rating_stats(y)
  assert abs(s['share_std_above_1'] - panel.PAPER_SHARE_STD_ABOVE_1) < 0.03, s
  assert s['share_std_below_0.5'] < 0.03, s


def test_observe_keeps_the_share_and_two_per_line():
  truth, rng = _truth(m=60, n=20)
  full = panel.ratings_from(truth, rng, 1.0)
  Y = panel.observe(full, np.random.default_rng(1), share=0.3)
  seen = ~np.isnan(Y)
  assert abs(seen.mean() - 0.3) < 0.05
  assert seen.sum(0).min() >= 2 and seen.sum(1).min() >= 2
  np.testing.assert_array_equal(Y[seen], full[seen])


def _write(tmp_path, text):
  p = tmp_path / 'ratings.csv'
  p.write_text(text)
  return str(p)


@pytest.mark.parametrize('text, message', [
    ('cinemagraph,rating\nc1,3\n', 'header must name'),
    ('cinemagraph,user,rating\nc1,u1,6\n', 'line 2: rating'),
    ('cinemagraph,user,rating\nc1,u1,x\n', 'line 2: rating'),
    ('cinemagraph,user,rating\nc1,u1,3\nc1,u1,4\n', 'line 3: a second rating'),
    ('cinemagraph,user,rating\n', 'no ratings'),
])
def test_ratings_csv_errors_are_one_line(tmp_path, text, message):
  with pytest.raises(InputError, match=message) as e:
    panel.read_ratings_csv(_write(tmp_path, text))
  assert '\n' not in str(e.value)


def _tiny_panel(m=5, n=3):
  from animgen.preference import features
  rng = np.random.default_rng(0)
  parts = {p: rng.normal(size=(m, 2 + k)).astype(np.float32)
           for k, p in enumerate(features.PARTS)}
  Y = rng.integers(1, 6, (m, n)).astype(float)
  Y[0, 1] = np.nan
  return panel.Panel(Y, parts, np.asarray([f'c{i}' for i in range(m)]),
                     np.asarray(['a', 'b', 'c']), np.arange(m), np.asarray(['water'] * m))


def test_panel_files_round_trip_and_refuse_pickles(tmp_path):
  p = _tiny_panel()
  panel.write_panel(str(tmp_path / 'p'), p, {'group': np.array([0, 1, 0])})
  q = panel.load_panel(str(tmp_path / 'p'))
  np.testing.assert_array_equal(q.ratings, p.ratings)   # NaN where not rated
  for k in p.parts:
    np.testing.assert_array_equal(q.parts[k], p.parts[k])
  assert list(q.ids) == list(p.ids) and list(q.users) == list(p.users)
  np.savez(str(tmp_path / 'p' / 'cinemagraphs.npz'), ids=np.array([{'x': 1}], dtype=object))
  with pytest.raises(InputError, match='without pickles'):
    panel.load_panel(str(tmp_path / 'p'))


def test_ratings_of_unknown_cinemagraphs_are_refused(tmp_path):
  p = _tiny_panel()
  panel.write_panel(str(tmp_path / 'p'), p)
  with open(tmp_path / 'p' / 'ratings.csv', 'a') as f:
    f.write('c99,a,3\n')
  with pytest.raises(InputError, match='c99 is not in cinemagraphs.npz'):
    panel.load_panel(str(tmp_path / 'p'))


def test_synthetic_clip_candidates_are_its_objects():
  """A two-object clip: the looper's candidates are objects' classes (and all together when
  there are two), and each candidate loops inside its object."""
  from animgen.looper import semantics, stages
  rng = np.random.default_rng(3)
  video, responses = panel.synthetic_clip(rng, 48, 32, 2)
  classes = semantics.class_table().classes
  present = {classes[c] for c in np.unique(responses.argmax(-1))} - {'background'}
  loops = panel.clip_loops(video, responses, stages.LoopConfig(min_period=16))
  names = [l.name for l in loops]
  objects = [n for n in names if n != 'all']
  assert objects and set(objects) <= present, (names, present)
  assert ('all' in names) == (len(objects) > 1) and names[-1] == ('all' if len(objects) > 1
                                                                  else objects[0])
  for loop in loops[:len(objects)]:
    inside = responses[..., classes.index(loop.name)] > 0
    assert (loop.periods[inside] > 1).mean() > 0.5, loop.name


def test_make_panel_end_to_end(tmp_path):
  """A tiny panel through the looper, the features and the rating model, written and read back:
  every rating observed in the CSV is the hidden full rating."""
  from animgen.preference import features
  p, truth = panel.make_panel(seed=1, num_clips=3, num_users=6, size=48, frames=32)
  m = len(p.ids)
  assert m >= 3 and p.ratings.shape == (m, 6) and len(p.clips) == m
  assert p.parts['hand'].shape == (m, len(features.HAND_NAMES))
  assert p.parts['motion'].shape == (m, features.MOTION_DIM)
  seen = p.observed
  np.testing.assert_array_equal(p.ratings[seen], truth['full_ratings'][seen])
  assert truth['scores'].shape == (m, 6) and truth['group'].shape == (6,)
  panel.write_panel(str(tmp_path / 'p'), p, truth)
  q = panel.load_panel(str(tmp_path / 'p'))
  np.testing.assert_array_equal(q.ratings, p.ratings)
  assert set(panel.load_truth(str(tmp_path / 'p'))) >= {'group', 'weights', 'full_ratings'}
