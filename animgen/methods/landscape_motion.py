"""Animating Landscape, motion (Endo et al. 2019, Sec. 4.1, Algorithm 2).

The motion predictor P^M turns a frame I_t and a latent code z^M into a backward flow
B_{t+1}; warping I_t with it should give I_{t+1} (Eq. 1) while the flow stays smooth except at
image edges (Eqs. 2-3). z^M = E^M(common motion field of the clip), where the common motion
field is the flow predicted for that clip the last time it was seen (zero at first), kept in the
state and checkpointed (Algorithm 2, lines 2, 10, 14).
"""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen.methods import landscape_common as common
from animgen.ops import generate, losses, metrics, warp


@flax.struct.dataclass
class MotionState:
  step: jax.Array
  params: dict            # {'predictor': ..., 'encoder': ...}
  batch_stats: dict       # encoder BatchNorm running statistics
  opt_state: optax.OptState
  motion_fields: jax.Array  # [num_clips, E, E, 2] common motion field per training clip


@flax.struct.dataclass
class MotionCriticState(MotionState, common.CriticFields):
  """MotionState plus the WAE-GAN latent critic (model.latent_reg='wae_gan')."""


def lr_schedule(config):
  """optim.learning_rate, times optim.lr_decay (e.g. 0.1) once for every step in
  optim.lr_drop_at that has been reached (ours; the paper keeps Adam at 1e-4)."""
  o = config.optim
  drops = tuple(int(s) for s in o.get('lr_drop_at', ()))
  return optax.piecewise_constant_schedule(
      o.learning_rate, {s: o.get('lr_decay', 0.1) for s in drops})


def build_codebook(codes: np.ndarray, max_codes: int = 100, seed: int = 0) -> np.ndarray:
  """Per-clip codes -> KMeans centres (<= max_codes) sorted by the first principal component."""
  from sklearn.cluster import KMeans
  from sklearn.decomposition import PCA
  k = min(max_codes, len(np.unique(np.asarray(codes, np.float32), axis=0)))  # distinct codes
  centres = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(codes).cluster_centers_
  if k > 1:
    order = np.argsort(PCA(n_components=1, random_state=seed).fit_transform(centres)[:, 0])
    centres = centres[order]
  return centres.astype(np.float32)


def codebook_artefact(clip_codes, max_codes=100, seed=0, step=None) -> dict:
  """codebook_motion.npz: `codes` (the codebook), `clip_codes` and, when given, the training
  `step` whose state the codes came from."""
  stamp = {} if step is None else {'step': np.int64(step)}
  return {'codes': build_codebook(clip_codes, max_codes, seed), 'clip_codes': clip_codes,
          **stamp}


def _over_codes(name: str, values, higher_is_better: bool) -> dict:
  """{name_mean, name_best, name_worst} over per-code metrics [B] each."""
  a = jnp.stack(values, axis=-1)   # [B, K]
  best, worst = (a.max(-1), a.min(-1)) if higher_is_better else (a.min(-1), a.max(-1))
  return {f'{name}_mean': a.mean(-1), f'{name}_best': best, f'{name}_worst': worst}


class LandscapeMotion(common.LandscapeMethod):
  """Trains P^M and E^M jointly; builds the motion codebook at the end."""

  out_channels = 2

  def __init__(self, config, num_train: int = 0):
    self.beta = config.model.beta
    super().__init__(config, num_train)
    self.num_clips = num_train  # one common motion field per training clip

  def optimizer(self):
    """Adam whose step size follows lr_schedule; the schedule counts the global step, so a
    train.restart_at restart of Adam's moments does not move it (see _restart)."""
    o = self.config.optim
    return optax.chain(optax.scale_by_adam(b1=o.b1, b2=o.b2),
                       optax.scale_by_schedule(lambda n: -lr_schedule(self.config)(n)))

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
    if not train and 'flow' in record and len(record['flow']):
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
  def predict(self, params, image, z):
    """B_{t+1} = P^M(I_t, z^M), normalised units (Alg. 2, line 11)."""
    return self.predictor.apply({'params': params['predictor']}, image, z)

  # ---------------------------------------------------------------- steps
  def init(self, rng, batch):
    del batch
    params, stats = self.init_networks(rng, encoder_channels=2)
    e = self.config.model.encoder_size
    return self.with_critic(
        MotionState, MotionCriticState, rng, step=jnp.zeros((), jnp.int32), params=params,
        batch_stats=stats, opt_state=self.tx.init(params),
        motion_fields=jnp.zeros((self.num_clips, e, e, 2), jnp.float32))

  def warm_start(self, state, source):
    """train.init_from (ours): P^M, E^M and the encoder's BatchNorm statistics of the source
    run, and its common motion fields for the clip ids both training sets have (the first 64
    clips of synthetic_timelapse/large are those of default); Adam and the step start fresh."""
    n = min(source.motion_fields.shape[0], self.num_clips)
    fields = state.motion_fields.at[:n].set(source.motion_fields[:n])
    return state.replace(params=source.params, batch_stats=source.batch_stats,
                         motion_fields=fields)

  def loss(self, params, batch_stats, motion_fields, batch, rng=None, critic=None):
    c = self.config.loss
    i_t, i_next = self.frames(batch)
    field = motion_fields[batch['clip_id']]                 # Alg. 2, line 10
    mu, logvar, new_stats = common.encode_dist(self.encoder, self.config.model.encoder_size,
                                               params, batch_stats, field, True)
    z, l_z, z_metrics = common.regularised_code(self.config, mu, logvar, rng, critic)  # 6.6
    flow = self.predict(params, i_t, z)                     # line 11
    warped = warp.backward_warp(i_t, flow)                  # line 12
    l_p = losses.mse(warped, i_next)                        # Eq. 1
    l_tv = losses.edge_weighted_tv(flow, i_next, c.sigma)   # Eqs. 2-3
    total = c.lambda_p * l_p + c.lambda_tv * l_tv + l_z     # Eq. 4
    return total, ((new_stats, flow), mu, {'loss': total, 'loss_p': l_p, 'loss_tv': l_tv,
                                           'flow_abs': jnp.mean(jnp.abs(flow)), **z_metrics})

  def _restart(self, state):
    """Fresh P^M, E^M and Adam moments; the step, the step-size schedule's count and the common
    motion fields are kept. With wae_gan the latent critic and its Adam state restart too: it
    judged the old E^M's codes."""
    fresh = self.init(jax.random.key(self.config.seed + 1), None)
    extra = {}
    if isinstance(state, common.CriticFields):
      extra = dict(critic=fresh.critic, critic_opt_state=fresh.critic_opt_state)
    opt_state = (fresh.opt_state[0],) + tuple(state.opt_state[1:])
    return state.replace(params=fresh.params, batch_stats=fresh.batch_stats,
                         opt_state=opt_state, **extra)

  def train_step(self, state, batch, rng):
    t = self.config.train
    restarts, freeze = tuple(t.get('restart_at', ())), t.get('restart_freeze', 0)
    frozen = jnp.zeros((), bool)
    for r in restarts:  # staged schedule (configs/landscape.py:cpu); off in the paper setting
      state = jax.lax.cond(state.step == r, self._restart, lambda s: s, state)
      frozen = frozen | ((state.step >= r) & (state.step < r + freeze))
    (new_stats, flow), params, opt_state, state, metrics_ = self.gradient_step(
        state, self.loss, rng, state.motion_fields, batch)
    e = self.config.model.encoder_size
    fields = state.motion_fields.at[batch['clip_id']].set(  # Alg. 2, line 14
        warp.resize(jax.lax.stop_gradient(flow), e, e))
    if restarts and freeze:
      fields = jnp.where(frozen, state.motion_fields, fields)
    return state.replace(step=state.step + 1, params=params, batch_stats=new_stats,
                         opt_state=opt_state, motion_fields=fields), metrics_

  # ---------------------------------------------------------------- evaluation
  def gt_flow(self, batch):
    """Stored pixel flow at the stored size -> normalised flow at the model size."""
    gt = batch['flow']
    h, w = gt.shape[1:3]
    return warp.resize(warp.pixels_to_normalised(gt, h, w), self.size, self.size)

  def eval_inputs(self, state, artefacts):
    """The codebook codes evaluation also tries (Sec. 6.2: 5 codebook codes), from the run's
    codebook when it belongs to this state (unstamped converted codebooks do), else rebuilt."""
    book = None
    saved = artefacts.get('codebook_motion.npz')
    if saved is not None and ('step' not in saved or int(saved['step']) == int(state.step)):
      book = np.asarray(saved['codes'])
    if book is None:
      book = build_codebook(self.clip_codes(state), self.config.codebook.max_codes)
    k = min(self.config.eval.codebook_codes, len(book))
    return jnp.asarray(book[np.linspace(0, len(book) - 1, k).round().astype(int)])

  def eval_step(self, state, batch, codes):
    """Per-example metrics; the features present decide which run (Sky Timelapse and
    clip_folders have no ground-truth flow). Always: next-frame PSNR of the zero-flow baseline
    (`psnr_zero`) and, with codebook codes, of each code's prediction (`psnr_codebook_mean`,
    best, worst over the codes). With `flow`: the flow EPE (pixels at the model size) next to
    the zero-flow EPE and the next-frame PSNR, with z^M = E^M(ground-truth flow of the pair) in
    evaluation mode, and the EPE of each codebook code (mean, best and worst)."""
    i_t, i_next = self.frames(batch)
    unit = common.to_unit
    psnr_of = lambda f: metrics.psnr(unit(warp.backward_warp(i_t, f)), unit(i_next))
    out = {'psnr_zero': metrics.psnr(unit(i_t), unit(i_next))}
    gt = self.gt_flow(batch) if 'flow' in batch else None
    px = lambda f: warp.normalised_to_pixels(f, self.size, self.size)
    epe_of = lambda f: jnp.linalg.norm(px(f) - px(gt), axis=-1).mean((1, 2))
    if gt is not None:
      z, _ = self.encode(state.params, state.batch_stats, gt, train=False)
      flow = self.predict(state.params, i_t, z)
      out.update(flow_epe=epe_of(flow), psnr=psnr_of(flow),
                 flow_epe_zero=jnp.linalg.norm(px(gt), axis=-1).mean((1, 2)))
    if codes is not None:
      shape = (i_t.shape[0], codes.shape[-1])
      flows = [self.predict(state.params, i_t, jnp.broadcast_to(codes[k], shape))
               for k in range(codes.shape[0])]
      out.update(_over_codes('psnr_codebook', [psnr_of(f) for f in flows], higher_is_better=True))
      if gt is not None:
        out.update(_over_codes('flow_epe_codebook', [epe_of(f) for f in flows],
                               higher_is_better=False))
    return out

  def stored_codes(self, state, n: int):
    """z^M = E^M(common motion field) of n training clips spread evenly over the stored fields
    (E^M in evaluation mode, Alg. 2's codes) -> [n, Z]; zero codes only for a state without
    fields."""
    k = state.motion_fields.shape[0]
    if k == 0:
      return jnp.zeros((n, self.config.model.latent_dim))
    fields = state.motion_fields[(jnp.arange(n) * k) // n]
    return self.encode(state.params, state.batch_stats, fields, train=False)[0]

  def rollout(self, state, batch, num_frames, z=None):
    """Recurrent generation at the model size (Algorithm 1 without the pads) from the first
    frame of each example, [B, T, S, S, 3] in [0, 1]; z [B, Z] (default: E^M of the stored
    flow, or where the data has none the codes of stored common motion fields)."""
    first = common.to_signed(batch['frames'][:, 0])
    if first.shape[1:3] != (self.size, self.size):
      first = warp.resize(first, self.size, self.size)
    if z is None:
      if 'flow' in batch:
        z, _ = self.encode(state.params, state.batch_stats, self.gt_flow(batch), train=False)
      else:
        z = self.stored_codes(state, first.shape[0])
    predict = lambda x, zz: self.predict(state.params, x, zz)
    frames = jax.vmap(lambda im, zz: generate.motion_frames(
        predict, im[None], zz[None], num_frames, speed=1.0, pad_fraction=0.0)[:, 0])(first, z)
    return common.to_unit(frames)

  def sample(self, state, batch, rng):
    """The test examples' first frames animated with the codes of training clips' common
    motion fields (`stored_codes`), the codes generation draws its codebook from."""
    del rng
    z = self.stored_codes(state, batch['frames'].shape[0])
    return {'motion': self.rollout(state, batch, self.config.sample.num_frames, z=z)}

  # ---------------------------------------------------------------- codebook
  def clip_codes(self, state):
    """z^M of every training clip from its common motion field (E^M in evaluation mode)."""
    fields = state.motion_fields
    codes = [self.encode(state.params, state.batch_stats, fields[i:i + 64], train=False)[0]
             for i in range(0, fields.shape[0], 64)]
    return np.asarray(jnp.concatenate(codes))

  def finalize(self, state, train_records):
    del train_records
    return {'codebook_motion.npz': codebook_artefact(
        self.clip_codes(state), self.config.codebook.max_codes, self.config.seed,
        step=int(state.step))}
