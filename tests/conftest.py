"""Shared fixtures: a tiny prepared dataset and one smoke training run per session.

Compiled programs are cached on disk for the session, so repeated smoke runs (resume tests,
subprocesses) do not pay XLA compilation again.
"""
import os
import subprocess
import sys

import pytest

_CACHE = os.path.join(os.environ.get('PYTEST_TMP_CACHE', '/tmp'), 'animgen-test-jax-cache')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', _CACHE)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
os.environ.setdefault('ANIMGEN_NO_TUNING', '1')  # no re-exec inside tests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


def smoke_config(data_dir, module='landscape', **overrides):
  """configs/<module>.py:smoke writing its data to data_dir, with dotted-key overrides."""
  sys.path.insert(0, ROOT)
  import importlib
  c = importlib.import_module(f'configs.{module}').get_config('smoke')
  c.data_dir = data_dir
  for k, v in overrides.items():
    node = c
    *parents, leaf = k.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory, data_dir):
  """A finished 4-step landscape smoke run: (config, workdir, final state)."""
  from animgen import trainer
  workdir = str(tmp_path_factory.mktemp('smoke_run'))
  config = smoke_config(data_dir)
  state = trainer.train_and_evaluate(config, workdir)
  return config, workdir, state


@pytest.fixture(scope='session')
def appearance_run(tmp_path_factory, data_dir):
  """A finished 4-step appearance smoke run with codebook and latent LSTM."""
  from animgen import trainer
  workdir = str(tmp_path_factory.mktemp('appearance'))
  config = smoke_config(data_dir, 'landscape_appearance')
  state = trainer.train_and_evaluate(config, workdir)
  return config, workdir, state


def run_cli(args, env=None, timeout=600):
  """Runs a command-line entry point in a subprocess; returns CompletedProcess."""
  full_env = dict(os.environ, **(env or {}))
  return subprocess.run([sys.executable] + args, cwd=ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)
