"""The three looping stages end to end: a known periodic region is found, the JAX solver matches
PyMaxflow on real moves of a looping problem, vmapped candidates equal separate solves, and the
`animgen loop` command."""
import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from animgen.looper import costs, expansion, maxflow, reference, render, semantics, stages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def periodic_square(T=40, H=56, W=56, lo=8, hi=48, period=16, noise=0.02, seed=0, drift=0.2):
  """A still textured background under slowly brightening light, with sensor noise, and a square
  whose content has period 16. (Without the drift, looping the background is as cheap as
  keeping it still, and Liao's energy lets it loop.)"""
  rng = np.random.default_rng(seed)
  light = 1.0 + drift * np.linspace(0, 1, T)[:, None, None, None]
  v = rng.uniform(0.2, 0.7, (1, H, W, 3)) * light + rng.normal(0, noise, (T, H, W, 3))
  yy, xx = np.mgrid[0:hi - lo, 0:hi - lo]
  for t in range(T):
    ph = 2 * np.pi * t / period
    v[t, lo:hi, lo:hi] = np.stack([0.5 + 0.4 * np.sin(ph + xx / 3),
                                   0.5 + 0.4 * np.cos(ph + yy / 4),
                                   np.full_like(xx, 0.5, dtype=float)], -1)
  square = np.zeros((H, W), bool)
  square[lo:hi, lo:hi] = True
  return np.clip(v, 0, 1).astype(np.float32), square


@pytest.fixture(scope='module')
def square_loop():
  video, square = periodic_square()
  maps, _ = semantics.motion_candidates(video, K=4)
  loop = stages.solve(video, stages.LoopConfig(min_period=8),
                      targets=np.asarray(maps).any(0, keepdims=True))[0]
  return video, square, loop


def test_periodic_region_is_found_with_its_period(square_loop):
  video, square, loop = square_loop
  looping = loop.periods > 1
  iou = (looping & square).sum() / (looping | square).sum()
  assert iou >= 0.9, iou
  assert np.all(loop.periods[square] % 16 == 0), np.unique(loop.periods[square])
  far = ~ndimage.binary_dilation(square, iterations=2)
  assert np.all(loop.periods[far] == 1)  # the background stays static
  frames = render.render(video, loop.periods, loop.starts, 32, blend=False)
  assert np.abs(frames[:, far] - frames[:1, far]).max() == 0.0


def _looping_problem(seed=0, h=12, w=14):
  video, _ = periodic_square(T=24, H=h, W=w, lo=3, hi=9, period=8, noise=0.05, seed=seed)
  prob = costs.build_problem(jnp.asarray(video), costs.Params())
  periods = np.array([8, 12, 16, 24])
  P, S = stages.stage2_tables(jnp.asarray(np.random.default_rng(seed).integers(
      0, 3, (4, h, w)) * 4 % (24 - periods[:, None, None] + 1), jnp.int32),
      jnp.asarray(periods, jnp.int32), 24, 4)
  return costs.with_labels(prob, P, S)


def test_real_looping_moves_cut_like_pymaxflow():
  prob = _looping_problem()
  num_labels = prob.P.shape[0]
  labels = jnp.asarray(np.random.default_rng(1).integers(0, num_labels, prob.P.shape[1:]),
                       jnp.int32)
  capacities = jax.jit(expansion.move_capacities, static_argnums=(0, 1))
  for a in (0, 3, num_labels - 1):   # one compiled program for every move
    caps = capacities(costs.unary, costs.pairwise, prob, labels, jnp.int32(a))
    flow, side = jax.jit(maxflow.grid_mincut)(*caps)
    ref_flow, _ = reference.mincut(*caps)
    assert int(flow) == ref_flow
    cut = sum(int(jnp.sum(jnp.where(m, c, 0))) for m, c in (
        (side, caps[1]), (~side, caps[0]), (side[:, :-1] & ~side[:, 1:], caps[2]),
        (side[:-1] & ~side[1:], caps[4])))
    assert cut == ref_flow


def test_expansion_energy_matches_pymaxflow_reference():
  prob = _looping_problem(seed=2)
  num_labels = prob.P.shape[0]
  lab0 = jnp.zeros(prob.P.shape[1:], jnp.int32) + num_labels - 1
  lab, e = expansion.alpha_expansion(costs.unary, costs.pairwise, prob, lab0, num_labels,
                                     sweeps=2, mincut='push-relabel')
  ref_lab, ref_e = reference.alpha_expansion(costs.unary, costs.pairwise, prob, lab0,
                                             num_labels, sweeps=2)
  e0 = float(expansion.energy(costs.unary, costs.pairwise, prob, lab0))
  assert float(e) < 0.9 * e0
  assert abs(float(e) - float(ref_e)) <= 0.005 * float(ref_e)


def test_stage1_periods_in_threads_equal_one_after_the_other():
  """stage1_batched with two threads (BK cuts in worker processes) and in batches of two gives
  the starts of solving one period after the other."""
  prob = _looping_problem(seed=3)
  periods = jnp.asarray([8, 12, 16], jnp.int32)
  run = lambda **kw: np.asarray(stages.stage1_batched(prob, periods, num_frames=24, q=4,
                                                      mincut='bk', **kw))
  alone = run(batch=1)
  np.testing.assert_array_equal(run(batch=1, threads=2), alone)
  np.testing.assert_array_equal(run(batch=2, threads=2), alone)
  assert len(np.unique(alone)) > 1
  assert stages.solve_threads(stages.LoopConfig(threads=3)) == 3
  assert stages.solve_threads(stages.LoopConfig(mincut='push-relabel')) == 1


def test_vmapped_candidates_and_videos_equal_separate_solves():
  """Two target maps of one video (in one vmapped program, threads=1, and each from its own
  thread, threads=2), and two videos in one vmapped program, equal the separate solves."""
  a, square = periodic_square(T=24, H=16, W=16, lo=4, hi=12, period=8)
  b, _ = periodic_square(T=24, H=16, W=16, lo=2, hi=10, period=12, seed=1)
  half = np.zeros_like(square)
  half[:, :8] = True
  config = stages.LoopConfig(min_period=8, mincut='bk')
  candidates = stages.solve(a, dataclasses.replace(config, threads=1),
                            targets=np.stack([square, half]))
  threaded = stages.solve(a, dataclasses.replace(config, threads=2),
                          targets=np.stack([square, half]))
  videos = stages.solve_videos(np.stack([a, b]), config, targets=np.stack([square, square]))
  assert len(candidates) == 2 and len(videos) == 2
  alone_a = stages.solve(a, config, targets=square[None])[0]
  alone_half = stages.solve(a, config, targets=half[None])[0]
  for alone, loop in ((alone_a, candidates[0]), (alone_a, videos[0]), (alone_a, threaded[0]),
                      (alone_half, candidates[1]), (alone_half, threaded[1]),
                      (stages.solve(b, config, targets=square[None])[0], videos[1])):
    np.testing.assert_array_equal(alone.periods, loop.periods)
    np.testing.assert_array_equal(alone.starts, loop.starts)
    assert alone.energy == pytest.approx(loop.energy, rel=1e-5)
  # the targets and the videos loop differently: no mixing across either batch
  assert not np.array_equal(candidates[0].periods, candidates[1].periods)
  assert not np.array_equal(videos[0].periods, videos[1].periods)


def test_short_clip_is_a_user_error():
  from animgen.errors import InputError
  with pytest.raises(InputError, match='needs at least 64'):
    stages.period_set(40, stages.LoopConfig())
  with pytest.raises(InputError, match='multiple of 4'):
    stages.period_set(40, stages.LoopConfig(min_period=10))
  with pytest.raises(InputError, match='--max-period 8 is below --min-period 16'):
    stages.period_set(40, stages.LoopConfig(min_period=16, max_period=8))


def _cli(*args, cwd=None):
  return subprocess.run([sys.executable, '-m', 'animgen.cli', 'loop', *args], cwd=cwd or ROOT,
                        capture_output=True, text=True)


def test_loop_command_on_the_shipped_cradle(tmp_path):
  out = tmp_path / 'cradle.gif'
  labels = tmp_path / 'labels.npz'
  r = _cli('data/clips/newtonscradle.gif', '-o', str(out), '--min-period', '16',
           '--max-size', '64', '--labels-out', str(labels), '-q', '--blend', 'frames')
  assert r.returncode == 0, r.stderr
  from animgen import media
  frames, _ = media.read_video(str(out))
  with np.load(labels) as d:
    periods, starts = d['periods'][0], d['starts'][0]
  assert frames.shape[1:3] == periods.shape
  assert (periods > 1).mean() > 0.05  # the balls loop
  assert np.all((periods == 1) | (periods % 4 == 0)) and np.all(starts % 4 == 0)
  seam, _ = render.loop_seam(frames)
  steps = np.abs(np.diff(frames, axis=0)).mean((1, 2, 3))
  assert seam <= steps.max() + 1e-3  # no larger than the clip's own frame-to-frame changes
  from PIL import Image
  with Image.open(tmp_path / 'cradle_labels.png') as im:
    assert im.format == 'PNG' and im.size[0] > 2 * frames.shape[2]  # a figure, not the raw maps
  assert 'animgen loop' not in r.stderr  # -q: no progress
  assert sorted(os.listdir(tmp_path)) == ['cradle.gif', 'cradle_labels.png', 'labels.npz']


@pytest.mark.parametrize('args, message', [
    (('missing.mp4', '-o', 'x.gif'), 'missing.mp4'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif'), 'twice --min-period'),
    (('data/photos/china.jpg', '-o', 'x.gif'), 'not a still image'),
    (('data/clips/newtonscradle.gif', '-o', 'x.xyz', '--min-period', '16'), 'unknown extension'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--coarse', '-2'), "--coarse: '-2'"),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--candidates', '-5'), "--candidates: '-5'"),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--top-k', '0'), "--top-k: '0'"),
    (('data/clips/newtonscradle.gif', '-o', 'data/clips/newtonscradle.gif'), 'is the input'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '-o', 'x.gif'), 'is the -o output'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--labels-out', 'x.gif'), 'is the -o'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--labels-out', 'x.txt'), 'use a .npz'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--out-frames', '-1'), "--out-frames: '-1'"),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--max-seconds', 'nan'), '--max-seconds'),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--start', '-2'), "--start: '-2'"),
    (('data/clips/newtonscradle.gif', '-o', 'x.gif', '--max-size', '-1'), "--max-size: '-1'"),
])
def test_loop_bad_input_is_one_line_exit_2(tmp_path, args, message):
  r = _cli(*[a if not a.startswith('x.') else str(tmp_path / a) for a in args])
  assert r.returncode == 2
  assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
  assert not list(tmp_path.iterdir())


def test_coarse_to_fine_finds_the_region(square_loop):
  video, square, fine = square_loop
  maps, _ = semantics.motion_candidates(video, K=4)
  loop = stages.solve(video, stages.LoopConfig(min_period=8, coarse=2),
                      targets=np.asarray(maps).any(0, keepdims=True))[0]
  looping = loop.periods > 1
  assert (looping & square).sum() / (looping | square).sum() >= 0.85
  assert np.all(loop.periods[square] % 16 == 0)


def test_loop_command_mask_makes_the_masked_region_move(tmp_path):
  from animgen import media
  mask = np.zeros((48, 64, 3))
  mask[:, :32] = 1.0  # left half of the (downscaled) cradle
  media.write_image(str(tmp_path / 'mask.png'), mask)
  labels = tmp_path / 'labels.npz'
  r = _cli('data/clips/newtonscradle.gif', '-o', str(tmp_path / 'm.gif'), '--min-period', '16',
           '--max-size', '64', '--mask', str(tmp_path / 'mask.png'), '--labels-out',
           str(labels))
  assert r.returncode == 0, r.stderr
  # progress without -q: stderr is no terminal here, so one line per stage and no bars
  lines = [l for l in r.stderr.splitlines() if l.startswith('animgen loop: ')]
  assert '\r' not in r.stderr and len(lines) <= 12, r.stderr
  for stage in ('stage 1 (', 'stage 2 (', 'stage 3: ', 'render ('):
    assert any(l.startswith(f'animgen loop: {stage}') for l in lines), r.stderr
  assert r.stdout.startswith('animgen: wrote ') and 'animgen loop' not in r.stdout
  with np.load(labels) as d:
    assert list(d['names']) == ['mask']
    assert d['candidate_maps'][0][:, :32].all() and not d['candidate_maps'][0][:, 32:].any()
    assert (d['periods'][0][:, :32] > 1).mean() > 0.5
    masked = d['periods'][0], d['starts'][0]
  frames, _ = media.read_video(str(tmp_path / 'm.gif'))
  assert np.quantile(frames[:, :, 36:].std(0).max(-1), 0.99) < 0.02   # the right half is still
  # editing as the paper does: a first run caches stage 1, the masked run reuses it
  first = _cli('data/clips/newtonscradle.gif', '-o', str(tmp_path / 'a.gif'), '--min-period',
               '16', '--max-size', '64', '--labels-out', str(tmp_path / 'a.npz'), '-q')
  assert first.returncode == 0, first.stderr
  edit = _cli('data/clips/newtonscradle.gif', '-o', str(tmp_path / 'e.gif'), '--min-period',
              '16', '--max-size', '64', '--mask', str(tmp_path / 'mask.png'), '--reuse-stage1',
              str(tmp_path / 'a.npz'), '--labels-out', str(tmp_path / 'e.npz'))
  assert edit.returncode == 0, edit.stderr
  assert 'stage 1: reused' in edit.stderr and 'stage 1 (' not in edit.stderr
  with np.load(tmp_path / 'e.npz') as d:
    np.testing.assert_array_equal(d['periods'][0], masked[0])
    np.testing.assert_array_equal(d['starts'][0], masked[1])
  other = _cli('data/clips/newtonscradle.gif', '-o', str(tmp_path / 'o.gif'), '--min-period',
               '20', '--max-size', '64', '--reuse-stage1', str(tmp_path / 'a.npz'))
  assert other.returncode == 2 and 'solved for other periods' in other.stderr


def test_a_user_mask_doubles_alpha_sta():
  import types
  from animgen.looper import command
  args = types.SimpleNamespace(mask=None, min_period=16, max_period=0, p_short=20,
                               mincut='auto')
  plain = command._loop_config(args, 40, 1).params
  edited = command._loop_config(types.SimpleNamespace(**{**vars(args), 'mask': 'm.png'}), 40,
                                1).params
  assert plain.alpha_sta == costs.Params().alpha_sta and edited.alpha_sta == 2 * plain.alpha_sta


def test_used_only_moves_visit_the_labels_of_the_start_labelling():
  """Coarse-to-fine refinement (stages._solve used_only) tries exactly the labels that the
  upsampled coarse solution uses, in index order."""
  video, _ = periodic_square(T=24, H=12, W=12, lo=3, hi=9, period=8)
  prob = costs.build_problem(video, costs.Params())
  P, S = stages.stage2_tables(jnp.zeros((3, 12, 12), jnp.int32),
                              jnp.asarray([8, 12, 16], jnp.int32), 24, 4)
  lab0 = jnp.where(jnp.arange(12)[None, :] < 6, 1, 7).astype(jnp.int32) * jnp.ones((12, 1), int)
  got = stages._solve(prob, P, S, lab0, 1, used_only=True)
  # the same compiled program with an explicit order: labels 1 and 7 first, 2 moves; all moves
  moves = lambda order, n: expansion.alpha_expansion(
      costs.unary, costs.pairwise, costs.with_labels(prob, P, S), lab0, P.shape[0], sweeps=1,
      order=jnp.asarray(order, jnp.int32), num_moves=jnp.int32(n))
  rest = [k for k in range(P.shape[0]) if k not in (1, 7)]
  want = moves([1, 7] + rest, 2)
  full = moves(range(P.shape[0]), P.shape[0])
  np.testing.assert_array_equal(got[0], want[0])
  assert float(got[1]) == float(want[1])
  assert float(full[1]) < float(got[1])  # the full sweep also tries the unused labels


def test_auto_coarse_factor():
  """`--coarse 0` picks a factor; without --coarse the solve is exact at every frame size."""
  from animgen import cli
  from animgen.looper.command import auto_coarse
  assert cli.build_parser().parse_args(['loop', 'clip.mp4', '-o', 'x.gif']).coarse == 1
  assert auto_coarse(150, 200) == 1 and auto_coarse(240, 320) == 1  # the shipped clips: full size
  assert auto_coarse(256, 256) == 4      # coarse frame 64 px
  assert auto_coarse(540, 960) == 8      # 67 px
  assert auto_coarse(1080, 1920) == 16   # 67 px
  assert auto_coarse(255, 4000) == 1     # the shorter side decides


def test_default_choice_is_the_looping_candidate_not_the_still_one():
  """Without a preference model the command picks the candidate that loops: a still corner's
  candidate has the lower energy (nothing in it can loop), but nothing in it moves."""
  from animgen.looper import command
  video, square = periodic_square(T=40, H=24, W=24, lo=4, hi=14, period=8)
  corner = np.zeros_like(square)
  corner[16:, 16:] = True
  loops = stages.solve(video, stages.LoopConfig(min_period=8), targets=np.stack([corner, square]),
                       names=['corner', 'square'])
  assert not (loops[0].periods > 1).any() and (loops[1].periods[square] > 1).mean() > 0.9
  assert loops[0].energy < loops[1].energy   # the old energy-per-pixel rule chose the corner
  assert command.default_order(loops) == [1, 0]


def two_sweepers(T=40, H=48, W=72, seed=0):
  """A still textured background with noise; a bright bar sweeping right with period 8
  (sawtooth) and a dark disc bouncing up and down with period 12 (triangle wave). Each pixel
  they pass over changes in a few frames of each period only. -> (video, [(changing pixels of
  the clean video, true period)] per object)."""
  rng = np.random.default_rng(seed)
  bg = ndimage.gaussian_filter(rng.uniform(0.2, 0.8, (H, W, 3)), (1.5, 1.5, 0))
  v = np.broadcast_to(bg, (T, H, W, 3)).copy()
  yy, xx = np.mgrid[0:H, 0:W]
  bar, disc = np.zeros((T, H, W), bool), np.zeros((T, H, W), bool)
  for t in range(T):
    x0 = 4 + 4 * (t % 8)
    bar[t, 4:14, x0:x0 + 8] = True
    k = t % 12
    disc[t] = (yy - 22 - 3 * min(k, 12 - k)) ** 2 + (xx - 56) ** 2 <= 30
  v[bar] = (0.95, 0.9, 0.2)
  v[disc] = (0.1, 0.15, 0.6)
  objects = [(bar.any(0) & ~bar.all(0), 8), (disc.any(0) & ~disc.all(0), 12)]
  return np.clip(v + rng.normal(0, 0.01, v.shape), 0, 1).astype(np.float32), objects


def test_fallback_finds_sweeping_objects_and_loops_each_with_its_period():
  """Without a segmenter: both objects are candidates although most temporal differences at
  their pixels are zero, each loops with a multiple of its true period, the background stays
  still, and the fallback's maps enter the energy as semantics."""
  import types
  from animgen.looper import command
  video, objects = two_sweepers()
  args = types.SimpleNamespace(segmentation=None, segmenter=None, top_k=4, candidates=1)
  F, natural, maps, _ = command.candidates(video, args, lambda line: None)
  assert F is not None and natural.any()
  covered = maps.any(0)
  for where, _ in objects:
    assert (covered & where).sum() >= 0.9 * where.sum()
  loop = stages.solve(video, stages.LoopConfig(min_period=8), semantics=F, natural=natural,
                      targets=covered[None])[0]
  for where, period in objects:
    p = loop.periods[where]
    assert np.mean((p > 1) & (p % period == 0)) >= 0.9, (period, np.unique(p, return_counts=True))
  frames = np.asarray(render.render(video, loop.periods, loop.starts, 48, blend=False))
  near = ndimage.binary_dilation(objects[0][0] | objects[1][0], iterations=2)
  assert np.quantile(frames.std(0).max(-1)[~near], 0.99) < 0.03   # sensor noise only


def test_candidate_ids_are_objects_pairs_and_all():
  from animgen.looper import command
  maps = np.zeros((3, 4, 4), bool)
  for k in range(3):
    maps[k, k] = True
  got, names = command.combinations(maps, ['tree', 'water', 'sky'])
  assert names == ['tree', 'water', 'sky', 'tree+water', 'tree+sky', 'water+sky', 'all']
  np.testing.assert_array_equal(got[3], maps[0] | maps[1])
  np.testing.assert_array_equal(got[5], maps[1] | maps[2])
  np.testing.assert_array_equal(got[6], maps.any(0))
  two, names2 = command.combinations(maps[:2], ['tree', 'water'])
  assert names2 == ['tree', 'water', 'all'] and len(two) == 3   # the pair is all of them


def test_loop_candidates_writes_the_best_n_and_a_json_of_all(tmp_path):
  import json
  from animgen import media
  video, _ = two_sweepers()
  media.write_video(str(tmp_path / 'two.gif'), video, fps=10)
  r = _cli(str(tmp_path / 'two.gif'), '-o', str(tmp_path / 'c.gif'), '--min-period', '8',
           '--candidates', '2', '-q')
  assert r.returncode == 0, r.stderr
  with open(tmp_path / 'c_candidates.json') as f:
    rows = json.load(f)['candidates']
  assert [row['rank'] for row in rows] == [1, 2, 3]
  assert sorted(row['name'] for row in rows) == ['all', 'region 1', 'region 2']
  assert rows[0]['outputs'] == [str(tmp_path / 'c.gif')] and len(rows[1]['outputs']) == 1
  assert rows[2]['outputs'] == []   # --candidates 2: the third is solved and listed only
  assert all(row['looping'] > 0 and row['energy'] > 0 for row in rows)
  # stage 3's capacity-rounding bound (expansion.rounding_bound of its moves' scales)
  assert all(0 < row['rounding_bound'] and row['rounding_share'] == pytest.approx(
      row['rounding_bound'] / row['energy']) for row in rows)
  written = sorted(os.listdir(tmp_path))
  assert len([n for n in written if n.endswith('.gif')]) == 3   # the clip and two loops


def person_beside_water(T=48, H=40, W=48, seed=0):
  """A still textured background under brightening light; on the left 'water', a natural
  texture of period 24; on the right a 'person' whose upper half moves with period 12 and lower
  half with period 20 (smooth, low-contrast motion). -> (video, labels [H, W]: 0 background,
  1 water, 2 person)."""
  rng = np.random.default_rng(seed)
  t = np.arange(T)[:, None, None]
  yy, xx = np.mgrid[0:H, 0:W]
  light = 1 + 0.4 * np.linspace(0, 1, T)[:, None, None, None]
  v = rng.uniform(0.3, 0.6, (1, H, W, 3)) * light + rng.normal(0, 0.01, (T, H, W, 3))
  labels = np.zeros((H, W), int)
  labels[4:36, 4:22], labels[4:36, 26:44] = 1, 2
  a = 2 * np.pi * t / 24
  water = np.stack([0.2 + 0.15 * np.sin(a + xx / 2 + yy / 3), 0.4 + 0.15 * np.cos(a + yy / 2),
                    0.7 + 0.15 * np.sin(a - xx / 3)], -1) + rng.normal(0, 0.01, (T, H, W, 3))
  v = np.where((labels == 1)[None, ..., None], water, v)

  def part(period, phase):
    b = 2 * np.pi * t / period
    return np.stack([0.5 + 0.12 * np.sin(b + xx / 4 + phase), 0.45 + 0.12 * np.cos(b + yy / 5),
                     np.broadcast_to(0.3, (T, H, W))], -1)
  v = np.where(((labels == 2) & (yy < 20))[None, ..., None], part(12, 0), v)
  v = np.where(((labels == 2) & (yy >= 20))[None, ..., None], part(20, 1), v)
  return np.clip(v, 0, 1).astype(np.float32), labels


def test_semantics_keep_a_person_whole_and_loop_the_water(tmp_path):
  """Oh Fig. 3's claim on a clip made for it: with the segmentation (through `animgen loop
  --segmentation`) the person, whose two halves move with periods 12 and 20, stays on one
  period, and the water loops with a multiple of its period 24; Liao's energy on the same clip
  tears the person along the halves' boundary."""
  from animgen import media
  video, labels = person_beside_water()
  person, water = labels == 2, labels == 1
  media.write_video(str(tmp_path / 'frames'), video, fps=10)  # lossless PNG frames
  seg = tmp_path / 'seg.npz'
  np.savez(seg, labels=np.broadcast_to(labels, video.shape[:3]).astype(np.int32),
           classes=np.array(['background', 'water', 'person']))
  out = tmp_path / 'loop.gif'
  r = _cli(str(tmp_path / 'frames'), '-o', str(out), '--segmentation', str(seg),
           '--min-period', '8', '--coarse', '1', '--labels-out', str(tmp_path / 'l.npz'), '-q')
  assert r.returncode == 0, r.stderr
  with np.load(tmp_path / 'l.npz') as d:
    oh = d['periods'][0]
  liao = stages.solve(video, stages.LoopConfig(min_period=8), targets=(labels > 0)[None])[0]

  def share(periods):  # the fraction of the person's pixels on its most common period
    return np.unique(periods[person], return_counts=True)[1].max() / person.sum()
  assert share(oh) == 1.0 and np.all(oh[person] > 1), np.unique(oh[person], return_counts=True)
  assert share(liao.periods) < 0.8, np.unique(liao.periods[person], return_counts=True)
  assert np.all(oh[water] % 24 == 0)
