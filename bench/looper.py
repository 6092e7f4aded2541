"""Video-looper benchmark: cost setup, each stage, total and peak memory, JAX vs PyMaxflow.

  python bench/looper.py                    # 64, 128 and 256 px, 60 frames
  python bench/looper.py --sizes 64 --frames 60 --no-reference
  python bench/looper.py --sizes 256 --coarse 4     # JAX coarse-to-fine vs the exact reference
  python bench/looper.py --sizes 960x540 --frames 64 --coarse 8 --no-reference  # paper size

The clip is a shipped clip (`--clip`: tree, data/clips/tree.mp4, the default; or cradle)
resized to S x S and extended to the requested length by playing it forward then backward. Each
size runs in its own process so that peak RSS is per size. The reference runs the same stages and
moves on the same costs with every min cut by PyMaxflow (`animgen.looper.reference`), so the
ratio isolates the min-cut solver. With `--coarse F` the JAX side runs stages 1-2 at 1/F
resolution and refines at full size (`LoopConfig.coarse`), while the reference still solves
every stage at full size: the energy difference is then what coarse-to-fine gives up.
Prints figures; asserts nothing about time.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


CLIPS = {'tree': 'tree.mp4', 'cradle': 'newtonscradle.gif'}


def hw(size: str) -> tuple[int, int]:
  """'256' -> (256, 256); '960x540' (width x height) -> (540, 960)."""
  w, _, h = size.partition('x')
  return int(h or w), int(w)


def clip(size, frames, name='tree'):
  import numpy as np
  import jax.numpy as jnp
  from animgen import media
  from animgen.ops import warp
  v, _ = media.read_video(os.path.join(ROOT, 'data', 'clips', CLIPS[name]))
  v = np.concatenate([v, v[-2:0:-1]] * (frames // (2 * len(v) - 2) + 1))[:frames]
  h, w = hw(size)
  return np.asarray(warp.resize(jnp.asarray(v), h, w))


def run_jax(video, config, repeat):
  """Seconds of each stage of `stages.solve` (after one compile run), of its time inside
  PyMaxflow ('in BK': the host side of every BK cut, graph construction included) and the
  energy."""
  import numpy as np
  from animgen.looper import maxflow, stages
  marks, in_bk = [], [0.0]
  host = maxflow._bk_host

  def timed(*args):
    tic = time.perf_counter()
    out = host(*args)
    in_bk[0] += time.perf_counter() - tic
    return out
  maxflow._bk_host = timed   # before the first trace: bk_mincut's callback is what it finds then
  stages.solve(video, config)  # compile
  for _ in range(repeat):
    times, last = {}, [time.perf_counter()]

    def say(msg):
      now = time.perf_counter()
      times[msg.split(':')[0].split(' (')[0]] = now - last[0]
      last[0] = now
    in_bk[0] = 0.0
    tic = time.perf_counter()
    loop = stages.solve(video, config, progress=say)[0]
    times['total'] = time.perf_counter() - tic
    times['in BK'] = in_bk[0]
    marks.append(times)
  best = {k: min(m[k] for m in marks) for k in marks[0]}
  return best, loop.energy, float(np.mean(loop.periods > 1))


def run_reference(video, config):
  """The same three stages with PyMaxflow cuts, sequential (no vmap)."""
  import jax.numpy as jnp
  import numpy as np
  from animgen.looper import costs, reference, stages
  t = video.shape[0]
  q = config.params.q
  periods = stages.period_set(t, config)
  times = {}
  tic = time.perf_counter()
  prob = costs.build_problem(jnp.asarray(video), config.params)
  prob.U.block_until_ready()
  times['costs'] = time.perf_counter() - tic

  def solve(P, S, lab0, sweeps, num_moves=None):
    pr = costs.with_labels(prob, P, S)
    lab, e = reference.alpha_expansion(costs.unary, costs.pairwise, pr, lab0, P.shape[0], sweeps,
                                       num_moves)
    return lab, e
  best = lambda P, S: jnp.argmin(stages.unary_table(prob, P, S), axis=0).astype(jnp.int32)
  tic = time.perf_counter()
  h, w = video.shape[1:3]
  n = int((t - 1) // q + 1)
  starts = []
  for p in periods:
    p_map = jnp.full((h, w), int(p), jnp.int32)
    P = jnp.broadcast_to(p_map, (n, h, w))
    S = stages.start_tables(p_map, n, t, q)
    lab, _ = solve(P, S, best(P, S), config.sweeps, (t - int(p)) // q + 1)
    starts.append(jnp.take_along_axis(S, lab[None], 0)[0])
  times['stage 1'] = time.perf_counter() - tic
  tic = time.perf_counter()
  P, S = stages.stage2_tables(jnp.stack(starts), jnp.asarray(periods, jnp.int32), t, q)
  lab, _ = solve(P, S, best(P, S), config.sweeps_stage2)
  p_map = jnp.take_along_axis(P, lab[None], 0)[0]
  s_map = jnp.take_along_axis(S, lab[None], 0)[0]
  times['stage 2'] = time.perf_counter() - tic
  tic = time.perf_counter()
  P = jnp.broadcast_to(p_map, (n, h, w))
  S = stages.start_tables(p_map, n, t, q)
  lab, e = solve(P, S, jnp.minimum(s_map // q, n - 1), config.sweeps)
  times['stage 3'] = time.perf_counter() - tic
  times['total'] = sum(times.values())
  return times, float(e), float(np.mean(np.asarray(p_map) > 1))


def cut_times(video, config, moves=6):
  """Seconds per min cut of real stage-3 moves (median over moves of the best of 3 runs): JAX
  grid_mincut (jitted) and PyMaxflow."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from animgen.looper import costs, expansion, maxflow, reference, stages
  t, q = video.shape[0], config.params.q
  loop = stages.solve(video, config)[0]
  prob = costs.build_problem(jnp.asarray(video), config.params)
  n = int((t - 1) // q + 1)
  p_map = jnp.asarray(loop.periods)
  prob = costs.with_labels(prob, jnp.broadcast_to(p_map, (n,) + p_map.shape),
                           stages.start_tables(p_map, n, t, q))
  lab = jnp.asarray(np.random.default_rng(0).integers(0, n, p_map.shape), jnp.int32)
  cut = jax.jit(maxflow.grid_mincut)
  caps = [jax.block_until_ready(expansion.move_capacities(costs.unary, costs.pairwise, prob, lab,
                                                          a)) for a in range(min(moves, n))]
  jax.block_until_ready(cut(*caps[0]))
  tj, tr = [], []
  def best_of(fn, n=3):  # a single timing can catch a hiccup of the host (e.g. 87 vs 23 ms)
    times = []
    for _ in range(n):
      tic = time.perf_counter()
      out = fn()
      times.append(time.perf_counter() - tic)
    return out, min(times)
  for c in caps:
    (f1, _), t1 = best_of(lambda: jax.block_until_ready(cut(*c)))
    (f2, _), t2 = best_of(lambda: reference.mincut(*c))
    tj.append(t1)
    tr.append(t2)
    assert int(f1) == f2, (f1, f2)
  return float(np.median(tj)), float(np.median(tr))


def one(size, frames, reference, repeat, coarse=1, name='tree', mincut='auto'):
  import dataclasses
  from animgen.looper import maxflow, stages
  video = clip(size, frames, name)
  config = stages.LoopConfig(min_period=32 if frames >= 64 else 16, coarse=coarse,
                             mincut=mincut)
  out = {'clip': name, 'size': size, 'frames': frames, 'min_period': config.min_period,
         'coarse': coarse, 'mincut': maxflow.resolve(mincut)}
  out['jax'], out['jax_energy'], out['jax_looping'] = run_jax(video, config, repeat)
  out['jax_peak_rss_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
  if reference:
    full = dataclasses.replace(config, coarse=1)  # the reference solves every stage at full size
    out['cut_jax'], out['cut_ref'] = cut_times(video, full)
    out['ref'], out['ref_energy'], out['ref_looping'] = run_reference(video, full)
    out['peak_rss_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
  print(json.dumps(out), flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--sizes', nargs='*', default=['64', '128', '256'],
                  help='S (S x S) or WxH, e.g. 960x540 (the paper\'s frame size)')
  ap.add_argument('--frames', type=int, default=60)
  ap.add_argument('--repeat', type=int, default=2)
  ap.add_argument('--no-reference', action='store_true')
  ap.add_argument('--coarse', type=int, default=1, help='JAX side: stages 1-2 at 1/F size')
  ap.add_argument('--clip', choices=sorted(CLIPS), default='tree',
                  help='shipped clip: tree (data/clips/tree.mp4) or cradle (newtonscradle.gif)')
  ap.add_argument('--mincut', choices=('auto', 'push-relabel', 'bk'), default='auto',
                  help="the animgen side's cut back end (auto: BK on a CPU)")
  ap.add_argument('--one', default=None, help=argparse.SUPPRESS)
  a = ap.parse_args()
  if a.one:
    return one(a.one, a.frames, not a.no_reference, a.repeat, a.coarse, a.clip, a.mincut)
  if a.coarse > 1:
    print(f'JAX: stages 1-2 at 1/{a.coarse} size, then refined; reference: all at full size')
  print(f'animgen min cut: {a.mincut}')
  print(f'{"size":>7} {"stage":>8} {"jax s":>8} {"pymaxflow s":>12} {"ratio":>6}')
  for size in a.sizes:
    hw(size)  # a bad size fails here, not in the child
    cmd = [sys.executable, __file__, '--one', size, '--frames', str(a.frames),
           '--repeat', str(a.repeat), '--coarse', str(a.coarse), '--clip', a.clip,
           '--mincut', a.mincut] + (
               ['--no-reference'] if a.no_reference else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
      print(r.stderr[-2000:])
      continue
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for k, v in res['jax'].items():
      ref = res.get('ref', {}).get(k)
      ratio = f'{v / ref:6.2f}' if ref else '     -'
      print(f'{size:>7} {k:>8} {v:8.2f} {ref if ref is not None else float("nan"):12.2f} {ratio}')
    line = (f'{size:>7} energy jax {res["jax_energy"]:.5g} ({res["jax_looping"]:.0%} looping), '
            f'peak RSS {res["jax_peak_rss_gib"]:.2f} GiB')
    if 'ref' in res:
      rel = (res['jax_energy'] - res['ref_energy']) / max(res['ref_energy'], 1e-12)
      line += (f'; pymaxflow {res["ref_energy"]:.5g} ({res["ref_looping"]:.0%} looping), '
               f'jax - ref = {rel:+.2%}; one min cut: jax {1e3 * res["cut_jax"]:.1f} ms, '
               f'pymaxflow {1e3 * res["cut_ref"]:.1f} ms '
               f'({res["cut_jax"] / res["cut_ref"]:.1f}x)')
    print(line, flush=True)


if __name__ == '__main__':
  main()
