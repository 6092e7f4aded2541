"""Animating Landscape generation (Algorithm 1, motion): frames, loop, sizes, CLI outputs."""
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from animgen import animate, cli, media
from animgen.errors import InputError
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


def test_unlooped_frames_are_official_steps_of_a_translation():
  img = _photo(40, 64)
  size, speed = 32, 1.0
  frames, flows = animate.animate_motion(drift, img, np.zeros(8), size=size, num_frames=6,
                                         speed=speed, progress=False)
  assert frames.shape == (6, 40, 64, 3) and flows.shape == (6, 32, 32, 2)
  # official geometry: pad S / 4 = 8, grid P = 48, photo pads int(8 * 40 / 32), int(8 * 64 / 32)
  pad, p = generate.pad_geometry(size, 0.25)
  pw = generate.scaled_pads(pad, size, 40, 64)[1]
  assert (pad, p, pw) == (8, 48, 16)
  # per step the P^M flow 1/64 is scaled by S / P on the grid spanning the padded photo
  step_px = speed * (1 / 64) * (size / p) * (64 + 2 * pw - 1) / 2
  for t in (0, 4):          # frame t is t + 1 steps from the photo (official frame 0: one step)
    shift = warp.pixels_to_normalised(jnp.array([(t + 1) * step_px, 0.0]), 40, 64)
    want = warp.backward_warp(jnp.asarray(img)[None], jnp.broadcast_to(shift, (1, 40, 64, 2)),
                              'reflection')[0]
    assert _mean_abs(frames[t][:, :-8], media.to_uint8(np.asarray(want))[:, :-8]) < 1.0
  assert _mean_abs(frames[0], media.to_uint8(img)) > 1.0


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


def test_crossfade_weights_are_the_official_ramps():
  plan = generate.crossfade_weights(199, 101)  # the official 199 frames -> 101-frame loop
  assert len(plan) == 101
  assert sorted(i for parts in plan for i, _ in parts) == list(range(199))  # each frame once
  (i, w_head), (j, w_tail) = plan[0]
  assert (i, j) == (0, 101) and abs(w_head - 1 / 99) < 1e-12 and abs(w_tail - 98 / 99) < 1e-12
  assert [i for i, _ in plan[97]] == [97, 198] and abs(plan[97][0][1] - 98 / 99) < 1e-12
  assert len(plan[98]) == 1 and abs(plan[98][0][1] - 1.0) < 1e-12
  assert all(abs(sum(w for _, w in parts) - 1.0) < 1e-12 for parts in plan)
  assert generate.crossfade_weights(4, 4) == [[(k, 1.0)] for k in range(4)]  # nothing to fade
  with pytest.raises(Exception):
    generate.crossfade_weights(10, 3)


def test_appearance_codes_official_schedule():
  keys = np.array([[0.0], [10.0], [20.0]], np.float32)
  z_in = np.array([11.0], np.float32)
  # K = 3 keys, a 4-frame loop, >= 2 loops: int((8 - 3) / 3) = 1 code between keys, the last
  # key runs back to the first over 1 + 8 - 3 * 2 = 3 codes; row 1 becomes z_in, frame 0 uses it
  codes = generate.appearance_codes(keys, 1, z_in, 4, 2)[:, 0]
  np.testing.assert_allclose(codes, [11, 15.5, 20, 15, 10, 5, 0, 5.5])
  assert len(generate.appearance_codes(keys, 0, keys[0], 2, 1)) == 4   # ceil(3 / 2) loops
  assert generate.nearest_index(keys, np.array([14.0])) == 1


def test_choose_code_rows_and_official_fraction():
  book = np.arange(12, dtype=np.float32).reshape(3, 4)
  np.testing.assert_array_equal(animate.choose_code(book, index=2), book[2])
  # -mz 0.125: rows floor and ceil of (3 - 1) * 0.125 = 0.25
  np.testing.assert_allclose(animate.choose_code(book, mix=0.125), 0.75 * book[0] + 0.25 * book[1])
  np.testing.assert_allclose(animate.choose_code(book, mix=1.0), book[2])
  t = np.random.default_rng(3).random()                  # the default: a random -mz from the seed
  np.testing.assert_allclose(animate.choose_code(book, seed=3), animate.choose_code(book, mix=t))
  assert animate.choose_sequence(5, mix=0.99) == 3 and animate.choose_sequence(5, mix=1.0) == 4
  for bad in (dict(mix=1.5), dict(index=3)):
    with pytest.raises(InputError):
      animate.choose_code(book, **bad)


def _constant_sizes(lowered):
  """Element counts of the constants in a lowered program."""
  sizes = []
  for line in lowered.as_text().splitlines():
    if 'stablehlo.constant' in line:
      m = re.search(r'tensor<([0-9x]+)x[a-z]', line)
      sizes.append(int(np.prod([int(d) for d in m.group(1).split('x')])) if m else 1)
  return sizes


def test_network_parameters_are_arguments_not_constants(smoke_run, appearance_run):
  """Closed-over parameters would become constants that XLA folds for seconds ('Constant
  folding an instruction is taking > 1s' on the user's terminal)."""
  model = animate.motion_model(smoke_run[1])
  size = model.size
  pad, p = generate.pad_geometry(size, 0.25)
  x, z = jnp.zeros((1, size, size, 3)), jnp.zeros((1, model.codebook.shape[1]))
  progs = animate._programs()
  step = progs['step'].lower(animate.jit_arg(model.predict), x, jnp.zeros((1, p, p, 2)), True, z,
                             jnp.zeros((1, p, p, 3)), 0.2, pad=pad)
  largest = max(v.size for v in jax.tree_util.tree_leaves(model.run.state.params['predictor']))
  assert largest > 5000 and max(_constant_sizes(step)) < 1000
  a = animate.appearance_model(appearance_run[1])
  rec = progs['recolour'].lower(animate.jit_arg(a.maps), jnp.zeros((20, 30, 3), jnp.uint8),
                                jnp.zeros(z.shape[1:]), size=a.size)
  assert max(_constant_sizes(rec)) < 1000
  closed = jax.jit(lambda x: model.predict(x, z)).lower(x)   # the check does see constants
  assert max(_constant_sizes(closed)) >= largest


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
  assert len(flow_frames) == 7              # one flow per step


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
  small = tmp_path / 'china_small.gif'
  assert cli.main(['animate', photo, '-o', str(small), '--workdir', workdir, '--frames', '3',
                   '--no-loop', '--no-flow', '--max-size', '160', '-q']) == 0
  assert media.read_video(str(small))[0].shape == (3, 107, 160, 3)   # 427 * 160 / 640 = 106.75


def test_cli_animate_max_size_keeps_arrows_in_the_photo_pixels(smoke_run, tmp_path, monkeypatch):
  from animgen import animate
  _, workdir, _ = smoke_run
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  seen = {}
  real = animate.code_from_arrows

  def spy(predict, small, arrows, h, w, *a, **k):
    seen['hw'] = (h, w)
    return real(predict, small, arrows, h, w, *a, **k)
  monkeypatch.setattr(animate, 'code_from_arrows', spy)
  out = tmp_path / 'arrows_small.mp4'
  assert cli.main(['animate', str(src), '-o', str(out), '--workdir', workdir, '--motion-only',
                   '--arrows', '2,10,25,10', '--frames', '3', '--no-loop', '--no-flow',
                   '--control-steps', '2', '--max-size', '15', '-q']) == 0
  assert seen['hw'] == (20, 30)                      # the arrows' pixels: the photo's own
  assert media.read_video(str(out))[0].shape[:3] == (3, 10, 15)


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
    (['--fps', '0'], "--fps: '0'"),
    (['--loop', 'mrf', '--frames', '400'], '--frames 128 or fewer'),
    (['--flow-output', 'OUT'], 'is the -o output'),
    (['-o', 'OUT'], 'is the -o output'),
    (['-o', 'SRC'], 'is the input'),
    (['--loop', 'mrf', '--loop-frames', '8'], 'drop one of them'),
    (['--loop', 'mrf', '--frames', '20', '--min-period', '16'], 'twice --min-period 16'),
])
def test_cli_animate_bad_control_arguments(smoke_run, tmp_path, capsys, args, fragment):
  _, workdir, _ = smoke_run
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  out = tmp_path / 'o.mp4'
  args = [{'OUT': str(out), 'SRC': str(src)}.get(a, a) for a in args]
  with pytest.raises(SystemExit) as e:
    cli.main(['animate', str(src), '-o', str(out), '--workdir', workdir] + args)
  assert e.value.code == 2 and fragment in capsys.readouterr().err
  assert not out.exists() and sorted(os.listdir(tmp_path)) == ['p.png']


def test_cli_animate_without_a_model_says_how_to_get_one(smoke_run, tmp_path, monkeypatch,
                                                         capsys):
  monkeypatch.chdir(tmp_path)                 # a fresh install: no runs/ folder
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save('p.png')
  for args, fragments in (
      ([], ('no trained motion model in runs/landscape:',
            'python -m animgen.main --config=configs/landscape.py', 'animgen convert')),
      (['--workdir', smoke_run[1], '--appearance-workdir', 'nope'],
       ('no trained appearance model in nope:', 'configs/landscape_appearance.py'))):
    with pytest.raises(SystemExit) as e:
      cli.main(['animate', 'p.png', '-o', 'o.mp4'] + args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith('animgen: error: ')
    for f in fragments + (animate.PROJECT_PAGE, 'pretrained'):
      assert f in lines[0], lines[0]
  assert sorted(os.listdir(tmp_path)) == ['p.png']


def test_cli_animate_prints_only_its_own_lines(smoke_run, appearance_run, tmp_path):
  """Nothing but animgen's lines (progress summaries off a terminal) reaches stderr: no XLA,
  absl or library warnings."""
  from conftest import run_cli
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  r = run_cli(['-m', 'animgen.cli', 'animate', str(src), '-o', str(tmp_path / 'o.gif'),
               '--workdir', smoke_run[1], '--appearance-workdir', appearance_run[1],
               '--frames', '5', '--a-random', '--seed', '1'])
  assert r.returncode == 0, r.stderr[-2000:]
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert any(l.startswith('animgen animate: motion') for l in lines), r.stderr
  assert all(l.startswith('animgen') for l in lines), r.stderr


def test_cli_animate_loop_mrf_is_the_looper_on_the_generated_frames(smoke_run, tmp_path):
  """--loop mrf: the generated frames (the same as --no-loop writes) looped per pixel by
  animgen.looper; the output is exactly `loop_frames` of them, one longest period long."""
  from animgen.looper import command as looper, render
  _, workdir, _ = smoke_run
  src = tmp_path / 'p.png'
  Image.fromarray((_photo(20, 30) * 255).astype(np.uint8)).save(src)
  common = ['--workdir', workdir, '--frames', '16', '--z-index', '1', '--no-flow', '-q']
  assert cli.main(['animate', str(src), '-o', str(tmp_path / 'raw'), '--no-loop'] + common) == 0
  assert cli.main(['animate', str(src), '-o', str(tmp_path / 'mrf'), '--loop', 'mrf',
                   '--min-period', '8'] + common) == 0
  raw, _ = media.read_video(str(tmp_path / 'raw'))      # PNG frame folders: lossless
  out, _ = media.read_video(str(tmp_path / 'mrf'))
  want, loop = looper.loop_frames(raw, 8)
  assert len(raw) == 16 and len(out) == loop.periods.max() and len(out) in (8, 12, 16)
  np.testing.assert_array_equal(media.to_uint8(out), media.to_uint8(want))
  seam, _ = render.loop_seam(out)
  steps = np.abs(np.diff(raw, axis=0)).mean((1, 2, 3))
  assert seam <= steps.max() + 1e-3

