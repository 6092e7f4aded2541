"""`animgen convert` + `animgen animate` generate what the official test.py generates.

Seeded random official-layout networks are saved as an official model folder (.pth files and
Python-2 codebook pickles), converted, and animated through the command line; the same networks
run the official generation loop re-expressed in PyTorch (tests/official_landscape.py: torch
grid_sample with align_corners=True, reflect F.pad, F.interpolate). Both sides see the same
8-bit non-square photo and the same codes (-mz = --z-mix, -ms = --speed, -az = --a-mix,
-as = --a-speed). The networks run at 64 px instead of 256 with the official geometry ratios
(pad 64 / 256 = 1 / 4, flow scale 256 / 384), which animgen derives from the network size.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from animgen import cli, convert, media
import official_landscape as official

SIZE = 64                       # network size (official 256)
WIDTHS = (80, 24, 40)
ENC_WIDTHS = (16, 24, 32, 40)
EPOCH = 9
MOTION_BOOK = np.random.default_rng(11).normal(size=(7, official.NZ))
APPEARANCE_BOOK = [np.random.default_rng(12 + i).normal(size=(n, official.NZ)).astype(np.float32)
                   for i, n in enumerate((5, 3, 4))]
FRAMES = 9                      # -> a 6-frame loop (official 199 -> 101)
CODES = dict(t_m=0.37, s_m=0.7, t_a=0.6, s_a=0.5)


def _photo(h=75, w=118, seed=3):
  """A textured non-square RGB photo (the pads int(16 * 75 / 64), int(16 * 118 / 64) are not
  exact)."""
  rng = np.random.default_rng(seed)
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  base = 0.5 + 0.3 * np.sin(xs / 2.3 + ys / 3.1)[..., None] * np.array([1.0, 0.6, -0.8])
  return np.clip(255 * (base + 0.1 * rng.normal(size=(h, w, 3))), 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def official_run(tmp_path_factory):
  """(nets, converted motion run, appearance run, photo path, RGB photo)."""
  tmp = tmp_path_factory.mktemp('parity')
  torch.manual_seed(5)
  nets = {'PMNet': official.TPredictor(2, WIDTHS).eval(),
          'PANet': official.TPredictor(6, WIDTHS).eval(),
          'EANet': official.randomise_bn(official.TEncoder(3, ENC_WIDTHS), 6).eval()}
  model_dir = official.write_model_dir(tmp / 'models', nets, EPOCH, MOTION_BOOK, APPEARANCE_BOOK)
  done = convert.convert(model_dir, str(tmp / 'motion'), str(tmp / 'appearance'), epoch=EPOCH,
                         trust_pickle=True, image_size=SIZE)
  photo = _photo()
  path = tmp / 'photo.png'
  Image.fromarray(photo).save(path)
  return nets, done['motion'], done['appearance'], str(path), photo, tmp


def _official(nets, photo_rgb):
  """The official motion loop and appearance frames, RGB."""
  bgr = np.ascontiguousarray(photo_rgb[..., ::-1])
  z = official.motion_code(MOTION_BOOK, CODES['t_m'])
  motion = official.official_motion(nets['PMNet'], bgr, z, SIZE, FRAMES, CODES['s_m'])
  loop = official.official_loop(motion)
  frames = official.official_appearance(nets['PANet'], nets['EANet'], loop, APPEARANCE_BOOK,
                                        CODES['t_a'], CODES['s_a'], SIZE)
  rgb = lambda fs: np.stack(fs)[..., ::-1]
  return rgb(loop), rgb(frames)


def _animgen(motion_run, appearance_run, photo, out, *extra):
  assert cli.main(['animate', photo, '-o', f'{out}/', '--workdir', motion_run,
                   '--appearance-workdir', appearance_run, '--frames', str(FRAMES),
                   '--z-mix', str(CODES['t_m']), '--speed', str(CODES['s_m']),
                   '--a-mix', str(CODES['t_a']), '--a-speed', str(CODES['s_a']),
                   '--no-flow', '-q', *extra]) == 0
  frames, _ = media.read_video(out)
  return media.to_uint8(frames)


def parity(ours, theirs):
  """(max, mean |difference| in grey levels, fraction of values within one level)."""
  d = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
  return int(d.max()), float(d.mean()), float(np.mean(d <= 1))


def test_animate_matches_the_official_generation(official_run, capsys):
  nets, motion_run, appearance_run, path, photo, tmp = official_run
  want_loop, want = _official(nets, photo)
  loop = _animgen(motion_run, appearance_run, path, str(tmp / 'motion_out'), '--motion-only')
  full = _animgen(motion_run, appearance_run, path, str(tmp / 'full_out'))
  assert loop.shape == want_loop.shape == (6,) + photo.shape
  assert full.shape == want.shape and len(full) % len(loop) == 0 and len(full) >= 2 * len(loop)
  # the frames really change: motion moves the photo and appearance recolours the loop
  assert np.abs(loop[0].astype(int) - photo).mean() > 1.0
  assert np.abs(full[:len(loop)].astype(int) - loop).mean() > 5.0
  for name, ours, theirs in (('motion', loop, want_loop), ('appearance', full, want)):
    top, mean, within = parity(ours, theirs)
    with capsys.disabled():
      print(f'\nparity {name}: max {top}, mean {mean:.4f} grey levels, '
            f'{100 * within:.3f} % within 1')
    assert within >= 0.99 and mean < 0.1, (name, top, mean, within)
