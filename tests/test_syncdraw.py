"""Sync-DRAW: bouncing_mnist and TGIF builders, the caption model's alignment and prior KL,
a smoke run with evaluation, 1 vs 8 devices, and `animgen sample`."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animgen import input_pipeline
from animgen.datasets import bouncing_mnist
from animgen.errors import InputError
from animgen.methods import syncdraw
from animgen.models.syncdraw import SyncDRAW as Net
from conftest import one_step_on_devices, run_cli, smoke_config


@pytest.fixture(scope='module')
def caption_run(tmp_path_factory, data_dir):
  """A finished 4-step smoke run of the caption model, evaluated."""
  from conftest import shared_run
  config = smoke_config(data_dir, 'syncdraw', **{'model.captions': True,
                                                 'train.sample_every': 0})
  workdir, _, results = shared_run(tmp_path_factory, 'syncdraw_captions', config, evaluate=True)
  return config, workdir, results


def _records(data_dir, name, split):
  builder = input_pipeline.prepare(name, data_dir)
  src = builder.as_data_source(split=split)
  return [src[i] for i in range(len(src))]


@pytest.mark.parametrize('name', ['single_digit_tiny', 'two_digit_tiny'])
def test_splits_are_disjoint_in_digit_and_motion(data_dir, name):
  pairs = {}
  for split in ('train', 'test'):
    recs = _records(data_dir, f'bouncing_mnist/{name}', split)
    assert recs[0]['frames'].shape == (4, 32, 32, 1)
    pairs[split] = set()
    for r in recs:
      n = int((r['digits'] >= 0).sum())
      assert n == (1 if name.startswith('single') else 2)
      d, m = r['digits'][:n], r['motions'][:n]
      pairs[split] |= {(int(a), int(b)) for a, b in zip(d, m)}
      assert bouncing_mnist.detokenize(r['caption']) == bouncing_mnist.caption_text(d, m)
  assert pairs['train'] and pairs['test']
  assert not pairs['train'] & pairs['test']


def test_digits_move_along_their_axis_and_overlaps_clip_to_one():
  rng = np.random.default_rng(0)
  digit = np.zeros((1, 28, 28), np.float32)
  digit[0, 10:18, 10:18] = 1.0
  for motion in (0, 1):
    gif = bouncing_mnist.render_gif(rng, digit, [motion], 10, 64)
    ys, xs = [], []
    for f in gif:
      yy, xx = np.nonzero(f)
      ys.append(yy.mean())
      xs.append(xx.mean())
    moving, still = (xs, ys) if motion == 0 else (ys, xs)
    assert np.ptp(still) == 0 and np.ptp(moving) > 10        # left-right or up-down only
    # public script: step 0.1 x speed 2 = 0.2 of the 64 - 28 = 36 px range = 7.2 px per frame;
    # between bounces a rounded position moves 7 or 8 px, a bounce moves it less
    steps = np.abs(np.diff(moving))
    assert np.all(steps <= 8) and np.sum((steps == 7) | (steps == 8)) >= 6, steps
  two = bouncing_mnist.render_gif(rng, np.full((2, 14, 14), 0.7, np.float32), [0, 1], 3, 14)
  np.testing.assert_array_equal(two, 1.0)                    # 0.7 + 0.7 clipped to 1


def _np_lstm(p, carry, x):
  """One LSTM step: gates i, f, g, o = input kernels + hidden kernels and bias."""
  c, h = carry
  gate = lambda k: x @ p['i' + k]['kernel'] + h @ p['h' + k]['kernel'] + p['h' + k]['bias']
  sig = lambda v: 1 / (1 + np.exp(-v))
  i, f, g, o = sig(gate('i')), sig(gate('f')), np.tanh(gate('g')), sig(gate('o'))
  c = f * c + i * g
  return c, o * np.tanh(c)


def _np_banks(raw, size_a, size_b, k):
  """Eqs. 1-4 from the 5 numbers per frame [B, N, 5] (g~ through tanh; sigma^2, delta~, beta in
  log scale) -> F_p [B, N, K, A], F_q [B, N, K, B], beta [B, N]."""
  delta = (max(size_a, size_b) - 1) / (k - 1) * np.exp(raw[..., 3])
  sigma2 = np.exp(raw[..., 2])

  def bank(g, size):
    mu = g[..., None] + (np.arange(1, k + 1) - k / 2 - 0.5) * delta[..., None]   # Eqs. 1-2
    a = np.arange(1, size + 1)
    f = np.exp(-(a - mu[..., None]) ** 2 / (2 * sigma2[..., None, None]))       # Eqs. 3-4
    return f / np.maximum(f.sum(-1, keepdims=True), 1e-8)
  g_p = (size_a + 1) / 2 * (np.tanh(raw[..., 0]) + 1)
  g_q = (size_b + 1) / 2 * (np.tanh(raw[..., 1]) + 1)
  return bank(g_p, size_a), bank(g_q, size_b), np.exp(raw[..., 4])


def _np_step(p, carry, x, eps, read_n, write_n):
  """Eqs. 6-11 in NumPy. carry = ((c, h) enc, (c, h) dec, C^{t-1}) -> (carry, mu, logvar)."""
  enc, dec, canvas = carry
  b, n, size_a, size_b = x.shape
  dense = lambda name, v: v @ p[name]['kernel'] + p[name]['bias']
  x_hat = x - 1 / (1 + np.exp(-canvas))                                         # Eq. 6
  fp, fq, beta = _np_banks(dense('read_attention', dec[1]).reshape(b, n, 5), size_a, size_b,
                           read_n)                                              # from h_dec^{t-1}
  read = lambda v: beta[..., None, None] * np.einsum('znua,znab,znvb->znuv', fp, v, fq)  # Eq. 5
  r = [read(x).reshape(b, -1), read(x_hat).reshape(b, -1)]   # [read(x_i)]_i, [read(x^_i)]_i
  enc = _np_lstm(p['lstm_enc'], enc, np.concatenate(r + [dec[1]], -1))          # Eq. 7
  mu, logvar = dense('q_mu', enc[1]), dense('q_logvar', enc[1])
  dec = _np_lstm(p['lstm_dec'], dec, mu + np.exp(0.5 * logvar) * eps)           # Eqs. 8-9
  wp, wq, w_beta = _np_banks(dense('write_attention', dec[1]).reshape(b, n, 5), size_a, size_b,
                             write_n)                                           # from h_dec^t
  w = dense('write_window', dec[1]).reshape(b, n, write_n, write_n)
  write = np.einsum('znua,znuv,znvb->znab', wp, w, wq) / w_beta[..., None, None]  # Eq. 10
  return (enc, dec, canvas + write), mu, logvar                                 # Eq. 11


def test_recurrence_of_eqs_6_to_11_matches_numpy():
  """One step from a random state (LSTM states, canvas), and the T = 2 training pass from the
  zero state, of the module against _np_step with the same (random) parameters and noise."""
  kw = dict(frames=2, height=6, width=7, read_n=3, write_n=2, enc_size=5, dec_size=4, z_size=3)
  net, net2 = Net(steps=1, **kw), Net(steps=2, **kw)
  rng = np.random.default_rng(4)
  f32 = lambda t: jax.tree.map(lambda v: np.asarray(v, np.float32), t)
  shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((2, 2, 6, 7)), jax.random.key(1))
  params = f32(jax.tree.map(lambda a: 0.5 * rng.normal(size=a.shape), shapes))
  x = f32(rng.random((2, 2, 6, 7)))
  normal = lambda *shape: f32(rng.normal(size=shape))
  carry = ((normal(2, 5), normal(2, 5)), (normal(2, 4), normal(2, 4)), normal(2, 2, 6, 7))
  eps, key = normal(2, 3), jax.random.key(7)

  def run(params, carry, x, eps):
    noise = [jax.random.normal(jax.random.fold_in(key, t), (2, 3)) for t in range(2)]
    return (net.apply(params, carry, x, eps, method=Net.step), net2.apply(params, x, key),
            noise)
  (got_carry, got), got_pass, noise = jax.device_get(jax.jit(run)(params, carry, x, eps))
  p = jax.tree.map(lambda v: np.asarray(v, np.float64), params['params'])
  f64 = lambda t: jax.tree.map(lambda v: np.asarray(v, np.float64), t)
  want_carry, mu, logvar = _np_step(p, f64(carry), f64(x), f64(eps), 3, 2)
  check = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  jax.tree.map(check, got_carry, want_carry)
  check(got['mu'], mu)
  check(got['logvar'], logvar)
  zero = ((np.zeros((2, 5)),) * 2, (np.zeros((2, 4)),) * 2, np.zeros((2, 2, 6, 7)))
  state, mus = zero, []
  for t in range(2):
    state, mu, _ = _np_step(p, state, f64(x), f64(noise[t]), 3, 2)
    mus.append(mu)
  check(got_pass['canvas'], state[2])
  check(got_pass['mu'], np.stack(mus, 1))


def test_tokenize_pads_and_names_the_vocabulary():
  ids = bouncing_mnist.tokenize('The digit 3 is moving up and down.', 10)
  assert ids.shape == (10,) and ids[-2:].tolist() == [0, 0]
  assert bouncing_mnist.detokenize(ids) == 'the digit 3 is moving up and down'
  with pytest.raises(InputError, match=r"unknown word\(s\) \['flying'\].*left right up down"):
    bouncing_mnist.tokenize('the digit 3 is flying')
  with pytest.raises(InputError, match=r"unknown word\(s\) \['数字'\]"):
    bouncing_mnist.tokenize('数字')                  # not "empty": its word is not in the vocabulary


def test_alignment_weights_sum_to_one_and_skip_padding():
  net = Net(frames=2, height=12, width=12, steps=3, read_n=2, write_n=2, enc_size=8,
            dec_size=8, z_size=3, vocab_size=len(bouncing_mnist.VOCAB), embed_dim=4,
            lang_size=4, align_size=5)
  x = jnp.asarray(np.random.default_rng(0).random((2, 2, 12, 12)), jnp.float32)
  cap = jnp.asarray([bouncing_mnist.tokenize('the digit 3 is moving up and down', 10),
                     bouncing_mnist.tokenize('the digit 1 is moving', 10)])
  def init_apply():  # one compiled program
    params = net.init(jax.random.key(0), x, jax.random.key(1), cap)
    return net.apply(params, x, jax.random.key(1), cap)
  out = jax.jit(init_apply)()
  alpha = np.asarray(out['alpha'])                           # [B, T, L] (Eq. 13)
  assert alpha.shape == (2, 3, 10)
  np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-6)
  assert np.all(alpha[0, :, 8:] == 0) and np.all(alpha[1, :, 5:] == 0)
  assert np.all(alpha[1, :, :5] > 0)
  # Eq. 16: sigma_prior = exp(tanh(.)) lies in [1/e, e]; the first step's prior is N(0, I)
  sd = np.exp(0.5 * np.asarray(out['prior_logvar']))
  assert sd.min() >= np.exp(-1) - 1e-6 and sd.max() <= np.e + 1e-6
  np.testing.assert_allclose(out['prior_mu'][:, 0], 0.0, atol=1e-7)
  np.testing.assert_allclose(sd[:, 0], 1.0, rtol=1e-6)


def test_kl_of_eq16_equals_a_direct_gaussian_kl():
  rng = np.random.default_rng(1)
  b, t, z = 2, 3, 4
  out = {'canvas': jnp.zeros((b, 1, 2, 2)),
         'mu': rng.normal(size=(b, t, z)), 'logvar': rng.normal(size=(b, t, z)) * 0.5,
         'prior_mu': np.tanh(rng.normal(size=(b, t, z))),
         'prior_logvar': 2 * np.tanh(rng.normal(size=(b, t, z)))}
  _, _, kl = syncdraw.negative_elbo({k: jnp.asarray(v, jnp.float32) for k, v in out.items()},
                                    jnp.zeros((b, 1, 2, 2)))
  # direct: the integral of q log(q / p) over z on a fine grid, per dimension and step
  s_q, s_p = np.exp(0.5 * out['logvar']), np.exp(0.5 * out['prior_logvar'])
  grid = np.linspace(-12, 12, 20001)
  logpdf = lambda v, m, s: -0.5 * ((v - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))
  lq = logpdf(grid, out['mu'][..., None], s_q[..., None])
  lp = logpdf(grid, out['prior_mu'][..., None], s_p[..., None])
  integrand = np.exp(lq) * (lq - lp)   # trapezoid rule (np.trapezoid needs numpy 2)
  direct = ((integrand[..., 1:] + integrand[..., :-1]) * 0.5 * np.diff(grid)).sum((1, 2, 3))
  np.testing.assert_allclose(kl, direct, rtol=1e-4)
  # and Eq. 16 as printed, halved and with its constant -1 per dimension
  eq16 = 0.5 * (((out['mu'] - out['prior_mu']) ** 2 + s_q ** 2) / s_p ** 2
                - 2 * np.log(s_q / s_p) - 1).sum((1, 2))
  np.testing.assert_allclose(kl, eq16, rtol=1e-4)


def test_smoke_run_evaluates_elbo_adherence_and_figure(caption_run):
  config, workdir, results = caption_run
  assert results['num_examples'] == 16
  assert results['nelbo'] == pytest.approx(results['rec'] + results['kl'], rel=1e-5)
  assert results['kl'] >= 0 and results['rec'] > results['rec_floor'] > 0
  for k in ('adherence_digit', 'adherence_motion', 'adherence_both', 'classifier_digit_acc',
            'classifier_motion_acc'):
    assert 0.0 <= results[k] <= 1.0, k
  assert results['adherence_both'] <= min(results['adherence_digit'], results['adherence_motion'])
  saved = json.load(open(os.path.join(workdir, 'caption_adherence_4.json')))
  assert saved['num_generated'] == 10 * config.evals.captions.samples
  assert len(saved['per_caption']) == 10      # one unseen test caption per digit
  for text in saved['per_caption']:
    d = int(text.split()[2])
    assert ('up and down' in text) == (bouncing_mnist.split_motion(d, 'test') == 1)
  from PIL import Image
  png = np.asarray(Image.open(os.path.join(workdir, 'attention_4.png')))
  m = config.model
  assert png.shape == (m.steps * (m.size + 2), m.frames * (m.size + 2), 3)  # T x N cells
  red = (png[..., 0] == 255) & (png[..., 1] == 0) & (png[..., 2] == 0)
  assert red.any()                             # the write windows are drawn


def test_two_digit_caption_run_scores_adherence_per_named_digit(tmp_path_factory, data_dir):
  config = smoke_config(data_dir, 'syncdraw', 'smoke,captions,two_digit',
                        **{'train.sample_every': 0})
  from conftest import shared_run
  workdir, _, results = shared_run(tmp_path_factory, 'syncdraw_two_captions', config,
                                   evaluate=True)
  for k in ('digit_1', 'digit_2', 'motion_1', 'motion_2', 'both_1', 'both_2', 'all'):
    assert 0.0 <= results[f'adherence_{k}'] <= 1.0, k
  assert results['adherence_all'] <= min(results['adherence_both_1'], results['adherence_both_2'])
  saved = json.load(open(os.path.join(workdir, 'caption_adherence_4.json')))
  assert saved['num_generated'] == 100 * config.evals.captions.samples
  assert len(saved['per_caption']) == 100     # every ordered pair of test (digit, motion) pairs
  for text in saved['per_caption']:
    words = text.split()
    assert words.count('digit') == 2
    for i in (i for i, w in enumerate(words) if w == 'digit'):
      d = int(words[i + 1])
      motion = ' '.join(words[i + 4:i + 7])
      assert motion == bouncing_mnist.MOTIONS[bouncing_mnist.split_motion(d, 'test')]
  assert set(saved['per_digit']) == {str(d) for d in range(10)}
  assert 0.0 <= saved['classifier_all_acc'] <= saved['classifier_digit_acc'] <= 1.0


def test_score_two_finds_each_named_digit_among_the_top_two_and_reads_its_motion():
  from animgen.evaluators.captions import score_two
  presence = np.full((4, 10), -5.0)
  motion = np.zeros((4, 10, 2))
  # caption: digit 3 moving up and down (1) and digit 6 moving left and right (0)
  presence[0, [3, 6]] = 4.0                        # both present, both motions right
  motion[0, 3], motion[0, 6] = (0, 1), (1, 0)
  presence[1, [3, 1, 6]] = 4.0, 3.0, 2.0           # 6 only third most present
  motion[1, 3], motion[1, 6] = (0, 1), (1, 0)
  presence[2, [3, 6]] = 4.0                        # digit 3 moving the wrong way
  motion[2, 3], motion[2, 6] = (1, 0), (1, 0)
  presence[3, [8, 9]] = 4.0                        # neither; motions of absent digits ignored
  motion[3, 3], motion[3, 6] = (0, 1), (1, 0)
  s = score_two(presence, motion, np.array([3, 6]), np.array([1, 0]))
  np.testing.assert_array_equal(s['digit_1'], [True, True, True, False])
  np.testing.assert_array_equal(s['digit_2'], [True, False, True, False])
  np.testing.assert_array_equal(s['motion_1'], [True, True, False, True])
  np.testing.assert_array_equal(s['both_1'], [True, True, False, False])
  np.testing.assert_array_equal(s['both_2'], [True, False, True, False])
  np.testing.assert_array_equal(s['all'], [True, False, False, False])
  np.testing.assert_allclose(s['digit'], [1.0, 0.5, 1.0, 0.0])


def test_two_digit_classifier_labels_and_loss():
  from animgen.evaluators import captions as ev
  dc = bouncing_mnist.CONFIGS['two_digit_tiny']
  x, d, m = ev.render_batch(np.random.default_rng(0), dc, 'train', 64)
  assert x.shape == (64, dc.frames, dc.size, dc.size) and d.shape == m.shape == (64, 2)
  assert ((d[:, 0] != d[:, 1]) | (m[:, 0] == m[:, 1])).all()   # a class twice moves one way
  presence = np.full((1, 10), -30.0)
  presence[0, [2, 7]] = 30.0
  motion = np.zeros((1, 10, 2))
  motion[0, 2], motion[0, 7] = (30, -30), (-30, 30)
  exact = ev._classifier_loss((jnp.asarray(presence), jnp.asarray(motion)),
                              jnp.array([[2, 7]]), jnp.array([[0, 1]]))
  wrong = ev._classifier_loss((jnp.asarray(presence), jnp.asarray(motion)),
                              jnp.array([[2, 7]]), jnp.array([[1, 1]]))
  assert float(exact) < 1e-6 and float(wrong) > 10.0


def test_attention_grid_draws_the_window_where_the_parameters_say():
  canvases = np.zeros((1, 2, 20, 20))
  write = {'gp': np.array([[6.0, 15.0]]), 'gq': np.array([[6.0, 10.0]]),
           'delta': np.array([[2.0, 1.0]]), 'sigma2': np.ones((1, 2)), 'beta': np.ones((1, 2))}
  grid = syncdraw.attention_grid(canvases, write, k=3)
  red = (grid[..., 0] == 255) & (grid[..., 1] == 0)
  # frame 0: centres 4..8 in 1-based pixels -> rows/cols 3..7
  ys, xs = np.nonzero(red[:20, :20])
  assert (ys.min(), ys.max(), xs.min(), xs.max()) == (3, 7, 3, 7)
  ys, xs = np.nonzero(red[:20, 22:42])
  assert (ys.min(), ys.max(), xs.min(), xs.max()) == (13, 15, 8, 10)


def test_cuboid_model_shapes_and_generation():
  net = Net(frames=3, height=10, width=10, steps=2, read_n=2, write_n=2, enc_size=8,
            dec_size=8, z_size=3, cuboid=True)
  x = jnp.zeros((2, 3, 10, 10))
  def run():  # one compiled program
    params = net.init(jax.random.key(0), x, jax.random.key(1))
    r = jnp.ones((2, 3, 10, 10))
    return (net.apply(params, r, r, jnp.zeros((2, 8)), method=Net.read),
            net.apply(params, jax.random.key(2), 2, method=Net.generate))
  glimpse, gen = jax.jit(run)()
  assert glimpse.shape == (2, 2 * 2 ** 3)     # [x, X^] read as K x K x K each
  assert gen['canvases'].shape == (2, 2, 3, 10, 10) and gen['write']['gz'].shape == (2, 2)


def test_tgif_builder_reads_gifs_and_explains_the_layout(tmp_path):
  from animgen import media
  from animgen.datasets import tgif
  root = tmp_path / 'manual' / 'tgif'
  frames = np.zeros((6, 20, 40, 3), np.float32)
  for t in range(6):
    frames[t, 5:15, 4 * t:4 * t + 8] = 1.0                    # a white block moving right
  for split in ('train', 'test'):
    media.write_video(str(root / split / 'a.gif'), frames, fps=10)
  media.write_video(str(root / 'train' / 'short.gif'), frames[:2], fps=10)   # < 4 frames
  data_dir = str(tmp_path / 'tfds')
  b = tgif.Tgif(data_dir=data_dir, config='tiny', file_format='array_record')
  import tensorflow_datasets as tfds
  b.download_and_prepare(file_format='array_record', download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path / 'manual')))
  src = b.as_data_source(split='train')
  assert len(src) == 1                                        # the short GIF was skipped
  gif = np.asarray(src[0]['frames'])
  assert gif.shape == (4, 32, 32, 1)
  # 20 x 40 padded to 40 x 40 (rows 10..30) and resized to 32: top and bottom rows stay black
  assert gif[:, :6].max() == 0 and gif[:, -6:].max() == 0 and gif.max() > 200
  cols = [np.nonzero(f[..., 0].max(0) > 128)[0].mean() for f in gif]
  assert np.all(np.diff(cols) > 0)                           # frames kept in their order
  bad = tgif.Tgif(data_dir=data_dir + '2', config='tiny', file_format='array_record')
  with pytest.raises(InputError, match=r'tgif/train/\*\.gif'):
    bad.download_and_prepare(file_format='array_record',
                             download_config=tfds.download.DownloadConfig(
                                 manual_dir=str(tmp_path / 'missing')))


def test_sample_cli(caption_run, tmp_path):
  _, workdir, _ = caption_run
  out = str(tmp_path / 'cap.gif')
  r = run_cli(['-m', 'animgen.cli', 'sample', '--workdir', workdir, '--caption',
               'the digit 3 is moving up and down', '-o', out, '--num', '2',
               '--attention', str(tmp_path / 'att.png')])
  assert r.returncode == 0, r.stderr[-2000:]
  from animgen import media
  video, _ = media.read_video(out)
  assert video.shape[1:3] == (32, 64)                        # two 32 x 32 GIFs side by side
  assert os.path.getsize(tmp_path / 'att.png') > 100
  bad = run_cli(['-m', 'animgen.cli', 'sample', '--workdir', workdir, '--caption',
                 'the digit 3 is flying', '-o', out])
  assert bad.returncode == 2
  line = bad.stderr.strip().splitlines()[-1]
  assert "unknown word(s) ['flying']" in line and 'moving' in line
  prior = run_cli(['-m', 'animgen.cli', 'sample', '--workdir', workdir, '-o', out])
  lines = prior.stderr.strip().splitlines()
  assert prior.returncode == 2 and len(lines) == 1 and 'trained with captions' in lines[0], lines


def test_eight_devices_equal_one(tmp_path, data_dir):
  outs = one_step_on_devices(tmp_path, data_dir,
                             [('', 'syncdraw', 'smoke', {'model.captions': True})])
  a, b = outs[1], outs[8]
  for k in ('loss', 'loss_rec', 'loss_kl', 'grad_norm'):
    np.testing.assert_allclose(a['metric/' + k], b['metric/' + k], rtol=1e-5)
  checked = 0
  for k in a.files:
    if k == 'n' or k.startswith('metric/'):
      continue
    if '.params' in k:  # Adam's first step moves each weight by ~lr * sign(g)
      np.testing.assert_allclose(a[k], b[k], atol=2e-3 + 1e-6, err_msg=k)
    else:               # Adam moments (the gradients) and the step
      np.testing.assert_allclose(a[k], b[k], rtol=1e-3,
                                 atol=1e-3 * float(np.abs(a[k]).max()) + 1e-12, err_msg=k)
    checked += 1
  assert checked > 30
