"""Benchmark of the Sync-DRAW train step on this machine (prints figures, asserts nothing).

  python bench/syncdraw.py                       # paper config at batch 100: plain, captions, cuboid
  python bench/syncdraw.py --batch 32 --steps 10
  python bench/syncdraw.py --variants captions   # only the caption model
  python bench/syncdraw.py --json out.json

Each variant runs in a fresh subprocess (so that peak memory is its own): configs/syncdraw.py
with the variant (paper network: T 10, K 8, LSTMs 256, z 100, 64 x 64 x 10 GIFs), `train_step`
compiled by the trainer's own wiring (`trainer.compile_steps`: donated state) on a random batch,
then compile time, median seconds per step, steps/s, GIFs/s, peak RSS (VmHWM) and XLA's planned
scratch memory.
"""
import argparse
import json
import os

from common import compile_step, peak_rss, run_child, time_compiled


def child(variant, batch, steps, warmup):
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
  key = jax.random.key(1)
  compiled, t_compile, temp = compile_step(method, state, b, key)
  state, metrics, times = time_compiled(compiled, state, b, key, steps, warmup)
  med = sorted(times)[len(times) // 2]
  n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
  return {'variant': variant, 'batch': batch, 'steps': steps, 'params': int(n_params),
          'compile_s': t_compile, 's_per_step_median': med, 'steps_per_s': 1.0 / med,
          'gifs_per_s': batch / med, 'xla_temp_bytes': temp,
          'peak_rss_bytes': peak_rss(), 'loss': float(metrics['loss'])}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--batch', type=int, default=100, help='paper / public code: 100')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  p.add_argument('--variants', default='plain,captions,cuboid',
                 help='comma list of plain and configs/syncdraw.py variants')
  p.add_argument('--json', default=None)
  p.add_argument('--child', default=None, help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.child:
    print('RESULT ' + json.dumps(child(a.child, a.batch, a.steps, a.warmup)))
    return
  import jax
  print(f'Sync-DRAW train step, batch {a.batch}, {a.steps} timed steps after {a.warmup} warm-up; '
        f'{jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs')
  print(f'{"variant":>10} {"params":>10} {"compile s":>10} {"s/step":>8} {"steps/s":>8} '
        f'{"GIFs/s":>8} {"peak RSS":>10} {"XLA temp":>10}')
  results = []
  for v in a.variants.split(','):
    res, err = run_child(__file__, ['--child', v, '--batch', str(a.batch), '--steps',
                                    str(a.steps), '--warmup', str(a.warmup)])
    if res is None:
      print(f'{v:>10} failed: {err}')
      continue
    results.append(res)
    print(f'{v:>10} {res["params"]:>10,} {res["compile_s"]:>10.1f} '
          f'{res["s_per_step_median"]:>8.3f} {res["steps_per_s"]:>8.2f} {res["gifs_per_s"]:>8.1f} '
          f'{res["peak_rss_bytes"] / 2**30:>8.2f}GB {res["xla_temp_bytes"] / 2**20:>8.0f}MB',
          flush=True)
  if a.json:
    with open(a.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
