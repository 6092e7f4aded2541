"""Benchmark of the Sync-DRAW train step on this machine (prints figures, asserts nothing).

  python bench/syncdraw.py                       # paper config at batch 100: plain, captions, cuboid
  python bench/syncdraw.py --batch 32 --steps 10
  python bench/syncdraw.py --variants captions   # only the caption model
  python bench/syncdraw.py --json out.json

Each variant runs in a fresh subprocess (so that peak memory is its own): configs/syncdraw.py
with the variant (paper network: T 10, K 8, LSTMs 256, z 100, 64 x 64 x 10 GIFs), `train_step`
compiled by the trainer's own wiring (`trainer.compile_steps`: donated state) on a random batch,
then compile time, median seconds per step, steps/s, GIFs/s, peak RSS (VmHWM) and XLA's planned
scratch memory. The child applies the entry points' runtime set-up (animgen.runtime.tune_malloc()
before JAX starts, release_memory() after init and compiling).

  python bench/syncdraw.py --torch               # and the PyTorch re-expressions

--torch also times bench/torch_sequence_models.py's PyTorch re-expression of each variant's step
(plain, captions, cuboid; their losses equal animgen's, `--check`) at the same config, shapes
and batch in the same run, in its own fresh process, and prints the ratio animgen / torch; peak
RSS as in bench/sequence_models.py (whole process / timed steps alone).
"""
import argparse
import json
import os

from common import add_torch_and_child_args, compile_step, peak_rss, run_child
from sequence_models import HEADER, row, time_steps, torch_row


def child(variant, batch, steps, warmup):
  from animgen import runtime
  runtime.tune_malloc()   # before JAX starts its threads, as the entry points do
  import jax
  import jax.numpy as jnp
  import numpy as np
  from animgen import captions
  from animgen.methods.syncdraw import SyncDRAW
  from configs.syncdraw import get_config
  config = get_config(variant if variant != 'plain' else None)
  config.batch_size = batch
  m = config.model
  method = SyncDRAW(config)
  rng = np.random.default_rng(0)
  b = {'frames': jnp.asarray(rng.integers(0, 256, (batch, m.frames, m.size, m.size, 1),
                                          dtype=np.uint8))}
  if m.captions:
    b['caption'] = jnp.asarray(np.stack([captions.tokenize(
        captions.caption_text([d % 10], [d % 2]), m.caption_length) for d in range(batch)]))
  state = jax.jit(method.init)(jax.random.key(0), b)
  jax.block_until_ready(state)
  runtime.release_memory()   # as the trainer does after initialisation
  key = jax.random.key(1)
  compiled, t_compile, temp = compile_step(method, state, b, key)
  runtime.release_memory()   # as the trainer does after the compiling step
  hwm_compile = peak_rss()
  state, metrics, times, cpu, reset = time_steps(compiled, state, b, key, steps, warmup)
  med = sorted(times)[len(times) // 2]
  n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
  return {'variant': variant, 'impl': 'animgen', 'batch': batch, 'steps': steps,
          'params': int(n_params), 'compile_s': t_compile, 'times_s': times,
          's_per_step_median': med, 's_per_step_min': min(times),
          'cpu_s_per_step_median': sorted(cpu)[len(cpu) // 2], 'steps_per_s': 1.0 / med,
          'gifs_per_s': batch / med, 'xla_temp_bytes': temp,
          'peak_rss_bytes': max(peak_rss(), hwm_compile),
          'steps_peak_rss_bytes': peak_rss() if reset else 0, 'loss': float(metrics['loss'])}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, default=100, help='paper / public code: 100')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  p.add_argument('--variants', default='plain,captions,cuboid',
                 help='comma list of plain and configs/syncdraw.py variants')
  p.add_argument('--torch', action='store_true',
                 help='also time the PyTorch re-expressions (bench/torch_sequence_models.py)')
  add_torch_and_child_args(p)
  a = p.parse_args()
  if a.child:
    print('RESULT ' + json.dumps(child(a.child, a.batch, a.steps, a.warmup)))
    return
  import jax
  print(f'Sync-DRAW train step, batch {a.batch}, median of {a.steps} timed steps after '
        f'{a.warmup} warm-up; {jax.devices()[0].device_kind} x{jax.device_count()}, '
        f'{os.cpu_count()} CPUs; peak RSS: whole process / timed steps alone; ratio: animgen / '
        f'torch s/step')
  print(HEADER)
  results = []
  for v in a.variants.split(','):
    res, err = run_child(__file__, ['--child', v, '--batch', str(a.batch), '--steps',
                                    str(a.steps), '--warmup', str(a.warmup)])
    if res is None:
      print(f'{v:>16} failed: {err}')
      continue
    results.append(res)
    print(row(res), flush=True)
    if a.torch:
      torch_row(results, v, 'syncdraw' if v == 'plain' else f'syncdraw_{v}', res, a, None)
  if a.json:
    with open(a.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
