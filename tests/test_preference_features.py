"""animgen.preference.features: the context feature v (Oh et al. 2017 Sec. 4, supp. Fig. 7),
each part against values computed by hand on tiny synthetic clips."""
import time

import cv2
import numpy as np
import pytest

from animgen.errors import InputError
from animgen.preference import features as F


def _texture(rng, shape, sigma=1.5):
  """Smooth random texture in [0, 1] (corners and flow need texture)."""
  x = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
  return (x - x.min()) / (x.max() - x.min())


def _rgb(grey):
  return np.repeat(np.asarray(grey, np.float32)[..., None], 3, -1)


def _part(values, name):
  """The 5 stats of group `name` (e.g. 'sharpness') out of a hand vector."""
  i = F.HAND_NAMES.index(name + 'Min')
  return values[i:i + 5]


def _stats(x):
  x = np.asarray(x, np.float64)
  return [x.min(), x.max(), x.mean(), np.median(x), x.std()]


def _square_clip(rng, xs, size=64, side=16, y=24):
  """A textured square on flat grey at column xs[t] in frame t."""
  sq = _texture(rng, (side, side))
  frames = np.full((len(xs), size, size, 3), 0.5, np.float32)
  for t, x in enumerate(xs):
    seg = sq[:, :max(0, min(side, size - x))]
    frames[t, y:y + side, x:x + seg.shape[1]] = _rgb(seg)
  return frames


def test_hand_names_follow_supp_fig7():
  names = F.HAND_NAMES
  assert len(names) == len(set(names)) == 55 and F.PARTS == ('hand', 'motion', 'semantic')
  starts = {0: 'facesizeMin', 5: 'facexsMin', 10: 'faceysMin', 15: 'sharpnessMin',
            20: 'motionMin', 25: 'motionSurroundMin', 30: 'tracklengthMin',
            35: 'trackBoundingBoxMin', 40: 'trackTravelsMin', 45: 'globalLoopCostsMin',
            50: 'faceRatiosMin'}
  assert {i: names[i] for i in starts} == starts
  assert names[1:5] == ('facesizeMax', 'facesizeMean', 'facesizeMedian', 'facesizeStd')
  assert names[-1] == 'faceRatiosStd'


def test_loop_costs_by_hand():
  T = 10
  g = np.arange(T) ** 2 / 100.0                                      # V(t) grows like t^2
  k = (np.arange(4)[:, None] + 1) * (np.arange(3)[None] + 1) / 10    # [x, c] pixel colour scale
  video = (g[:, None, None, None] * k[None, None]).astype(np.float32)   # [T, 1, 4, 3]
  periods = np.array([[1, 4, 4, 4]])
  starts = np.array([[3, 2, 0, 6]])

  def d(x, a, b):  # ||V(a) - V(b)||^2 at pixel x
    return np.sum(((g[a] - g[b]) * k[x]) ** 2)

  want = [0.5 * (d(1, 2, 6) + d(1, 5, 1)),   # s = 2, p = 4: V(s) ~ V(s+p), V(s+p-1) ~ V(s-1)
          0.5 * (d(2, 0, 4) + d(2, 3, 0)),   # s = 0: V(s-1) clamped to V(0)
          0.5 * (d(3, 6, 9) + d(3, 9, 5))]   # s + p = T: V(s+p) clamped to V(T-1)
  np.testing.assert_allclose(F.loop_costs(video, periods, starts), want, rtol=1e-5)


def test_hand_features_loopability_only_counts_dynamic_pixels():
  rng = np.random.default_rng(0)
  T, H, W = 12, 16, 16
  g = (np.arange(T) / T) ** 2
  video = rng.random((T, H, W, 3)).astype(np.float32)               # static part: noise
  video[:, 4:12, 4:12] = g[:, None, None, None]
  periods, starts = np.ones((H, W), int), np.zeros((H, W), int)
  periods[4:12, 4:12], starts[4:12, 4:12] = 8, 2
  hand = F.hand_features(video, periods, starts, video[:8], faces=False)
  want = 0.5 * 3 * ((g[2] - g[10]) ** 2 + (g[9] - g[1]) ** 2)
  np.testing.assert_allclose(_part(hand, 'globalLoopCosts'), [want] * 4 + [0], atol=1e-6)


def test_sharpness_is_the_laplacian_variance():
  rng = np.random.default_rng(1)
  frames = rng.random((3, 12, 10, 3)).astype(np.float32)
  grey = frames @ np.array([0.299, 0.587, 0.114], np.float32)
  p = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode='reflect')      # OpenCV's reflect-101
  lap = p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4 * grey
  want = lap.reshape(3, -1).var(1)
  np.testing.assert_allclose(F.sharpness(frames), want, rtol=1e-4)
  ones = np.ones((12, 10), int)
  hand = F.hand_features(frames, ones, np.zeros_like(ones), frames, faces=False)
  np.testing.assert_allclose(_part(hand, 'sharpness'), _stats(want), rtol=1e-4)


def test_face_stats_on_hand_made_boxes():
  h, w = 40, 80
  boxes = [np.array([[0, 0, 10, 10]]), np.zeros((0, 4)),
           np.array([[20, 10, 20, 20], [60, 30, 10, 10]])]    # (x, y, w, h)
  dynamic = np.zeros((h, w), bool)
  dynamic[:, :25] = True
  got = F.face_stats(boxes, h, w, dynamic)
  want = np.concatenate([_stats([100 / 3200, 400 / 3200, 100 / 3200]),   # size: area / frame
                         _stats([5 / 80, 30 / 80, 65 / 80]),             # centre x / W
                         _stats([5 / 40, 20 / 40, 35 / 40]),             # centre y / H
                         _stats([1.0, 5 / 20, 0.0])])                    # dynamic share of box
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert not F.face_stats([np.zeros((0, 4))], h, w, dynamic).any()


def test_haar_cascade_finds_the_astronaut():
  import skimage.data
  image = skimage.data.astronaut().astype(np.float32) / 255
  (boxes,) = F.detect_faces(image[None])
  centres = boxes[:, :2] + boxes[:, 2:] / 2
  hits = (centres[:, 0] > 150) & (centres[:, 0] < 300) & (centres[:, 1] > 40) & \
      (centres[:, 1] < 190)
  assert hits.any() and (boxes[hits, 2] > 50).all(), boxes   # her face: x 150-300, y 40-190
  assert not len(F.detect_faces(np.full((1, 64, 64, 3), 0.5, np.float32))[0])


def test_hand_features_face_position_and_ratio():
  import skimage.data
  from PIL import Image
  face = Image.fromarray(skimage.data.astronaut()[40:190, 150:300]).resize((40, 40))
  frames = np.full((4, 64, 64, 3), 0.5, np.float32)
  frames[:, 10:50, 12:52] = np.asarray(face, np.float32) / 255     # face centre (32, 30)
  periods, starts = np.ones((64, 64), int), np.zeros((64, 64), int)
  periods[:, :32] = 2                                               # left half dynamic
  hand = F.hand_features(frames, periods, starts, frames)
  assert abs(_part(hand, 'facexs')[2] - 32 / 64) < 0.06
  assert abs(_part(hand, 'faceys')[2] - 30 / 64) < 0.06
  assert 0.1 < _part(hand, 'facesize')[2] < 0.4
  assert 0.3 < _part(hand, 'faceRatios')[2] < 0.7                  # about half the box
  off = F.hand_features(frames, periods, starts, frames, faces=False)
  assert not off[:15].any() and not off[50:].any()


def test_flow_motion_inside_exceeds_surround_at_the_known_speed():
  rng = np.random.default_rng(2)
  H = W = 96
  v = 2                                                           # px / frame, to the right
  big, still = _texture(rng, (H, 3 * W)), _texture(rng, (H, W))
  dyn = np.zeros((H, W), bool)
  dyn[16:80, 16:80] = True
  frames = _rgb([np.where(dyn, np.roll(big, v * t, 1)[:, W:2 * W], still) for t in range(8)])
  inside, around = F.flow_motion(F.flows(frames), dyn)
  assert len(inside) == len(around) == 7
  assert 0.75 * v < inside.mean() < 1.1 * v, inside
  assert around.mean() < 0.5 * inside.mean(), around
  periods = np.where(dyn, 2, 1)
  hand = F.hand_features(frames, periods, np.zeros_like(periods), frames, faces=False)
  np.testing.assert_allclose(_part(hand, 'motion'), _stats(inside), rtol=1e-4)
  np.testing.assert_allclose(_part(hand, 'motionSurround'), _stats(around), rtol=1e-4)


def test_track_travel_and_box_on_a_square_going_there_and_back():
  rng = np.random.default_rng(3)
  xs = [8 + 2 * min(t, 20 - t) for t in range(21)]                  # 2 px / frame, out and back
  frames = _square_clip(rng, xs)
  dyn = np.zeros((64, 64), bool)
  dyn[24:40, 8:44] = True
  paths = F.tracks(frames, dyn)
  assert paths.shape[1] >= 4
  diag = np.hypot(64, 64)
  got = F.track_stats(paths, 64, 64)
  np.testing.assert_allclose(got[:5], [1, 1, 1, 1, 0], atol=1e-6)   # no track lost
  np.testing.assert_allclose(got[5:10], _stats([20 / diag] * 2), atol=2e-3)   # 20 px apart
  np.testing.assert_allclose(got[10:], _stats([40 / diag] * 2), atol=2e-3)    # 40 px walked


def test_tracks_are_dropped_when_they_leave_the_frame():
  rng = np.random.default_rng(4)
  frames = _square_clip(rng, [40 + 3 * t for t in range(12)])      # exits to the right
  dyn = np.zeros((64, 64), bool)
  dyn[24:40, 40:] = True
  paths = F.tracks(frames, dyn)
  frames_kept = (~np.isnan(paths[..., 0])).sum(0)
  last_inside = np.floor((63 - paths[0, :, 0]) / 3) + 1             # frames before x > 63
  assert len(frames_kept) and (frames_kept <= last_inside).all()
  assert (np.nan_to_num(paths[..., 0]) <= 63).all()
  assert F.track_stats(paths, 64, 64)[1] < 1                        # longest track < clip
  assert not F.track_stats(F.tracks(frames, np.zeros((64, 64), bool)), 64, 64).any()


def test_motion_feature_orientation_speed_and_halves():
  rng = np.random.default_rng(5)
  H = W = 96
  v = 3
  big, still = _texture(rng, (3 * H, 3 * W)), _texture(rng, (H, W))
  dyn = np.zeros((H, W), bool)
  dyn[16:80, 16:80] = True
  shifts = [(0, v * t) for t in range(5)] + [(v * t, 4 * v) for t in range(1, 5)]
  frames = _rgb([np.where(dyn, np.roll(big, s, (0, 1))[H:2 * H, W:2 * W], still)
                 for s in shifts])                                  # 4 pairs right, 4 down
  m = F.motion_feature(frames, dyn)
  assert m.shape == (F.MOTION_DIM,) == (64,) and m.dtype == np.float32
  hist = m.reshape(2, 4, 8)                                         # half, speed, orientation
  speed_bin = np.searchsorted([0.005, 0.015, 0.04], v / np.hypot(H, W), side='right')
  assert np.unravel_index(hist[0].argmax(), (4, 8)) == (speed_bin, 0)   # +x
  assert np.unravel_index(hist[1].argmax(), (4, 8)) == (speed_bin, 2)   # +y (down)
  flow = F.flows(frames)
  speed = np.linalg.norm(flow[:, dyn], axis=-1) / np.hypot(H, W)
  np.testing.assert_allclose(hist.sum((1, 2)), [speed[:4].sum() / (4 * H * W),
                                                speed[4:].sum() / (4 * H * W)], rtol=1e-4)
  assert not F.motion_feature(frames[:1], dyn).any()


def test_semantic_feature_sums_by_hand():
  r = np.array([[[1, 0], [0.5, 0.5], [0, 1]],
                [[0.2, 0.8], [1, 0], [0.4, 0.6]]])                  # [H=2, W=3, C=2]
  dyn = np.array([[False, True, True], [False, False, True]])
  want = np.array([1 + 0.2 + 1, 0 + 0.8 + 0,                        # static: (0,0) (1,0) (1,1)
                   0.5 + 0 + 0.4, 0.5 + 1 + 0.6]) / 6               # dynamic: (0,1) (0,2) (1,2)
  np.testing.assert_allclose(F.semantic_feature(r, dyn), want, rtol=1e-6)
  over_time = np.stack([r - 0.1, r + 0.1])                          # [T, H, W, C]: mean is r
  np.testing.assert_allclose(F.semantic_feature(over_time, dyn), want, rtol=1e-6)
  np.testing.assert_allclose(F.semantic_feature(None, dyn), [3 / 6, 3 / 6])
  with pytest.raises(InputError, match='do not match'):
    F.semantic_feature(r[:, :2], dyn)


def test_normalise_parts_and_apply_scales():
  rows = [{'hand': np.arange(55.0), 'motion': np.array([1.0, -4.0]),
           'semantic': np.zeros(2)},
          {'hand': -2 * np.arange(55.0), 'motion': np.array([2.0, 3.0]),
           'semantic': np.zeros(2)}]
  V, scales = F.normalise_parts(rows)
  assert scales == {'hand': 108.0, 'motion': 4.0, 'semantic': 1.0}   # max |.|; 0 -> 1
  want = np.array([np.concatenate([np.arange(55) / 108, [0.25, -1.0], [0, 0]]),
                   np.concatenate([-np.arange(55) / 54, [0.5, 0.75], [0, 0]])])
  np.testing.assert_allclose(V, want, rtol=1e-6)
  assert V.dtype == np.float32 and V.shape == (2, 59)
  np.testing.assert_allclose(F.apply_scales(rows[1], scales), want[1], rtol=1e-6)
  with pytest.raises(InputError, match='hand part has 54'):
    F.apply_scales(dict(rows[0], hand=np.zeros(54)), scales)
  with pytest.raises(InputError, match='missing'):
    F.apply_scales({'hand': np.zeros(55)}, scales)
  with pytest.raises(InputError, match='different sizes'):
    F.normalise_parts([rows[0], dict(rows[1], motion=np.zeros(3))])


def test_load_motion_features(tmp_path):
  def write(name, **arrays):
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path

  good = np.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(F.load_motion_features(write('ok.npz', features=good), 3), good)
  np.save(tmp_path / 'single.npy', good)
  objects = np.empty(3, object)
  objects[:] = [np.zeros(2), 'x', None]
  cases = [(write('key.npz', feats=good), 3, 'no array named features'),
           (write('rows.npz', features=good), 4, r'\[4, D\]'),
           (write('flat.npz', features=np.zeros(3)), 3, r'\[3, D\]'),
           (write('nan.npz', features=np.where(good > 5, np.nan, good)), 3, 'NaN'),
           (write('pickle.npz', features=objects), 3, 'cannot read'),
           (str(tmp_path / 'single.npy'), 3, 'single array'),
           (str(tmp_path / 'absent.npz'), 3, 'no such file')]
  for path, num, message in cases:
    with pytest.raises(InputError, match=message) as e:
      F.load_motion_features(path, num)
    assert path in str(e.value) and '\n' not in str(e.value)


def test_cinemagraph_parts_shapes_override_and_speed():
  rng = np.random.default_rng(6)
  T, H, W = 40, 64, 64
  video = rng.random((T, H, W, 3)).astype(np.float32)
  periods, starts = np.ones((H, W), np.int32), np.zeros((H, W), np.int32)
  periods[16:48, 16:48], starts[16:48, 16:48] = 16, 4
  frames = video[4:20]
  F.cinemagraph_parts(video, periods, starts, frames)              # loads the cascade
  t0 = time.perf_counter()
  parts = F.cinemagraph_parts(video, periods, starts, frames, rng.random((T, H, W, 5)))
  elapsed = time.perf_counter() - t0
  assert elapsed < 1.0, elapsed
  assert {k: v.shape for k, v in parts.items()} == {'hand': (55,), 'motion': (F.MOTION_DIM,),
                                                    'semantic': (10,)}
  assert all(v.dtype == np.float32 for v in parts.values())
  np.testing.assert_array_equal(parts['hand'], F.hand_features(video, periods, starts, frames))
  np.testing.assert_array_equal(parts['motion'], F.motion_feature(frames, periods > 1))
  c3d = np.linspace(0, 1, 4096)
  given = F.cinemagraph_parts(video, periods, starts, frames, motion=c3d)
  np.testing.assert_allclose(given['motion'], c3d, rtol=1e-6)
  assert given['semantic'].shape == (2,)
  still = F.cinemagraph_parts(video, np.ones_like(periods), starts, frames, faces=False)
  assert not still['motion'].any() and not still['hand'][20:50].any()   # nothing dynamic
  with pytest.raises(InputError, match='motion feature'):
    F.cinemagraph_parts(video, periods, starts, frames, motion=[np.nan])
  with pytest.raises(InputError, match='one size'):
    F.cinemagraph_parts(video, periods[:-1], starts, frames)
  with pytest.raises(InputError, match='s \\+ p <= T'):
    F.cinemagraph_parts(video[:10], periods, starts, frames)
