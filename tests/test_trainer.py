"""The generic trainer on the landscape smoke config: outputs, exact resume, devices, NaN stop."""
import glob
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animgen import checkpoint, trainer
from conftest import one_step_on_devices, smoke_config


def _leaves(state):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]


def test_smoke_run_writes_metrics_checkpoint_samples_codebook(smoke_run):
  config, workdir, state = smoke_run
  assert int(state.step) == config.train.num_steps
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  ckpt = checkpoint.Checkpointer(workdir)
  assert ckpt.latest_step() == config.train.num_steps
  ckpt.close()
  gifs = glob.glob(os.path.join(workdir, 'samples', 'motion_*.gif'))
  assert gifs and os.path.getsize(gifs[0]) > 100
  with np.load(os.path.join(workdir, 'codebook_motion.npz')) as d:
    codes, clip_codes, stamp = d['codes'], d['clip_codes'], int(d['step'])
  assert stamp == config.train.num_steps  # the state the codes came from
  assert codes.shape == (config.codebook.max_codes, config.model.latent_dim)
  assert clip_codes.shape[0] == 4  # one code per training clip of the tiny dataset
  # the common motion fields of the clips were updated from zero by training (Alg. 2, line 14)
  assert float(np.abs(np.asarray(state.motion_fields)).max()) > 0
  # scalars reached the TensorBoard event file
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(workdir)
  acc.Reload()
  assert 'loss' in acc.Tags()['tensors'] or 'loss' in acc.Tags()['scalars']


def test_resume_continues_exactly(smoke_run, tmp_path, data_dir):
  config, _, straight = smoke_run
  workdir = str(tmp_path / 'resumed')
  half = smoke_config(data_dir, **{'train.num_steps': 2})
  trainer.train_and_evaluate(half, workdir)
  resumed = trainer.train_and_evaluate(config, workdir)  # restarts at step 2
  assert int(resumed.step) == 4
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, data_dir):
  workdir = str(tmp_path / 'nan')
  trainer.train_and_evaluate(smoke_config(data_dir, **{'train.num_steps': 2}), workdir)
  bad = smoke_config(data_dir, **{'optim.learning_rate': float('nan')})
  with pytest.raises(trainer.TrainingDiverged, match='step 3'):
    trainer.train_and_evaluate(bad, workdir)
  ckpt = checkpoint.Checkpointer(workdir)
  assert ckpt.latest_step() == 2
  ckpt.close()


def _code_epes(method, state, batch, codes):
  """EPE in pixels [codes, examples] of the flow predicted with each code, in NumPy from the
  stored pixel flow (frames and flow at the model size)."""
  size = method.size
  assert batch['frames'].shape[2:4] == batch['flow'].shape[1:3] == (size, size)
  x = jnp.asarray(batch['frames'][:, 0], jnp.float32) / 127.5 - 1.0
  predict = jax.jit(method.predict)
  epe = []
  for code in np.asarray(codes):
    flow = np.asarray(predict(state.params, x, jnp.broadcast_to(code, (len(x), len(code)))))
    epe.append(np.linalg.norm(flow * (size - 1) / 2.0 - batch['flow'], axis=-1).mean((1, 2)))
  return np.stack(epe)


def test_eval_reports_epe_and_psnr_with_baselines(smoke_run):
  config, workdir, state = smoke_run
  results = trainer.evaluate(config, workdir)
  assert results['num_examples'] == 2 * config.eval.pairs_per_clip  # 2 tiny test clips
  for k in ('flow_epe', 'flow_epe_zero', 'psnr', 'psnr_zero', 'flow_epe_codebook_mean'):
    assert np.isfinite(results[k])
  # the codebook EPEs recomputed from the evaluated codes; best / worst are per-example min / max
  from animgen import input_pipeline, runs
  from animgen.methods.landscape_motion import LandscapeMotion
  method = LandscapeMotion(config, state.motion_fields.shape[0])
  batch = input_pipeline.make_dataset(config, 'test', method.make_example, train=False,
                                      batch_size=64, eval_index=method.eval_index)[0]
  codes = method.eval_inputs(state, runs.read_artefacts(workdir))
  epe = _code_epes(method, state, batch, codes)                   # [codes, examples]
  for k, want in (('mean', epe.mean()), ('best', epe.min(0).mean()), ('worst', epe.max(0).mean())):
    np.testing.assert_allclose(results[f'flow_epe_codebook_{k}'], want, rtol=1e-4, err_msg=k)
  # after 4 steps the codebook codes give EPEs within 1e-5 of each other; codes far apart tell
  # best from worst (measured: worst - best >= 0.15 x the mean EPE on every example)
  codes = jnp.asarray(np.random.default_rng(0).normal(scale=5.0, size=(3, codes.shape[1])),
                      jnp.float32)
  epe = _code_epes(method, state, batch, codes)
  out = jax.jit(method.eval_step)(state, batch, codes)
  assert np.all(epe.max(0) - epe.min(0) > 0.05 * epe.mean())
  for k, want in (('mean', epe.mean(0)), ('best', epe.min(0)), ('worst', epe.max(0))):
    np.testing.assert_allclose(out[f'flow_epe_codebook_{k}'], want, rtol=1e-4, err_msg=k)
  # the zero-flow EPE is the mean ground-truth flow magnitude: positive on moving skies
  assert results['flow_epe_zero'] > 0.01
  saved = json.load(open(os.path.join(workdir, f'eval_{results["step"]}.json')))
  assert saved['flow_epe'] == pytest.approx(results['flow_epe'])
  # Sec. 6.2 per-frame curves: 3 predicted frames; the still baseline's RMSE recomputed in
  # NumPy from the test clips' stored frames (first frame against frame k, in [0, 1])
  seq = json.load(open(os.path.join(workdir, f'eval_sequences_{results["step"]}.json')))
  assert seq['frames'] == [1, 2, 3] and seq['num_codes'] == config.eval.codebook_codes
  builder, _ = input_pipeline.get_builder(config.dataset, config.data_dir)
  clips = [np.asarray(r['frames'][:4], np.float64) / 255.0
           for r in builder.as_data_source(split='test')]
  assert clips[0].shape[1:3] == (method.size, method.size)  # no resize in this comparison
  still = np.mean([np.sqrt(np.mean((c[1:] - c[:1]) ** 2, axis=(1, 2, 3))) for c in clips], 0)
  np.testing.assert_allclose(seq['rmse']['still'], still, rtol=1e-4)
  for k in ('rmse', 'lpips'):
    # the still baseline drifts away from the moving truth: its error grows with the frame index
    assert seq[k]['still'][-1] > seq[k]['still'][0]
  assert results['seq_rmse'] == pytest.approx(float(np.mean(seq['rmse']['mean'])))
  from PIL import Image
  png = Image.open(os.path.join(workdir, f'eval_sequences_{results["step"]}.png'))
  assert png.size[0] > png.size[1] > 100


def test_eight_devices_equal_one(tmp_path, data_dir):
  outs = one_step_on_devices(tmp_path, data_dir, [('', 'landscape', 'smoke', {})])
  a, b = outs[1], outs[8]
  for k in ('loss', 'loss_p', 'loss_tv', 'grad_norm'):
    np.testing.assert_allclose(a['metric/' + k], b['metric/' + k], rtol=1e-4)
  lr = smoke_config(data_dir).optim.learning_rate
  checked = 0
  for k in a.files:
    if k == 'n' or k.startswith('metric/'):
      continue
    x, y = a[k], b[k]
    if "['bias']" in k and "['fc_" not in k:
      # most conv biases feed a Batch/InstanceNorm: their gradient is exactly zero in exact
      # arithmetic and float noise amplified by 1/sqrt(eps); compare them loosely
      if '.params' in k:
        np.testing.assert_allclose(x, y, atol=2 * lr + 1e-6, err_msg=k)
      continue
    if '.params' in k:      # Adam's first step moves each weight by ~lr * sign(g)
      np.testing.assert_allclose(x, y, atol=2 * lr + 1e-6, err_msg=k)
    else:  # Adam moments (the gradients), batch statistics, common motion fields, step
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-3 * float(np.abs(x).max()) + 1e-12,
                                 err_msg=k)
    checked += 1
  assert checked > 20


def test_sigterm_saves_a_checkpoint_exits_75_and_resumes(tmp_path, data_dir):
  import signal
  import subprocess
  import sys
  from conftest import ROOT
  from animgen.errors import EXIT_INTERRUPTED
  workdir = str(tmp_path / 'term')
  cmd = [sys.executable, '-m', 'animgen.main', '--config=configs/landscape.py:smoke',
         f'--workdir={workdir}', f'--config.data_dir={data_dir}',
         '--config.train.num_steps=100000', '--config.train.log_every=1',
         '--config.train.checkpoint_every=100000', '--config.train.sample_every=0']
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=dict(os.environ))
  try:
    for line in proc.stdout:
      if line.startswith('step 3/'):
        proc.send_signal(signal.SIGTERM)
        break
    rest = proc.stdout.read()
    assert proc.wait(timeout=300) == EXIT_INTERRUPTED == 75   # not 0: a scheduler requeues it
  finally:
    proc.kill()
  assert 'animgen: SIGTERM: saved step' in rest
  saved = int(rest.split('SIGTERM: saved step ')[1].split(';')[0])
  ckpt = checkpoint.Checkpointer(workdir)
  assert ckpt.latest_step() == saved and 3 <= saved < 100000
  ckpt.close()
  done = subprocess.run(cmd[:5] + [f'--config.train.num_steps={saved + 2}',
                                   '--config.train.sample_every=0'],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert f'resumed from step {saved}' in done.stdout
  assert f'step {saved + 2}/{saved + 2}' in done.stdout


def test_eval_codebook_is_rebuilt_when_stamped_with_another_step(smoke_run):
  """A codebook written at an earlier step (an evaluation during resumed training) is stale:
  eval_inputs rebuilds it from the state; one stamped with the state's step, or unstamped
  (converted official codebooks), is used as it is."""
  from animgen.methods import landscape_motion
  config, _, state = smoke_run
  method = landscape_motion.LandscapeMotion(config, state.motion_fields.shape[0])
  book = np.full((3, config.model.latent_dim), 7.0, np.float32)
  for stamp, used in (({'step': int(state.step) - 1}, False), ({'step': int(state.step)}, True),
                      ({}, True)):
    saved = {'codebook_motion.npz': {'codes': book, 'clip_codes': book, **stamp}}
    codes = np.asarray(method.eval_inputs(state, saved))
    assert codes.shape == (config.eval.codebook_codes, config.model.latent_dim)
    assert np.all(codes == 7.0) == used, stamp
  art = method.finalize(state, [])['codebook_motion.npz']
  assert int(art['step']) == int(state.step) and art['codes'].shape[0] == 3


_TRIM_PROBE = r'''
import ctypes, os, sys
from animgen import runtime
tuned = runtime.tune_malloc()
def rss():
  with open('/proc/self/status') as f:
    return next(int(l.split()[1]) for l in f if l.startswith('VmRSS')) * 1024
libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
blocks = [libc.malloc(1 << 20) for _ in range(256)]     # 256 MiB on the heap (no mmap)
for b in blocks:
  ctypes.memset(b, 1, 1 << 20)
keep = libc.malloc(64)                                  # pins the heap top above the blocks
for b in blocks:
  libc.free(ctypes.c_void_p(b))
before = rss()
trimmed = runtime.release_memory()
print(tuned, trimmed, before - rss())
'''


def test_release_memory_returns_the_freed_heap_under_the_tuned_allocator():
  """With animgen.runtime.MALLOC_OPTS glibc never trims by itself; release_memory gives the
  freed pages back (the trainer calls it after compiling), and ANIMGEN_NO_TUNING=1 turns both
  off."""
  import subprocess
  import sys
  base = {k: v for k, v in os.environ.items()
          if k != 'ANIMGEN_NO_TUNING' and not k.startswith('MALLOC_')}
  out = {}
  for name, env in (('tuned', base), ('untuned', dict(base, ANIMGEN_NO_TUNING='1'))):
    res = subprocess.run([sys.executable, '-c', _TRIM_PROBE], env=env, capture_output=True,
                         text=True, check=True)
    tuned, flag, freed = res.stdout.split()
    out[name] = (tuned, flag, int(freed))
  assert out['tuned'][:2] == ('True', 'True') and out['tuned'][2] > 200 << 20, out
  assert out['untuned'][:2] == ('False', 'False') and abs(out['untuned'][2]) < 32 << 20, out


def test_tune_malloc_leaves_the_users_malloc_settings_alone(monkeypatch):
  from animgen import runtime
  monkeypatch.delenv('ANIMGEN_NO_TUNING', raising=False)
  monkeypatch.setenv('MALLOC_ARENA_MAX', '4')
  assert runtime.tune_malloc() is False      # a MALLOC_* variable: the user's choice wins
  assert set(runtime.MALLOPT) == {-1, -2, -3, -8}   # trim, top pad, mmap threshold, arenas


def test_cnn_compiler_options_compile_the_same_motion_step(data_dir, monkeypatch):
  """The landscape methods' XLA options (legacy fusion emitters: less compile memory) change
  how a step is compiled, not what it computes; an option this XLA does not know is dropped
  rather than failing the compile; ANIMGEN_NO_TUNING=1 turns them off."""
  from animgen import input_pipeline, runtime
  from animgen.methods.landscape_motion import LandscapeMotion
  opts = runtime.supported_options(tuple(sorted(runtime.CNN_CPU_OPTIONS.items())))
  assert opts == runtime.CNN_CPU_OPTIONS
  assert runtime.supported_options((('xla_cpu_no_such_option', True),)) is None
  config = smoke_config(data_dir)
  method = LandscapeMotion(config, num_train=4)
  assert method.compiler_options is None                 # conftest sets ANIMGEN_NO_TUNING
  monkeypatch.delenv('ANIMGEN_NO_TUNING')
  assert method.compiler_options == runtime.CNN_CPU_OPTIONS
  batch = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                      batch_size=config.batch_size)[0]
  state = method.init(jax.random.key(0), batch)
  # non-zero fields: E^M's BatchNorm of the all-zero initial fields has ill-conditioned grads
  state = state.replace(motion_fields=0.01 * jax.random.normal(
      jax.random.key(2), state.motion_fields.shape))
  # Adam's first update is ~lr * sign(g), so compare the gradients and the predicted flows
  # (stored as the clips' motion fields), not the stepped parameters.
  grad = lambda p: jax.grad(lambda q: method.loss(q, state.batch_stats, state.motion_fields,
                                                  batch, jax.random.key(1))[0])(p)
  step = lambda s: method.train_step(s, batch, jax.random.key(1))
  out = [(jax.jit(grad, compiler_options=o)(state.params),
          jax.jit(step, compiler_options=o)(state)) for o in (None, opts)]
  np.testing.assert_allclose(float(out[1][1][1]['loss']), float(out[0][1][1]['loss']), rtol=1e-5)
  assert float(jnp.abs(out[0][1][0].motion_fields).max()) > 0
  np.testing.assert_allclose(out[1][1][0].motion_fields, out[0][1][0].motion_fields, rtol=1e-4,
                             atol=1e-7)
  grads = list(zip(_leaves(out[0][0]), _leaves(out[1][0])))
  top = max(float(np.abs(a).max()) for a, _ in grads)
  assert top > 0
  for a, b in grads:  # biases before a norm have zero gradients up to rounding: top * 1e-6
    assert float(np.abs(b - a).max()) <= 1e-3 * float(np.abs(a).max()) + 1e-6 * top


def test_init_from_starts_from_another_run_and_its_shared_clip_fields(smoke_run, tmp_path,
                                                                      data_dir):
  """train.init_from: P^M, E^M and BatchNorm statistics of the source's checkpoint, its common
  motion fields for the clips both training sets share, fresh Adam and step; bad sources fail
  with an InputError before anything is written."""
  from animgen import sharding
  from animgen.errors import InputError
  from animgen.methods.landscape_motion import LandscapeMotion
  config, src_dir, src = smoke_run
  cfg = smoke_config(data_dir, **{'train.init_from': src_dir})
  method = LandscapeMotion(cfg, num_train=6)  # 2 more clips than the tiny set's 4
  fresh = method.init(jax.random.key(5), None)
  mesh = sharding.make_mesh()
  warm = trainer.warm_start(cfg, method, fresh, mesh)
  for a, b in zip(_leaves((src.params, src.batch_stats)),
                  _leaves((warm.params, warm.batch_stats))):
    np.testing.assert_array_equal(a, b)
  fields = np.asarray(warm.motion_fields)
  np.testing.assert_array_equal(fields[:4], np.asarray(src.motion_fields))
  assert np.abs(fields[:4]).max() > 0 and np.abs(fields[4:]).max() == 0
  assert int(warm.step) == 0
  for a, b in zip(_leaves(fresh.opt_state), _leaves(warm.opt_state)):
    np.testing.assert_array_equal(a, b)
  # the trainer applies it: one step at learning rate 0 keeps the source's networks
  workdir = str(tmp_path / 'warm')
  run = smoke_config(data_dir, **{'train.init_from': src_dir, 'train.num_steps': 1,
                                  'optim.learning_rate': 0.0})
  state = trainer.train_and_evaluate(run, workdir)
  assert int(state.step) == 1
  for a, b in zip(_leaves(src.params), _leaves(state.params)):
    np.testing.assert_array_equal(a, b)
  for bad, match in [(str(tmp_path / 'missing'), 'no config.json'),
                     (str(tmp_path / 'empty'), 'not a config written by animgen'),
                     (str(tmp_path / 'nockpt'), 'no checkpoint')]:
    os.makedirs(bad, exist_ok=True)
    if 'empty' in bad:
      with open(os.path.join(bad, 'config.json'), 'w') as f:
        json.dump({'num_train': 4}, f)
    if 'nockpt' in bad:
      with open(os.path.join(bad, 'config.json'), 'w') as f:
        json.dump({'config': config.to_dict(), 'num_train': 4}, f)
    with pytest.raises(InputError, match=match):
      trainer.warm_start(smoke_config(data_dir, **{'train.init_from': bad}), method, fresh, mesh)
    assert not os.path.isdir(os.path.join(bad, 'checkpoints'))
  wide = smoke_config(data_dir, **{'train.init_from': src_dir, 'model.widths': (8, 16, 16)})
  wide_method = LandscapeMotion(wide, 4)
  with pytest.raises(InputError, match='do not match this config'):
    trainer.warm_start(wide, wide_method, wide_method.init(jax.random.key(0), None), mesh)


def test_profile_writes_a_trace_of_five_steps(tmp_path, data_dir):
  """config.profile: clu's Profile hook around the trainer's step annotations."""
  workdir = str(tmp_path / 'prof')
  config = smoke_config(data_dir, **{'train.num_steps': 7, 'train.sample_every': 0})
  config.profile = True
  trainer.train_and_evaluate(config, workdir)
  traces = glob.glob(os.path.join(workdir, 'plugins', 'profile', '*', '*.xplane.pb'))
  assert len(traces) == 1 and os.path.getsize(traces[0]) > 1000
  config.profile = False
  trainer.train_and_evaluate(config, str(tmp_path / 'plain'))
  assert not os.path.exists(os.path.join(str(tmp_path / 'plain'), 'plugins'))
