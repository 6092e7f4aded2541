"""kill -9 of training at seeded random moments (at start-up, between steps, while a checkpoint
is being written, twice in a row), then the same command again: the run ends bit-identical to
an uninterrupted one."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from animgen import runs
from conftest import ROOT

STEPS = 8
TRIALS = 10


def _cmd(workdir, data_dir):
  # a checkpoint after every step, so that most kills land in or next to a save
  return [sys.executable, '-m', 'animgen.main', '--config=configs/landscape.py:smoke',
          f'--workdir={workdir}', f'--config.data_dir={data_dir}',
          f'--config.train.num_steps={STEPS}', '--config.train.checkpoint_every=1',
          '--config.train.log_every=1', '--config.train.sample_every=0']


def _kill_at(cmd, step, delay):
  """Starts `cmd` and SIGKILLs it `delay` s after it prints step `step` (0: after start-up
  began); -> whether it was killed before finishing."""
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
  try:
    if step > 0:
      for line in proc.stdout:
        if line.startswith(f'step {step}/'):
          break
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=300) == -signal.SIGKILL
  finally:
    proc.kill()
    proc.stdout.close()


def _final(workdir):
  config, num = runs.read_config(workdir)
  state, step = runs.restore_state(runs.build_method(config, num), workdir)
  return jax.device_get(state), step


def test_kill_9_at_random_moments_then_rerun_is_bit_identical(tmp_path, data_dir):
  ref_dir = tmp_path / 'ref'
  done = subprocess.run(_cmd(ref_dir, data_dir), cwd=ROOT, capture_output=True, text=True,
                        timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  ref, ref_step = _final(str(ref_dir))
  assert ref_step == STEPS
  rng = np.random.default_rng(0)
  killed = 0
  for trial in range(TRIALS):
    workdir = tmp_path / f'trial{trial}'
    cmd = _cmd(workdir, data_dir)
    kills = 2 if trial == TRIALS - 1 else 1       # the last trial: killed twice in a row
    for _ in range(kills):
      step = int(rng.integers(0, STEPS))           # 0: during start-up or compilation
      killed += _kill_at(cmd, step, float(rng.uniform(0.0, 0.4 if step else 6.0)))
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, (trial, rerun.stderr[-2000:])
    state, step = _final(str(workdir))
    assert step == STEPS, trial
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(state),
                            jax.tree_util.tree_leaves(ref)):
      np.testing.assert_array_equal(x, y, err_msg=f'trial {trial} {jax.tree_util.keystr(path)}')
    assert os.path.isfile(workdir / 'codebook_motion.npz'), trial
  assert killed >= TRIALS   # the kills landed before the runs finished
