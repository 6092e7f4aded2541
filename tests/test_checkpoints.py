"""Damaged checkpoints: every kind of damage to the newest one falls back to the newest intact
one with one warning line; training moves the damaged one aside and resumes exactly; when none
can be read the error is one line."""
import glob
import os
import shutil

import jax
import numpy as np
import pytest

import checkpoint_damage
from animgen import checkpoint, runs, trainer
from animgen.errors import InputError


def _copy(smoke_run, tmp_path, name='run'):
  _, workdir, _ = smoke_run
  dest = tmp_path / name
  shutil.copytree(workdir, dest)
  return str(dest)


def _method(workdir):
  config, num = runs.read_config(workdir)
  return runs.build_method(config, num)


def test_every_finished_checkpoint_is_stamped(smoke_run):
  _, workdir, _ = smoke_run
  ckpt = checkpoint.Checkpointer(workdir)
  steps = ckpt.manager.all_steps()
  assert sorted(steps) == [2, 4]
  for step in steps:
    assert os.path.isfile(os.path.join(ckpt.directory, str(step), checkpoint.STAMP))
    assert ckpt.damage(step) is None
  ckpt.manager.close()


@pytest.mark.parametrize('name,target,action', checkpoint_damage.CASES,
                         ids=[c[0] for c in checkpoint_damage.CASES])
def test_a_damaged_latest_checkpoint_falls_back_to_the_older_one(smoke_run, tmp_path, capfd,
                                                                 name, target, action):
  workdir = _copy(smoke_run, tmp_path)
  checkpoint_damage.damage(os.path.join(workdir, 'checkpoints', '4'), target, action)
  capfd.readouterr()
  _, step = runs.restore_state(_method(workdir), workdir)
  err = capfd.readouterr().err.strip().splitlines()
  assert step == 2
  assert len(err) == 1 and err[0].startswith('animgen: warning: checkpoint step 4 ') and \
      'using step 2' in err[0], err
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '4'))   # reading moves nothing


def test_an_unstamped_damaged_checkpoint_falls_back_on_orbaxs_own_error(smoke_run, tmp_path,
                                                                        capfd):
  workdir = _copy(smoke_run, tmp_path)
  for stamp in glob.glob(os.path.join(workdir, 'checkpoints', '*', checkpoint.STAMP)):
    os.remove(stamp)
  checkpoint_damage.damage(os.path.join(workdir, 'checkpoints', '4'), 'state/_METADATA',
                           'overwritten')
  capfd.readouterr()
  _, step = runs.restore_state(_method(workdir), workdir)
  assert step == 2 and 'cannot be read (JSONDecodeError' in capfd.readouterr().err


def test_no_readable_checkpoint_is_one_line(smoke_run, tmp_path, capfd):
  workdir = _copy(smoke_run, tmp_path)
  for step in ('2', '4'):
    checkpoint_damage.damage(os.path.join(workdir, 'checkpoints', step), 'state/d', 'deleted')
  with pytest.raises(InputError) as e:
    runs.restore_state(_method(workdir), workdir)
  assert '\n' not in str(e.value) and 'no checkpoint in' in str(e.value) and \
      'step 4:' in str(e.value) and 'step 2:' in str(e.value)


def test_training_resumes_from_the_intact_checkpoint_exactly(smoke_run, tmp_path, capfd):
  config, _, final = smoke_run
  workdir = _copy(smoke_run, tmp_path)
  checkpoint_damage.damage(os.path.join(workdir, 'checkpoints', '4'), 'state/d', 'deleted')
  capfd.readouterr()
  state = trainer.train_and_evaluate(config, workdir)   # steps 3 and 4 again from step 2
  out = capfd.readouterr()
  assert 'resumed from step 2' in out.out
  assert 'checkpoint step 4' in out.err and 'using step 2' in out.err
  assert os.path.isdir(os.path.join(workdir, 'checkpoints_damaged', '4'))
  ckpt = checkpoint.Checkpointer(workdir)
  assert ckpt.latest_step() == 4 and ckpt.damage(4) is None
  ckpt.manager.close()
  for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(state.params)),
                  jax.tree_util.tree_leaves(jax.device_get(final.params))):
    np.testing.assert_array_equal(a, b)
