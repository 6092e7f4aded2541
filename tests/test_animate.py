"""Animating Landscape generation (Algorithm 1, motion): frames, loop, sizes, CLI outputs."""
import os

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from animgen import animate, cli, media
from animgen.ops import generate, warp


def drift(x, z):
  """A stand-in motion predictor: uniform backward flow of +1/64 in x (content moves left)."""
  return jnp.zeros(x.shape[:3] + (2,)).at[..., 0].set(1.0 / 64.0)


def _photo(h=23, w=37, seed=0):
  rng = np.random.default_rng(seed)
  ys, xs = np.mgrid[0:h, 0:w]
  img = 0.5 + 0.4 * np.sin(xs / 3.0)[..., None] * np.cos(ys / 5.0)[..., None]
  return np.clip(img + 0.05 * rng.normal(size=(h, w, 3)), 0, 1).astype(np.float32)


def _mean_abs(a, b):
  return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_unlooped_frames_count_first_equals_input_and_motion_is_a_translation():
  img = _photo(40, 64)
  frames, flows = animate.animate_motion(drift, img, np.zeros(8), size=32, num_frames=6,
                                         speed=1.0, progress=False)
  assert frames.shape == (6, 40, 64, 3) and flows.shape == (5, 32, 32, 2)
  np.testing.assert_array_equal(frames[0], media.to_uint8(img))
  # after t steps every pixel samples the input t/64 normalised units to the right
  shift = warp.backward_warp(jnp.asarray(img)[None], jnp.full((1, 40, 64, 2), 0.0).at[..., 0]
                             .set(5 / 64.0), 'reflection')[0]
  assert _mean_abs(frames[5][:, :-8], media.to_uint8(np.asarray(shift))[:, :-8]) < 2.0


def test_loop_closes_like_neighbouring_frames():
  img = _photo(40, 64)
  looped, _ = animate.animate_motion(drift, img, np.zeros(8), 32, 17, speed=1.0,
                                     loop_length=9, progress=False)
  plain, _ = animate.animate_motion(drift, img, np.zeros(8), 32, 9, speed=1.0, progress=False)
  assert len(looped) == 9
  neighbours = np.median([_mean_abs(looped[k + 1], looped[k]) for k in range(8)])
  assert neighbours > 0.5  # the frames really move
  assert _mean_abs(looped[-1], looped[0]) < 2.5 * neighbours
  # without the cross-fade the same length would jump at the seam: the test can fail
  assert _mean_abs(plain[-1], plain[0]) > 4 * neighbours


def test_crossfade_plan_weights():
  plan = generate.crossfade_plan(199, 101)  # the official 199 frames -> 101-frame loop
  assert len(plan) == 101
  i, j, w = plan[0]
  assert (i, j) == (101, 0) and 0 < w < 0.05          # starts where the tail continues
  assert plan[97][2] > 0.95 and plan[98] == (98, 98, 0.0)
  with pytest.raises(Exception):
    generate.crossfade_plan(10, 3)


def test_choose_code_rows_and_interpolation():
  book = np.arange(12, dtype=np.float32).reshape(3, 4)
  np.testing.assert_array_equal(animate.choose_code(book, index=2), book[2])
  np.testing.assert_allclose(animate.choose_code(book, mix=0.25), 0.75 * book[0] + 0.25 * book[1])
  assert any(np.array_equal(animate.choose_code(book, seed=3), r) for r in book)


@pytest.mark.parametrize('mode', ['RGB', 'L', 'RGBA'])
def test_cli_animate_any_mode_and_odd_size(smoke_run, tmp_path, mode):
  _, workdir, _ = smoke_run
  src = tmp_path / f'photo_{mode}.png'
  arr = (np.asarray(_photo(23, 37)) * 255).astype(np.uint8)
  im = Image.fromarray(arr)
  im = im.convert(mode)
  im.save(src)
  out = tmp_path / f'out_{mode}.mp4'
  assert cli.main(['animate', str(src), '-o', str(out), '--workdir', workdir, '--frames', '7',
                   '--loop-frames', '4', '-q']) == 0
  frames, _ = media.read_video(str(out))
  assert frames.shape[:3] == (4, 23, 37)
  flow_frames, _ = media.read_video(str(tmp_path / f'out_{mode}_flow.mp4'))
  assert len(flow_frames) == 6


def test_cli_animate_gif_of_the_shipped_photo(smoke_run, tmp_path):
  _, workdir, _ = smoke_run
  photo = os.path.join(os.path.dirname(__file__), '..', 'data', 'photos', 'china.jpg')
  out = tmp_path / 'china.gif'
  assert cli.main(['animate', photo, '-o', str(out), '-o', str(tmp_path / 'china.mp4'),
                   '--workdir', workdir, '--frames', '5', '--no-loop', '--no-flow',
                   '--z-index', '1', '-q']) == 0
  frames, _ = media.read_video(str(out))
  assert frames.shape == (5, 427, 640, 3)
  assert media.read_video(str(tmp_path / 'china.mp4'))[0].shape == (5, 427, 640, 3)
  assert not os.path.exists(tmp_path / 'china_flow.gif')


def test_cli_animate_motion_and_appearance_together(smoke_run, appearance_run, tmp_path):
  _, workdir, _ = smoke_run
  _, a_workdir, _ = appearance_run
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  out = tmp_path / 'full.mp4'
  assert cli.main(['animate', str(src), '-o', str(out), '--workdir', workdir,
                   '--appearance-workdir', a_workdir, '--frames', '7', '--loop-frames', '4',
                   '--a-speed', '0.5', '--a-index', '1', '--no-flow', '-q']) == 0
  frames, _ = media.read_video(str(out))
  assert frames.shape[:3] == (8, 20, 30)      # a 4-frame motion loop, twice per appearance cycle
  motion = tmp_path / 'motion.mp4'
  assert cli.main(['animate', str(src), '-o', str(motion), '--workdir', workdir,
                   '--appearance-workdir', a_workdir, '--motion-only', '--frames', '7',
                   '--loop-frames', '4', '--no-flow', '-q']) == 0
  plain, _ = media.read_video(str(motion))
  assert plain.shape[:3] == (4, 20, 30)
  assert _mean_abs(frames[:4], plain) > 0.02  # the appearance pass recoloured the frames ([0, 1])


def test_cli_appearance_only_lstm_patch_and_arrows(smoke_run, appearance_run, tmp_path):
  _, workdir, _ = smoke_run
  _, a_workdir, _ = appearance_run
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  still = tmp_path / 'still.gif'
  assert cli.main(['animate', str(src), '-o', str(still), '--appearance-workdir', a_workdir,
                   '--appearance-only', '--frames', '5', '--a-speed', '0.5', '-q']) == 0
  frames, _ = media.read_video(str(still))
  assert frames.shape[:3] == (8, 20, 30)      # (5 + 3) // 2 = 4 still frames x 2 repeats
  patch, mask = tmp_path / 'patch.png', tmp_path / 'mask.png'
  Image.fromarray(np.full((20, 30, 3), (250, 40, 40), np.uint8)).save(patch)
  m = np.zeros((20, 30), np.uint8); m[:8, :] = 255
  Image.fromarray(m).save(mask)
  out = tmp_path / 'patch.gif'
  assert cli.main(['animate', str(src), '-o', str(out), '--appearance-workdir', a_workdir,
                   '--appearance-only', '--patch', str(patch), '--patch-mask', str(mask),
                   '--frames', '5', '--a-speed', '1', '--control-steps', '20', '-q']) == 0
  assert media.read_video(str(out))[0].shape[:3] == (4, 20, 30)
  out = tmp_path / 'arrows.mp4'
  assert cli.main(['animate', str(src), '-o', str(out), '--workdir', workdir, '--motion-only',
                   '--arrows', '2,10,25,10', '--frames', '5', '--no-loop', '--no-flow',
                   '--control-steps', '20', '-q']) == 0
  assert media.read_video(str(out))[0].shape[:3] == (5, 20, 30)


@pytest.mark.parametrize('args, fragment', [
    (['--arrows', '1,2,3'], '--arrows'),
    (['--patch', 'x.png'], '--patch-mask'),
    (['--a-speed', '0'], '--a-speed'),
    (['--motion-only', '--appearance-only'], 'exclude'),
])
def test_cli_animate_bad_control_arguments(smoke_run, tmp_path, capsys, args, fragment):
  _, workdir, _ = smoke_run
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  out = tmp_path / 'o.mp4'
  with pytest.raises(SystemExit) as e:
    cli.main(['animate', str(src), '-o', str(out), '--workdir', workdir] + args)
  assert e.value.code == 2 and fragment in capsys.readouterr().err
  assert not out.exists()
