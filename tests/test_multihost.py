"""Multi-host: two processes on localhost joined by jax.distributed.initialize (a local
coordinator, two fake CPU devices each) train the DeepGIFs smoke config through the real
trainer as one process with four devices does, write one checkpoint, and both resume from it.
Its 16 training clips span two global batches of 8, so a process feeding other rows than its
own part of each global batch changes the losses (the landscape smoke data, 4 clips, would not
show it)."""
import os
import re
import socket
import subprocess
import sys

import jax
import numpy as np

from animgen import runs
from conftest import ROOT

COMMON = ['-m', 'animgen.main', '--config=configs/deepgifs.py:smoke',
          '--config.train.num_steps=4',
          '--config.train.log_every=1', '--config.train.sample_every=0']


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _launch(workdir, data_dir, extra=(), processes=2):
  """-> stdout of each process (all of them must exit 0)."""
  port = _free_port()
  procs = []
  for i in range(processes):
    env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={4 // processes}')
    if processes > 1:
      env.update(JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES=str(processes),
                 JAX_PROCESS_ID=str(i))
    procs.append(subprocess.Popen(
        [sys.executable] + COMMON + [f'--workdir={workdir}', f'--config.data_dir={data_dir}',
                                     *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    outs.append(out)
  return outs


def _losses(out):
  return {int(s): float(l) for s, l in re.findall(r'^step (\d+)/\d+  loss (\S+)', out, re.M)}


def _state(workdir):
  config, num = runs.read_config(workdir)
  state, step = runs.restore_state(runs.build_method(config, num), workdir)
  return jax.device_get(state), step


def test_two_processes_train_as_one_and_both_resume(tmp_path, data_dir):
  from conftest import smoke_config
  from animgen import input_pipeline
  config = smoke_config(data_dir, 'deepgifs')
  input_pipeline.prepare(config.dataset, data_dir)   # once, before the runs
  multi, single = tmp_path / 'multi', tmp_path / 'single'
  p0, p1 = _launch(multi, data_dir)
  (ref,) = _launch(single, data_dir, processes=1)
  lm, l1, ls = _losses(p0), _losses(p1), _losses(ref)
  assert sorted(lm) == sorted(ls) == [1, 2, 3, 4] and lm == l1   # both report the global loss
  for step in ls:   # the same batches; only the all-reduce's summation order differs
    np.testing.assert_allclose(lm[step], ls[step], rtol=5e-3, err_msg=f'step {step}')
  assert lm[1] == ls[1]
  a, step_a = _state(str(multi))
  b, step_b = _state(str(single))
  assert step_a == step_b == 4
  lr = config.optim.learning_rate
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a.params),
                          jax.tree_util.tree_leaves(b.params)):
    # Adam moves a weight by ~lr * sign(g) per step: 4 steps bound any rounding difference
    np.testing.assert_allclose(x, y, atol=8 * lr + 1e-6, err_msg=jax.tree_util.keystr(path))
  assert sorted(os.listdir(multi / 'checkpoints')) == ['2', '4']   # one checkpoint, not two
  r0, r1 = _launch(multi, data_dir, ['--config.train.num_steps=6'])
  for out in (r0, r1):
    assert 'resumed from step 4' in out and sorted(_losses(out)) == [5, 6]
  assert _state(str(multi))[1] == 6
