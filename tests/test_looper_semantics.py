"""animgen.looper.semantics: class table, candidate selection, responses files, motion fallback."""
import json

import numpy as np
import pytest
import scipy.ndimage

from animgen.errors import InputError
from animgen.looper import semantics


def test_class_table_as_printed():
  table = semantics.class_table()
  assert len(table.pascal) == 60 and table.pascal[0] == 'background'
  assert table.pascal[15] == 'person' and table.pascal[59] == 'wood'
  assert len(table.classes) == 32 and table.classes[0] == 'background'
  cls = lambda name: table.to_class[table.pascal.index(name)]
  natural = lambda name: bool(table.natural[cls(name)])
  assert all(natural(n) for n in ('sky', 'tree', 'water', 'grass', 'snow', 'road', 'flower'))
  assert not any(natural(n) for n in ('person', 'car', 'dog', 'chair', 'bottle', 'window'))
  assert cls('sky') == cls('tree') and table.classes[cls('sky')] == 'sky & tree'
  assert table.classes[cls('snow')] == 'water' and table.classes[cls('clothes')] == 'person'
  assert table.classes[cls('aeroplane')] == 'aeroplane'  # '.': keeps its own name
  animals = [n for n in table.pascal if table.classes[cls(n)] == 'animal']
  assert animals == ['bird', 'cat', 'cow', 'dog', 'horse', 'sheep']
  with open(semantics._TABLE) as f:
    rows = json.load(f)['classes']
  assert [r['id'] for r in rows] == list(range(1, 61))
  for r in rows:  # the printed flag is shared by all members of a merged class
    assert r['natural'] == bool(table.natural[cls(r['name'])])
  assert set(table.static) <= set(table.classes) and 'background' in table.static
  assert not {'person', 'water', 'sky & tree', 'grass', 'animal'} & set(table.static)


def test_map_responses_sums_merged_classes():
  rng = np.random.default_rng(0)
  r = rng.dirichlet(np.ones(60), size=(2, 3, 4)).astype(np.float32)
  out = np.asarray(semantics.map_responses(r))
  table = semantics.class_table()
  assert out.shape == (2, 3, 4, 32)
  np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
  animal = table.classes.index('animal')
  np.testing.assert_allclose(out[..., animal], r[..., [3, 8, 10, 12, 13, 17]].sum(-1), atol=1e-6)
  np.testing.assert_allclose(out[..., table.classes.index('aeroplane')], r[..., 1], atol=1e-6)
  background = [0, 25, 27, 33, 37, 43, 46, 49, 53, 56]  # background building ceiling floor ...
  np.testing.assert_allclose(out[..., 0], r[..., background].sum(-1), atol=1e-6)


def test_to_oh_classes_and_natural_union():
  table = semantics.class_table()
  r = np.zeros((1, 2, 2, 60), np.float32)
  r[..., table.pascal.index('tree')] = 1
  F, names = semantics.to_oh_classes(r, list(table.pascal))
  assert names == list(table.classes) and F.shape == (1, 2, 2, 32)
  assert float(F[0, 0, 0, names.index('sky & tree')]) == 1
  same, own = semantics.to_oh_classes(r[..., :3], ['a', 'b', 'c'])  # other lists: unchanged
  assert own == ['a', 'b', 'c'] and same.shape == (1, 2, 2, 3)
  maps = np.zeros((3, 2, 2), bool)
  maps[0, 0, 0] = maps[1, 0, 1] = maps[2, 1, 1] = True
  union = semantics.natural_union(maps, ['water', 'person', 'tree'])  # tree: PASCAL name
  assert union.tolist() == [[True, False], [False, True]]
  assert not semantics.natural_union(maps[:0], []).any()


def test_num_components_matches_scipy():
  rng = np.random.default_rng(1)
  masks = rng.random((3, 30, 40)) < 0.45
  masks[2] = False
  masks[2, 5:25, 5] = masks[2, 24, 5:35] = masks[2, 5:25, 34] = True  # one long U
  want = sum(scipy.ndimage.label(m)[1] for m in masks)
  assert int(semantics._num_components(masks)) == want


def test_blob_threshold_scales_with_frame_area():
  assert semantics.blob_threshold(540, 960) == 400
  assert semantics.blob_threshold(270, 480) == pytest.approx(100)


def _scene(t=8, h=64, w=64, seed=2):
  """Six classes with known areas; see test_select_candidates."""
  names = ['background', 'water', 'person', 'sky & tree', 'grass', 'animal']
  lab = np.zeros((h, w), int)
  lab[:32, 30:] = 1  # water 1088 px
  lab[32:48, 30:] = 2  # person 544 px
  lab[48:, 30:50] = 3  # sky & tree 320 px, static intensity
  lab[48:, 50:] = 4  # grass 224 px
  lab[1::2, 1:30:2] = 5  # animal: 480 isolated pixels (blobs of 1 px) inside the background
  rng = np.random.default_rng(seed)
  video = rng.uniform(0.2, 0.8, (t, h, w, 3)).astype(np.float32)  # everything flickers ...
  video[:, lab == 3] = 0.5  # ... except sky & tree
  F = np.full((t, h, w, 6), 0.3 / 5, np.float32)
  F[:, np.arange(h)[:, None], np.arange(w)[None, :], lab] = 0.7
  return F, video, names, lab


def test_select_candidates_filters_and_orders():
  F, video, names, lab = _scene()
  assert [int((lab == c).sum()) for c in range(6)] == [1440, 1088, 544, 320, 224, 480]
  # background: static class; sky & tree: low dynamicity; animal: blobs of 1 px <= 3.2 px
  assert semantics.select_candidates(F, video, names, K=3) == [1, 2, 4]
  assert semantics.select_candidates(F, video, names, K=2) == [1, 2]
  assert semantics.select_candidates(F, video, names, K=3, static=()) == [0, 1, 2]
  assert semantics.select_candidates(F, video, names, K=4, min_blob=0) == [1, 2, 5, 4]
  assert semantics.select_candidates(F, video, names, K=4, min_std=0.3) == []


def test_topk_responses_and_candidate_maps():
  F = np.zeros((20, 1, 3, 4), np.float32)
  F[..., 3] = 0.5
  F[:, 0, :2, 1] = 0.25
  F[:3, 0, 0, 0] = 0.6  # pixel 0: channel 0 wins 3 of 20 frames = 0.15 T
  F[:2, 0, 1, 0] = 0.6  # pixel 1: only 2 frames
  top = np.asarray(semantics.topk_responses(F, [0, 1]))
  assert top.shape == (20, 1, 3, 2)
  np.testing.assert_allclose(top[5, 0, 0], [0, 1])
  np.testing.assert_allclose(top[0, 0, 0], [0.6 / 0.85, 0.25 / 0.85], rtol=1e-6)
  np.testing.assert_allclose(top[5, 0, 2], [0.5, 0.5])  # all zero -> uniform
  pi = np.asarray(semantics.candidate_maps(F, [0, 1]))
  assert pi.dtype == bool and pi.shape == (2, 1, 3)
  assert pi[0, 0].tolist() == [True, False, False]  # pixel 2 is class 3 (not kept) throughout
  assert pi[1, 0].tolist() == [False, False, False]  # class 1 never beats class 3
  assert np.asarray(semantics.candidate_maps(F, [0, 1], thr=0.1))[0, 0].tolist() == [
      True, True, False]
  assert np.asarray(semantics.candidate_maps(F, [3]))[0, 0].tolist() == [True, True, True]
  # over the kept channels only, class 1 would win pixels 0-1 and class 0 the uniform pixel 2
  assert np.asarray(semantics.candidate_maps(top, [0, 1]))[1, 0].tolist() == [True, True, False]


def test_load_responses_good_files(tmp_path):
  rng = np.random.default_rng(3)
  probs = rng.dirichlet(np.ones(3), size=(2, 4, 5)).astype(np.float32) * 0.5  # sums to 0.5
  path = tmp_path / 'r.npz'
  np.savez(path, responses=probs, classes=np.array(['a', 'b', 'c']))
  F, names = semantics.load_responses(path, 2, 4, 5)
  assert names == ['a', 'b', 'c'] and F.dtype == np.float32
  np.testing.assert_allclose(F, probs * 2, rtol=1e-5)  # renormalised
  ids = rng.integers(0, 60, (2, 4, 5))
  np.savez(path, labels=ids)
  F, names = semantics.load_responses(path, 2, 4, 5)
  assert F.shape == (2, 4, 5, 60) and names[0] == 'background' and names[59] == 'wood'
  assert np.array_equal(F.argmax(-1), ids) and np.all(F.sum(-1) == 1)


@pytest.mark.parametrize('content, words', [
    (None, 'no such file'),
    ('text', 'cannot read'),
    ('npy', 'single array'),
    (dict(), 'exactly one of'),
    (dict(responses=np.ones((2, 4, 5, 2)) / 2, labels=np.zeros((2, 4, 5), int)), 'exactly one'),
    (dict(responses=np.ones((3, 4, 5, 60)) / 60), 'expected float [T, H, W, C]'),
    (dict(responses=np.full((2, 4, 5, 60), 3.0)), 'softmax'),
    (dict(responses=np.ones((2, 4, 5, 3)) / 3), '60 class names for 3'),
    (dict(labels=np.full((2, 4, 5), 60)), 'class ids in [0, 60)'),
    (dict(labels=np.zeros((2, 4, 5))), 'expected int'),
    (dict(labels=np.zeros((2, 4, 5), int), classes=np.array([1, 2])), '1-D str array'),
    (dict(labels=np.zeros((2, 4, 5), int), classes=np.array(['a', None])), 'cannot read'),
])
def test_load_responses_errors(tmp_path, content, words):
  path = tmp_path / 'bad.npz'
  if content == 'text':
    path.write_text('not an archive')
  elif content == 'npy':
    with open(path, 'wb') as f:
      np.save(f, np.zeros((2, 4, 5)))
  elif content is not None:
    np.savez(path, **content)
  with pytest.raises(InputError) as e:
    semantics.load_responses(path, 2, 4, 5)
  message = str(e.value)
  assert words in message and '\n' not in message


def _scroll_square(video, top, left, size, colour, rng, speed=2):
  """A size x size window in which a random texture of `colour` scrolls sideways."""
  texture = rng.uniform(0.3, 1.0, (size, 3 * size, 1)) * np.asarray(colour)
  for t in range(len(video)):
    video[t, top:top + size, left:left + size] = np.roll(texture, speed * t, axis=1)[:, :size]


def _iou(a, b):
  return (a & b).sum() / (a | b).sum()


def test_motion_candidates_finds_a_moving_square():
  rng = np.random.default_rng(4)
  t, h, w = 24, 80, 80
  background = scipy.ndimage.gaussian_filter(rng.random((h, w, 3)), (2, 2, 0))
  video = np.clip(background + rng.normal(0, 0.01, (t, h, w, 3)), 0, 1)
  _scroll_square(video, 20, 30, 32, (0.9, 0.6, 0.3), rng)
  maps, F = semantics.motion_candidates(video.astype(np.float32))
  maps, F = np.asarray(maps), np.asarray(F)
  truth = np.zeros((h, w), bool)
  truth[20:52, 30:62] = True
  assert maps.shape == (1, h, w) and F.shape == (t, h, w, 2)
  assert _iou(maps[0], truth) >= 0.9
  assert np.array_equal(F[0].argmax(-1), np.where(maps[0], 0, 1))
  np.testing.assert_array_equal(F.sum(-1), 1.0)


def test_motion_candidates_separates_two_regions():
  rng = np.random.default_rng(5)
  t, h, w = 24, 80, 96
  video = np.full((t, h, w, 3), 0.4) + rng.normal(0, 0.01, (t, h, w, 3))
  _scroll_square(video, 8, 8, 24, (0.2, 0.4, 1.0), rng)  # blue, top left
  _scroll_square(video, 40, 56, 32, (1.0, 0.5, 0.1), rng)  # orange, bottom right, larger
  maps, F = map(np.asarray, semantics.motion_candidates(video.astype(np.float32)))
  assert maps.shape == (2, h, w) and F.shape == (t, h, w, 3)
  small, large = np.zeros((2, h, w), bool)
  small[8:32, 8:32] = True
  large[40:72, 56:88] = True
  assert _iou(maps[0], large) >= 0.9 and _iou(maps[1], small) >= 0.9


def test_motion_candidates_static_video_has_none():
  rng = np.random.default_rng(6)
  video = np.clip(0.5 + rng.normal(0, 0.01, (12, 32, 32, 3)), 0, 1).astype(np.float32)
  maps, F = semantics.motion_candidates(video)
  assert maps.shape == (0, 32, 32) and F.shape == (12, 32, 32, 1)
