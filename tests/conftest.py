"""Shared fixtures: a tiny prepared dataset and one smoke training run per session.

Compiled programs are cached on disk for the session, so repeated smoke runs (resume tests,
subprocesses) do not pay XLA compilation again.
"""
import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

_CACHE = os.path.join(os.environ.get('PYTEST_TMP_CACHE', '/tmp'), 'animgen-test-jax-cache')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', _CACHE)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
os.environ.setdefault('ANIMGEN_NO_TUNING', '1')  # stock malloc and XLA options in tests
# XLA without most of its optimisation passes: test programs compile ~1.6x faster (measured on
# the controls, models and looper tests) and their numbers stay within the tests' tolerances.
# Inherited by the subprocesses the tests start.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


def smoke_config(data_dir, module='landscape', variant='smoke', **overrides):
  """configs/<module>.py:<variant> writing its data to data_dir, with dotted-key overrides."""
  sys.path.insert(0, ROOT)
  import importlib
  c = importlib.import_module(f'configs.{module}').get_config(variant)
  c.data_dir = data_dir
  for k, v in overrides.items():
    node = c
    *parents, leaf = k.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


@contextlib.contextmanager
def _file_lock(path):
  import fcntl
  with open(path, 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    yield


def shared_run(tmp_path_factory, name, config, evaluate=False):
  """Trains `config` once for all pytest-xdist workers of this test run, in a workdir they
  share: the first worker trains (and evaluates), the others wait for it and restore the final
  state from its checkpoint -> (workdir, state, evaluation results or None)."""
  from animgen import runs, trainer
  base = tmp_path_factory.getbasetemp()
  root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
  workdir = root / name
  with _file_lock(str(root / f'{name}.lock')):
    if not (workdir / 'DONE').exists():
      trainer.train_and_evaluate(config, str(workdir))
      if evaluate:
        trainer.evaluate(config, str(workdir))
      (workdir / 'DONE').touch()
  state, step = runs.restore_state(runs.build_method(config, runs.read_config(str(workdir))[1]),
                                   str(workdir))
  results = None
  if evaluate:
    with open(workdir / f'eval_{step}.json') as f:
      results = json.load(f)
  return str(workdir), state, results


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory, data_dir):
  """A finished 4-step landscape smoke run: (config, workdir, final state)."""
  config = smoke_config(data_dir)
  workdir, state, _ = shared_run(tmp_path_factory, 'smoke_run', config)
  return config, workdir, state


@pytest.fixture(scope='session')
def appearance_run(tmp_path_factory, data_dir):
  """A finished 4-step appearance smoke run with codebook and latent LSTM, evaluated every
  2 steps."""
  config = smoke_config(data_dir, 'landscape_appearance', **{'train.eval_every': 2})
  workdir, state, _ = shared_run(tmp_path_factory, 'appearance', config)
  return config, workdir, state


def run_cli(args, env=None, timeout=600):
  """Runs a command-line entry point in a subprocess; returns CompletedProcess."""
  full_env = dict(os.environ, **(env or {}))
  return subprocess.run([sys.executable] + args, cwd=ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)


_DEVICE_STEP = r"""
import json, sys, numpy as np, jax
sys.path.insert(0, '.'); sys.path.insert(0, 'tests')
from conftest import smoke_config
from animgen import input_pipeline, sharding, trainer
data_dir, out, specs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
result = {'n': jax.device_count()}
for prefix, module, variant, overrides in specs:
  c = smoke_config(data_dir, module, variant, **overrides)
  m, mesh, _ = trainer.setup(c)
  steps = trainer.compile_steps(m, mesh)   # the trainer's own jit wiring and shardings
  ds = input_pipeline.make_dataset(c, 'train', m.make_example, train=True, batch_size=8)
  batch = sharding.shard_batch(ds[0], mesh)
  state = steps.init(jax.random.key(0), batch)
  state, metrics = steps.train(state, batch, jax.random.key(1))
  result.update({f'{prefix}metric/{k}': np.asarray(v) for k, v in metrics.items()})
  for p, x in jax.tree_util.tree_leaves_with_path(jax.device_get(state)):
    result[prefix + jax.tree_util.keystr(p)] = np.asarray(x)
np.savez(out, **result)
"""


def one_step_on_devices(tmp_path, data_dir, specs, counts=(1, 8)):
  """One jitted train step (batch 8, sharded on a `data` mesh as the trainer does) of each
  smoke config in `specs` = [(key prefix, config module, variant, {dotted overrides})], run in a
  fresh process per fake CPU device count, the processes in parallel -> {count: npz} holding
  'n' (the device count), '<prefix>metric/<name>' and '<prefix><state leaf path>'."""
  import json
  from animgen import input_pipeline
  for _, module, variant, overrides in specs:  # generate the data once, before the processes
    c = smoke_config(data_dir, module, variant, **overrides)
    input_pipeline.prepare(c.dataset, data_dir)
  procs = {}
  for n in counts:
    env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={n}')
    procs[n] = subprocess.Popen(
        [sys.executable, '-c', _DEVICE_STEP, data_dir, str(tmp_path / f'dev{n}.npz'),
         json.dumps(specs)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
  outs = {}
  for n, p in procs.items():
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-2000:]
    outs[n] = np.load(tmp_path / f'dev{n}.npz')
    assert int(outs[n]['n']) == n
  return outs
