"""animgen.looper.render: time map, exact gather, cross-fade, seam blend, label images and the
label-map figure."""
import os

import numpy as np
import pytest

from animgen.looper import render


def _random_labels(rng, h, w, t, periods):
  p = rng.choice(periods, size=(h, w))
  s = np.array([[rng.integers(0, t - pp + 1) for pp in row] for row in p])
  return p, s


def test_time_map_plain_by_hand():
  phi = np.asarray(render.time_map(np.full((1, 1), 4), np.full((1, 1), 2), 8, stretch=False))
  assert phi[:, 0, 0].tolist() == [4, 5, 2, 3, 4, 5, 2, 3]  # s + ((t - s) mod p)
  static = render.time_map(np.ones((1, 1), int), np.full((1, 1), 7), 5, stretch=False)
  assert np.asarray(static).ravel().tolist() == [7] * 5


def test_time_map_stretch_perfect_loop():
  rng = np.random.default_rng(0)
  n, t = 40, 64
  p, s = _random_labels(rng, 9, 11, t, [1, 8, 12, 16, 20, 24, 32])
  phi = np.asarray(render.time_map(p, s, n))
  assert phi.shape == (n, 9, 11) and phi.dtype == np.int32
  # by hand: p = 12, s = 4 -> k = round(40 / 12) = 3, u(39) = floor(39 * 36 / 40) = 35
  one = np.asarray(render.time_map(np.full((1, 1), 12), np.full((1, 1), 4), n))[:, 0, 0]
  assert one[39] == 4 + (35 - 4) % 12 == 11 and one[0] == 12 == 4 + (36 - 4) % 12
  k = np.floor(n / p + 0.5)
  looping = p > 1
  # each step, the wrap N-1 -> 0 included, moves forward; over one output period the steps add
  # up to exactly k p: an integer number of loops, so frame N would equal frame 0
  steps = np.mod(np.roll(phi, -1, axis=0) - phi, p)
  assert np.all(steps.sum(0)[looping] == (k * p)[looping])
  assert steps.max() <= 2
  assert np.all((phi >= s) & (phi < s + p))
  assert np.all(phi[:, ~looping] == s[~looping])  # static pixels stay on frame s
  for i, j in zip(*np.nonzero(looping & (k * p <= n))):  # not sped up: every frame is shown
    assert set(phi[:, i, j]) == set(range(s[i, j], s[i, j] + p[i, j]))
  assert np.any(looping & (k * p <= n)) and np.any(k * p > n)


def test_render_without_blend_is_exact_gather():
  rng = np.random.default_rng(1)
  t, h, w = 24, 6, 7
  video = rng.random((t, h, w, 3)).astype(np.float32)
  p, s = _random_labels(rng, h, w, t, [1, 4, 8, 12])
  out = np.asarray(render.render(video, p, s, 20, blend=False, stretch=False))
  tt = np.arange(20)[:, None, None]
  phi = s + np.mod(tt - s, p)
  ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
  np.testing.assert_array_equal(out, video[phi, ii, jj])
  out = np.asarray(render.render(video, p, s, 20, blend=False))
  phi = np.asarray(render.time_map(p, s, 20))
  np.testing.assert_array_equal(out, video[phi, ii, jj])


def test_render_rejects_labels_outside_video():
  video = np.zeros((10, 2, 2, 3), np.float32)
  with pytest.raises(ValueError, match='s \\+ p <= T'):
    render.render(video, np.full((2, 2), 8), np.full((2, 2), 4), 8)


def test_screened_poisson_matches_dense_least_squares():
  rng = np.random.default_rng(2)
  h, w, eps = 5, 6, 0.3
  f, gx, gy = rng.random((h, w, 1)), rng.normal(size=(h, w - 1, 1)), rng.normal(size=(h - 1, w, 1))
  u = np.asarray(render.screened_poisson(f.astype(np.float32), gx.astype(np.float32),
                                         gy.astype(np.float32), eps))
  idx = np.arange(h * w).reshape(h, w)
  rows, rhs = [], []
  for (a, b), g in [((idx[:, :-1], idx[:, 1:]), gx), ((idx[:-1], idx[1:]), gy)]:
    for i0, i1, gv in zip(a.ravel(), b.ravel(), g.ravel()):
      r = np.zeros(h * w)
      r[i1], r[i0] = 1, -1
      rows.append(r)
      rhs.append(gv)
  a = np.vstack([np.array(rows), np.sqrt(eps) * np.eye(h * w)])
  b = np.concatenate([rhs, np.sqrt(eps) * f.ravel()])
  want = np.linalg.lstsq(a, b, rcond=None)[0].reshape(h, w)
  np.testing.assert_allclose(u[..., 0], want, atol=1e-5)


def test_periodic_screened_poisson_matches_dense_least_squares():
  """The 3-D solve, periodic in time and Neumann in space, against lstsq of the same rows."""
  rng = np.random.default_rng(12)
  n, h, w, eps = 5, 3, 4, 0.2
  f = rng.random((n, h, w, 1))
  gt, gx, gy = (rng.normal(size=s) for s in ((n, h, w, 1), (n, h, w - 1, 1), (n, h - 1, w, 1)))
  u = np.asarray(render.screened_poisson_periodic(*(a.astype(np.float32)
                                                    for a in (f, gt, gx, gy)), eps))
  idx = np.arange(n * h * w).reshape(n, h, w)
  pairs = [(idx, np.roll(idx, -1, 0), gt), (idx[:, :, :-1], idx[:, :, 1:], gx),
           (idx[:, :-1], idx[:, 1:], gy)]
  rows, rhs = [], []
  for a, b, g in pairs:
    for i0, i1, gv in zip(a.ravel(), b.ravel(), g.ravel()):
      r = np.zeros(n * h * w)
      r[i1], r[i0] = 1, -1
      rows.append(r)
      rhs.append(gv)
  a = np.vstack([np.array(rows), np.sqrt(eps) * np.eye(n * h * w)])
  b = np.concatenate([rhs, np.sqrt(eps) * f.ravel()])
  want = np.linalg.lstsq(a, b, rcond=None)[0].reshape(n, h, w)
  np.testing.assert_allclose(u[..., 0], want, atol=1e-4)


def test_periodic_blend_hides_the_loop_wrap_and_keeps_a_periodic_video():
  rng = np.random.default_rng(13)
  walk = np.clip(0.5 + np.cumsum(rng.normal(0, 0.03, (40, 6, 6, 3)), axis=0), 0, 1)
  video = walk.astype(np.float32)
  p, s = np.full((6, 6), 16), np.full((6, 6), 8)
  plain = np.asarray(render.render(video, p, s, 16, blend=False))
  blended = np.asarray(render.render(video, p, s, 16, method='periodic'))
  wrap = lambda f: np.abs(f[(8 + 16) % 16] - f[(8 + 15) % 16]).mean()   # j = p - 1 -> j = 0
  steps = np.abs(np.diff(plain, axis=0)).mean()
  assert wrap(plain) > 3 * steps
  assert wrap(blended) < 0.8 * wrap(plain)   # measured 0.065 vs 0.097 (eps 0.01)
  # a video that already loops with the labels' period: nothing to blend
  tt = np.arange(48)[:, None, None, None]
  periodic = (0.5 + 0.3 * np.sin(2 * np.pi * tt / 16 + rng.uniform(0, 6, (1, 6, 6, 3))))
  periodic = periodic.astype(np.float32)
  np.testing.assert_allclose(np.asarray(render.render(periodic, p, s, 16, method='periodic')),
                             np.asarray(render.render(periodic, p, s, 16, blend=False)),
                             atol=1e-4)


def test_blend_with_one_label_and_no_fade_is_identity():
  rng = np.random.default_rng(3)
  video = rng.random((20, 8, 10, 3)).astype(np.float32)
  p, s = np.full((8, 10), 12), np.full((8, 10), 5)
  plain = np.asarray(render.render(video, p, s, 12, blend=False))
  blended = np.asarray(render.render(video, p, s, 12, crossfade=0, method='frames'))
  np.testing.assert_allclose(blended, plain, atol=2e-5)


def test_crossfade_weights_and_wrap():
  rng = np.random.default_rng(4)
  t = 40
  walk = np.clip(0.5 + np.cumsum(rng.normal(0, 0.03, (t, 4, 4, 3)), axis=0), 0, 1)
  video = walk.astype(np.float32)
  p = np.full((4, 4), 16)
  # one label per render, so the seam blend is the identity and only the fade acts; with s = 2
  # only 2 frames exist before the start and the fade narrows to 2
  for start, c in [(8, 4), (2, 2)]:
    s = np.full((4, 4), start)
    plain = np.asarray(render.render(video, p, s, 16, blend=False))
    faded = np.asarray(render.render(video, p, s, 16, crossfade=4, method='frames'))
    for tt in range(16):
      j = (tt - start) % 16  # the loop's local frame: phi = s + j
      a = max(j - (16 - c) + 1, 0) / (c + 1)
      want = (1 - a) * video[start + j] + a * video[start + j - 16]
      np.testing.assert_allclose(faded[tt], want, atol=2e-5)
      assert (a == 0) == np.allclose(faded[tt], plain[tt])
    last = (start + 15) % 16  # output frame showing j = p - 1; the next one shows j = 0
    wrap = lambda f: np.abs(f[(last + 1) % 16] - f[last]).mean()
    assert wrap(faded) < 0.5 * wrap(plain)


def _two_region_video(t=48, h=24, w=128, seed=5):
  """Static smooth texture + a smooth oscillation: period 16 on the left, 24 on the right."""
  rng = np.random.default_rng(seed)
  texture = np.cumsum(np.cumsum(rng.normal(0, 0.01, (h, w, 3)), 0), 1)
  texture = 0.4 + 0.2 * texture / np.abs(texture).max()
  m = 1 / (1 + np.exp((np.arange(w) - w / 2 + 0.5) / 2.0))[None, :, None]  # 1 left, 0 right
  tt = np.arange(t)[:, None, None, None]
  wave = 0.25 * (m * np.sin(2 * np.pi * tt / 16) + (1 - m) * np.sin(2 * np.pi * tt / 24 + 2))
  return (texture + wave).astype(np.float32), texture


def test_seam_blend_hides_the_seam_and_keeps_the_far_field():
  video, texture = _two_region_video()
  t, h, w = video.shape[:3]
  b = w // 2
  p = np.where(np.arange(w)[None, :] < b, 16, 24) * np.ones((h, 1), int)
  s = np.where(np.arange(w)[None, :] < b, 0, 8) * np.ones((h, 1), int)
  plain = np.asarray(render.render(video, p, s, 48, blend=False))
  blended = np.asarray(render.render(video, p, s, 48))
  jump = lambda f: np.abs(f[:, :, b] - f[:, :, b - 1]).mean()
  texture_step = np.abs(texture[:, b] - texture[:, b - 1]).mean()
  assert jump(plain) > 0.1 > 10 * texture_step  # a real seam
  assert jump(blended) < 0.25 * jump(plain)
  far = np.r_[0:b - 40, b + 40:w]
  assert np.abs(blended[:, :, far] - plain[:, :, far]).max() < 0.01
  # the seam's correction spreads: next to it the blend does change the frame
  assert np.abs(blended[:, :, b - 3] - plain[:, :, b - 3]).mean() > 0.01


def test_loop_seam_by_hand_and_on_a_periodic_video():
  frames = np.ones((4, 2, 2, 3)) * np.array([0.0, 0.1, 0.2, 0.3])[:, None, None, None]
  seam, median = render.loop_seam(frames)
  assert seam == pytest.approx(0.3) and median == pytest.approx(0.1)
  rng = np.random.default_rng(6)
  t, h, w = 64, 8, 16
  phase = rng.uniform(0, 2 * np.pi, (h, w, 3))
  period = np.where(np.arange(w) < 8, 16, 24)[None, :, None]
  tt = np.arange(t)[:, None, None, None]
  video = (0.5 + 0.3 * np.sin(2 * np.pi * tt / period + phase)).astype(np.float32)
  p = np.broadcast_to(period[..., 0], (h, w))
  s = np.where(np.arange(w) < 8, 4, 8) * np.ones((h, 1), int)
  for blend in (False, True):
    seam, median = render.loop_seam(render.render(video, p, s, 48, blend=blend))
    assert seam <= 1.05 * median and median > 0.05
  # without stretching, 40 output frames hold no whole number of 16- or 24-frame loops
  seam, median = render.loop_seam(render.render(video, p, s, 40, blend=False, stretch=False))
  assert seam > 2 * median


def test_label_images_colours():
  p = np.array([[1, 32, 64]])
  s = np.array([[5, 0, 63]])
  prgb, srgb = render.label_images(p, s, 64, 64)
  assert prgb.dtype == np.uint8 and prgb.shape == (1, 3, 3)
  assert prgb[0, 0].tolist() == [128, 128, 128] == srgb[0, 0].tolist()  # static: grey
  assert prgb[0, 2].tolist() == [0, 0, 255]  # longest period: blue end of the ramp
  assert prgb[0, 1].tolist() == [0, 255, 0]  # half way: green
  assert srgb[0, 1].tolist() == [255, 0, 0] and srgb[0, 2].tolist() == [0, 0, 255]
  prgb3, srgb3 = render.label_images(p, s, 64)  # T defaults to num_periods_max
  assert np.array_equal(prgb3, prgb) and np.array_equal(srgb3, srgb)


def _png_size(path):
  from PIL import Image
  with Image.open(path) as im:
    im.load()  # decodes every byte: a truncated file fails here
    return im.format, im.size


def test_label_figure_is_a_readable_png(tmp_path, monkeypatch):
  p = np.ones((48, 64), int)
  p[10:30, 10:40] = 16
  p[30:45, 20:60] = 24
  s = np.where(p > 1, 8, 0)
  path = tmp_path / 'clip_labels.png'
  assert render.label_figure(str(path), p, s, 'clip: all') == str(path)
  fmt, (w, h) = _png_size(path)
  assert fmt == 'PNG' and 800 <= w <= 1400 and 300 <= h <= 700, (w, h)
  assert os.listdir(tmp_path) == ['clip_labels.png']  # no temporary file left
  # nothing loops, and a tall map: still a figure
  render.label_figure(str(tmp_path / 'still.png'), np.ones((150, 40), int),
                      np.zeros((150, 40), int))
  assert _png_size(tmp_path / 'still.png')[0] == 'PNG'

  def broken(*args, **kwargs):
    raise OSError('disk full')
  from matplotlib.figure import Figure
  monkeypatch.setattr(Figure, 'savefig', broken)
  with pytest.raises(OSError):
    render.label_figure(str(tmp_path / 'fails.png'), p, s)
  assert sorted(os.listdir(tmp_path)) == ['clip_labels.png', 'still.png']  # atomic
