"""Benchmark of the Animating Landscape motion and appearance methods on this machine.

  python bench/landscape.py                      # batch 1 and 8, tuned runtime (entry-point default)
  python bench/landscape.py --batch 1 --steps 5
  python bench/landscape.py --method appearance  # appearance train step (VGG16 losses)
  python bench/landscape.py --batch --full 200   # full generation only: motion + appearance
  python bench/landscape.py --no-tuning          # stock glibc malloc / no XLA defaults
  python bench/landscape.py --malloc env         # the allocator set by MALLOC_* variables instead
  python bench/landscape.py --json out.json

For each batch size, in a fresh subprocess (so that peak memory is per configuration): the
paper-size motion method (configs/landscape.py defaults with image_size 256, --size), `train_step` jitted exactly
as the trainer does (donated state), compile time, median/min seconds per step, steps/s, peak
RSS (VmHWM), minor page faults per step, and the achieved GFLOP/s (XLA cost analysis FLOPs /
median step time). Then generation ms/frame at 640x360 through animate.animate_motion with random
parameters (size 256, pad 0.25), excluding compilation.

--method appearance times the appearance train step (P^A + E^A with the frozen VGG16 style /
content losses) the same way. --full N times Algorithm 1 end to end at 640x360: N motion frames
(animate_motion, no loop) then the appearance pass over them (animate_appearance, one code per
frame), ms/frame of each part and peak RSS, over two calls (each compiles its closures again).

Each child applies the entry points' runtime set-up (animgen.runtime.tune_malloc(): glibc
mallopt before JAX starts; malloc_trim after init and compiling; the landscape programs compiled
with runtime.cnn_compiler_options()) unless --no-tuning. --malloc env sets the same allocator
through MALLOC_* environment variables and glibc's huge-page tunable instead of mallopt (the
A/B of bench/README.md's allocator table).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

from common import peak_rss as _peak_rss, proc_status as _proc_status


def _median(xs):
  xs = sorted(xs)
  n = len(xs)
  return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


_SIZE = 256
_DTYPE = 'float32'   # --dtype: the networks' compute dtype (parameters and Adam stay float32)


def _config():
  """configs/landscape.py defaults (paper network, losses, optimiser) at the paper's 256 px."""
  from configs.landscape import get_config
  c = get_config()
  c.image_size = _SIZE
  c.dtype = _DTYPE
  return c


def _appearance_config():
  from configs.landscape_appearance import get_config
  c = get_config()
  c.image_size = _SIZE
  c.dtype = _DTYPE
  return c


def _train_inputs(batch, num_train, kind):
  """(method, a random batch of the paper size) for the motion or appearance train step."""
  import jax.numpy as jnp
  import numpy as np
  from animgen.methods.landscape_appearance import LandscapeAppearance
  from animgen.methods.landscape_motion import LandscapeMotion
  config = _config() if kind == 'motion' else _appearance_config()
  config.batch_size = batch
  cls = LandscapeMotion if kind == 'motion' else LandscapeAppearance
  method = cls(config, num_train=num_train)
  s = config.image_size
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (batch, 2, s, s, 3), dtype=np.uint8)
  return method, {'frames': jnp.asarray(frames),
                  'clip_id': jnp.asarray(rng.permutation(num_train)[:batch].astype(np.int32))}


def _compile_step(method, state, batch, key, rss):
  """The train step jitted as the trainer does (donated state) -> (compiled, figures)."""
  import jax
  from animgen import runtime
  step = jax.jit(method.train_step, donate_argnums=(0,), compiler_options=method.compiler_options)
  t0 = time.perf_counter()
  lowered = step.lower(state, batch, key)
  t_trace = time.perf_counter() - t0
  t0 = time.perf_counter()
  compiled = lowered.compile()
  t_compile = time.perf_counter() - t0
  rss['hwm_after_compile'] = _proc_status('VmHWM')
  runtime.release_memory()                    # as the trainer does after the compiling step
  rss['after_compile'] = _proc_status('VmRSS')
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  try:
    temp_bytes = int(getattr(compiled.memory_analysis(), 'temp_size_in_bytes', 0))
  except Exception:  # pragma: no cover - backend without memory analysis
    temp_bytes = 0
  return compiled, {'trace_s': t_trace, 'compile_s': t_compile, 'xla_temp_bytes': temp_bytes,
                    'flops_per_step': float((cost or {}).get('flops', 0.0))}


def _time_steps(compiled, state, batch, key, steps, warmup):
  """-> (wall seconds per step, CPU seconds per step, minor faults, last metrics)."""
  import jax
  for _ in range(warmup):
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready(metrics)
  times, cpu = [], []
  flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(steps):
    t0, c0 = time.perf_counter(), os.times()
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready((state, metrics))
    c1 = os.times()
    times.append(time.perf_counter() - t0)
    cpu.append(c1.user + c1.system - c0.user - c0.system)
  return times, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0, metrics


def child_train(batch, steps, warmup, num_train, kind='motion'):
  import jax
  import numpy as np
  from animgen import runtime
  method, batch_ = _train_inputs(batch, num_train, kind)
  rss = {'start': _proc_status('VmRSS')}
  state = jax.jit(method.init)(jax.random.key(0), batch_)
  jax.block_until_ready(state)
  trimmed = runtime.release_memory()          # as the trainer does after initialisation
  rss['after_init'] = _proc_status('VmRSS')
  key = jax.random.key(1)
  compiled, figures = _compile_step(method, state, batch_, key, rss)
  times, cpu, flt, metrics = _time_steps(compiled, state, batch_, key, steps, warmup)
  loss = float(metrics['loss'])
  med = _median(times)
  return {'kind': 'train', 'method': kind, 'batch': batch, 'steps': steps, 'times_s': times,
          's_per_step_median': med, 'cpu_s_per_step_median': _median(cpu), 'cpu_s': cpu,
          's_per_step_min': min(times), 's_per_step_max': max(times), 'steps_per_s': 1.0 / med,
          **figures, 'gflops_per_s': figures['flops_per_step'] / med / 1e9,
          'peak_rss_bytes': _peak_rss(), 'minflt_per_step': flt / steps, 'rss_bytes': rss,
          'malloc_trim': trimmed, 'loss': loss, 'finite': bool(np.isfinite(loss))}


def child_generate(num_frames, width, height, repeats):
  import jax
  import jax.numpy as jnp
  import numpy as np
  from animgen import animate
  from animgen.models.landscape import Predictor

  config = _config()
  m = config.model
  size = config.image_size
  net = Predictor(out_channels=2, widths=tuple(m.widths), num_res_blocks=m.num_res_blocks,
                  beta=m.beta, fast=m.fast)
  params = jax.jit(net.init)(jax.random.key(0), jnp.zeros((1, size, size, 3)),
                             jnp.zeros((1, m.latent_dim)))
  predict = jax.tree_util.Partial(net.apply, params)   # parameters as arguments, as animate's runs
  rng = np.random.default_rng(0)
  image = rng.random((height, width, 3)).astype(np.float32)
  z = rng.standard_normal(m.latent_dim).astype(np.float32)
  run = lambda n: animate.animate_motion(predict, image, z, size, n, speed=0.2,
                                         pad_fraction=0.25, progress=False)
  # time (n frames) - (2 frames): the per-call set-up (resizing, padding) cancels, leaving
  # num_frames - 2 frames of steady-state work; the warm-up call compiles the programs.
  def timed(n):
    t0 = time.perf_counter()
    frames, _ = run(n)
    assert frames.shape == (n, height, width, 3)
    return time.perf_counter() - t0
  timed(2)
  t_small, t_big = [], []
  for _ in range(repeats):
    t_small.append(timed(2))
    t_big.append(timed(num_frames))
  per = [(b - a) / (num_frames - 2) for a, b in zip(t_small, t_big)]
  return {'kind': 'generate', 'width': width, 'height': height, 'size': size,
          'num_frames': num_frames, 'ms_per_frame_median': 1e3 * _median(per),
          'ms_per_frame_min': 1e3 * min(per), 'ms_per_frame_all': [1e3 * p for p in per],
          'call_2_frames_s': _median(t_small), 'peak_rss_bytes': _peak_rss()}


def child_full(num_frames, width, height):
  """Algorithm 1 end to end with random networks at the paper's sizes."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from animgen import animate
  from animgen.models.landscape import Predictor
  from animgen.ops import generate

  m, a = _config().model, _appearance_config().model
  size = _SIZE
  mnet = Predictor(out_channels=2, widths=tuple(m.widths), num_res_blocks=m.num_res_blocks,
                   beta=m.beta, fast=m.fast)
  anet = Predictor(out_channels=6, widths=tuple(a.widths), num_res_blocks=a.num_res_blocks,
                   beta=None, fast=a.fast)
  x0, z0 = jnp.zeros((1, size, size, 3)), jnp.zeros((1, m.latent_dim))
  mp, ap = jax.jit(mnet.init)(jax.random.key(0), x0, z0), jax.jit(anet.init)(jax.random.key(1), x0, z0)
  predict = jax.tree_util.Partial(mnet.apply, mp)
  maps = jax.tree_util.Partial(lambda p, x, z: anet.apply(p, x, z) * 0.01 + jnp.concatenate(
      [jnp.ones(x.shape), jnp.zeros(x.shape)], -1), ap)   # near-identity colour transfer
  rng = np.random.default_rng(0)
  image = rng.random((height, width, 3)).astype(np.float32)
  z = rng.standard_normal(m.latent_dim).astype(np.float32)
  out = {}
  # the first call includes compilation, the second reuses animate's programs
  for rep in ('first', 'second'):
    t0 = time.perf_counter()
    frames, _ = animate.animate_motion(predict, image, z, size, num_frames, speed=0.2,
                                       pad_fraction=0.25, progress=False)
    t1 = time.perf_counter()
    codes = generate.appearance_codes(rng.standard_normal((4, a.latent_dim)), 0, np.zeros(
        a.latent_dim, np.float32), len(frames), 1)[:num_frames]
    final = animate.animate_appearance(maps, frames, codes, size, progress=False)
    t2 = time.perf_counter()
    assert final.shape == (num_frames, height, width, 3)
    out[rep] = {'motion_ms_per_frame': 1e3 * (t1 - t0) / num_frames,
                'appearance_ms_per_frame': 1e3 * (t2 - t1) / num_frames,
                'total_ms_per_frame': 1e3 * (t2 - t0) / num_frames, 'total_s': t2 - t0}
  return {'kind': 'full', 'width': width, 'height': height, 'size': size,
          'num_frames': num_frames, 'runs': out, 'peak_rss_bytes': _peak_rss()}


# The allocator of runtime.MALLOPT as environment variables (glibc reads them at start-up),
# with transparent huge pages for malloc's maps (glibc >= 2.35).
MALLOC_ENV = {'MALLOC_ARENA_MAX': '1', 'MALLOC_MMAP_THRESHOLD_': str(256 << 20),
              'MALLOC_TRIM_THRESHOLD_': str(8 << 30), 'MALLOC_TOP_PAD_': str(256 << 20),
              'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}


def _child_env(args):
  env = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
  if args.no_tuning:
    env['ANIMGEN_NO_TUNING'] = '1'
  elif args.malloc == 'env':
    env.update(MALLOC_ENV)   # runtime.tune_malloc() then leaves malloc to these
  return env


def _run_child(args, extra):
  cmd = [sys.executable, os.path.abspath(__file__), '--_child'] + extra + [
      '--steps', str(args.steps), '--warmup', str(args.warmup),
      '--num-train', str(args.num_train), '--frames', str(args.frames),
      '--repeats', str(args.repeats), '--size', str(args.size), '--full', str(args.full),
      '--method', args.method, '--dtype', args.dtype]
  out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=_child_env(args))
  if out.returncode:
    raise SystemExit(f'benchmark child {extra} failed with exit code {out.returncode}')
  return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt_table(results, env):
  gib = lambda b: b / 2**30
  lines = ['', f'animgen landscape benchmark ({env["method"]} train step)',
           f'  train size {env["size"]}x{env["size"]} {env["dtype"]}   tuning: {env["tuning"]}   MALLOC: {env["malloc"]}',
           f'  XLA_FLAGS: {env["xla_flags"] or "(none)"}   compiler options: '
           f'{env["compiler_options"] or "(none)"}   jax {env["jax"]}   cpus {env["cpus"]}']
  if any(r['kind'] == 'train' for r in results):
    lines += ['', f'{"batch":>5} {"s/step med":>10} {"min":>7} {"max":>7} {"steps/s":>8} '
              f'{"cpu s":>6} {"GFLOP/step":>10} {"GFLOP/s":>8} {"peak RSS":>9} {"XLA temp":>9} '
              f'{"flt/step":>9} {"compile":>8}']
  for r in results:
    if r['kind'] != 'train':
      continue
    lines.append(
        f'{r["batch"]:>5} {r["s_per_step_median"]:>10.3f} {r["s_per_step_min"]:>7.3f} '
        f'{r["s_per_step_max"]:>7.3f} {r["steps_per_s"]:>8.3f} {r["cpu_s_per_step_median"]:>6.2f} {r["flops_per_step"] / 1e9:>10.1f} '
        f'{r["gflops_per_s"]:>8.1f} {gib(r["peak_rss_bytes"]):>7.2f}Gi '
        f'{gib(r["xla_temp_bytes"]):>7.2f}Gi {r["minflt_per_step"]:>9.0f} '
        f'{r["trace_s"] + r["compile_s"]:>7.1f}s')
  for r in results:
    if r['kind'] == 'generate':
      lines.append('')
      lines.append(f'generation {r["width"]}x{r["height"]} (net {r["size"]}, pad 0.25): '
                   f'{r["ms_per_frame_median"]:.0f} ms/frame median, '
                   f'{r["ms_per_frame_min"]:.0f} min (over {r["num_frames"] - 2} frames x '
                   f'{len(r["ms_per_frame_all"])}), peak RSS {gib(r["peak_rss_bytes"]):.2f} GiB')
  for r in results:
    if r['kind'] == 'full':
      lines.append('')
      for rep, f in r['runs'].items():
        lines.append(f'Algorithm 1, {r["num_frames"]} frames at {r["width"]}x{r["height"]} '
                     f'(net {r["size"]}), {rep} call: motion {f["motion_ms_per_frame"]:.0f} + '
                     f'appearance {f["appearance_ms_per_frame"]:.0f} = '
                     f'{f["total_ms_per_frame"]:.0f} ms/frame ({f["total_s"]:.1f} s)')
      lines.append(f'  peak RSS {gib(r["peak_rss_bytes"]):.2f} GiB')
  return '\n'.join(lines)


def _parser():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, nargs='*', default=[1, 8])
  p.add_argument('--method', choices=['motion', 'appearance'], default='motion',
                 help='which train step to time')
  p.add_argument('--full', type=int, default=0,
                 help='frames of full Algorithm 1 generation at 640x360 (0: skip; issue: 200)')
  p.add_argument('--steps', type=int, default=5, help='timed train steps per batch size')
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--num-train', type=int, default=64)
  p.add_argument('--frames', type=int, default=8, help='generated frames (0: skip generation)')
  p.add_argument('--repeats', type=int, default=3, help='generation repeats')
  p.add_argument('--size', type=int, default=256, help='training image size (paper: 256)')
  p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'],
                 help='compute dtype of the networks (config.dtype; parameters stay float32)')
  p.add_argument('--no-tuning', action='store_true',
                 help='run without the entry points\' runtime tuning (malloc, XLA options)')
  p.add_argument('--malloc', choices=['mallopt', 'env'], default='mallopt',
                 help='set the tuned allocator with mallopt (as the entry points) or MALLOC_* '
                      'environment variables')
  p.add_argument('--json', help='write all figures to this file')
  p.add_argument('--_child', nargs='+', help=argparse.SUPPRESS)
  return p


def main():
  args = _parser().parse_args()

  global _SIZE, _DTYPE
  _SIZE, _DTYPE = args.size, args.dtype
  if args._child:
    from animgen import runtime
    runtime.tune_malloc()   # before JAX starts its threads, as the entry points do
    if args._child[0] == 'train':
      r = child_train(int(args._child[1]), args.steps, args.warmup, args.num_train, args.method)
    elif args._child[0] == 'full':
      r = child_full(args.full, 640, 360)
    else:
      r = child_generate(args.frames, 640, 360, args.repeats)
    sys.stdout.flush()
    print(json.dumps(r))
    return

  if args.no_tuning:
    os.environ['ANIMGEN_NO_TUNING'] = '1'   # also for cnn_compiler_options() below
  import jax
  from animgen import runtime as rt
  malloc = ('(glibc defaults)' if args.no_tuning else
            ' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items()) if args.malloc == 'env' else
            'mallopt ' + ' '.join(f'{k}={v}' for k, v in rt.MALLOPT.items()))
  env = {'tuning': 'off (--no-tuning)' if args.no_tuning else 'on (animgen.runtime)',
         'malloc': malloc, 'xla_flags': os.environ.get('XLA_FLAGS', ''), 'jax': jax.__version__,
         'cpus': os.cpu_count(), 'compiler_options': rt.cnn_compiler_options()}
  env['size'] = args.size
  env['dtype'] = args.dtype
  env['method'] = args.method
  results = []
  for b in args.batch:
    r = _run_child(args, ['train', str(b)])
    results.append(r)
    print(f'batch {b}: {r["s_per_step_median"]:.3f} s/step (min {r["s_per_step_min"]:.3f}), '
          f'peak RSS {r["peak_rss_bytes"] / 2**30:.2f} GiB', file=sys.stderr, flush=True)
  if args.frames > 2:
    results.append(_run_child(args, ['generate']))
  if args.full > 0:
    results.append(_run_child(args, ['full']))
  print(_fmt_table(results, env))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'env': env, 'results': results}, f, indent=1)


if __name__ == '__main__':
  main()
