"""Tests for the synthetic_timelapse, sky_timelapse and oneday_timelapse builders (array_record,
read without TF) and for the helpers all builders share (animgen.datasets.common)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import animgen.datasets  # noqa: F401  (registers the builders)
from animgen.datasets import common
from animgen.datasets import sky_timelapse
from animgen.datasets import synthetic_timelapse
from animgen.errors import InputError

tfds.disable_progress_bar()


# ----------------------------------------------------------------------------- helpers


def bilinear_warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
  """img [H, W, C] sampled at (x + dx, y + dy), pixel centres at integers, border clamp."""
  h, w = img.shape[:2]
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
  x = np.clip(xs + flow[..., 0], 0, w - 1)
  y = np.clip(ys + flow[..., 1], 0, h - 1)
  x0 = np.clip(np.floor(x).astype(int), 0, w - 2)
  y0 = np.clip(np.floor(y).astype(int), 0, h - 2)
  fx, fy = (x - x0)[..., None], (y - y0)[..., None]
  return (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x0 + 1] * fx * (1 - fy)
          + img[y0 + 1, x0] * (1 - fx) * fy + img[y0 + 1, x0 + 1] * fx * fy)


def erode(mask: np.ndarray, r: int) -> np.ndarray:
  """Binary erosion by a (2r+1)^2 square; pixels within r of the border are False."""
  out = np.zeros_like(mask)
  h, w = mask.shape
  inner = np.ones((h - 2 * r, w - 2 * r), bool)
  for dy in range(-r, r + 1):
    for dx in range(-r, r + 1):
      inner &= mask[r + dy:h - r + dy, r + dx:w - r + dx]
  out[r:h - r, r:w - r] = inner
  return out


def read_split(source):
  return [source[i] for i in range(len(source))]


# ----------------------------------------------------------------------------- synthetic


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('tfds_tiny')
  synthetic_timelapse.make_builder(data_dir, 'tiny').download_and_prepare()
  return data_dir


@pytest.fixture(scope='module')
def s128_clips(tmp_path_factory):
  """A custom-size variant (128 px, 4 frames) for the flow check: at 32 px the motion is
  ~0.2 px/frame and uint8 rounding dominates the frame differences."""
  data_dir = tmp_path_factory.mktemp('tfds_128')
  builder = synthetic_timelapse.make_builder(data_dir, 'tiny', size=128, frames=4)
  builder.download_and_prepare()
  return builder, read_split(builder.as_data_source()['train'])


def test_tiny_reads_back_through_data_source(tiny_dir):
  src = tfds.data_source('synthetic_timelapse/tiny', data_dir=tiny_dir)
  cfg = synthetic_timelapse.CONFIGS['tiny']
  assert len(src['train']) == cfg.train_clips == 4
  assert len(src['test']) == cfg.test_clips == 2
  for split, n in (('train', 4), ('test', 2)):
    clips = read_split(src[split])
    assert [int(c['clip_id']) for c in clips] == list(range(n))   # dense, record i = clip i
    for c in clips:
      assert c['frames'].shape == (6, 32, 32, 3) and c['frames'].dtype == np.uint8
      assert c['flow'].shape == (5, 32, 32, 2) and c['flow'].dtype == np.float32
      assert c['pair_ok'].shape == (5,) and c['pair_ok'].dtype == np.bool_
      assert c['pair_ok'].all()
      assert c['frames'].astype(float).std() > 20             # not a constant image
      assert np.abs(c['frames'][0].astype(float) - c['frames'][-1]).mean() > 0.2  # it moves
    for a, b in zip(clips, clips[1:]):                       # clips differ from each other
      assert np.abs(a['frames'].astype(float) - b['frames']).mean() > 10
  # train and test are different scenes
  assert np.abs(src['train'][0]['frames'].astype(float) - src['test'][0]['frames']).mean() > 10


def test_tiny_is_deterministic_and_matches_renderer(tiny_dir, tmp_path):
  synthetic_timelapse.make_builder(tmp_path, 'tiny').download_and_prepare()
  a = tfds.data_source('synthetic_timelapse/tiny', data_dir=tiny_dir)['train'][1]
  b = tfds.data_source('synthetic_timelapse/tiny', data_dir=tmp_path)['train'][1]
  assert a['frames'].tobytes() == b['frames'].tobytes()
  assert a['flow'].tobytes() == b['flow'].tobytes()
  frames, flow = synthetic_timelapse.render_clip(32, 6, 'train', 1)
  np.testing.assert_array_equal(a['frames'], frames)
  np.testing.assert_array_equal(a['flow'], flow)


def test_tiny_flow_bounds_land_static(tiny_dir):
  vmax = synthetic_timelapse.max_speed(32)
  assert vmax == pytest.approx(0.9 * 32 / 128)
  for c in read_split(tfds.data_source('synthetic_timelapse/tiny', data_dir=tiny_dir)['train']):
    speed = np.linalg.norm(c['flow'], axis=-1)
    assert speed.max() <= vmax + 1e-6
    assert speed[:, :6].min() > 0                       # top rows are sky: all moving
    assert np.percentile(speed[:, :6], 50) > 0.3 * vmax   # typical sky speed
    land = (speed == 0).all(axis=0)
    assert land.mean() > 0.1                            # a static land silhouette exists
    f = c['frames'].astype(np.int32)
    assert np.abs(f[1:] - f[:-1])[:, land].max() <= 2   # zero-flow pixels do not move


def test_daycycle_relights_the_plain_clips(tiny_dir, tmp_path):
  """The appearance data: the same layout and flow as the plain clips, and a colour change over
  each clip (summed mean RGB, as Sec. 6.1 measures it) an order of magnitude above the drift."""
  synthetic_timelapse.make_builder(tmp_path, 'daycycle_tiny').download_and_prepare()
  day = read_split(tfds.data_source('synthetic_timelapse/daycycle_tiny', data_dir=tmp_path)['test'])
  plain = read_split(tfds.data_source('synthetic_timelapse/tiny', data_dir=tiny_dir)['test'])
  assert len(day) == len(plain) == 2
  change = lambda f: np.abs(f[-1].mean((0, 1)) - f[0].mean((0, 1))).sum() / 255.0
  for d, p in zip(day, plain):
    np.testing.assert_array_equal(d['flow'], p['flow'])
    assert d['frames'].shape == p['frames'].shape
    assert change(d['frames']) > 0.25 and change(p['frames']) < 0.05
    steps = np.abs(np.diff(d['frames'].astype(float).mean((1, 2)), axis=0)).sum(-1) / 255.0
    assert steps.min() > 0.01                 # the light changes at every frame, not at once


def test_flow_reconstructs_next_frame(s128_clips):
  builder, clips = s128_clips
  assert builder.builder_config.size == 128 and builder.builder_config.name != 'tiny'
  vmax = synthetic_timelapse.max_speed(128)
  n_water = 0
  for c in clips:
    frames = c['frames'].astype(np.float64) / 255.0
    flow = c['flow'].astype(np.float64)
    assert frames.shape == (4, 128, 128, 3) and flow.shape == (3, 128, 128, 2)
    speed = np.linalg.norm(flow, axis=-1)
    assert speed.max() <= vmax + 1e-6
    land = speed[0] == 0
    sky = np.abs(flow[0, ..., 1]) > 0          # only sky moves vertically (water: dx only)
    assert sky.mean() > 0.25
    away = erode(~land, 2)                     # sky and water, away from land and borders
    water = erode(~land & ~sky, 2)
    n_water += water.any()
    if water.any():                            # horizontal drift, slower than the sky
      assert np.all(flow[:, ~land & ~sky, 1] == 0)
      assert 0.1 * vmax < np.abs(flow[0, water, 0]).max() <= 0.5 * vmax + 1e-6
    errs, diffs, wrong, sq_errs, sq_diffs = [], [], [], [], []
    for t in range(len(frames) - 1):
      gain = frames[t + 1][land].mean(0) / frames[t][land].mean(0)   # global colour drift
      recon = bilinear_warp(frames[t], flow[t]) * gain
      gy, gx = np.gradient(frames[t].mean(-1))
      textured = away & (np.abs(gx * flow[t, ..., 0] + gy * flow[t, ..., 1]) > 1.5 / 255)
      assert textured.sum() > 200
      err = np.abs(recon - frames[t + 1]).mean(-1)
      diff = np.abs(frames[t] - frames[t + 1]).mean(-1)
      backwards = np.abs(bilinear_warp(frames[t], -flow[t]) * gain - frames[t + 1]).mean(-1)
      errs.append(err[textured].mean())
      sq_errs.append(np.square(recon - frames[t + 1]).mean(-1)[away].mean())
      sq_diffs.append(np.square(frames[t] - frames[t + 1]).mean(-1)[away].mean())
      diffs.append(diff[textured].mean())
      wrong.append(backwards[textured].mean())
      # all moving pixels, incl. clear sky; bilinear resampling of the sharp cloud edges is most of the rest
      assert err[away].mean() < 0.85 * diff[away].mean()
      if water.any():
        assert err[water].mean() < 0.6 * diff[water].mean()
    err, diff = np.mean(errs), np.mean(diffs)
    # sharp cloud edges (the paper's pairs differ by >= 0.02 on average) leave bilinear
    # resampling error in L1; in squared error, what the motion loss sees, the flow explains
    # most of the change
    assert err < 0.8 * diff, (err, diff)
    assert np.mean(sq_errs) < 0.5 * np.mean(sq_diffs), (np.mean(sq_errs), np.mean(sq_diffs))
    assert np.mean(wrong) > 1.5 * diff          # the opposite sign convention is far off
  assert n_water > 0                            # the seeded clips include a water band


def test_prepare_and_read_without_tensorflow(tmp_path):
  """TensorFlow is installed here (for clu); hide it and check the data path does not need it."""
  code = textwrap.dedent(f"""
      import importlib.machinery, sys
      _find = importlib.machinery.PathFinder.find_spec
      def find_spec(name, path=None, target=None):
        if name.split('.')[0] == 'tensorflow':
          return None                                   # as if not installed
        return _find(name, path, target)
      importlib.machinery.PathFinder.find_spec = staticmethod(find_spec)
      import tensorflow_datasets as tfds
      from animgen.datasets import synthetic_timelapse
      b = synthetic_timelapse.make_builder({os.fspath(tmp_path)!r}, 'tiny', frames=3)
      b.download_and_prepare()
      src = tfds.data_source('synthetic_timelapse/' + b.builder_config.name,
                             data_dir={os.fspath(tmp_path)!r})
      ex = src['test'][1]
      assert 'tensorflow' not in sys.modules
      print('OK', len(src['train']), ex['frames'].shape, ex['flow'].shape, int(ex['clip_id']))
  """)
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'OK 4 (3, 32, 32, 3) (2, 32, 32, 2) 1' in out.stdout


def test_make_builder_rejects_unknown_and_bad_configs(tmp_path):
  with pytest.raises(ValueError, match='unknown'):
    synthetic_timelapse.make_builder(tmp_path, 'nope')
  with pytest.raises(ValueError, match='frames >= 2'):
    synthetic_timelapse.make_builder(tmp_path, 'tiny', frames=1)


# ----------------------------------------------------------------------------- sky_timelapse


def _write_clip(clip_dir, video, numbers, images):
  os.makedirs(clip_dir, exist_ok=True)
  for n, img in zip(numbers, images):
    Image.fromarray(img).save(os.path.join(clip_dir, f'{video}_frames_{n:08d}.jpg'), quality=95)


def _distinct(rng, k):
  """k unrelated blocky 24x40 RGB images (pairwise mean abs diff ~0.3)."""
  small = rng.integers(0, 256, (k, 3, 5, 3), dtype=np.uint8)
  return [np.kron(s, np.ones((8, 8, 1), np.uint8)) for s in small]


def _near_identical(rng, base, k):
  """k copies of base with +-1 level noise (pairwise mean abs diff << 0.02)."""
  return [np.clip(base.astype(int) + rng.integers(-1, 2, base.shape), 0, 255).astype(np.uint8)
          for _ in range(k)]


@pytest.fixture(scope='module')
def fake_sky(tmp_path_factory):
  """Fake Sky Timelapse tree; returns (manual_dir, expected videos per split in clip_id order),
  each video as (video_id, [(clip folder, frame number) of each kept frame], pair_ok)."""
  rng = np.random.default_rng(0)
  manual = tmp_path_factory.mktemp('manual')
  train = os.path.join(manual, 'sky_timelapse', 'sky_train')
  test = os.path.join(manual, 'sky_timelapse', 'sky_test')
  # vidA: clip 1 frames 1..8, clip 2 frames 9..16 without 13 (all different) -> merged
  # 1..12,14,15,16 -> kept 1,3,5,7 | 9,11,14,16: 7->9 crosses the folder boundary (valid),
  # 11->14 the numbering gap (invalid)
  _write_clip(os.path.join(train, 'vidA', '1'), 'vidA', range(1, 9), _distinct(rng, 8))
  _write_clip(os.path.join(train, 'vidA', '2'), 'vidA', [9, 10, 11, 12, 14, 15, 16],
              _distinct(rng, 7))
  # vidB: static over two clip folders -> no valid pair -> skipped
  base = _distinct(rng, 1)[0]
  _write_clip(os.path.join(train, 'vidB', '1'), 'vidB', range(1, 7), _near_identical(rng, base, 6))
  _write_clip(os.path.join(train, 'vidB', '2'), 'vidB', range(7, 13), _near_identical(rng, base, 6))
  # vidC: one frame -> skipped; plus files that are not frames
  _write_clip(os.path.join(train, 'vidC', '1'), 'vidC', [3], _distinct(rng, 1))
  Image.fromarray(base).save(os.path.join(train, 'vidC', '1', 'thumbnail.jpg'))
  with open(os.path.join(train, 'README.txt'), 'w') as f:
    f.write('not a video folder')
  # vidD: clip 2 frames 1..4 near-identical, 5..8 different; clip 10 (after 2 in natural order)
  # frames 7..10, its 7 and 8 duplicates (near-identical to base, dropped: the first is kept)
  # -> merged 1..10 -> kept 1,3,5 (clip 2), 7 (clip 2, not the duplicate), 9 (clip 10)
  _write_clip(os.path.join(train, 'vidD', '2'), 'vidD', range(1, 9),
              _near_identical(rng, base, 4) + _distinct(rng, 4))
  _write_clip(os.path.join(train, 'vidD', '10'), 'vidD', range(7, 11),
              _near_identical(rng, base, 2) + _distinct(rng, 2))
  # test: vidT clip 1 frames 1..4, clip 2 frames 5,7,9 -> merged 1,2,3,4,5,7,9 -> kept 1,3,5,9;
  # vidU: frames 1,2 | 5,6 -> kept 1,5 (gap of 4) -> skipped
  _write_clip(os.path.join(test, 'vidT', '1'), 'vidT', range(1, 5), _distinct(rng, 4))
  _write_clip(os.path.join(test, 'vidT', '2'), 'vidT', [5, 7, 9], _distinct(rng, 3))
  _write_clip(os.path.join(test, 'vidU', '1'), 'vidU', [1, 2], _distinct(rng, 2))
  _write_clip(os.path.join(test, 'vidU', '2'), 'vidU', [5, 6], _distinct(rng, 2))
  expected = {
      'train': [('vidA', [('1', 1), ('1', 3), ('1', 5), ('1', 7), ('2', 9), ('2', 11), ('2', 14),
                          ('2', 16)],
                 [True, True, True, True, True, False, True]),
                ('vidD', [('2', 1), ('2', 3), ('2', 5), ('2', 7), ('10', 9)],
                 [False, True, True, True])],
      'test': [('vidT', [('1', 1), ('1', 3), ('2', 5), ('2', 9)], [True, True, False])],
  }
  return manual, expected


def _prepare_sky(data_dir, manual_dir, config='s128'):
  builder = sky_timelapse.make_builder(data_dir, config)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  return builder


def test_sky_timelapse_one_example_per_video(fake_sky, tmp_path):
  manual, expected = fake_sky
  builder = _prepare_sky(tmp_path, manual)
  assert str(builder.version) == '1.1.0'
  src = tfds.data_source('sky_timelapse/s128', data_dir=tmp_path)
  # vidA: 16 merged frames of two clip folders -> 8 kept, pair across the boundary valid,
  # pair across the numbering gap not; static vidB and one-frame vidC skipped, ids dense
  vid_a = src['train'][0]
  assert vid_a['frames'].shape == (8, 128, 128, 3)
  assert vid_a['pair_ok'].tolist() == [True, True, True, True, True, False, True]
  assert len(src['train']) == 2 and int(src['train'][1]['clip_id']) == 1
  for split, videos in expected.items():
    got = read_split(src[split])
    assert len(got) == len(videos)
    split_dir = 'sky_train' if split == 'train' else 'sky_test'
    for i, (c, (video, kept, ok)) in enumerate(zip(got, videos)):
      assert int(c['clip_id']) == i
      assert c['pair_ok'].dtype == np.bool_ and c['pair_ok'].tolist() == ok, video
      assert c['frames'].dtype == np.uint8 and c['frames'].shape == (len(kept), 128, 128, 3)
      for t, (clip, n) in enumerate(kept):   # every kept frame, PIL bilinear, aspect not kept
        path = os.path.join(manual, 'sky_timelapse', split_dir, video, clip,
                            f'{video}_frames_{n:08d}.jpg')
        with Image.open(path) as im:
          want = np.asarray(im.convert('RGB').resize((128, 128), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(c['frames'][t], want, err_msg=f'{video} frame {t}')


def test_list_videos_merges_clip_folders(fake_sky):
  manual, _ = fake_sky
  videos = sky_timelapse.list_videos(os.path.join(manual, 'sky_timelapse', 'sky_train'))
  assert [v for v, _ in videos] == ['vidA', 'vidB', 'vidC', 'vidD']
  frames = dict(videos)
  assert [n for n, _ in frames['vidA']] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16]
  assert [n for n, _ in frames['vidB']] == list(range(1, 13))
  assert [n for n, _ in frames['vidD']] == list(range(1, 11))
  # duplicates 7, 8 come from clip folder 2, which sorts before 10
  assert [os.path.basename(os.path.dirname(p)) for _, p in frames['vidD']] == ['2'] * 8 + ['10'] * 2


def test_merge_frames_sorts_and_keeps_first_duplicate():
  clips = [[(3, 'a3'), (5, 'a5')], [(1, 'b1'), (3, 'b3'), (4, 'b4')], [(5, 'c5')]]
  assert sky_timelapse.merge_frames(clips) == [(1, 'b1'), (3, 'a3'), (4, 'b4'), (5, 'a5')]
  assert sky_timelapse.merge_frames([]) == []


def test_sky_timelapse_accepts_dir_holding_splits(fake_sky, tmp_path):
  manual, expected = fake_sky
  _prepare_sky(tmp_path, os.path.join(manual, 'sky_timelapse'))
  src = tfds.data_source('sky_timelapse/s128', data_dir=tmp_path)
  assert len(src['train']) == len(expected['train']) and len(src['test']) == 1


def test_pair_filter_rule():
  a = np.zeros((1, 10, 10, 3), np.uint8)
  # mean abs diffs: 5/255 = 0.0196 (< 0.02), 6/255 = 0.0235, 6/255, 0
  frames = np.concatenate([a, a + 5, a + 11, a + 5, a + 5])
  assert sky_timelapse.pair_filter([0, 2, 4, 6, 8], frames).tolist() == [False, True, True, False]
  # a frame-number gap other than 2 invalidates a pair whatever the difference
  assert sky_timelapse.pair_filter([0, 2, 5, 7, 9], frames).tolist() == [False, False, True, False]


def _assert_layout_error(excinfo):
  msg = str(excinfo.value)
  assert '\n' not in msg
  assert msg.startswith('sky_timelapse:')
  assert 'sky_train/<video>/<clip>/<video>_frames_XXXXXXXX.jpg' in msg and 'sky_test' in msg


def test_sky_timelapse_missing_manual_dir(tmp_path):
  with pytest.raises(InputError) as excinfo:
    _prepare_sky(tmp_path / 'data', tmp_path / 'does_not_exist')
  _assert_layout_error(excinfo)
  assert 'does_not_exist' in str(excinfo.value)


def test_sky_timelapse_malformed_manual_dir(tmp_path):
  wrong = tmp_path / 'wrong'
  (wrong / 'videos').mkdir(parents=True)         # no sky_train / sky_test
  (wrong / 'videos' / 'a.jpg').write_bytes(b'')
  with pytest.raises(InputError) as excinfo:
    _prepare_sky(tmp_path / 'data1', wrong)
  _assert_layout_error(excinfo)

  empty = tmp_path / 'empty' / 'sky_timelapse'
  for d in ('sky_train/v/1', 'sky_test/v/1'):
    (empty / d).mkdir(parents=True)
    (empty / d / 'frame.png').write_bytes(b'')   # not <video>_frames_N.jpg
  with pytest.raises(InputError) as excinfo:
    _prepare_sky(tmp_path / 'data2', tmp_path / 'empty')
  _assert_layout_error(excinfo)
  assert 'no clips' in str(excinfo.value) and 'sky_train' in str(excinfo.value)


# ------------------------------------------------------------------------ oneday_timelapse
def test_oneday_thinning_rule():
  from animgen.datasets import oneday_timelapse as od
  means = np.array([[0.5, 0.5, 0.5], [0.55, 0.5, 0.5], [0.61, 0.61, 0.61], [0.62, 0.61, 0.61],
                    [0.2, 0.2, 0.3]])
  # 1: change 0.05 < 0.3 dropped; 2: 0.33 from frame 0 kept; 3: 0.01 dropped; 4: 1.14 kept
  assert od.thin(means) == [0, 2, 4]


def test_oneday_timelapse_builds_thinned_clips(tmp_path):
  from animgen.datasets import oneday_timelapse as od
  root = tmp_path / 'manual' / 'oneday_timelapse'
  levels = {'train': {'day1': [40, 45, 90, 200, 205, 60], 'flat': [100, 101, 102]},
            'test': {'day2': [30, 120, 250]}}
  for split, clips in levels.items():
    for clip, values in clips.items():
      d = root / split / clip
      d.mkdir(parents=True)
      for i, v in enumerate(values):   # names sort naturally: 2 before 10
        Image.fromarray(np.full((12, 20, 3), v, np.uint8)).save(d / f'f{i * 5}.png')
  b = od.OnedayTimelapse(data_dir=str(tmp_path / 'data'), config='s128',
                         file_format='array_record')
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path / 'manual')))
  src = b.as_data_source(split='train')
  assert len(src) == 1                             # 'flat' never changes colour: skipped
  frames = src[0]['frames']
  # day1 means 40, 45, 90, 200, 205, 60 (/255, x3 channels): kept 40, 90, 200, 60
  assert frames.shape == (4, 128, 128, 3)
  assert frames[:, 0, 0, 0].tolist() == [40, 90, 200, 60]
  assert int(b.as_data_source(split='test')[0]['clip_id']) == 0


def test_oneday_timelapse_missing_layout(tmp_path):
  from animgen.datasets import oneday_timelapse as od
  (tmp_path / 'manual' / 'clips').mkdir(parents=True)
  b = od.OnedayTimelapse(data_dir=str(tmp_path / 'data'), config='s128',
                         file_format='array_record')
  with pytest.raises(InputError) as e:
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(tmp_path / 'manual')))
  assert 'oneday_timelapse/train/<clip>' in str(e.value) and '\n' not in str(e.value)


# ----------------------------------------------------------------------------- common helpers


_TGIF = common.ManualLayout('tgif',
                            '<manual_dir>/tgif/train/*.gif and <manual_dir>/tgif/test/*.gif')


def _assert_one_line(excinfo, *needles):
  msg = str(excinfo.value)
  assert msg and '\n' not in msg and msg == msg.strip(), msg
  for n in needles:
    assert n in msg, (n, msg)


def test_manual_dir_errors_are_one_line_and_name_the_layout(tmp_path):
  layout = '<manual_dir>/tgif/train/*.gif'
  (tmp_path / 'a_file').write_text('x')
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'other' / 'videos').mkdir(parents=True)
  cases = [(None, 'no manual_dir given'), ('', 'no manual_dir given'),
           (tmp_path / 'missing', 'missing does not exist'),
           (tmp_path / 'a_file', 'a_file is a file, not a folder'),
           (tmp_path / 'empty', 'empty is empty')]
  for path, needle in cases:
    with pytest.raises(InputError) as e:
      _TGIF.check_dir(path)
    _assert_one_line(e, 'tgif: ', needle, layout)
  with pytest.raises(InputError) as e:
    _TGIF.split_folders(tmp_path / 'other')
  _assert_one_line(e, 'no train/ and test/ folders in', os.path.join('other', 'tgif'), layout)
  with pytest.raises(InputError) as e:   # line breaks in a path or reason cannot split it
    _TGIF.check_dir(tmp_path / 'two\nlines')
  _assert_one_line(e, 'two lines does not exist')


def test_manual_dir_through_tfds_is_one_line(tmp_path):
  """tfds itself raises multi-line AssertionErrors (or NotADirectoryError for a file)."""
  from animgen.datasets import tgif
  (tmp_path / 'a_file').write_text('x')
  (tmp_path / 'empty').mkdir()
  for manual, needle in [(tmp_path / 'missing', 'does not exist'),
                         (tmp_path / 'a_file', 'not a folder'), (tmp_path / 'empty', 'is empty')]:
    b = tgif.Tgif(data_dir=str(tmp_path / 'data'), config='tiny', file_format='array_record')
    with pytest.raises(InputError) as e:
      b.download_and_prepare(download_config=tfds.download.DownloadConfig(
          manual_dir=str(manual)))
    _assert_one_line(e, 'tgif: ', needle, 'tgif/train/*.gif')
    assert not os.path.exists(tmp_path / 'data' / 'tgif' / 'tiny' / '1.0.0')   # nothing prepared


def test_split_folders_nested_or_flat(tmp_path):
  for root in (tmp_path / 'm1' / 'tgif', tmp_path / 'm2'):
    for s in ('train', 'test'):
      (root / s).mkdir(parents=True)
  assert _TGIF.split_folders(tmp_path / 'm1') == {
      'train': str(tmp_path / 'm1' / 'tgif' / 'train'),
      'test': str(tmp_path / 'm1' / 'tgif' / 'test')}
  assert _TGIF.split_folders(tmp_path / 'm2') == {'train': str(tmp_path / 'm2' / 'train'),
                                                  'test': str(tmp_path / 'm2' / 'test')}
  # named split folders, and the nested folder wins when both layouts are there
  sky = common.ManualLayout('sky', 'L', split_dirs={'train': 'sky_train', 'test': 'sky_test'})
  for root in (tmp_path / 'm3', tmp_path / 'm3' / 'sky'):
    for d in ('sky_train', 'sky_test'):
      (root / d).mkdir(parents=True)
  assert sky.split_folders(tmp_path / 'm3') == {
      'train': str(tmp_path / 'm3' / 'sky' / 'sky_train'),
      'test': str(tmp_path / 'm3' / 'sky' / 'sky_test')}
  (tmp_path / 'm4' / 'sky_train').mkdir(parents=True)   # one split folder only
  with pytest.raises(InputError) as e:
    sky.split_folders(tmp_path / 'm4')
  _assert_one_line(e, 'no sky_train/ and sky_test/ folders', 'expected L')


def test_natural_sort_and_listings(tmp_path):
  names = ['frame_10.png', 'frame_2.png', 'Frame_3.PNG', 'frame_1.png', 'frame_02.png', 'a.png',
           'frame_1b.png', 'frame_1a10.png', 'frame_1a9.png']
  assert common.natural_sort(names) == [
      'a.png', 'frame_1.png', 'frame_1a9.png', 'frame_1a10.png', 'frame_1b.png', 'frame_02.png',
      'frame_2.png', 'Frame_3.PNG', 'frame_10.png']
  assert common.natural_sort(['10', '9', '100', '1']) == ['1', '9', '10', '100']
  for n in names + ['.hidden.png', 'notes.txt']:
    (tmp_path / n).write_bytes(b'x')
  (tmp_path / 'frame_0.png').mkdir()            # a folder is not a frame
  for d in ('clip10', 'clip2', '.cache'):
    (tmp_path / d).mkdir()
  assert common.list_files(tmp_path, ('.png',)) == common.natural_sort(names)
  assert common.list_files(tmp_path, ('.txt', '.jpg')) == ['notes.txt']
  assert common.list_folders(tmp_path) == ['clip2', 'clip10', 'frame_0.png']


def test_progress_logs_and_passes_items_through(monkeypatch):
  lines = []
  monkeypatch.setattr(common.logging, 'info', lambda fmt, *args: lines.append(fmt % args))
  assert list(common.progress(iter(range(10)), 'demo/tiny train', 10, unit='clips')) == list(
      range(10))
  assert [l.split(' (')[0] for l in lines] == [
      'demo/tiny train: 2/10 clips', 'demo/tiny train: 4/10 clips', 'demo/tiny train: 6/10 clips',
      'demo/tiny train: 8/10 clips', 'demo/tiny train: 10/10 clips']
  lines.clear()
  assert list(common.progress([1, 2, 3], 'x', times=1)) == [1, 2, 3]   # total from len()
  assert [l.split(' (')[0] for l in lines] == ['x: 3/3 clips']


def test_generated_splits_and_split_rng(monkeypatch):
  lines = []
  monkeypatch.setattr(common.logging, 'info', lambda fmt, *args: lines.append(fmt % args))

  class Fake:
    name = 'fake'
    builder_config = type('C', (), {'name': 'tiny'})()

    def _generate_examples(self, split, n):
      for i in range(n):
        yield i, {'x': common.split_rng(7, split, i).integers(1000)}

  b = Fake()
  splits = common.generated_splits(b, {'train': 3, 'test': 2}, unit='GIFs')
  got = {s: list(g) for s, g in splits.items()}
  for s, sid in (('train', 0), ('test', 1)):
    assert [ex['x'] for _, ex in got[s]] == [
        np.random.default_rng([7, sid, i]).integers(1000) for i in range(len(got[s]))]
  done = [l.split(' (')[0] for l in lines if l.split(' (')[0].endswith(('3/3 GIFs', '2/2 GIFs'))]
  assert done == ['fake/tiny train: 3/3 GIFs', 'fake/tiny test: 2/2 GIFs']
  calls = []   # a custom generate is called at once (its arguments are checked up front)

  def generate(split, n):
    calls.append((split, n))
    return iter([(0, {})])

  splits = common.generated_splits(b, {'train': 3, 'test': 2}, generate)
  assert calls == [('train', 3), ('test', 2)] and list(splits) == ['train', 'test']
  assert common.split_rng(1, 'other', 5).integers(1 << 30) == np.random.default_rng(
      [1, 2, 5]).integers(1 << 30)


def test_kmeans_textures_match_lloyd():
  """sklearn's KMeans from the same initial centres gives the labels of plain Lloyd iterations,
  so the image2gif textures do not depend on which k-means runs them."""
  from animgen.datasets import image2gif_patterns as pats

  def lloyd(pixels, k, rng, iters=10):
    centres = pixels[rng.choice(len(pixels), k, replace=False)]
    for _ in range(iters):
      label = np.argmin(((pixels[:, None] - centres[None]) ** 2).sum(-1), axis=1)
      for j in range(k):
        if np.any(label == j):
          centres[j] = pixels[label == j].mean(0)
    return np.argmin(((pixels[:, None] - centres[None]) ** 2).sum(-1), axis=1)

  real = pats._kmeans_colours
  calls = []

  def both(pixels, k, rng, iters=10):
    state = rng.bit_generator.state
    want = lloyd(pixels.copy(), k, rng, iters)
    rng.bit_generator.state = state
    got = real(pixels, k, rng, iters)
    calls.append(np.array_equal(got, want))
    return got

  pats._kmeans_colours = both
  try:
    pats.make_textures(0)
  finally:
    pats._kmeans_colours = real
  assert calls == [True] * pats.NUM_TEXTURES
