"""The one training loop for every method (the contract: animgen/methods/base.py).

Owns: the mesh and shardings, jit with donation (`compile_steps`), the step loop, clu metric
writers, the progress line (steps/s, ETA), sample GIFs, orbax checkpoints (every N steps, on
SIGTERM, at the end) restored automatically together with the grain iterator, warm starts from
another run (train.init_from), the NaN/Inf stop, evaluation through the declared evaluators and
the artefacts of finalize.
"""
import dataclasses
import json
import os
import signal
import time
from typing import Any, Callable

from absl import logging
import jax
import numpy as np

from animgen import checkpoint, evaluators, input_pipeline, media, runs, runtime, sharding
from animgen.errors import InputError, Interrupted, TrainingDiverged


@dataclasses.dataclass
class Steps:
  """The compiled-step wiring: the same programs the loop runs (tests call these)."""
  init: Callable
  train: Callable
  sample: Callable


def compile_steps(method, mesh) -> Steps:
  """init, train_step (state donated) and sample jitted with the trainer's shardings: params
  replicated, batches sharded on the mesh's `data` axis."""
  repl, data = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  opts = method.compiler_options
  return Steps(
      init=jax.jit(method.init, out_shardings=repl),
      train=jax.jit(method.train_step, in_shardings=(repl, data, repl),
                    out_shardings=(repl, repl), donate_argnums=(0,), compiler_options=opts),
      sample=jax.jit(method.sample, in_shardings=(repl, data, repl), out_shardings=repl,
                     compiler_options=opts))


def setup(config):
  """-> (method, mesh, num_train) after preparing the dataset (on first use)."""
  sharding.maybe_initialize_distributed()
  builder = input_pipeline.prepare(config.dataset, config.get('data_dir'), config.get('manual_dir'))
  num_train = input_pipeline.num_examples(builder, 'train')
  method = runs.build_method(config, num_train)
  if config.batch_size % jax.device_count():
    raise InputError(f'batch_size {config.batch_size} is not divisible by the '
                     f'{jax.device_count()} devices: set --config.batch_size to a multiple')
  return method, sharding.make_mesh(), num_train


def warm_start(config, method, state, mesh):
  """train.init_from=DIR: `method.warm_start(state, DIR's latest state)`, the source built from
  its own config.json; InputError when the result does not fit this config's networks."""
  workdir = os.path.expanduser(config.train.get('init_from') or '')
  if not workdir:
    return state
  what = f'train.init_from={workdir!r}'
  src_config, src_num = _init_from_config(workdir, what)
  source = runs.build_method(src_config, src_num)
  abstract = checkpoint.strip_frozen(
      source, jax.eval_shape(lambda: source.init(jax.random.key(0), None)))
  src, step = checkpoint.restore_latest(
      workdir, checkpoint.abstract_like(abstract, sharding.replicated(mesh)), what)
  new = method.warm_start(state, checkpoint.fill_frozen(source, src))
  shapes = lambda t: jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), t)
  if jax.tree_util.tree_structure(new) != jax.tree_util.tree_structure(state) or \
      shapes(new) != shapes(state):
    raise InputError(f'{what}: its networks do not match this config (model.*, image_size, '
                     'latent_reg): start from a run of the same model')
  print(f'animgen: starting from {workdir} (step {step})', flush=True)
  return new


def _init_from_config(source: str, what: str):
  try:
    return runs.read_config(source)
  except InputError as e:
    raise InputError(f'{what}: {e}; or set --config.train.init_from=\'\'') from None


def check_warm_start(config, workdir: str) -> None:
  """A train.init_from that cannot be read fails before the dataset is prepared (a resumed run
  does not read it)."""
  source = os.path.expanduser(config.get('train', {}).get('init_from') or '')
  if source and not checkpoint.exists(workdir):
    what = f'train.init_from={source!r}'
    _init_from_config(source, what)
    if not checkpoint.exists(source):
      raise InputError(f'{what}: no checkpoint in {source}: train that run first')


def _writer(workdir):
  from clu import metric_writers
  return metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=True)


def _pad_batch(batch, size):
  """Pad the leading axis to `size` (last eval batch); returns (batch, mask)."""
  n = len(next(iter(batch.values())))
  mask = np.arange(size) < n
  if n == size:
    return batch, mask
  pad = lambda x: np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)])
  return {k: pad(np.asarray(v)) for k, v in batch.items()}, mask


def _eval_dataset(config, method):
  return input_pipeline.make_dataset(config, 'test', method.make_example, train=False,
                                     batch_size=config.eval.batch_size,
                                     eval_index=method.eval_index)


def eval_context(config, method, mesh, state, step, artefacts) -> evaluators.EvalContext:
  per_process = config.eval.batch_size // jax.process_count()

  def batches():
    for batch in _eval_dataset(config, method):
      batch, mask = _pad_batch(batch, per_process)
      yield sharding.shard_batch(batch, mesh), mask

  def records():
    builder = input_pipeline.prepare(config.dataset, config.get('data_dir'),
                                     config.get('manual_dir'))
    return builder.as_data_source(split='test')

  return evaluators.EvalContext(config, method, mesh, state, int(step), artefacts, batches,
                                records)


def _write_samples(workdir, step, videos, writer):
  images = {}
  for name, video in videos.items():
    video = np.asarray(video)  # [B, T, H, W, 3]
    grid = np.concatenate(list(video[:4]), axis=2)  # side by side: [T, H, B*W, 3]
    media.write_video(os.path.join(workdir, 'samples', f'{name}_{step:07d}.gif'), grid, fps=8)
    images[name] = np.concatenate(list(grid[::max(1, len(grid) // 4)]), axis=0)[None]
  writer.write_images(step, images)


def _check_finite(metrics, step, ckpt):
  bad = {k: float(v) for k, v in jax.device_get(metrics).items() if not np.all(np.isfinite(v))}
  if bad:  # the new state is not saved, so every checkpoint on disk is finite
    raise TrainingDiverged(
        f'non-finite {bad} at step {step}: training stopped; the last good checkpoint '
        f'(step {ckpt.latest_step()}) is kept in {ckpt.directory}. Lower '
        '--config.optim.learning_rate or check the data, then rerun to resume from it.')


class _Progress:
  """The one progress report: mean metrics, steps/s and ETA every train.log_every steps, to the
  metric writer and as one line on stdout."""

  def __init__(self, writer, num_steps, start):
    self.writer, self.num_steps = writer, num_steps
    self.history, self.t, self.s = [], time.time(), start

  def __call__(self, step, metrics):
    self.history.append(metrics)
    host = jax.device_get(self.history)
    means = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
    means['steps_per_sec'] = (step - self.s) / max(time.time() - self.t, 1e-9)
    self.writer.write_scalars(step, means)
    eta = (self.num_steps - step) / max(means['steps_per_sec'], 1e-9)
    print(f'step {step}/{self.num_steps}  loss {means["loss"]:.5g}  '
          f'{means["steps_per_sec"]:.2f} steps/s  ETA {_fmt_time(eta)}', flush=True)
    self.history, self.t, self.s = [], time.time(), step

  def add(self, metrics):
    self.history.append(metrics)


@dataclasses.dataclass
class _Loop:
  """What one training run holds while its steps run."""
  config: Any
  workdir: str
  method: Any
  mesh: Any
  steps: Steps
  ckpt: checkpoint.Checkpointer
  train_iter: Any
  writer: Any
  sample_batch: Any = None

  def save(self, step, state, force=False):
    self.ckpt.save(step, checkpoint.strip_frozen(self.method, state), self.train_iter.get_state(),
                   force=force)

  def evaluate(self, state, step, artefacts=None):
    evaluate_state(self.config, self.workdir, self.method, self.mesh, state, step,
                   artefacts or {}, during_training=True)


def _restore_or_start(config, workdir, method, mesh, steps, example, train_iter):
  """-> (state, start step, Checkpointer): the latest checkpoint of workdir with its iterator
  state, else a fresh (or warm-started) state; config.json is written after the warm start."""
  repl = sharding.replicated(mesh)
  init_rng = jax.random.split(jax.random.key(config.seed), 3)[0]
  state = steps.init(init_rng, example)
  if not checkpoint.exists(workdir):
    state = warm_start(config, method, state, mesh)   # before anything is written
  runs.write_config(workdir, config, method.num_train)
  ckpt = checkpoint.Checkpointer(workdir, keep=config.train.keep_checkpoints)
  if ckpt.latest_step() is None:
    return state, 0, ckpt
  abstract = checkpoint.abstract_like(checkpoint.strip_frozen(method, state), repl)
  restored, data_state, start = ckpt.restore_intact(abstract, quarantine=True)
  if data_state is not None:
    train_iter.set_state(data_state)
  start = int(start)
  logging.info('Resumed from step %d in %s', start, workdir)
  print(f'animgen: resumed from step {start} ({ckpt.directory})', flush=True)
  return checkpoint.fill_frozen(method, restored), start, ckpt


def _hooks(config, workdir):
  """clu's profiler hook when config.profile is set: one jax.profiler trace of 5 steps (from
  step 10, or earlier in shorter runs) into workdir/plugins/profile, for TensorBoard."""
  if not config.get('profile'):
    return []
  from clu import periodic_actions
  first = max(1, min(10, config.train.num_steps - 5))
  return [periodic_actions.Profile(logdir=workdir, num_profile_steps=5, profile_duration_ms=None,
                                   first_profile=first, every_secs=None)]


def _open_loop(config, workdir):
  method, mesh, _ = setup(config)
  steps = compile_steps(method, mesh)
  train_ds = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                         batch_size=config.batch_size, seed=config.seed)
  train_iter = input_pipeline.to_iter(train_ds, config.data.get('threads', 2))
  example = sharding.shard_batch(train_ds[0], mesh)
  state, start, ckpt = _restore_or_start(config, workdir, method, mesh, steps, example,
                                         train_iter)
  runtime.release_memory()  # what compiling init and restoring freed goes back to the OS
  loop = _Loop(config, workdir, method, mesh, steps, ckpt, train_iter, _writer(workdir))
  if config.train.sample_every:
    per_process = config.eval.batch_size // jax.process_count()
    loop.sample_batch = sharding.shard_batch(
        _pad_batch(_eval_dataset(config, method)[0], per_process)[0], mesh)
  if start == 0:
    loop.writer.write_hparams(config.to_dict())   # clu flattens nested fields
  return loop, state, start


def _run_steps(loop, state, start, stop):
  """Steps from `start` until num_steps or SIGTERM -> (state, step)."""
  c, t = loop.config, loop.config.train
  rng, sample_rng = jax.random.split(jax.random.key(c.seed), 3)[1:]
  progress, hooks, step = _Progress(loop.writer, t.num_steps, start), _hooks(c, loop.workdir), start
  while step < t.num_steps and not stop['sigterm']:
    with jax.profiler.StepTraceAnnotation('train', step_num=step):
      batch = sharding.shard_batch(next(loop.train_iter), loop.mesh)
      state, metrics = loop.steps.train(state, batch, jax.random.fold_in(rng, step))
    step += 1
    if step == start + 1:  # the first call compiled the step: return LLVM's freed memory
      jax.block_until_ready(state)
      runtime.release_memory()
    if step % t.check_finite_every == 0 or step == t.num_steps:
      _check_finite(metrics, step, loop.ckpt)
    for h in hooks:
      h(step)
    if step % t.log_every == 0 or step == t.num_steps:
      progress(step, metrics)
    else:
      progress.add(metrics)
    if t.sample_every and (step % t.sample_every == 0 or step == t.num_steps):
      _write_samples(loop.workdir, step, loop.steps.sample(state, loop.sample_batch, sample_rng),
                     loop.writer)
    if step % t.checkpoint_every == 0:
      loop.save(step, state)
    if t.get('eval_every') and step % t.eval_every == 0 and step < t.num_steps:
      loop.evaluate(state, step)   # the last one after finalize
  return state, step


def train_and_evaluate(config, workdir: str):
  """Trains `config.method` on `config.dataset`; resumes from the latest checkpoint."""
  check_warm_start(config, workdir)
  loop, state, start = _open_loop(config, workdir)
  stop = {'sigterm': False}
  previous = signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__('sigterm', True))
  try:
    state, step = _run_steps(loop, state, start, stop)
    if loop.ckpt.latest_step() != step:
      loop.save(step, state, force=True)
    if stop['sigterm'] and step < config.train.num_steps:
      raise Interrupted(f'SIGTERM: saved step {step}; rerun the same command to resume')
    if step >= config.train.num_steps:
      artefacts = finalize_state(config, workdir, loop.method, state)
      every = config.train.get('eval_every')
      if every and step % every == 0 and step > start:
        loop.evaluate(state, step, artefacts)
  finally:
    signal.signal(signal.SIGTERM, previous)
    loop.ckpt.close()
    loop.writer.flush()
  return state


def finalize_state(config, workdir, method, state) -> dict:
  """The method's artefacts of `state` (e.g. codebooks), written into workdir by process 0."""
  if jax.process_index() != 0:
    return {}
  builder = input_pipeline.prepare(config.dataset, config.get('data_dir'), config.get('manual_dir'))
  source = builder.as_data_source(split='train')
  files = method.finalize(state, (source[i] for i in range(len(source))))
  runs.write_artefacts(workdir, files)
  return files


def restore_for_eval(config, workdir):
  """-> (method, mesh, state, step) of the latest checkpoint in workdir, replicated."""
  runs.require_checkpoint(workdir)   # before the dataset is prepared
  method, mesh, _ = setup(config)
  state, step = runs.restore_state(method, workdir, sharding.replicated(mesh))
  return method, mesh, state, step


def evaluate(config, workdir: str) -> dict:
  """Every declared evaluator on the latest checkpoint; writes eval_<step>.json and artefacts."""
  method, mesh, state, step = restore_for_eval(config, workdir)
  print(f'animgen: evaluating checkpoint step {step} of {workdir}', flush=True)
  return evaluate_state(config, workdir, method, mesh, state, step, runs.read_artefacts(workdir))


def evaluate_state(config, workdir, method, mesh, state, step, artefacts,
                   during_training=False) -> dict:
  """The declared evaluators (only the on_train ones during training) on an in-memory state."""
  ctx = eval_context(config, method, mesh, state, step, artefacts)
  out = evaluators.run(ctx, during_training)
  results = dict(out.scalars, step=int(step))
  writer = _writer(workdir)
  writer.write_scalars(step, {f'eval/{k}': v for k, v in results.items()})
  if out.images:
    writer.write_images(step, out.images)
  writer.flush()
  if jax.process_index() == 0:
    runs.write_artefacts(workdir, {**out.files, f'eval_{int(step)}.json': results})
  print(json.dumps(results, indent=None if during_training else 1), flush=True)
  return results


def finalize(config, workdir: str):
  """Rebuilds the method's artefacts (e.g. the motion codebook) from the latest checkpoint."""
  method, _, state, _ = restore_for_eval(config, workdir)
  finalize_state(config, workdir, method, state)


def _fmt_time(seconds):
  seconds = int(seconds)
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  return f'{seconds // 60}m{seconds % 60:02d}s'
