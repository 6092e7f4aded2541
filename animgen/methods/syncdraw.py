"""Sync-DRAW (Mittal et al. 2017): training, test-set ELBO, sampling and the Fig. 4
visualisation.

Loss (Sec. 3.3, Eq. 15): the binary cross-entropy of sigmoid(C^T) against the GIF X, summed over
pixels and frames, plus the KL of Q(Z^t | h_enc^t) from the prior summed over the T steps; the
prior is N(0, I), or Eq. 16's caption-conditioned Gaussian. Both in nats per GIF; their sum is
the negative ELBO that evaluation reports on the test split. Adam 1e-3, beta1 0.5, beta2 0.999,
gradients clipped at 10 (Sec. 4).

The caption-adherence evaluation (ours; the paper shows samples only) is the `syncdraw_captions`
evaluator (animgen/evaluators/captions.py).
"""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen import captions as captions_lib
from animgen.errors import InputError
from animgen.methods.base import Method
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


class SyncDRAW(Method):
  """Sync-DRAW, its caption model (model.captions) and the cuboid baseline (model.cuboid)."""

  def __init__(self, config, num_train: int = 0):
    super().__init__(config, num_train)
    m = config.model
    self.captions = bool(m.captions)
    self.net = SyncDRAWNet(
        frames=m.frames, height=m.size, width=m.size, steps=m.steps, read_n=m.read_n,
        write_n=m.write_n, enc_size=m.enc_size, dec_size=m.dec_size, z_size=m.z_size,
        cuboid=bool(m.cuboid), vocab_size=len(captions_lib.VOCAB) if self.captions else 0,
        embed_dim=m.embed_dim, lang_size=m.lang_size, align_size=m.align_size,
        dtype=jnp.dtype(config.get('dtype', 'float32')))
    o = config.optim
    # Sec. 4: Adam(1e-3, 0.5, 0.999), gradients clipped at 10.0 (as a global norm; the public
    # code clipped each tensor's norm at 5).
    self.tx = optax.chain(optax.clip_by_global_norm(o.grad_clip),
                          optax.adam(o.learning_rate, b1=o.b1, b2=o.b2))

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

  def eval_step(self, state, batch, inputs=None):
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
    return captions_lib.tokenize(text, self.config.model.caption_length)

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

  def attention_figure(self, params, rng, tokens=None):
    """Fig. 4: the canvas sigmoid(C^t) of every frame (columns) at every step (rows) with the
    write attention window drawn -> (grid uint8 [T * (H + 2), N * (W + 2), 3], the same as an
    animation [T, H + 2, N * (W + 2), 3] of one step per frame)."""
    out = jax.device_get(jax.jit(self.generate, static_argnums=2)(params, rng, 1, tokens))
    grid = attention_grid(np.asarray(jax.nn.sigmoid(out['canvases'][0])),
                          {k: np.asarray(v[0]) for k, v in out['write'].items()},
                          self.config.model.write_n, bool(self.config.model.cuboid))
    t = self.config.model.steps
    return grid, grid.reshape(t, grid.shape[0] // t, *grid.shape[1:])

  def figure_tokens(self):
    """The caption drawn in Fig. 4 for caption models: an unseen test caption of digit 3."""
    if not self.captions:
      return None
    n = self.config.model.caption_length // 8
    digits = [3, 6][:n]
    return self.caption_tokens(captions_lib.caption_text(
        digits, [captions_lib.split_motion(d, 'test') for d in digits]))

  def finalize(self, state, train_records):
    """The Fig. 4 visualisation of the final model."""
    del train_records
    step = int(jax.device_get(state.step))
    grid, steps = self.attention_figure(state.params, jax.random.key(self.config.seed + 7),
                                        self.figure_tokens())
    return {f'attention_{step}.png': grid, f'attention_{step}.gif': (steps, 2)}


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
