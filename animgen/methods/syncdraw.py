"""Sync-DRAW (Mittal et al. 2017): training, test-set ELBO, sampling, the Fig. 4 visualisation
and the caption-adherence evaluation.

Loss (Sec. 3.3, Eq. 15): the binary cross-entropy of sigmoid(C^T) against the GIF X, summed over
pixels and frames, plus the KL of Q(Z^t | h_enc^t) from the prior summed over the T steps; the
prior is N(0, I), or Eq. 16's caption-conditioned Gaussian. Both in nats per GIF; their sum is
the negative ELBO that evaluation reports on the test split. Adam 1e-3, beta1 0.5, beta2 0.999,
gradients clipped at 10 (Sec. 4).

Caption adherence (ours; the paper shows samples only): a small classifier of digit and motion,
trained on freshly rendered single-digit GIFs of every (digit, motion) pair from the training
digit images (so it cannot learn the training split's digit -> motion pairing), tested on GIFs
from the test digit images; then applied to GIFs generated from the test split's captions,
whose (digit, motion) pairs the caption model never saw (Sec. 4.5).
"""
import json
import os

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen.datasets import bouncing_mnist
from animgen.errors import InputError
from animgen.models.syncdraw import SyncDRAW as SyncDRAWNet
from animgen.ops import filterbank as fb
from animgen.ops import losses


@flax.struct.dataclass
class SyncDRAWState:
  step: jax.Array
  params: dict
  opt_state: optax.OptState


def to_unit(frames_uint8):
  """uint8 [B, N, H, W, 1] -> float [B, N, H, W] in [0, 1] (footnote 2: GIFs in [0, 1])."""
  return frames_uint8[..., 0].astype(jnp.float32) / 255.0


def to_rgb(frames):
  """[..., N, H, W] in [0, 1] -> [..., N, H, W, 3] for GIF writers."""
  return jnp.repeat(frames[..., None], 3, axis=-1)


def negative_elbo(out, x):
  """Eq. 15 (and Eq. 16 with captions) per GIF -> (loss [B], reconstruction [B], KL [B]).

  KL(Q || P) per step is the exact Gaussian KL, 0.5 sum(log s_p^2 - log s^2 + (s^2 + (mu -
  mu_p)^2) / s_p^2 - 1): with P = N(0, I) it is Eq. 15 with its constant -T/2 per dimension
  (the public code's constant was wrong), with Eq. 16's prior it is Eq. 16 halved and with its
  constant (the printed Eq. 16 leaves out both)."""
  rec = jnp.sum(losses.bce_with_logits(out['canvas'], x), axis=(1, 2, 3))
  kl = jnp.sum(losses.gaussian_kl_pair(out['mu'], out['logvar'], out['prior_mu'],
                                       out['prior_logvar']), axis=-1)
  return rec + kl, rec, kl


def binary_entropy(x):
  """Sum over pixels of H(x): the smallest reconstruction term a model can reach on soft
  targets (grey values in [0, 1] are not binary), [B, N, H, W] -> [B]."""
  xl = jnp.clip(x, 1e-7, 1 - 1e-7)
  h = -(xl * jnp.log(xl) + (1 - xl) * jnp.log1p(-xl))
  return jnp.sum(jnp.where((x > 0) & (x < 1), h, 0.0), axis=(1, 2, 3))


class GifClassifier(nn.Module):
  """Digit (10) and motion (2) of a single-digit GIF [B, N, H, W] (frames as channels)."""

  @nn.compact
  def __call__(self, x):
    h = jnp.moveaxis(x, 1, -1)
    for width in (32, 64, 64):
      h = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2))(h))
    h = nn.relu(nn.Dense(128)(h.reshape(h.shape[0], -1)))
    return nn.Dense(10)(h), nn.Dense(2)(h)


class SyncDRAW:
  """Sync-DRAW, its caption model (model.captions) and the cuboid baseline (model.cuboid)."""

  def __init__(self, config, num_train: int = 0):
    del num_train
    self.config = config
    m = config.model
    self.captions = bool(m.captions)
    self.net = SyncDRAWNet(
        frames=m.frames, height=m.size, width=m.size, steps=m.steps, read_n=m.read_n,
        write_n=m.write_n, enc_size=m.enc_size, dec_size=m.dec_size, z_size=m.z_size,
        cuboid=bool(m.cuboid), vocab_size=len(bouncing_mnist.VOCAB) if self.captions else 0,
        embed_dim=m.embed_dim, lang_size=m.lang_size, align_size=m.align_size,
        dtype=jnp.dtype(config.get('dtype', 'float32')))
    o = config.optim
    # Sec. 4: Adam(1e-3, 0.5, 0.999), gradients clipped at 10.0 (as a global norm; the public
    # code clipped each tensor's norm at 5).
    self.tx = optax.chain(optax.clip_by_global_norm(o.grad_clip),
                          optax.adam(o.learning_rate, b1=o.b1, b2=o.b2))
    self.generate_jit = jax.jit(self.generate, static_argnums=2)

  # ---------------------------------------------------------------- data
  def make_example(self, record, rng, train):
    del rng, train
    frames = np.asarray(record['frames'])
    m = self.config.model
    if frames.shape != (m.frames, m.size, m.size, 1):
      raise InputError(f'{self.config.dataset} holds GIFs of shape {frames.shape}; the model '
                       f'expects ({m.frames}, {m.size}, {m.size}, 1): set --config.model.frames '
                       'and --config.model.size to match')
    ex = {'frames': frames}
    if self.captions:
      if 'caption' not in record:
        raise InputError(f'{self.config.dataset} has no captions: the caption model needs '
                         'bouncing_mnist')
      ex['caption'] = np.asarray(record['caption'], np.int32)
    for k in ('digits', 'motions'):
      if k in record:
        ex[k] = np.asarray(record[k], np.int32)
    return ex

  # ---------------------------------------------------------------- steps
  def init(self, rng, batch):
    m = self.config.model
    x = jnp.zeros((1, m.frames, m.size, m.size))
    cap = jnp.ones((1, m.caption_length), jnp.int32) if self.captions else None
    params = self.net.init(rng, x, rng, cap)['params']
    return SyncDRAWState(step=jnp.zeros((), jnp.int32), params=params,
                         opt_state=self.tx.init(params))

  def _forward(self, params, batch, rng):
    x = to_unit(batch['frames'])
    out = self.net.apply({'params': params}, x, rng, batch['caption'] if self.captions else None)
    return out, x

  def loss(self, params, batch, rng):
    out, x = self._forward(params, batch, rng)
    total, rec, kl = negative_elbo(out, x)
    loss = jnp.mean(total)
    return loss, {'loss': loss, 'loss_rec': jnp.mean(rec), 'loss_kl': jnp.mean(kl)}

  def train_step(self, state, batch, rng):
    (_, metrics), grads = jax.value_and_grad(self.loss, has_aux=True)(state.params, batch, rng)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    metrics['grad_norm'] = optax.tree.norm(grads)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                         opt_state=opt_state), metrics

  def eval_step(self, state, batch):
    """Per GIF: the negative ELBO (nats; one posterior sample) with its reconstruction and KL
    parts, and the reconstruction floor sum H(x) of the soft targets."""
    out, x = self._forward(state.params, batch, jax.random.key(1234))
    total, rec, kl = negative_elbo(out, x)
    return {'nelbo': total, 'rec': rec, 'kl': kl, 'rec_floor': binary_entropy(x)}

  # ---------------------------------------------------------------- generation
  def caption_tokens(self, text: str) -> np.ndarray:
    if not self.captions:
      raise InputError('this run was trained without captions: train one with '
                       'configs/syncdraw.py:captions, or sample without --caption')
    return bouncing_mnist.tokenize(text, self.config.model.caption_length)

  def generate(self, params, rng, num: int, tokens=None):
    """Sec. 3.4: num GIFs from the prior (or the caption's tokens [L]) -> dict of
    'canvases' (logits [num, T, N, H, W]), 'write' params, 'alpha' (captions)."""
    cap = None
    if tokens is not None:
      cap = jnp.broadcast_to(jnp.asarray(tokens, jnp.int32), (num, len(tokens)))
    return self.net.apply({'params': params}, rng, num, cap, method=SyncDRAWNet.generate)

  def sample(self, state, batch, rng):
    """GIFs from the prior, and from the batch's captions with the caption model."""
    b = batch['frames'].shape[0]
    if self.captions:
      cap = batch['caption']
      out = self.net.apply({'params': state.params}, rng, b, cap, method=SyncDRAWNet.generate)
      return {'caption': to_rgb(jax.nn.sigmoid(out['canvases'][:, -1]))}
    out = self.net.apply({'params': state.params}, rng, b, method=SyncDRAWNet.generate)
    return {'prior': to_rgb(jax.nn.sigmoid(out['canvases'][:, -1]))}

  def attention_figure(self, params, rng, tokens=None, path_png=None, path_gif=None):
    """Fig. 4: the canvas sigmoid(C^t) of every frame (columns) at every step (rows) with the
    write attention window drawn; optionally written as a PNG (grid) and a GIF (one step per
    frame). Returns the grid uint8 [T * (H + 2), N * (W + 2), 3]."""
    out = jax.device_get(self.generate_jit(params, rng, 1, tokens))
    grid = attention_grid(np.asarray(jax.nn.sigmoid(out['canvases'][0])),
                          {k: np.asarray(v[0]) for k, v in out['write'].items()},
                          self.config.model.write_n, bool(self.config.model.cuboid))
    from animgen import media
    if path_png:
      media.write_image(path_png, grid)
    if path_gif:
      t = self.config.model.steps
      media.write_video(path_gif, grid.reshape(t, grid.shape[0] // t, *grid.shape[1:]), fps=2)
    return grid

  # ---------------------------------------------------------------- evaluation extras
  def evaluate_sequences(self, state, workdir, step):
    """Writes the Fig. 4 visualisation; with captions on single-digit bouncing MNIST, runs the
    caption-adherence evaluation (caption_adherence_<step>.json) and returns its shares."""
    rng = jax.random.key(self.config.seed + 7)
    self.attention_figure(state.params, rng, self._figure_tokens(),
                          os.path.join(workdir, f'attention_{int(step)}.png'),
                          os.path.join(workdir, f'attention_{int(step)}.gif'))
    if not self.captions or not self.config.dataset.startswith('bouncing_mnist/single_digit'):
      return {}
    result = self.caption_adherence(state.params, workdir, step)
    return {k: v for k, v in result.items() if isinstance(v, float)}

  def _figure_tokens(self):
    """The caption drawn in Fig. 4 for caption models: an unseen test caption of digit 3."""
    if not self.captions:
      return None
    n = self.config.model.caption_length // 8
    digits = [3, 6][:n]
    return self.caption_tokens(bouncing_mnist.caption_text(
        digits, [bouncing_mnist.split_motion(d, 'test') for d in digits]))

  def _dataset_config(self):
    name = self.config.dataset.split('/', 1)[1]
    return bouncing_mnist.CONFIGS[name]

  def caption_adherence(self, params, workdir, step):
    """Share of GIFs generated from each unseen test caption whose digit, motion, and both,
    the classifier finds as the caption says; with the classifier's own test accuracy."""
    e = self.config.eval
    dc = self._dataset_config()
    clf_params, acc = train_classifier(dc, e.classifier_steps, e.classifier_batch,
                                       self.config.seed, e.classifier_test_gifs)
    classify = jax.jit(lambda x: GifClassifier().apply({'params': clf_params}, x))
    gen = lambda r, tok: jax.nn.sigmoid(
        self.generate_jit(params, r, e.adherence_samples, tok)['canvases'][:, -1])
    per_caption, gifs = {}, []
    hits = {'digit': 0, 'motion': 0, 'both': 0}
    n = 0
    for d in range(10):
      m = bouncing_mnist.split_motion(d, 'test')
      text = bouncing_mnist.caption_text([d], [m])
      video = gen(jax.random.key(self.config.seed * 100 + d), self.caption_tokens(text))
      ld, lm = classify(video)
      pd, pm = np.asarray(jnp.argmax(ld, -1)), np.asarray(jnp.argmax(lm, -1))
      ok_d, ok_m = pd == d, pm == m
      per_caption[text] = {'digit': float(ok_d.mean()), 'motion': float(ok_m.mean()),
                           'both': float((ok_d & ok_m).mean())}
      hits['digit'] += int(ok_d.sum())
      hits['motion'] += int(ok_m.sum())
      hits['both'] += int((ok_d & ok_m).sum())
      n += len(pd)
      gifs.append(np.asarray(video[:4]))
    result = {'adherence_digit': hits['digit'] / n, 'adherence_motion': hits['motion'] / n,
              'adherence_both': hits['both'] / n,
              'classifier_digit_acc': acc['digit'], 'classifier_motion_acc': acc['motion'],
              'num_generated': n, 'per_caption': per_caption}
    path = os.path.join(workdir, f'caption_adherence_{int(step)}.json')
    with open(path + '.tmp', 'w') as f:
      json.dump(result, f, indent=1)
    os.replace(path + '.tmp', path)
    # one row per test caption, 4 samples side by side, animated over the frames
    from animgen import media
    rows = [np.concatenate(list(g), axis=2) for g in gifs]          # [N, H, 4W] each
    media.write_video(os.path.join(workdir, f'caption_samples_{int(step)}.gif'),
                      to_rgb(np.concatenate(rows, axis=1)), fps=4)
    return result

  def finalize(self, state, workdir):
    """The Fig. 4 visualisation of the final model."""
    step = int(jax.device_get(state.step))
    self.attention_figure(state.params, jax.random.key(self.config.seed + 7),
                          self._figure_tokens(),
                          os.path.join(workdir, f'attention_{step}.png'),
                          os.path.join(workdir, f'attention_{step}.gif'))


# -------------------------------------------------------------------- the Fig. 4 grid
def _draw_box(img, top, left, bottom, right, colour):
  """1-px rectangle on img [H, W, 3] (float pixel coordinates, 1-based, clipped)."""
  h, w = img.shape[:2]
  t, l = int(np.clip(round(top) - 1, 0, h - 1)), int(np.clip(round(left) - 1, 0, w - 1))
  b, r = int(np.clip(round(bottom) - 1, 0, h - 1)), int(np.clip(round(right) - 1, 0, w - 1))
  img[t, l:r + 1] = img[b, l:r + 1] = colour
  img[t:b + 1, l] = img[t:b + 1, r] = colour


def attention_grid(canvases, write, k, cuboid=False, pad=2):
  """canvases [T, N, H, W] in [0, 1], write params {name: [T, N] or [T]} -> uint8 grid with the
  write window of every frame at every step in red (cuboid: on the frames inside the
  temporal window)."""
  t_steps, n, h, w = canvases.shape
  grid = np.full((t_steps * (h + pad), n * (w + pad), 3), 255, np.uint8)
  red = np.array([255, 0, 0], np.uint8)
  for t in range(t_steps):
    for i in range(n):
      cell = np.repeat((canvases[t, i] * 255).round().astype(np.uint8)[..., None], 3, -1)
      p = {key: (v[t] if cuboid else v[t, i]) for key, v in write.items()}
      draw = True
      if cuboid:
        half = (k - 1) / 2.0 * p['delta_z'] + 0.5
        draw = abs((i + 1) - p['gz']) <= half
      if draw:
        _draw_box(cell, *fb.window_box(p, k), red)
      grid[t * (h + pad):t * (h + pad) + h, i * (w + pad):i * (w + pad) + w] = cell
  return grid


# -------------------------------------------------------------------- digit/motion classifier
def render_batch(rng, dc, split, batch):
  """`batch` single-digit GIFs of `split`'s digit images with uniformly random (digit, motion)
  -> (float [B, N, H, W], digits [B], motions [B])."""
  images, labels = _digits_cache(split, dc.digit_size)
  xs, ds, ms = [], [], []
  for _ in range(batch):
    motion = [int(rng.integers(2))]
    frames, d, m = bouncing_mnist.make_gif(rng, split, 1, images, labels, dc.frames, dc.size,
                                           motions=motion)
    xs.append(frames[..., 0].astype(np.float32) / 255.0)
    ds.append(d[0])
    ms.append(m[0])
  return np.stack(xs), np.array(ds), np.array(ms)


_DIGITS = {}


def _digits_cache(split, size):
  if (split, size) not in _DIGITS:
    _DIGITS[split, size] = bouncing_mnist.digit_images(split, size)
  return _DIGITS[split, size]


def train_classifier(dc, steps: int, batch: int, seed: int = 0, test_gifs: int = 1000):
  """Trains GifClassifier on rendered GIFs of all (digit, motion) pairs from the training
  digit images -> (params, {'digit': acc, 'motion': acc} on GIFs from the test images)."""
  rng = np.random.default_rng([seed, 99])
  net = GifClassifier()
  params = net.init(jax.random.key(seed), jnp.zeros((1, dc.frames, dc.size, dc.size)))['params']
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, d, m):
    def loss(p):
      ld, lm = net.apply({'params': p}, x)
      return (optax.softmax_cross_entropy_with_integer_labels(ld, d).mean()
              + optax.softmax_cross_entropy_with_integer_labels(lm, m).mean())
    g = jax.grad(loss)(params)
    updates, opt = tx.update(g, opt)
    return optax.apply_updates(params, updates), opt

  for _ in range(steps):
    params, opt = step(params, opt, *map(jnp.asarray, render_batch(rng, dc, 'train', batch)))
  x, d, m = render_batch(np.random.default_rng([seed, 98]), dc, 'test', test_gifs)
  ld, lm = jax.jit(lambda x: net.apply({'params': params}, x))(jnp.asarray(x))
  acc = {'digit': float(np.mean(np.asarray(jnp.argmax(ld, -1)) == d)),
         'motion': float(np.mean(np.asarray(jnp.argmax(lm, -1)) == m))}
  return params, acc
