"""Benchmark of the Image2GIF and DeepGIFs train steps on this machine (prints, asserts nothing).

  python bench/sequence_models.py                  # every variant at the paper batch sizes
  python bench/sequence_models.py --variants image2gif_dqn --steps 10
  python bench/sequence_models.py --json out.json

Variants (paper networks and batch sizes, configs/<method>.py defaults):
  image2gif_rnn     Image2GIF generator + discriminator, ConvLSTM bottleneck, batch 64, 27 frames
                    (the longest pattern, I) of 64x64x3
  image2gif_dqn     the same with the DQN head (configs/image2gif.py:dqn)
  deepgifs_vaegan   DeepGIFs phase 1, VAE-GAN pretraining (configs/deepgifs.py:vaegan): batch
                    128 single 64x64 frames
  deepgifs_lstm     DeepGIFs phase 2 (configs/deepgifs.py): VAE + latent LSTM + GAN, batch 32
                    clips of 20 Moving MNIST frames

Each variant runs in a fresh subprocess (so that its peak memory is its own): `train_step`
compiled by the trainer's own wiring (`trainer.compile_steps`: donated state) on a random uint8
batch of the dataset's shape, then compile time, median seconds per step, steps/s, clips/s, peak
RSS (VmHWM) and XLA's planned scratch memory.
"""
import argparse
import json
import os

from common import peak_rss, run_child

VARIANTS = ('image2gif_rnn', 'image2gif_dqn', 'deepgifs_vaegan', 'deepgifs_lstm')


def _setup(variant, batch):
  import numpy as np
  rng = np.random.default_rng(0)
  if variant.startswith('image2gif'):
    from configs.image2gif import get_config
    from animgen.datasets.image2gif_patterns import MAX_LENGTHS
    from animgen.methods.image2gif import Image2GIF
    config = get_config('dqn' if variant == 'image2gif_dqn' else None)
    config.batch_size = batch or config.batch_size
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


def child(variant, batch, steps, warmup):
  import jax
  import jax.numpy as jnp
  from common import compile_step, time_compiled
  config, method, b = _setup(variant, batch)
  b = jax.tree.map(jnp.asarray, b)
  state = jax.jit(method.init)(jax.random.key(0), b)
  key = jax.random.key(1)
  compiled, t_compile, temp = compile_step(method, state, b, key)
  state, metrics, times = time_compiled(compiled, state, b, key, steps, warmup)
  med = sorted(times)[len(times) // 2]
  params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
  return {'variant': variant, 'batch': config.batch_size, 'steps': steps, 'params': int(params),
          'compile_s': t_compile, 's_per_step_median': med, 's_per_step_min': min(times),
          'steps_per_s': 1.0 / med, 'clips_per_s': config.batch_size / med,
          'xla_temp_bytes': temp, 'peak_rss_bytes': peak_rss(),
          'loss': float(metrics['loss'])}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--variants', default=','.join(VARIANTS))
  p.add_argument('--batch', type=int, default=0, help='0: the paper batch size of each method')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  p.add_argument('--json', default=None)
  p.add_argument('--child', default=None, help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.child:
    print('RESULT ' + json.dumps(child(a.child, a.batch, a.steps, a.warmup)))
    return
  import jax
  print(f'train steps, {a.steps} timed after {a.warmup} warm-up; '
        f'{jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs')
  print(f'{"variant":>16} {"batch":>5} {"params":>11} {"compile s":>9} {"s/step":>8} '
        f'{"steps/s":>8} {"clips/s":>8} {"peak RSS":>9} {"XLA temp":>9}')
  results = []
  for v in a.variants.split(','):
    if v not in VARIANTS:
      raise SystemExit(f'unknown variant {v!r}: choose from {", ".join(VARIANTS)}')
    res, err = run_child(__file__, ['--child', v, '--batch', str(a.batch), '--steps',
                                    str(a.steps), '--warmup', str(a.warmup)])
    if res is None:
      print(f'{v:>16} failed: {err}')
      continue
    results.append(res)
    print(f'{v:>16} {res["batch"]:>5} {res["params"]:>11,} {res["compile_s"]:>9.1f} '
          f'{res["s_per_step_median"]:>8.3f} {res["steps_per_s"]:>8.2f} '
          f'{res["clips_per_s"]:>8.1f} {res["peak_rss_bytes"] / 2**30:>7.2f}GB '
          f'{res["xla_temp_bytes"] / 2**20:>7.0f}MB', flush=True)
  if a.json:
    with open(a.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
