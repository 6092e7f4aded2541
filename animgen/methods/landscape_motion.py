"""Animating Landscape, motion (Endo et al. 2019, Sec. 4.1, Algorithm 2).

The motion predictor P^M turns a frame I_t and a latent code z^M into a backward flow
B_{t+1}; warping I_t with it should give I_{t+1} (Eq. 1) while the flow stays smooth except at
image edges (Eqs. 2-3). z^M = E^M(common motion field of the clip), where the common motion
field is the flow predicted for that clip the last time it was seen (zero at first), kept in the
state and checkpointed (Algorithm 2, lines 2, 10, 14).
"""
import json
import os

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen import runtime
from animgen.models.landscape import Encoder, Predictor
from animgen.models.layers import torch_bias_init, torch_default_init
from animgen.ops import losses, warp


@flax.struct.dataclass
class MotionState:
  step: jax.Array
  params: dict            # {'predictor': ..., 'encoder': ...}
  batch_stats: dict       # encoder BatchNorm running statistics
  opt_state: optax.OptState
  motion_fields: jax.Array  # [num_clips, E, E, 2] common motion field per training clip


@flax.struct.dataclass
class MotionCriticState(MotionState):
  """MotionState plus the WAE-GAN latent critic; used only when model.latent_reg='wae_gan', so
  every other state (and checkpoint, and `animgen convert` output) keeps MotionState's pytree."""
  critic: dict                    # LatentCritic params
  critic_opt_state: optax.OptState


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


def encode_dist(encoder, size, params, batch_stats, x, train):
  """E(x resized to size x size) with BatchNorm in train or eval mode
  -> (mu, logvar, new batch_stats)."""
  x = warp.resize(x, size, size)
  variables = {'params': params['encoder'], 'batch_stats': batch_stats}
  if train:
    (mu, logvar), upd = encoder.apply(variables, x, train=True, mutable=['batch_stats'])
    return mu, logvar, upd['batch_stats']
  mu, logvar = encoder.apply(variables, x, train=False)
  return mu, logvar, batch_stats


def encode(encoder, size, params, batch_stats, x, train):
  """The code used at inference and for codebooks, mu = E(x) -> (mu, batch_stats)."""
  mu, _, stats = encode_dist(encoder, size, params, batch_stats, x, train)
  return mu, stats


def regularised_code(config, mu, logvar, rng, critic=None):
  """Sec. 6.6's optional latent regularisation in training -> (z, weighted penalty, metrics).

  'none' (default, as the paper): z = mu. 'vae': z = mu + sigma * eps with the KL to N(0, I)
  (Kingma & Welling). 'wae': z = mu with an MMD penalty to N(0, I) samples (the WAE-MMD form of
  Tolstikhin et al.). 'wae_gan': z = mu with the adversarial penalty -D(mu) of the official
  code's latent critic D (params `critic`, trained by `critic_update`).
  """
  kind = config.model.get('latent_reg', 'none')
  weight = config.loss.get('lambda_latent', 1.0)
  if kind == 'none':
    return mu, 0.0, {}
  if rng is None:
    raise ValueError(f'latent_reg={kind!r} needs a random key in train_step')
  if kind == 'vae':
    kl = losses.gaussian_kl(mu, logvar)
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)
    return z, weight * kl, {'loss_kl': kl}
  if kind == 'wae':
    mmd = losses.mmd_imq(mu, jax.random.normal(rng, mu.shape))
    return mu, weight * mmd, {'loss_mmd': mmd}
  if kind == 'wae_gan':
    if critic is None:
      raise ValueError("latent_reg='wae_gan' needs the critic params (state.critic)")
    # Deterministic code z = mu as in 'wae' (Sec. 6.6; the WAE encoder of Tolstikhin et al.).
    adv = -jnp.mean(LatentCritic().apply({'params': critic}, mu))  # WGAN generator term -D(E(x))
    return mu, weight * adv, {'loss_adv': adv}
  raise ValueError(f'model.latent_reg must be none, vae, wae or wae_gan, not {kind!r}')


# ------------------------------------------------------------------ WAE-GAN latent critic
CRITIC_CLIP = 0.01        # REFERENCE train.py: WGAN weight clipping to [-0.01, 0.01]
CRITIC_LR_SCALE = 0.1     # REFERENCE train.py: critic learning rate 0.1 x the main one


class LatentCritic(nn.Module):
  """The official code's latent discriminator (REFERENCE train.py, Sec. 6.6):
  Linear(latent -> 128) -> ReLU -> Linear(1) -> Sigmoid, [B, Z] -> [B, 1] in (0, 1)."""
  hidden: int = 128

  @nn.compact
  def __call__(self, z):
    z = z.astype(jnp.float32)
    # PyTorch nn.Linear default init, as the official module has (REFERENCE train.py).
    h = nn.Dense(self.hidden, kernel_init=torch_default_init,
                 bias_init=torch_bias_init(z.shape[-1]))(z)
    h = nn.relu(h)
    out = nn.Dense(1, kernel_init=torch_default_init, bias_init=torch_bias_init(self.hidden))(h)
    return nn.sigmoid(out)  # sigmoid kept although the loss is WGAN's (REFERENCE train.py)


def uses_critic(config) -> bool:
  return config.model.get('latent_reg', 'none') == 'wae_gan'


def critic_tx(config):
  """Adam with the main betas at 0.1 x the main learning rate (REFERENCE train.py)."""
  o = config.optim
  return optax.adam(CRITIC_LR_SCALE * o.learning_rate, b1=o.b1, b2=o.b2)


def init_critic(config, rng):
  """-> (critic params, critic optimiser state) for model.latent_dim codes."""
  params = LatentCritic().init(rng, jnp.zeros((1, config.model.latent_dim)))['params']
  return params, critic_tx(config).init(params)


def critic_update(config, state, codes, rng):
  """One WGAN critic step on this batch's codes (no gradient to the encoder) and N(0, I) prior
  samples, then weight clipping -> (state with the new critic, metrics)."""
  if rng is None:
    raise ValueError("latent_reg='wae_gan' needs a random key in train_step")
  codes = jax.lax.stop_gradient(codes)
  prior = jax.random.normal(rng, codes.shape, jnp.float32)
  d = lambda p, z: jnp.mean(LatentCritic().apply({'params': p}, z))

  # WGAN critic maximises D(prior) - D(E(x)): prior scores high (REFERENCE train.py; sign ours).
  def loss(p):
    return d(p, codes) - d(p, prior)

  value, grads = jax.value_and_grad(loss)(state.critic)
  updates, opt_state = critic_tx(config).update(grads, state.critic_opt_state, state.critic)
  critic = optax.apply_updates(state.critic, updates)
  # Clip every critic parameter (kernels and biases) after each update, as WGAN (REFERENCE).
  critic = jax.tree_util.tree_map(lambda w: jnp.clip(w, -CRITIC_CLIP, CRITIC_CLIP), critic)
  return state.replace(critic=critic, critic_opt_state=opt_state), {'critic_gap': -value}


def lr_factor(config, step):
  """The step size relative to optim.learning_rate at `step`: optim.lr_decay (e.g. 0.1) once
  for every step in optim.lr_drop_at that has been reached (ours; the paper keeps Adam at 1e-4).
  It scales Adam's update, which equals scaling its learning rate, and counts the global step,
  so a train.restart_at restart of Adam does not move it."""
  factor = jnp.ones((), jnp.float32)
  for at in tuple(config.optim.get('lr_drop_at', ())):
    factor = jnp.where(step >= at, factor * config.optim.get('lr_decay', 0.1), factor)
  return factor


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

  @property
  def compiler_options(self):
    """XLA options the trainer compiles this method's steps with (runtime.py)."""
    return runtime.cnn_compiler_options()

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
    fields = dict(step=jnp.zeros((), jnp.int32), params=params,
                  batch_stats=evars['batch_stats'], opt_state=self.tx.init(params),
                  motion_fields=jnp.zeros((self.num_clips, e, e, 2), jnp.float32))
    if not uses_critic(self.config):
      return MotionState(**fields)
    critic, critic_opt = init_critic(self.config, jax.random.fold_in(rng, 2))  # k1, k2 unchanged
    return MotionCriticState(**fields, critic=critic, critic_opt_state=critic_opt)

  def warm_start(self, state):
    """train.init_from (ours): the trainer's fresh `state` takes P^M, E^M and the encoder's
    BatchNorm statistics of another motion run's latest checkpoint, and that run's common motion
    fields for the clip ids both training sets have (the first 64 clips of
    synthetic_timelapse/large are those of default); Adam, the step and the rest start fresh."""
    workdir = os.path.expanduser(self.config.train.get('init_from') or '')
    if not workdir:
      return state
    from animgen import checkpoint
    from animgen.errors import InputError
    try:
      with open(os.path.join(workdir, 'config.json')) as f:
        num_train = int(json.load(f)['num_train'])
    except (OSError, ValueError, KeyError):
      raise InputError(f'train.init_from={workdir!r} is not the workdir of a training run '
                       '(no readable config.json): point it at one, or set '
                       "--config.train.init_from=''") from None
    source = LandscapeMotion(self.config, num_train=num_train)
    src, step = checkpoint.restore_for_init(
        workdir, jax.eval_shape(lambda: source.init(jax.random.key(0), None)),
        missing=f'train.init_from={workdir!r} holds no checkpoint: train that run first, or '
                "set --config.train.init_from=''",
        mismatch=f'train.init_from={workdir!r}: its checkpoint does not match this config '
                 '(model.*, image_size, latent_reg)')
    n = min(num_train, self.num_clips)
    fields = state.motion_fields.at[:n].set(src.motion_fields[:n])
    print(f'animgen: starting from {workdir} (step {step}; common motion fields of {n} of '
          f'{self.num_clips} clips)', flush=True)
    return state.replace(params=src.params, batch_stats=src.batch_stats, motion_fields=fields)

  def loss(self, params, batch_stats, motion_fields, batch, rng=None, critic=None):
    c = self.config.loss
    i_t, i_next = self._frames(batch)
    field = motion_fields[batch['clip_id']]                 # Alg. 2, line 10
    mu, logvar, new_stats = encode_dist(self.encoder, self.config.model.encoder_size, params,
                                        batch_stats, field, True)
    z, l_z, z_metrics = regularised_code(self.config, mu, logvar, rng, critic)  # Sec. 6.6
    flow = self.predict(params, i_t, z)                     # line 11
    warped = warp.backward_warp(i_t, flow)                  # line 12
    l_p = losses.mse(warped, i_next)                        # Eq. 1
    l_tv = losses.edge_weighted_tv(flow, i_next, c.sigma)   # Eqs. 2-3
    total = c.lambda_p * l_p + c.lambda_tv * l_tv + l_z     # Eq. 4
    return total, (new_stats, flow, mu, {'loss': total, 'loss_p': l_p, 'loss_tv': l_tv,
                                         'flow_abs': jnp.mean(jnp.abs(flow)), **z_metrics})

  def _restart(self, state):
    """Fresh P^M, E^M and optimiser; the step and the common motion fields are kept. With
    wae_gan the latent critic and its Adam state restart too: it judged the old E^M's codes."""
    fresh = self.init(jax.random.key(self.config.seed + 1), None)
    extra = {}
    if isinstance(state, MotionCriticState):
      extra = dict(critic=fresh.critic, critic_opt_state=fresh.critic_opt_state)
    return state.replace(params=fresh.params, batch_stats=fresh.batch_stats,
                         opt_state=fresh.opt_state, **extra)

  def train_step(self, state, batch, rng):
    t = self.config.train
    restarts, freeze = tuple(t.get('restart_at', ())), t.get('restart_freeze', 0)
    frozen = jnp.zeros((), bool)
    for r in restarts:  # staged schedule (see configs/landscape.py:cpu); off in the paper setting
      state = jax.lax.cond(state.step == r, self._restart, lambda s: s, state)
      frozen = frozen | ((state.step >= r) & (state.step < r + freeze))
    gan = isinstance(state, MotionCriticState)
    if gan:  # a key of its own for the critic's N(0, I) prior samples (Sec. 6.6)
      rng, critic_rng = jax.random.split(rng) if rng is not None else (None, None)
    grad_fn = jax.value_and_grad(self.loss, has_aux=True)
    (_, (new_stats, flow, mu, metrics)), grads = grad_fn(
        state.params, state.batch_stats, state.motion_fields, batch, rng,
        state.critic if gan else None)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    updates = jax.tree_util.tree_map(lambda u: u * lr_factor(self.config, state.step), updates)
    params = optax.apply_updates(state.params, updates)
    # One critic step per train step, simultaneous with P/E on the same pre-step codes E(x)
    # (REFERENCE train.py gives no order or n_critic; ours, Sec. 6.6: costs no extra E pass).
    if gan:
      state, critic_metrics = critic_update(self.config, state, mu, critic_rng)
      metrics.update(critic_metrics)
    e = self.config.model.encoder_size
    fields = state.motion_fields.at[batch['clip_id']].set(  # Alg. 2, line 14
        warp.resize(jax.lax.stop_gradient(flow), e, e))
    if restarts and freeze:
      fields = jnp.where(frozen, state.motion_fields, fields)
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
    path, book = os.path.join(workdir, 'codebook_motion.npz'), None
    if os.path.isfile(path):
      with np.load(path, allow_pickle=False) as d:
        # a codebook stamped with another step (an evaluation during resumed training) is stale;
        # unstamped ones (converted official codebooks) are used as they are
        if 'step' not in d or int(d['step']) == int(state.step):
          book = d['codes']
    if book is None:
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

  def evaluate_sequences(self, state, workdir, step):
    """Sec. 6.2 protocol: from the first frame of every test clip, predict the next frames
    recurrently with each of the chosen codebook codes; per predicted frame, RMSE (pixels in
    [0, 1]) and LPIPS-AlexNet against the true frames, averaged over clips, then the mean, min
    and max over the codes per frame index (Fig. 10), next to a still-image baseline. Writes
    eval_sequences_<step>.json and .png into workdir; returns the frame-averaged figures."""
    from animgen import animate, input_pipeline, plot
    from animgen.models import vgg
    t_max = self.config.eval.get('sequence_frames', 0)
    codes = getattr(self, 'eval_codes', None)
    if not t_max or codes is None:
      return {}
    builder = input_pipeline.prepare(self.config.dataset, self.config.get('data_dir'),
                                     self.config.get('manual_dir'))
    src = builder.as_data_source(split='test')
    clips = [np.asarray(src[i]['frames'][:t_max]) for i in range(len(src))]
    t = min(len(c) for c in clips)
    s = self.size
    gt = to_signed(jnp.asarray(np.stack([c[:t] for c in clips])))        # [N, T, H, W, 3]
    if gt.shape[2:4] != (s, s):
      n = gt.shape[0]
      gt = warp.resize(gt.reshape((n * t,) + gt.shape[2:]), s, s).reshape(n, t, s, s, 3)
    alex = vgg.load_weights('alexnet')
    params = state.params

    @jax.jit
    def per_clip(first, truth, z):
      """first [1, S, S, 3], truth [T, S, S, 3], z [Z] -> rmse, lpips [T - 1] each."""
      frames = animate.motion_frames(lambda x, zz: self.predict(params, x, zz), first, z[None],
                                     t, speed=1.0)[1:, 0]
      still = jnp.broadcast_to(first, frames.shape)
      rmse = lambda a: jnp.sqrt(jnp.mean(jnp.square((a - truth[1:]) * 0.5), axis=(1, 2, 3)))
      lp = lambda a: vgg.lpips_alex(a, truth[1:], alex)
      return rmse(frames), lp(frames), rmse(still), lp(still)

    per_code = {'rmse': [], 'lpips': []}
    still = {'rmse': [], 'lpips': []}
    for z in jnp.asarray(codes):
      out = [per_clip(gt[i, :1], gt[i], z) for i in range(gt.shape[0])]
      per_code['rmse'].append(np.mean([o[0] for o in out], 0))
      per_code['lpips'].append(np.mean([o[1] for o in out], 0))
      still['rmse'] = np.mean([o[2] for o in out], 0)
      still['lpips'] = np.mean([o[3] for o in out], 0)
    frames_idx = list(range(1, t))
    record = {'step': int(step), 'frames': frames_idx, 'num_clips': int(gt.shape[0]),
              'num_codes': int(len(codes))}
    panels = []
    for k in ('rmse', 'lpips'):
      a = np.stack(per_code[k])                                           # [K, T - 1]
      record[k] = {'mean': a.mean(0).tolist(), 'min': a.min(0).tolist(),
                   'max': a.max(0).tolist(), 'still': np.asarray(still[k]).tolist()}
      panels.append((f'{k.upper()} per predicted frame ({len(codes)} codes)',
                     [('animgen (mean, min-max)', frames_idx, a.mean(0), a.min(0), a.max(0)),
                      ('still input', frames_idx, still[k], None, None)]))
    import json
    path = os.path.join(workdir, f'eval_sequences_{int(step)}.json')
    with open(path + '.tmp', 'w') as f:
      json.dump(record, f, indent=1)
    os.replace(path + '.tmp', path)
    plot.line_panels(os.path.join(workdir, f'eval_sequences_{int(step)}.png'), panels)
    return {'seq_rmse': float(np.mean(record['rmse']['mean'])),
            'seq_rmse_still': float(np.mean(record['rmse']['still'])),
            'seq_lpips': float(np.mean(record['lpips']['mean'])),
            'seq_lpips_still': float(np.mean(record['lpips']['still']))}

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
                  self.config.seed, step=int(state.step))


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


def save_codebook(codes, workdir, max_codes=100, seed=0, step=None) -> str:
  """codebook_motion.npz: `codes` (the codebook), `clip_codes` and, when given, the training
  `step` whose state the codes came from."""
  path = os.path.join(workdir, 'codebook_motion.npz')
  tmp = path + '.tmp.npz'
  stamp = {} if step is None else {'step': np.int64(step)}
  np.savez(tmp, codes=build_codebook(codes, max_codes, seed), clip_codes=codes, **stamp)
  os.replace(tmp, path)
  return path
