"""The one training loop for every method (see animgen/methods/__init__.py for the protocol).

Owns: the mesh and shardings, jit with donation, the step loop, clu metric writers and
progress (steps/s, ETA), sample GIFs, orbax checkpoints (every N steps, on SIGTERM, at the
end) restored automatically together with the grain iterator, and the NaN/Inf stop.
"""
import json
import os
import signal
import time

from absl import logging
import jax
import numpy as np

from animgen import checkpoint, input_pipeline, runtime, sharding
from animgen.methods import get_method


class TrainingDiverged(RuntimeError):
  """The loss became NaN or Inf; the last good checkpoint is kept."""


def _setup(config, workdir, write=True):
  sharding.maybe_initialize_distributed()
  builder = input_pipeline.prepare(config.dataset, config.get('data_dir'), config.get('manual_dir'))
  num_train = input_pipeline.num_examples(builder, 'train')
  method = get_method(config.method)(config, num_train=num_train)
  mesh = sharding.make_mesh()
  if config.batch_size % jax.device_count():
    from animgen.errors import InputError
    raise InputError(f'batch_size {config.batch_size} is not divisible by the '
                     f'{jax.device_count()} devices: set --config.batch_size to a multiple')
  if write:
    _write_config(config, workdir, num_train)
  return method, mesh, num_train


def _write_config(config, workdir, num_train):
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    _write_json(os.path.join(workdir, 'config.json'),
                {'config': config.to_dict(), 'num_train': num_train})


def _write_json(path, obj):
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1, default=str)
  os.replace(tmp, path)


def _writer(workdir):
  from clu import metric_writers
  return metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=True)


def _eval_batches(config, method, split='test'):
  ds = input_pipeline.make_dataset(
      config, split, method.make_example, train=False, batch_size=config.eval.batch_size,
      eval_index=getattr(method, 'eval_index', None))
  return ds


def _pad_batch(batch, size):
  """Pad the leading axis to `size` (last eval batch); returns (batch, mask)."""
  n = len(next(iter(batch.values())))
  mask = np.arange(size) < n
  if n == size:
    return batch, mask
  pad = lambda x: np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)])
  return {k: pad(np.asarray(v)) for k, v in batch.items()}, mask


def _write_samples(workdir, step, videos, writer):
  from animgen import media
  images = {}
  for name, video in videos.items():
    video = np.asarray(video)  # [B, T, H, W, 3]
    grid = np.concatenate(list(video[:4]), axis=2)  # side by side: [T, H, B*W, 3]
    media.write_video(os.path.join(workdir, 'samples', f'{name}_{step:07d}.gif'), grid, fps=8)
    images[name] = np.concatenate(list(grid[::max(1, len(grid) // 4)]), axis=0)[None]
  writer.write_images(step, images)


def train_and_evaluate(config, workdir: str):
  """Trains `config.method` on `config.dataset`; resumes from the latest checkpoint."""
  method, mesh, num_train = _setup(config, workdir, write=False)
  repl, data_sh = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  train_ds = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                         batch_size=config.batch_size, seed=config.seed)
  train_iter = input_pipeline.to_iter(train_ds, config.data.get('threads', 2))
  init_rng, rng, sample_rng = jax.random.split(jax.random.key(config.seed), 3)
  example = sharding.shard_batch(train_ds[0], mesh)
  state = jax.jit(method.init, out_shardings=repl)(init_rng, example)
  if not checkpoint.exists(workdir) and hasattr(method, 'warm_start'):
    state = method.warm_start(state)  # e.g. train.init_from; before anything is written
  _write_config(config, workdir, num_train)
  ckpt = checkpoint.Checkpointer(workdir, keep=config.train.keep_checkpoints)
  start = 0
  if ckpt.latest_step() is not None:
    state, data_state = ckpt.restore(checkpoint.abstract_like(state, repl))
    if data_state is not None:
      train_iter.set_state(data_state)
    start = int(ckpt.latest_step())
    logging.info('Resumed from step %d in %s', start, workdir)
    print(f'animgen: resumed from step {start} ({ckpt.directory})', flush=True)
  runtime.release_memory()  # what compiling init and restoring freed goes back to the OS

  opts = getattr(method, 'compiler_options', None)   # per-method XLA options (runtime.py)
  train_step = jax.jit(method.train_step, in_shardings=(repl, data_sh, repl),
                       out_shardings=(repl, repl), donate_argnums=(0,), compiler_options=opts)
  sample_fn = jax.jit(method.sample, in_shardings=(repl, data_sh, repl), out_shardings=repl,
                      compiler_options=opts)
  sample_batch = None
  if config.train.sample_every:
    sample_batch = sharding.shard_batch(
        _pad_batch(_eval_batches(config, method)[0],
                   config.eval.batch_size // jax.process_count())[0], mesh)

  writer = _writer(workdir)
  if start == 0:
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()})
  from clu import periodic_actions
  hooks = [periodic_actions.ReportProgress(num_train_steps=config.train.num_steps,
                                           writer=writer, every_secs=60)]
  stop = {'sigterm': False}
  previous = signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__('sigterm', True))
  num_steps = config.train.num_steps
  every = config.train.get('eval_every', 0)
  history, t_log, s_log = [], time.time(), start
  step = start
  try:
    while step < num_steps and not stop['sigterm']:
      batch = sharding.shard_batch(next(train_iter), mesh)
      state, metrics = train_step(state, batch, jax.random.fold_in(rng, step))
      step += 1
      history.append(metrics)
      if step == start + 1:  # the first call compiled the step: return LLVM's freed memory
        jax.block_until_ready(state)
        runtime.release_memory()
      if step % config.train.check_finite_every == 0 or step == num_steps:
        bad = {k: float(v) for k, v in jax.device_get(metrics).items()
               if not np.all(np.isfinite(v))}
        if bad:  # the new state is not saved, so every checkpoint on disk is finite
          last = ckpt.latest_step()
          raise TrainingDiverged(
              f'non-finite {bad} at step {step}: training stopped; the last good checkpoint '
              f'(step {last}) is kept in {ckpt.directory}. Lower --config.optim.learning_rate '
              'or check the data, then rerun to resume from it.')
      for h in hooks:
        h(step)
      if step % config.train.log_every == 0 or step == num_steps:
        host = jax.device_get(history)
        means = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
        dt = time.time() - t_log
        means['steps_per_sec'] = (step - s_log) / max(dt, 1e-9)
        writer.write_scalars(step, means)
        eta = (num_steps - step) / max(means['steps_per_sec'], 1e-9)
        print(f'step {step}/{num_steps}  loss {means["loss"]:.5g}  '
              f'{means["steps_per_sec"]:.2f} steps/s  ETA {_fmt_time(eta)}', flush=True)
        history, t_log, s_log = [], time.time(), step
      if config.train.sample_every and (step % config.train.sample_every == 0
                                        or step == num_steps):
        _write_samples(workdir, step,
                       sample_fn(state, sample_batch, sample_rng), writer)
      if step % config.train.checkpoint_every == 0:
        ckpt.save(step, state, train_iter.get_state())
      if every and step % every == 0 and step < num_steps:  # the last one after finalize
        evaluate_state(config, workdir, method, mesh, state, step, sequences=False)
    if ckpt.latest_step() != step:
      ckpt.save(step, state, train_iter.get_state(), force=True)
    if stop['sigterm']:
      print(f'animgen: SIGTERM: saved step {step}; rerun the same command to resume',
            flush=True)
    elif step >= num_steps:
      if hasattr(method, 'finalize') and jax.process_index() == 0:
        method.finalize(state, workdir)      # e.g. the codebook the evaluation reads
      if every and step % every == 0 and step > start:
        evaluate_state(config, workdir, method, mesh, state, step, sequences=False)
  finally:
    signal.signal(signal.SIGTERM, previous)
    ckpt.close()
    writer.flush()
  return state


def restore_for_eval(config, workdir):
  method, mesh, _ = _setup(config, workdir)
  repl = sharding.replicated(mesh)
  ckpt = checkpoint.Checkpointer(workdir)
  step = ckpt.latest_step()
  if step is None:
    from animgen.errors import InputError
    raise InputError(f'no checkpoint in {ckpt.directory}: train first (--mode=train)')
  abstract = jax.eval_shape(lambda: method.init(jax.random.key(0), None))
  state, _ = ckpt.restore(checkpoint.abstract_like(abstract, repl), with_data=False)
  ckpt.close()
  return method, mesh, state, step


def evaluate(config, workdir: str) -> dict:
  """Runs eval_step over the test split; writes metrics and eval_<step>.json in workdir."""
  method, mesh, state, step = restore_for_eval(config, workdir)
  return evaluate_state(config, workdir, method, mesh, state, step)


def evaluate_state(config, workdir, method, mesh, state, step, sequences=True) -> dict:
  """Evaluation of an in-memory state (also used during training, without the sequence
  evaluation, when train.eval_every is set)."""
  repl, data_sh = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  if hasattr(method, 'prepare_eval'):
    method.prepare_eval(state, workdir)
  eval_step = jax.jit(method.eval_step, in_shardings=(repl, data_sh), out_shardings=repl,
                      compiler_options=getattr(method, 'compiler_options', None))
  sums, count = {}, 0
  per_process = config.eval.batch_size // jax.process_count()
  for batch in _eval_batches(config, method):
    batch, mask = _pad_batch(batch, per_process)
    out = jax.device_get(eval_step(state, sharding.shard_batch(batch, mesh)))
    for k, v in out.items():
      sums[k] = sums.get(k, 0.0) + float(np.sum(np.asarray(v)[mask]))
    count += int(mask.sum())
  results = {k: v / max(count, 1) for k, v in sums.items()}
  if sequences and hasattr(method, 'evaluate_sequences') and jax.process_index() == 0:
    results.update(method.evaluate_sequences(state, workdir, step))
  results['num_examples'] = count
  results['step'] = step
  writer = _writer(workdir)
  writer.write_scalars(step, {f'eval/{k}': v for k, v in results.items()})
  writer.flush()
  if jax.process_index() == 0:
    _write_json(os.path.join(workdir, f'eval_{step}.json'), results)
  print(json.dumps(results, indent=None if not sequences else 1), flush=True)
  return results


def finalize(config, workdir: str):
  """Rebuilds the method's artefacts (e.g. the motion codebook) from the latest checkpoint."""
  method, _, state, _ = restore_for_eval(config, workdir)
  method.finalize(state, workdir)


def _flatten(d, prefix=''):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v if isinstance(v, (int, float, str, bool)) else str(v)
  return out


def _fmt_time(seconds):
  seconds = int(seconds)
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  return f'{seconds // 60}m{seconds % 60:02d}s'
