"""Fast experiment loop for the motion model's generalisation (prints EPE curves, asserts nothing).

  python bench/landscape_sweep.py render --clips 64            # once: clips to --cache
  python bench/landscape_sweep.py train NAME --lr 1e-4 --steps 4000 --lr-drop 4000 ...

This is the loop behind the README's sweep of the `:cpu` recipe (run on a lent GPU, several
runs side by side). It trains `LandscapeMotion` with its own `train_step` and `eval_step` from
configs/landscape.py:cpu, but without the trainer: the synthetic clips (the same ones as the
synthetic_timelapse builder's: `render_clip(128, 24, split, i)`) are rendered once into numpy
files and held on the device, batches are drawn there, and there are no checkpoints. Every
`--eval-every` steps it prints:
  epe             test flow EPE (16 test clips x 4 pairs, z = E^M(ground-truth flow)), as
                  `--mode=eval` reports it; `zero` is the zero-flow baseline
  ema             the same with an exponential moving average of the parameters (`--ema`)
  train E(gt)     EPE on 16 training clips with z = E^M(their ground-truth flow)
  train E(field)  the same with z = E^M(their stored common motion field), as in training
  field           EPE of the stored common motion fields themselves
so that a gap between test and training clips (generalisation) can be told apart from one
between fields and ground-truth flows (the encoder's input domain).
"""
import argparse
import functools
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PAIRS = np.linspace(0, 22, 4).round().astype(int)   # eval_index's 4 evenly spaced pairs


def _render(job):
  from animgen.datasets.synthetic_timelapse import render_clip
  return render_clip(128, 24, job[0], job[1], seed=0)


def render(a):
  from multiprocessing import Pool
  os.makedirs(a.cache, exist_ok=True)
  t = time.time()
  with Pool(os.cpu_count()) as p:
    train = p.map(_render, [('train', i) for i in range(a.clips)])
    test = p.map(_render, [('test', i) for i in range(16)])
  np.save(f'{a.cache}/train_frames.npy', np.stack([f for f, _ in train]))
  np.save(f'{a.cache}/train_flow16.npy', np.stack([fl for _, fl in train[:16]]))
  np.save(f'{a.cache}/test_frames.npy', np.stack([f for f, _ in test]))
  np.save(f'{a.cache}/test_flow.npy', np.stack([fl for _, fl in test]))
  print(f'rendered {a.clips} + 16 clips in {time.time() - t:.0f} s', flush=True)


def _pairs(frames, flow, clips):
  return {'frames': np.stack([frames[i, t:t + 2] for i in range(clips) for t in _PAIRS]),
          'flow': np.stack([flow[i, t] for i in range(clips) for t in _PAIRS]),
          'clip_id': np.repeat(np.arange(clips), len(_PAIRS)).astype(np.int32)}


def _config(a):
  """configs/landscape.py:cpu with the sweep's overrides; --lr-drop goes through the method's own
  step-size schedule (optim.lr_drop_at), as `--config.optim.lr_drop_at` does in a trainer run."""
  from configs.landscape import get_config
  c = get_config('cpu')
  c.train.restart_at = tuple(int(x) for x in a.restart.split(',') if x)
  c.train.restart_freeze = a.freeze
  a.lr = a.lr or c.optim.learning_rate
  c.optim.learning_rate = a.lr
  c.optim.lr_drop_at = (a.lr_drop,) if a.lr_drop else ()
  c.optim.lr_decay = 0.1
  c.batch_size = a.batch
  if a.size != c.image_size:
    c.image_size = c.model.encoder_size = a.size
  return c


def _load(a):
  """-> (training clips on the device [N, 24, 128, 128, 3] uint8, test pairs, pairs of the
  first (up to) 16 training clips with their ground-truth flow)."""
  import jax.numpy as jnp
  frames_np = np.load(f'{a.cache}/train_frames.npy', mmap_mode='r')
  if a.clips > len(frames_np):
    raise SystemExit(f'--clips {a.clips}: only {len(frames_np)} rendered; run render first')
  frames = jnp.asarray(np.ascontiguousarray(frames_np[:a.clips]))
  test = _pairs(np.load(f'{a.cache}/test_frames.npy'), np.load(f'{a.cache}/test_flow.npy'), 16)
  flow16 = np.load(f'{a.cache}/train_flow16.npy')
  seen = _pairs(np.asarray(frames_np[:len(flow16)]), flow16, min(len(flow16), a.clips))
  return frames, test, seen


def _jitter(fr, rng):
  """Per-example colour gain and offset, the same for both frames of a pair."""
  import jax
  import jax.numpy as jnp
  k1, k2 = jax.random.split(rng)
  shape = (fr.shape[0], 1, 1, 1, 3)
  gain = jax.random.uniform(k1, shape, minval=0.75, maxval=1.25)
  offset = jax.random.uniform(k2, shape, minval=-25.0, maxval=25.0)
  x = (fr.astype(jnp.float32) - 128.0) * gain + 128.0 + offset
  return jnp.clip(jnp.round(x), 0, 255).astype(jnp.uint8)


def _train_step(m, frames, jitter):
  """jit(state, clip ids [B], pair starts [B], rng) -> m.train_step on pairs cut on the device."""
  import jax

  @functools.partial(jax.jit, compiler_options=m.compiler_options)
  def step(state, ids, ts, rng):
    fr = jax.vmap(lambda i, t: jax.lax.dynamic_slice_in_dim(frames[i], t, 2))(ids, ts)
    if jitter:
      fr = _jitter(fr, jax.random.fold_in(rng, 7))
    return m.train_step(state, {'frames': fr, 'clip_id': ids}, rng)
  return step


def _train_clip_epe(m):
  """jit(state, training pairs) -> EPE with z = E^M(ground-truth flow), with z = E^M(stored
  common motion field), and of the stored field itself."""
  import jax
  import jax.numpy as jnp
  from animgen.ops import warp

  @jax.jit
  def probe(state, b):
    i_t, _ = m.frames(b)
    gt = m.gt_flow(b)
    px = lambda f: warp.normalised_to_pixels(f, m.size, m.size)
    epe = lambda f: jnp.linalg.norm(px(f) - px(gt), axis=-1).mean()
    z_gt, _ = m.encode(state.params, state.batch_stats, gt, train=False)
    field = warp.resize(state.motion_fields[b['clip_id']], m.size, m.size)
    z_field, _ = m.encode(state.params, state.batch_stats, field, train=False)
    return (epe(m.predict(state.params, i_t, z_gt)),
            epe(m.predict(state.params, i_t, z_field)), epe(field))
  return probe


def _report(a, step, state, ema, metrics, evaluate, probe, test, seen, seconds):
  """One curve point: evaluates, prints the line and returns the row."""
  out = evaluate(state, test)
  row = {'step': step, 'epe': float(np.mean(out['flow_epe'])),
         'ema': float(np.mean(evaluate(state.replace(params=ema), test)['flow_epe'])),
         'zero': float(np.mean(out['flow_epe_zero'])), 'loss': float(metrics['loss'])}
  row['train_gt'], row['train_field'], row['field'] = (float(x) for x in probe(state, seen))
  print(f'{a.name} step {step} epe {row["epe"]:.4f} ema {row["ema"]:.4f} | train E(gt) '
        f'{row["train_gt"]:.4f} E(field) {row["train_field"]:.4f} field {row["field"]:.4f} '
        f'| zero {row["zero"]:.4f} loss {row["loss"]:.5f} {seconds:.0f}s', flush=True)
  return row


def train(a):
  import jax
  import jax.numpy as jnp
  from animgen.methods.landscape_motion import LandscapeMotion

  c = _config(a)
  frames, test, seen = _load(a)
  m = LandscapeMotion(c, a.clips)
  state = m.init(jax.random.key(a.seed), None)
  step = _train_step(m, frames, a.jitter)
  evaluate = jax.jit(lambda s, b: m.eval_step(s, b, None))   # no codebook codes
  probe = _train_clip_epe(m)
  ema_update = jax.jit(lambda e, p: jax.tree.map(lambda x, y: a.ema * x + (1 - a.ema) * y, e, p))
  restarts = set(c.train.restart_at)
  rs = np.random.default_rng(a.seed)
  order, pos = rs.permutation(a.clips), 0
  key = jax.random.key(a.seed)
  ema, hist, t0 = state.params, [], time.time()
  for s in range(a.steps):
    if pos + a.batch > a.clips:        # epochs of distinct clips, as the grain pipeline
      order, pos = rs.permutation(a.clips), 0
    ids, pos = order[pos:pos + a.batch], pos + a.batch
    ts = rs.integers(0, 23, a.batch)
    key, k = jax.random.split(key)
    state, metrics = step(state, jnp.asarray(ids, jnp.int32), jnp.asarray(ts, jnp.int32), k)
    ema = state.params if s == 0 or s in restarts else ema_update(ema, state.params)
    if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
      hist.append(_report(a, s + 1, state, ema, metrics, evaluate, probe, test, seen,
                          time.time() - t0))
  if a.json:
    with open(a.json, 'w') as f:
      json.dump({'args': vars(a), 'hist': hist}, f, indent=1)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('cmd', choices=['render', 'train'])
  p.add_argument('name', nargs='?', default='run', help='label printed on every line')
  p.add_argument('--cache', default='/tmp/landscape_sweep', help='rendered clips (numpy files)')
  p.add_argument('--clips', type=int, default=64, help='training clips (builder default: 64)')
  p.add_argument('--steps', type=int, default=1500)
  p.add_argument('--restart', default='500', help='train.restart_at, comma-separated')
  p.add_argument('--freeze', type=int, default=200, help='train.restart_freeze')
  p.add_argument('--lr', type=float, default=None, help='Adam lr (default: the config\'s)')
  p.add_argument('--lr-drop', type=int, default=0, help='step from which lr / 10 (0: never)')
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--size', type=int, default=64, help='model and encoder size')
  p.add_argument('--jitter', action='store_true', help='colour gain/offset augmentation')
  p.add_argument('--ema', type=float, default=0.999)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--eval-every', type=int, default=250)
  p.add_argument('--json', help='write the curve to this file')
  a = p.parse_args()
  render(a) if a.cmd == 'render' else train(a)


if __name__ == '__main__':
  main()
