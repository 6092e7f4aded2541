"""Animating Landscape appearance (Algorithm 3): training, evaluation and codebook."""
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np


def test_smoke_run_writes_checkpoint_samples_and_codebook(appearance_run):
  from animgen import runs
  from animgen.methods import landscape_appearance
  config, workdir, state = appearance_run
  assert int(state.step) == config.train.num_steps
  assert os.listdir(os.path.join(workdir, 'checkpoints'))
  assert glob.glob(os.path.join(workdir, 'samples', '*appearance*.gif'))
  # train.eval_every=2: evaluated at step 2 and, after the codebook, at the final step 4
  assert {'eval_2.json', 'eval_4.json'} <= set(os.listdir(workdir))
  artefacts = runs.read_artefacts(workdir)
  seqs = landscape_appearance.codebook_sequences(artefacts['codebook_appearance.npz'])
  assert len(seqs) == 4                                  # tiny split: 4 training clips
  assert all(s.shape == (6, config.model.latent_dim) for s in seqs)  # one code per frame
  assert all(np.all(np.isfinite(s)) for s in seqs)
  # sequence i is E^A (running BatchNorm statistics) of training clip i's frames, in order
  from animgen import input_pipeline
  from animgen.models.landscape import Encoder
  source = input_pipeline.prepare(config.dataset, config.data_dir).as_data_source(split='train')
  encoder = Encoder(latent_dim=config.model.latent_dim, widths=tuple(config.model.encoder_widths))
  variables = {'params': state.params['encoder'], 'batch_stats': state.batch_stats}
  e = config.model.encoder_size
  for i, seq in enumerate(seqs):
    frames = np.asarray(source[i]['frames'])
    assert frames.shape[1:3] == (e, e) and int(source[i]['clip_id']) == i
    want, _ = encoder.apply(variables, jnp.asarray(frames, jnp.float32) / 127.5 - 1.0)
    np.testing.assert_allclose(seq, want, rtol=1e-4, atol=1e-5, err_msg=f'clip {i}')
  # the comparison tells clips and frames apart: another clip's codes differ by up to 0.49,
  # the next frame's by at least 0.03 (measured; codes up to 0.65)
  assert np.abs(seqs[0] - seqs[1]).max() > 1e-2
  assert np.abs(np.diff(seqs[0], axis=0)).max(axis=1).min() > 1e-3
  lstm = landscape_appearance.latent_lstm_params(artefacts['latent_lstm.npz'])
  # the frozen VGG16 weights stay out of the checkpoint and come back on restore
  restored = runs.load(workdir, 'landscape_appearance').state
  for a, b in zip(jax.tree_util.tree_leaves(restored.vgg), jax.tree_util.tree_leaves(state.vgg)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  import json
  tree = json.load(open(os.path.join(workdir, 'checkpoints', str(config.train.num_steps),
                                     'state', '_METADATA')))['tree_metadata']
  assert any("'predictor'" in k for k in tree)
  assert [k for k in tree if "'vgg'" in k] == ["('vgg',)"]   # an empty node, no weights
  roll = landscape_appearance.lstm_rollout(lstm, seqs[0][0], 5, config.model.latent_dim)
  assert roll.shape == (5, config.model.latent_dim) and np.all(np.isfinite(roll))
  np.testing.assert_array_equal(roll[0], seqs[0][0])      # starts at the given code


def test_train_step_updates_both_networks_and_keeps_vgg_frozen(appearance_run, data_dir):
  from animgen import input_pipeline
  from animgen.methods.landscape_appearance import LandscapeAppearance
  config, _, _ = appearance_run
  method = LandscapeAppearance(config, num_train=4)
  ds = input_pipeline.make_dataset(config, 'train', method.make_example, train=True,
                                   batch_size=config.batch_size)
  batch = ds[0]
  state = method.init(jax.random.key(0), batch)
  new, metrics = jax.jit(method.train_step)(state, batch, None)
  for k in ('loss', 'loss_s', 'loss_sp', 'loss_c', 'loss_tv'):
    assert np.isfinite(float(metrics[k])) and float(metrics[k]) >= 0.0
  for net in ('predictor', 'encoder'):
    moved = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                   state.params[net], new.params[net])
    assert max(jax.tree_util.tree_leaves(moved)) > 0.0, net
  same = jax.tree_util.tree_map(lambda a, b: bool(jnp.array_equal(a, b)), state.vgg, new.vgg)
  assert all(jax.tree_util.tree_leaves(same))
  # Eq. 11 is the weighted sum of its terms
  c = config.loss
  expected = (c.lambda_s * metrics['loss_s'] + c.lambda_sp * metrics['loss_sp']
              + c.lambda_c * metrics['loss_c'] + c.lambda_tv * metrics['loss_tv'])
  np.testing.assert_allclose(float(metrics['loss']), float(expected), rtol=1e-5)
  # Eq. 10 reduced as the official train.py does: mean of w |dC^w| plus mean of w |dC^b|
  rng = np.random.default_rng(0)
  maps = rng.normal(size=(1, 8, 8, 6)).astype(np.float32)
  img = rng.uniform(-1, 1, size=(1, 8, 8, 3)).astype(np.float32)
  official = 0.0
  for axis in (1, 2):
    w = np.exp(-np.sum(np.abs(np.diff(img, axis=axis)), axis=-1, keepdims=True) / c.sigma)
    d = np.abs(np.diff(maps, axis=axis))
    official += np.mean(w * d[..., :3]) + np.mean(w * d[..., 3:])
  _, _, terms = method.terms(state.vgg, jnp.asarray(maps), jnp.asarray(img), jnp.asarray(img))
  np.testing.assert_allclose(float(terms['loss_tv']), official, rtol=1e-5)


def test_eval_baselines_are_the_unchanged_input(appearance_run):
  from animgen import input_pipeline, trainer
  config, workdir, _ = appearance_run
  results = trainer.evaluate(config, workdir)
  assert results['num_examples'] == 2 * config.eval.targets_per_clip   # 2 test clips
  method, _, _, _ = trainer.restore_for_eval(config, workdir)
  ds = input_pipeline.make_dataset(config, 'test', method.make_example, train=False,
                                   batch_size=64, eval_index=method.eval_index)
  frames = ds[0]['frames'].astype(np.float64) / 255.0
  mse = np.mean((frames[:, 0] - frames[:, 1]) ** 2, axis=(1, 2, 3))
  np.testing.assert_allclose(results['psnr_input'], np.mean(-10 * np.log10(mse)), rtol=1e-4)
  for k in ('cell_rmse', 'psnr', 'style'):
    assert np.isfinite(results[k])
  # the affine reference fits the target, and the day-cycle clips change colour globally
  assert results['psnr_affine'] > results['psnr_input'] + 1.0
  # P^A reads z: the input's own code and another pair's code give other colours than E^A(target)
  for k in ('cell_rmse_zinput', 'cell_rmse_zother'):
    assert np.isfinite(results[k]) and abs(results[k] - results['cell_rmse']) > 1e-6, k
