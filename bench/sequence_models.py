"""Benchmark of the Image2GIF and DeepGIFs train steps on this machine (prints, asserts nothing).

  python bench/sequence_models.py                  # every variant at the paper batch sizes
  python bench/sequence_models.py --variants image2gif_dqn --steps 10
  python bench/sequence_models.py --json out.json
  python bench/sequence_models.py --variants image2gif_rnn:8,deepgifs_lstm   # name:batch

Variants (paper networks and batch sizes, configs/<method>.py defaults):
  image2gif_rnn     Image2GIF generator + discriminator (the paper layout: LSTM on the 64-d z,
                    4 deconvs 5x5/2 to RGB; model.remat off), batch 64, 27 frames (the longest
                    pattern, I) of 64x64x3
  image2gif_dqn     the same with the DQN head (configs/image2gif.py:dqn)
  deepgifs_vaegan   DeepGIFs phase 1, VAE-GAN pretraining (configs/deepgifs.py:vaegan): batch
                    128 single 64x64 frames
  deepgifs_lstm     DeepGIFs phase 2 (configs/deepgifs.py): VAE + latent LSTM + GAN, batch 32
                    clips of 20 Moving MNIST frames

Each variant runs in a fresh subprocess (so that its peak memory is its own): `train_step`
compiled by the trainer's own wiring (`trainer.compile_steps`: donated state) on a random uint8
batch of the dataset's shape, then compile time, median seconds per step, steps/s, clips/s, peak
RSS (VmHWM) and XLA's planned scratch memory. The child applies the entry points' runtime set-up
(animgen.runtime.tune_malloc() before JAX starts, release_memory() after init and compiling).

  python bench/sequence_models.py --torch --batch 8 --variants image2gif_rnn --remat off

--torch also times bench/torch_sequence_models.py's PyTorch re-expression of each variant at the
same config, shapes and batch in the same run, each side in its own fresh process, and prints
the ratio animgen / torch. Peak memory is peak RSS (VmHWM) twice: of the whole process
(animgen's includes compiling) and of the timed steps alone (VmHWM reset through
/proc/self/clear_refs after the warm-up). `--remat on|off` overrides Image2GIF's model.remat
on both sides (torch: torch.utils.checkpoint per time step); `--torch-threads` (default 1) and
`--torch-malloc` set the torch side (bench/torch_sequence_models.py says why one thread).
"""
import argparse
import json
import os
import time

from common import add_torch_and_child_args, peak_rss, run_child

VARIANTS = ('image2gif_rnn', 'image2gif_dqn', 'deepgifs_vaegan', 'deepgifs_lstm')


def reset_peak() -> bool:
  """Resets this process's VmHWM to its current RSS (Linux clear_refs 5)."""
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def time_steps(compiled, state, batch, key, steps, warmup):
  """A compiled, state-donating step after `warmup` calls (VmHWM reset after them) -> (state,
  metrics, wall seconds, CPU seconds per step, whether the peak was reset)."""
  import jax
  for _ in range(warmup):
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready(metrics)
  reset = reset_peak()
  times, cpu = [], []
  for _ in range(steps):
    t0, c0 = time.perf_counter(), os.times()
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready((state, metrics))
    c1 = os.times()
    times.append(time.perf_counter() - t0)
    cpu.append(c1.user + c1.system - c0.user - c0.system)
  return state, metrics, times, cpu, reset


def _setup(variant, batch, remat=None):
  import numpy as np
  rng = np.random.default_rng(0)
  if variant.startswith('image2gif'):
    from configs.image2gif import get_config
    from animgen.datasets.image2gif_patterns import MAX_LENGTHS
    from animgen.methods.image2gif import Image2GIF
    config = get_config('dqn' if variant == 'image2gif_dqn' else None)
    config.batch_size = batch or config.batch_size
    if remat is not None:
      config.model.remat = bool(remat)
    t = max(MAX_LENGTHS.values())
    method = Image2GIF(config)
    examples = [method.make_example(
        {'frames': rng.integers(0, 256, (t, 64, 64, 3), dtype=np.uint8),
         'length': int(rng.integers(17, t + 1)), 'pattern': int(rng.integers(6))}, rng, True)
        for _ in range(config.batch_size)]
  else:
    from configs.deepgifs import get_config
    from animgen.methods.deepgifs import DeepGIFs
    config = get_config('vaegan' if variant == 'deepgifs_vaegan' else None)
    config.train.init_from = ''   # the LSTM phase from fresh networks (same step cost)
    config.batch_size = batch or config.batch_size
    method = DeepGIFs(config)
    shape = (config.frames, config.image_size, config.image_size, config.model.channels)
    examples = [method.make_example({'frames': rng.integers(0, 256, shape, dtype=np.uint8)},
                                    rng, True) for _ in range(config.batch_size)]
  batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  return config, method, batch


def child(variant, batch, steps, warmup, remat=None):
  from animgen import runtime
  runtime.tune_malloc()   # before JAX starts its threads, as the entry points do
  import jax
  import jax.numpy as jnp
  from common import compile_step
  config, method, b = _setup(variant, batch, remat)
  b = jax.tree.map(jnp.asarray, b)
  state = jax.jit(method.init)(jax.random.key(0), b)
  jax.block_until_ready(state)
  runtime.release_memory()   # as the trainer does after initialisation
  key = jax.random.key(1)
  compiled, t_compile, temp = compile_step(method, state, b, key)
  runtime.release_memory()   # as the trainer does after the compiling step
  hwm_compile = peak_rss()
  params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
  state, metrics, times, cpu, reset = time_steps(compiled, state, b, key, steps, warmup)
  med = lambda xs: sorted(xs)[len(xs) // 2]
  return {'variant': variant, 'impl': 'animgen', 'batch': config.batch_size, 'steps': steps,
          'params': int(params), 'remat': bool(config.model.get('remat', False)),
          'compile_s': t_compile, 'times_s': times, 's_per_step_median': med(times),
          's_per_step_min': min(times), 'cpu_s_per_step_median': med(cpu),
          'steps_per_s': 1.0 / med(times), 'clips_per_s': config.batch_size / med(times),
          'xla_temp_bytes': temp, 'peak_rss_bytes': max(peak_rss(), hwm_compile),
          'steps_peak_rss_bytes': peak_rss() if reset else 0, 'loss': float(metrics['loss'])}


HEADER = (f'{"variant":>19} {"impl":>7} {"batch":>5} {"params":>11} {"compile s":>9} '
          f'{"s/step":>8} {"min":>7} {"CPU s":>7} {"peak RSS":>9} {"steps RSS":>9} '
          f'{"XLA temp":>8} {"ratio":>6}')


def row(res, ratio=None):
  """One line of HEADER's table."""
  gib = lambda k: f'{res[k] / 2**30:>7.2f}Gi' if res.get(k) else f'{"-":>9}'
  temp = f'{res["xla_temp_bytes"] / 2**20:>6.0f}Mi' if 'xla_temp_bytes' in res else f'{"-":>8}'
  comp = f'{res["compile_s"]:>9.1f}' if 'compile_s' in res else f'{"-":>9}'
  name = res['variant'] + ('+remat' if res.get('remat') else '')
  impl = res['impl'] + (f'x{res["threads"]}' if res.get('threads') else '')
  return (f'{name:>19} {impl:>7} {res["batch"]:>5} {res["params"]:>11,} {comp} '
          f'{res["s_per_step_median"]:>8.3f} {res["s_per_step_min"]:>7.3f} '
          f'{res["cpu_s_per_step_median"]:>7.2f} {gib("peak_rss_bytes")} '
          f'{gib("steps_peak_rss_bytes")} {temp} '
          + (f'{ratio:>6.2f}' if ratio is not None else f'{"":>6}'))


def run_torch(variant, batch, steps, warmup, remat, malloc, threads=1):
  """bench/torch_sequence_models.py's timing child -> (result or None, last stderr line)."""
  args = ['--child', '--variant', variant, '--batch', str(batch), '--steps', str(steps),
          '--warmup', str(warmup), '--malloc', malloc, '--threads', str(threads),
          '--remat', {None: 'config', True: 'on', False: 'off'}[remat]]
  return run_child(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'torch_sequence_models.py'), args)


def torch_row(results, label, name, res, a, remat):
  """Times the PyTorch re-expression `name` at res's batch, appends it to results and prints its
  row with the animgen / torch ratio (or one line when it failed)."""
  ref, err = run_torch(name, res['batch'], a.steps, a.warmup, remat, a.torch_malloc,
                       a.torch_threads)
  if ref is None:
    print(f'{label:>16} torch failed: {err}')
    return
  results.append(ref)
  print(row(ref, res['s_per_step_median'] / ref['s_per_step_median']), flush=True)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--variants', default=','.join(VARIANTS),
                 help='comma list of variants, each optionally name:batch')
  p.add_argument('--batch', type=int, default=0, help='0: the paper batch size of each method')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  p.add_argument('--remat', choices=['config', 'on', 'off'], default='config',
                 help="Image2GIF's model.remat (config: the config's, off by default)")
  p.add_argument('--torch', action='store_true',
                 help='also time the PyTorch re-expression (bench/torch_sequence_models.py)')
  add_torch_and_child_args(p)
  a = p.parse_args()
  remat = {'config': None, 'on': True, 'off': False}[a.remat]
  if a.child:
    print('RESULT ' + json.dumps(child(a.child, a.batch, a.steps, a.warmup, remat)))
    return
  import jax
  print(f'train steps, median of {a.steps} timed after {a.warmup} warm-up; '
        f'{jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs; '
        f'peak RSS: whole process / timed steps alone; ratio: animgen / torch s/step')
  print(HEADER)
  results = []
  for item in a.variants.split(','):
    v, _, vb = item.partition(':')
    if v not in VARIANTS:
      raise SystemExit(f'unknown variant {v!r}: choose from {", ".join(VARIANTS)}')
    batch = int(vb) if vb else a.batch
    res, err = run_child(__file__, ['--child', v, '--batch', str(batch), '--steps',
                                    str(a.steps), '--warmup', str(a.warmup), '--remat', a.remat])
    if res is None:
      print(f'{v:>16} failed: {err}')
      continue
    results.append(res)
    print(row(res), flush=True)
    if a.torch:
      torch_row(results, v, v, res, a, remat)
  if a.json:
    with open(a.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
