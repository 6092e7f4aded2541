"""Animating Landscape claims that fail when the code is wrong: Algorithm 1 against a NumPy
re-expression of the official test.py loop on a spatially varying flow, z steering the motion and
training lowering the flow EPE on a tiny synthetic wind problem (Algorithm 2), the motion
codebook against scikit-learn, the per-clip common motion fields, and the gradients of the
full-size predictor's last convolution."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import ndimage

from animgen import animate
from animgen.methods import landscape_common, landscape_motion
from animgen.models import layers
from animgen.models.landscape import Predictor
from animgen.ops import conv, warp
from conftest import smoke_config


# ----------------------------------------------------------------------------- Algorithm 1
ALG1_SIZE, ALG1_PAD = 16, 4          # network size S, grid pad S / 4 -> grid P = 24
ALG1_H, ALG1_W = 37, 53              # photo pads int(4 * 37 / 16) = 9, int(4 * 53 / 16) = 13


def _stand_in_flow(frame, xp):
  """A stand-in P^M: rotation and shear about the centre plus a term in the frame's brightness,
  so that each step's flow differs and corr_{t-1} o (id + B_t) != (id + B_t) o corr_{t-1}.
  frame [1, S, S, 3] in [-1, 1] -> backward flow [1, S, S, 2] in normalised units."""
  g = xp.linspace(-1.0, 1.0, frame.shape[1])
  x, y = g[None, :], g[:, None]
  lum = frame[0].mean(-1)
  fx = 0.05 * -y + 0.02 * x * y + 0.03 * lum
  fy = 0.05 * x - 0.02 * x * x + 0.03 * lum
  return xp.stack([fx, fy], -1)[None]


def _textured_photo():
  rng = np.random.default_rng(4)
  ys, xs = np.mgrid[0:ALG1_H, 0:ALG1_W].astype(np.float64)
  base = 0.5 + 0.35 * np.sin(xs / 2.7 + ys / 4.3)[..., None] * np.array([1.0, -0.7, 0.5])
  base += 0.08 * rng.normal(size=base.shape)
  return np.clip(np.round(255 * base), 0, 255).astype(np.uint8)


def _grid_sample(img, grid):
  """torch grid_sample, bilinear, align_corners=True, padding border: img [H, W, C] at the
  normalised (x, y) grid [h, w, 2] -> [h, w, C]."""
  h, w = img.shape[:2]
  px = (grid[..., 0] + 1.0) * 0.5 * (w - 1)
  py = (grid[..., 1] + 1.0) * 0.5 * (h - 1)
  return np.stack([ndimage.map_coordinates(img[..., c], [py, px], order=1, mode='nearest')
                   for c in range(img.shape[-1])], -1)


def _lerp_matrix(n_out, n_in, align_corners):
  """[n_out, n_in] linear interpolation weights: align_corners=True (F.upsample) or half-pixel
  centres clamped at the edges (cv2.resize INTER_LINEAR)."""
  if align_corners:
    src = np.arange(n_out) * (n_in - 1) / max(n_out - 1, 1)
  else:
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
  lo = np.minimum(np.floor(src).astype(int), n_in - 2)
  m = np.zeros((n_out, n_in))
  m[np.arange(n_out), lo] += 1.0 - (src - lo)
  m[np.arange(n_out), lo + 1] += src - lo
  return m


def _resize(img, h, w, align_corners):
  return np.einsum('ih,jw,hwc->ijc', _lerp_matrix(h, img.shape[0], align_corners),
                   _lerp_matrix(w, img.shape[1], align_corners), img)


def _reflect(a, ph, pw):
  return np.pad(a, ((ph, ph), (pw, pw), (0, 0)), mode='reflect')


def reference_motion(photo_u8, num_frames, speed, swap_order=False):
  """The official test.py motion loop, step by step, in float64 NumPy -> (frames uint8
  [T, H, W, 3], speed * flows [T, S, S, 2]). swap_order composes (id + B_t) at corr_{t-1}."""
  s, pad = ALG1_SIZE, ALG1_PAD
  p = s + 2 * pad
  h, w = photo_u8.shape[:2]
  small = np.round(_resize(photo_u8.astype(np.float64), s, s, False)) / 127.5 - 1.0
  padded_small = _reflect(small, pad, pad)
  ph, pw = int(pad * h / float(s)), int(pad * w / float(s))
  photo = _reflect(photo_u8.astype(np.float64) / 127.5 - 1.0, ph, pw)
  hp, wp = photo.shape[:2]
  identity = np.stack(np.meshgrid(np.linspace(-1, 1, p), np.linspace(-1, 1, p)), -1)
  frame, corr, frames, flows = small, None, [], []
  for t in range(num_frames):
    raw = _stand_in_flow(frame[None], np)[0]              # P^M on the unpadded S x S frame
    flows.append(speed * raw)
    new = identity + _reflect(raw * (s / p), pad, pad) * speed
    if t == 0:
      corr = new
    elif swap_order:
      corr = _grid_sample(new, corr)
    else:
      corr = _grid_sample(corr, new)                      # corr_t = corr_{t-1} at (id + B_t)
    out = _grid_sample(photo, _resize(corr, hp, wp, True))[ph:hp - ph, pw:wp - pw]
    frames.append(np.clip((out + 1.0) * 127.5, 0, 255).astype(np.uint8))   # truncation
    frame = _grid_sample(padded_small, corr)[pad:pad + s, pad:pad + s]
  return np.stack(frames), np.stack(flows)


def _agreement(a, b):
  """(fraction of values within one grey level, mean |difference| in grey levels)."""
  d = np.abs(a.astype(np.int16) - b.astype(np.int16))
  return float(np.mean(d <= 1)), float(d.mean())


def test_algorithm1_equals_a_numpy_reference_on_a_spatially_varying_flow():
  photo, frames_n, speed = _textured_photo(), 8, 0.9
  ours, flows = animate.animate_motion(lambda x, z: _stand_in_flow(x, jnp), photo,
                                       np.zeros(8, np.float32), ALG1_SIZE, frames_n, speed=speed,
                                       progress=False)
  want, want_flows = reference_motion(photo, frames_n, speed)
  assert ours.shape == want.shape == (frames_n, ALG1_H, ALG1_W, 3)
  # P^M saw the same network inputs at every step (its flow depends on the frame)
  np.testing.assert_allclose(flows, want_flows, atol=1e-6)
  within, mean = _agreement(ours, want)
  assert within >= 0.999 and mean < 0.01, (within, mean)     # measured: 100 %, 0.0001 levels
  # the motion is large (last frame vs photo: 58 grey levels on average; frame 0: 18) ...
  assert _agreement(ours[-1], photo)[1] > 20.0
  # ... and the flow non-uniform enough that the swapped composition order is far off: 50 x
  # the mean difference allowed above (measured: 71 % within one level, 1.8 levels mean)
  swapped, _ = reference_motion(photo, frames_n, speed, swap_order=True)
  within_swapped, mean_swapped = _agreement(ours, swapped)
  assert within_swapped < 0.9 and mean_swapped > 0.5, (within_swapped, mean_swapped)


# ----------------------------------------------------------------------------- Algorithm 2
WIND_SIZE = 16          # frames and encoder input at 16 x 16
WIND_BETA = 1.0 / 16.0  # flows up to 1/16 (0.47 px at 16 px), so that a 0.28 px wind fits
WIND = 0.6 * WIND_BETA  # backward flow in x: clip 0 -WIND (content moves right), clip 1 +WIND
WIND_STEPS = 400


def _wind_config(tmp, **overrides):
  return smoke_config(str(tmp), **{'image_size': WIND_SIZE, 'model.encoder_size': WIND_SIZE,
                                   'model.beta': WIND_BETA, **overrides})


def _textures(rng, n):
  """n smooth random RGB images [n, S, S, 3] in [-1, 1] (Gaussian low-pass noise)."""
  f = np.fft.fftfreq(WIND_SIZE)
  lowpass = np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.08 ** 2))[None, :, :, None]
  noise = np.fft.fft2(rng.normal(size=(n, WIND_SIZE, WIND_SIZE, 3)), axes=(1, 2))
  x = np.real(np.fft.ifft2(noise * lowpass, axes=(1, 2)))
  return np.clip(0.45 * x / x.std(), -1.0, 1.0)


def _wind_batch(rng, winds, clip_ids=None):
  """Pairs (I_t, I_t warped by a uniform backward flow (wind, 0)) of fresh textures: the image
  says nothing about the wind, only the clip does. Frames uint8; 'flow' in pixels."""
  img = _textures(rng, len(winds))
  flow = np.zeros(img.shape[:3] + (2,), np.float32)
  flow[..., 0] = np.asarray(winds, np.float32)[:, None, None]
  nxt = np.asarray(warp.backward_warp(jnp.asarray(img, jnp.float32), jnp.asarray(flow)))
  u8 = lambda a: np.clip(np.round((a + 1.0) * 127.5), 0, 255).astype(np.uint8)
  batch = {'frames': np.stack([u8(img), u8(nxt)], 1),
           'flow': np.asarray(warp.normalised_to_pixels(flow, WIND_SIZE, WIND_SIZE))}
  if clip_ids is not None:
    batch['clip_id'] = np.asarray(clip_ids, np.int32)
  return batch


@pytest.fixture(scope='module')
def wind_run(tmp_path_factory):
  """Algorithm 2 from zero common motion fields on two clips of opposite wind, every step a
  batch of both clips on new textures, seeded -> (method, initial state, trained state)."""
  method = landscape_motion.LandscapeMotion(_wind_config(tmp_path_factory.mktemp('wind')), 2)
  rng = np.random.default_rng(0)
  step = jax.jit(method.train_step)
  first = state = jax.jit(method.init)(jax.random.key(0), None)
  for _ in range(WIND_STEPS):
    batch = _wind_batch(rng, [-WIND, WIND], [0, 1])
    del batch['flow']                                    # training sees frames and clips only
    state, _ = step(state, batch, None)
  return method, first, state


def test_the_clip_codes_steer_the_motion(wind_run):
  """z^M = E^M(common motion field) of each clip (the codebook's codes) turns the same input
  frames' flow towards that clip's wind."""
  method, _, state = wind_run
  codes = method.clip_codes(state)                       # [2, Z]
  frames = _wind_batch(np.random.default_rng(1), [0.0] * 4)['frames'][:, 0]
  x = landscape_common.to_signed(jnp.asarray(frames))
  predict = jax.jit(method.predict)
  mean_x = [float(predict(state.params, x, jnp.broadcast_to(c, (4, c.shape[0])))[..., 0].mean())
            for c in codes]
  # The wind is -/+ 0.6 beta (measured after 400 steps: -0.57, +0.58 beta). A predictor that
  # ignores z gives both codes the same flow (difference 0; mean wind 0).
  assert mean_x[0] < -0.3 * WIND_BETA and mean_x[1] > 0.3 * WIND_BETA, mean_x
  assert mean_x[1] - mean_x[0] > WIND, mean_x


def test_training_lowers_the_flow_epe_below_zero_flow(wind_run):
  """The official metric (eval_step: z = E^M(ground-truth flow), EPE in pixels) on new textures
  with both winds, after Algorithm 2 and before it."""
  method, first, state = wind_run
  batch = _wind_batch(np.random.default_rng(2), [-WIND, WIND] * 4)
  evaluate = jax.jit(method.eval_step)
  out = {k: float(np.mean(v)) for k, v in evaluate(state, batch, None).items()}
  before = float(np.mean(evaluate(first, batch, None)['flow_epe']))
  zero_px = WIND * (WIND_SIZE - 1) / 2
  np.testing.assert_allclose(out['flow_epe_zero'], zero_px, rtol=1e-5)    # 0.28 px
  # Margin: at most 0.3 x the zero-flow EPE (measured 0.04 x: 0.012 px against 0.28 px; the
  # untrained model: 1.02 x; PSNR 55.5 dB against 33.6 dB for the unwarped frame).
  assert out['flow_epe'] < 0.3 * out['flow_epe_zero'], (out, before)
  assert before > 0.5 * out['flow_epe_zero']
  assert out['psnr'] > out['psnr_zero']


# ----------------------------------------------------------------------------- codebook
def _blobs(seed=0):
  """Codes in 6 tight clusters at known positions along a direction d (shuffled) -> (codes
  [120, 8] float32, cluster means [6, 8], their positions along d [6], d)."""
  rng = np.random.default_rng(seed)
  d = rng.normal(size=8)
  d /= np.linalg.norm(d)
  pos = np.array([2.5, -5.0, 0.5, 4.0, -3.0, -1.0])
  labels = np.repeat(np.arange(6), 20)
  codes = (pos[labels, None] * d + 0.05 * rng.normal(size=(120, 8))).astype(np.float32)
  order = rng.permutation(120)
  codes, labels = codes[order], labels[order]
  means = np.stack([codes[labels == j].astype(np.float64).mean(0) for j in range(6)])
  return codes, means, pos, d


def test_codebook_is_sklearn_kmeans_sorted_by_the_first_principal_component():
  from sklearn.cluster import KMeans
  from sklearn.decomposition import PCA
  codes, means, pos, d = _blobs()
  art = landscape_motion.codebook_artefact(codes, max_codes=6, seed=3, step=17)
  book = art['codes']
  assert book.shape == (6, 8) and book.dtype == np.float32
  np.testing.assert_array_equal(art['clip_codes'], codes)
  assert int(art['step']) == 17
  # the centres are the cluster means, in the order of their positions along d (either way)
  want = means[np.argsort(pos)]
  if np.dot(book[-1] - book[0], d) < 0:
    want = want[::-1]
  np.testing.assert_allclose(book, want, atol=1e-5)
  # scikit-learn: the same KMeans centres (as a set), sorted by its PCA's first component
  raw = KMeans(n_clusters=6, n_init=10, random_state=3).fit(codes).cluster_centers_
  match = [int(np.argmin(np.linalg.norm(raw - row, axis=1))) for row in book]
  assert sorted(match) == list(range(6))
  np.testing.assert_allclose(book, raw[match], atol=1e-5)
  proj = PCA(n_components=1, random_state=3).fit(raw).transform(book)[:, 0]
  assert np.all(np.diff(proj) > 0)
  # KMeans alone returns them in another order: the sorting is what orders them
  along = raw @ d
  assert not (np.all(np.diff(along) > 0) or np.all(np.diff(along) < 0))
  # at most as many centres as distinct codes
  few = np.repeat(means[:3].astype(np.float32), 4, axis=0)
  small = landscape_motion.build_codebook(few, max_codes=100)
  assert small.shape == (3, 8)
  np.testing.assert_allclose(np.sort(small @ d), np.sort(means[:3] @ d), atol=1e-5)


def test_common_motion_fields_are_stored_at_the_clip_index(tmp_path):
  """Alg. 2, lines 10 and 14: each example's code comes from its own clip's field, and its
  predicted flow overwrites that row only."""
  method = landscape_motion.LandscapeMotion(_wind_config(tmp_path, **{'model.beta': 1 / 64}), 6)
  state = jax.jit(method.init)(jax.random.key(0), None)
  fields = 0.02 * jax.random.normal(jax.random.key(1), state.motion_fields.shape)
  state = state.replace(motion_fields=fields)
  ids = [4, 1, 3]
  batch = _wind_batch(np.random.default_rng(3), [0.0, WIND, -WIND], ids)
  del batch['flow']
  new, _ = jax.jit(method.train_step)(state, batch, None)
  changed = np.flatnonzero(np.any(np.asarray(new.motion_fields != fields), axis=(1, 2, 3)))
  assert sorted(changed) == sorted(ids)
  i_t = landscape_common.to_signed(jnp.asarray(batch['frames'][:, 0]))

  @jax.jit
  def flows(rows):     # P^M before the update, z = E^M(fields[rows]) with batch statistics
    mu = landscape_common.encode_dist(method.encoder, WIND_SIZE, state.params,
                                      state.batch_stats, fields[rows], True)[0]
    return method.predict(state.params, i_t, mu)

  want = np.asarray(flows(jnp.asarray(ids)))
  # measured: within 1.2e-8 of flows up to 0.008
  np.testing.assert_allclose(new.motion_fields[np.asarray(ids)], want, rtol=1e-4, atol=1e-8)
  # the test tells rows apart: other clips' fields (measured 0.0056), the same clips' fields in
  # another order (0.004) or another example's flow (0.009) differ by over 100 x the tolerance
  for rows in ([0, 2, 5], [1, 4, 3]):
    assert np.abs(np.asarray(flows(jnp.asarray(rows))) - want).max() > 1e-4
  assert np.abs(want[0] - want[1]).max() > 1e-4


# ----------------------------------------------------------------------------- last layer
@pytest.mark.parametrize('out_channels', [2, 6])    # P^M's flow, P^A's colour-transfer maps
def test_full_size_last_layer_kernel_has_the_plain_convs_gradients(monkeypatch, out_channels):
  """At the paper's 256 px and widths the last up-convolution (nearest x2, reflect pad 2, 5x5
  conv of 256 channels to 2 or 6) runs as ops.conv.upsample_conv_reflect_small_out; its
  gradients at that layer's channels equal XLA's convolution's and finite differences.
  (tests/test_conv.py checks the same kernel at 50 input channels.)"""
  calls = []
  real = layers.upsample_conv_reflect_small_out

  def recorder(x, kernel, bias, pad):
    calls.append((x.shape, kernel.shape, pad))
    return real(x, kernel, bias, pad)

  monkeypatch.setattr(layers, 'upsample_conv_reflect_small_out', recorder)
  net = Predictor(out_channels=out_channels, beta=None)
  x = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  z = jax.ShapeDtypeStruct((1, 8), jnp.float32)
  variables = jax.eval_shape(net.init, jax.random.key(0), x, z)
  calls.clear()
  jax.eval_shape(net.apply, variables, x, z)
  assert calls == [((1, 128, 128, 256), (5, 5, 256, out_channels), 2)]

  jax.config.update('jax_enable_x64', True)
  try:
    rng = np.random.default_rng(out_channels)
    args = (jnp.asarray(rng.normal(size=(2, 5, 7, 256))),
            jnp.asarray(rng.normal(size=(5, 5, 256, out_channels)) / 40),
            jnp.asarray(rng.normal(size=(out_channels,))))
    fast = lambda x, k, b: conv.upsample_conv_reflect_small_out(x, k, b, 2)

    def plain(x, k, b):   # nearest x2, reflect pad 2, jax.lax.conv_general_dilated
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
      x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect')
      return jax.lax.conv_general_dilated(x, k, (1, 1), 'VALID',
                                          dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + b

    y, vjp = jax.vjp(fast, *args)
    y_ref, vjp_ref = jax.vjp(plain, *args)
    assert y.shape == (2, 10, 14, out_channels)
    np.testing.assert_allclose(y, y_ref, atol=1e-12)
    g = jnp.asarray(rng.normal(size=y.shape))
    for a, b in zip(vjp(g), vjp_ref(g)):
      np.testing.assert_allclose(a, b, atol=1e-10)
    check_grads(fast, args, order=1, modes=['rev'])
  finally:
    jax.config.update('jax_enable_x64', False)
