"""Animating Landscape, motion (Endo et al. 2019, Sec. 4.1, Algorithm 2).

The motion predictor P^M turns a frame I_t and a latent code z^M into a backward flow
B_{t+1}; warping I_t with it should give I_{t+1} (Eq. 1) while the flow stays smooth except at
image edges (Eqs. 2-3). z^M = E^M(common motion field of the clip), where the common motion
field is the flow predicted for that clip the last time it was seen (zero at first), kept in the
state and checkpointed (Algorithm 2, lines 2, 10, 14).
"""
import os

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen.models.landscape import Encoder, Predictor
from animgen.ops import losses, warp


@flax.struct.dataclass
class MotionState:
  step: jax.Array
  params: dict            # {'predictor': ..., 'encoder': ...}
  batch_stats: dict       # encoder BatchNorm running statistics
  opt_state: optax.OptState
  motion_fields: jax.Array  # [num_clips, E, E, 2] common motion field per training clip


def to_signed(frames_uint8):
  """uint8 [0, 255] -> float32 [-1, 1] (Sec. 4: linearly normalised RGB)."""
  return frames_uint8.astype(jnp.float32) / 127.5 - 1.0


def frame_pair(batch, size):
  """batch['frames'] uint8 [B, 2, H, W, 3] -> two float [-1, 1] batches at size x size."""
  frames = to_signed(batch['frames'])
  b, _, h, w, c = frames.shape
  if (h, w) != (size, size):
    frames = warp.resize(frames.reshape(b * 2, h, w, c), size, size).reshape(b, 2, size, size, c)
  return frames[:, 0], frames[:, 1]


def encode(encoder, size, params, batch_stats, x, train):
  """E(x resized to size x size) with BatchNorm in train or eval mode -> (mu, batch_stats)."""
  x = warp.resize(x, size, size)
  variables = {'params': params['encoder'], 'batch_stats': batch_stats}
  if train:
    (mu, _), upd = encoder.apply(variables, x, train=True, mutable=['batch_stats'])
    return mu, upd['batch_stats']
  mu, _ = encoder.apply(variables, x, train=False)
  return mu, batch_stats


def psnr(a, b, axis=(1, 2, 3)):
  """PSNR in dB of images in [0, 1]."""
  return -10.0 * jnp.log10(jnp.maximum(jnp.mean(jnp.square(a - b), axis=axis), 1e-10))


class LandscapeMotion:
  """Trains P^M and E^M jointly; builds the motion codebook at the end."""

  def __init__(self, config, num_train: int):
    self.config = config
    m = config.model
    self.predictor = Predictor(out_channels=2, widths=tuple(m.widths),
                               num_res_blocks=m.num_res_blocks, beta=m.beta, fast=m.fast,
                               dtype=jnp.dtype(config.get('dtype', 'float32')))
    self.encoder = Encoder(latent_dim=m.latent_dim, widths=tuple(m.encoder_widths))
    self.num_clips = num_train  # one common motion field per training clip
    self.size = config.image_size
    self.tx = optax.adam(config.optim.learning_rate, b1=config.optim.b1, b2=config.optim.b2)

  # ---------------------------------------------------------------- data
  def make_example(self, record, rng, train):
    """One consecutive pair per clip: a random valid t in training (Alg. 2, line 8)."""
    valid = np.flatnonzero(np.asarray(record['pair_ok']))
    if '_extra' in record:
      t = int(record['_extra'])
    elif train:
      t = int(rng.choice(valid))
    else:
      t = int(valid[len(valid) // 2])
    ex = {'frames': np.asarray(record['frames'][t:t + 2]),
          'clip_id': np.int32(record['clip_id'])}
    if train:
      from animgen.input_pipeline import random_crop_flip
      ex = random_crop_flip(ex, rng, self.config.data.get('crop'), self.config.data.flip)
    elif 'flow' in record and len(record['flow']):
      ex['flow'] = np.asarray(record['flow'][t], np.float32)
    return ex

  def eval_index(self, records):
    """Evaluation visits `pairs_per_clip` evenly spaced valid pairs of every test clip."""
    k = self.config.eval.pairs_per_clip
    items = []
    for i, rec in enumerate(records):
      valid = np.flatnonzero(np.asarray(rec['pair_ok']))
      picks = valid[np.linspace(0, len(valid) - 1, min(k, len(valid))).round().astype(int)]
      items += [(i, int(t)) for t in picks]
    return (lambda j: items[j]), len(items)

  # ---------------------------------------------------------------- networks
  def _frames(self, batch):
    return frame_pair(batch, self.size)

  def encode(self, params, batch_stats, field, train):
    """z^M = E^M(flow resized to the encoder size). Returns (mu, new_batch_stats)."""
    return encode(self.encoder, self.config.model.encoder_size, params, batch_stats, field,
                  train)

  def predict(self, params, image, z):
    """B_{t+1} = P^M(I_t, z^M), normalised units (Alg. 2, line 11)."""
    return self.predictor.apply({'params': params['predictor']}, image, z)

  # ---------------------------------------------------------------- steps
  def init(self, rng, batch):
    k1, k2 = jax.random.split(rng)
    e = self.config.model.encoder_size
    x = jnp.zeros((1, self.size, self.size, 3))
    z = jnp.zeros((1, self.config.model.latent_dim))
    pvars = self.predictor.init(k1, x, z)
    evars = self.encoder.init(k2, jnp.zeros((1, e, e, 2)), train=False)
    params = {'predictor': pvars['params'], 'encoder': evars['params']}
    return MotionState(step=jnp.zeros((), jnp.int32), params=params,
                       batch_stats=evars['batch_stats'], opt_state=self.tx.init(params),
                       motion_fields=jnp.zeros((self.num_clips, e, e, 2), jnp.float32))

  def loss(self, params, batch_stats, motion_fields, batch):
    c = self.config.loss
    i_t, i_next = self._frames(batch)
    field = motion_fields[batch['clip_id']]                 # Alg. 2, line 10
    z, new_stats = self.encode(params, batch_stats, field, train=True)
    flow = self.predict(params, i_t, z)                     # line 11
    warped = warp.backward_warp(i_t, flow)                  # line 12
    l_p = losses.mse(warped, i_next)                        # Eq. 1
    l_tv = losses.edge_weighted_tv(flow, i_next, c.sigma)   # Eqs. 2-3
    total = c.lambda_p * l_p + c.lambda_tv * l_tv           # Eq. 4
    return total, (new_stats, flow, {'loss': total, 'loss_p': l_p, 'loss_tv': l_tv,
                                     'flow_abs': jnp.mean(jnp.abs(flow))})

  def train_step(self, state, batch, rng):
    del rng  # deterministic given the batch
    grad_fn = jax.value_and_grad(self.loss, has_aux=True)
    (_, (new_stats, flow, metrics)), grads = grad_fn(
        state.params, state.batch_stats, state.motion_fields, batch)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    e = self.config.model.encoder_size
    fields = state.motion_fields.at[batch['clip_id']].set(  # Alg. 2, line 14
        warp.resize(jax.lax.stop_gradient(flow), e, e))
    metrics['grad_norm'] = optax.tree.norm(grads)
    metrics['update_norm'] = optax.tree.norm(updates)
    return state.replace(step=state.step + 1, params=params, batch_stats=new_stats,
                         opt_state=opt_state, motion_fields=fields), metrics

  def _gt_flow(self, batch):
    """Stored pixel flow at the stored size -> normalised flow at the model size."""
    gt = batch['flow']
    h, w = gt.shape[1:3]
    return warp.resize(warp.pixels_to_normalised(gt, h, w), self.size, self.size)

  def prepare_eval(self, state, workdir):
    """Picks the codebook codes that evaluation also tries (Sec. 6.2: 5 codebook codes)."""
    path = os.path.join(workdir, 'codebook_motion.npz')
    if os.path.isfile(path):
      with np.load(path, allow_pickle=False) as d:
        book = d['codes']
    else:
      book = build_codebook(self.clip_codes(state), self.config.codebook.max_codes)
    k = min(self.config.eval.codebook_codes, len(book))
    self.eval_codes = book[np.linspace(0, len(book) - 1, k).round().astype(int)]

  def eval_step(self, state, batch):
    """Per-example flow EPE (pixels at the model size) and next-frame PSNR, each next to the
    zero-flow baseline, with z^M = E^M(ground-truth flow of the pair) in evaluation mode; and
    the EPE with each of the chosen codebook codes (mean, best and worst over the codes)."""
    i_t, i_next = self._frames(batch)
    gt = self._gt_flow(batch)
    z, _ = self.encode(state.params, state.batch_stats, gt, train=False)
    flow = self.predict(state.params, i_t, z)
    px = lambda f: warp.normalised_to_pixels(f, self.size, self.size)
    epe_of = lambda f: jnp.linalg.norm(px(f) - px(gt), axis=-1).mean((1, 2))
    to01 = lambda x: (x + 1.0) * 0.5
    warped = warp.backward_warp(i_t, flow)
    out = {'flow_epe': epe_of(flow), 'flow_epe_zero': jnp.linalg.norm(px(gt), axis=-1).mean((1, 2)),
           'psnr': psnr(to01(warped), to01(i_next)), 'psnr_zero': psnr(to01(i_t), to01(i_next))}
    codes = getattr(self, 'eval_codes', None)
    if codes is not None:
      per_code = jnp.stack([epe_of(self.predict(state.params, i_t, jnp.broadcast_to(
          jnp.asarray(c), z.shape))) for c in codes], axis=-1)  # [B, K]
      out.update(flow_epe_codebook_mean=per_code.mean(-1), flow_epe_codebook_best=per_code.min(-1),
                 flow_epe_codebook_worst=per_code.max(-1))
    return out

  def sample(self, state, batch, rng):
    """Recurrent generation at the model size from the first frame of each pair."""
    from animgen import animate
    i_t, _ = self._frames(batch)
    if 'flow' in batch:
      z, _ = self.encode(state.params, state.batch_stats, self._gt_flow(batch), train=False)
    else:
      z = jax.random.normal(rng, (i_t.shape[0], self.config.model.latent_dim)) * 0.0
    predict = lambda x, zz: self.predict(state.params, x, zz)
    n = self.config.sample.num_frames
    frames = jax.vmap(lambda im, zz: animate.motion_frames(
        predict, im[None], zz[None], n, speed=1.0, pad_fraction=0.0)[:, 0])(i_t, z)
    return {'motion': (frames + 1.0) * 0.5}

  # ---------------------------------------------------------------- codebook
  def clip_codes(self, state):
    """z^M of every training clip from its common motion field (E^M in evaluation mode)."""
    fields = state.motion_fields
    codes = [self.encode(state.params, state.batch_stats, fields[i:i + 64], train=False)[0]
             for i in range(0, fields.shape[0], 64)]
    return np.asarray(jnp.concatenate(codes))

  def finalize(self, state, workdir):
    save_codebook(self.clip_codes(state), workdir, self.config.codebook.max_codes,
                  self.config.seed)


def build_codebook(codes: np.ndarray, max_codes: int = 100, seed: int = 0) -> np.ndarray:
  """Per-clip codes -> KMeans centres (<= max_codes) sorted by the first principal component."""
  from sklearn.cluster import KMeans
  from sklearn.decomposition import PCA
  k = min(max_codes, len(codes))
  centres = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(codes).cluster_centers_
  if k > 1:
    order = np.argsort(PCA(n_components=1, random_state=seed).fit_transform(centres)[:, 0])
    centres = centres[order]
  return centres.astype(np.float32)


def save_codebook(codes, workdir, max_codes=100, seed=0) -> str:
  path = os.path.join(workdir, 'codebook_motion.npz')
  tmp = path + '.tmp.npz'
  np.savez(tmp, codes=build_codebook(codes, max_codes, seed), clip_codes=codes)
  os.replace(tmp, path)
  return path
