"""Animating Landscape, appearance (Endo et al. 2019, Sec. 4.2, Algorithm 3).

The appearance predictor P^A turns a frame I_t and a code z_tau = E^A(I_tau) of another frame of
the same clip into colour-transfer maps C = (C^w, C^b); O = tanh(C^w * I_t + C^b) (Eqs. 5-6)
should take I_tau's colours (Gram style, Eq. 7; 32x32 cell averages, Eq. 8) while keeping I_t's
content (relu1_2, Eq. 9), with maps smooth except at I_t's edges (Eq. 10).
"""
import flax.struct
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen.methods import landscape_common as common
from animgen.models import vgg
from animgen.models.landscape import LatentLSTM
from animgen.ops import color, losses, metrics, warp
from animgen.ops.optimise import adam_minimise

STYLE_LAYERS = ('relu2_2', 'relu3_3', 'relu4_3')   # Eq. 7 (after Johnson et al. 2016)
CONTENT_LAYERS = ('relu1_2',)                       # Eq. 9


@flax.struct.dataclass
class AppearanceState:
  step: jax.Array
  params: dict            # {'predictor': ..., 'encoder': ...}
  batch_stats: dict       # encoder BatchNorm running statistics
  opt_state: optax.OptState
  vgg: dict               # frozen ImageNet VGG16 convs up to relu4_3 (never saved: frozen_fields)


@flax.struct.dataclass
class AppearanceCriticState(AppearanceState, common.CriticFields):
  """AppearanceState plus the WAE-GAN latent critic (model.latent_reg='wae_gan')."""


class LandscapeAppearance(common.LandscapeMethod):
  """Trains P^A and E^A jointly; builds the appearance codebook and latent LSTM at the end."""

  out_channels = 6
  frozen_fields = ('vgg',)

  def __init__(self, config, num_train: int = 0):
    super().__init__(config, num_train)
    self.vgg = vgg.VGG16(layers=STYLE_LAYERS + CONTENT_LAYERS)

  # ---------------------------------------------------------------- data
  def make_example(self, record, rng, train):
    """Two frames of one clip: t and tau drawn independently in training (Alg. 3, line 5);
    in evaluation the first frame and the frame `_extra` (see eval_index)."""
    frames = record['frames']
    n = len(frames)
    if train:
      t, tau = (int(i) for i in rng.integers(0, n, size=2))
    else:
      t, tau = 0, int(record.get('_extra', n - 1))
    return {'frames': np.stack([np.asarray(frames[t]), np.asarray(frames[tau])]),
            'clip_id': np.int32(record['clip_id'])}

  def eval_index(self, records):
    """Evaluation pairs the first frame of each test clip with `targets_per_clip` evenly spaced
    later frames (the last one included)."""
    k = self.config.eval.targets_per_clip
    items = []
    for i, rec in enumerate(records):
      n = len(rec['frames'])
      taus = np.linspace(1, n - 1, min(k, n - 1)).round().astype(int)
      items += [(i, int(t)) for t in taus]
    return (lambda j: items[j]), len(items)

  # ---------------------------------------------------------------- networks
  def maps(self, params, image, z):
    """C^A = P^A(I, z^A): [B, H, W, 6] (C^w, C^b) (Alg. 3, line 8)."""
    return self.predictor.apply({'params': params['predictor']}, image, z)

  def features(self, vgg_params, image):
    return self.vgg.apply({'params': vgg_params}, vgg.imagenet_normalise(image))

  # ---------------------------------------------------------------- steps
  def frozen_values(self) -> dict:
    """The frozen VGG16 convs up to relu4_3, the deepest layer the losses use."""
    needed = {f'Conv_{k}' for k in range(10)}
    return {'vgg': jax.tree_util.tree_map(
        jnp.asarray, {k: v for k, v in vgg.vgg16_params().items() if k in needed})}

  def init(self, rng, batch):
    del batch
    params, stats = self.init_networks(rng, encoder_channels=3)
    return self.with_critic(
        AppearanceState, AppearanceCriticState, rng, step=jnp.zeros((), jnp.int32),
        params=params, batch_stats=stats, opt_state=self.tx.init(params),
        **self.frozen_values())

  def terms(self, vgg_params, maps, i_t, i_tau):
    """The four losses of Eq. 11 for colour-transfer maps applied to I_t with target I_tau."""
    c = self.config.loss
    out = color.color_transfer(maps, i_t)                               # Eqs. 5-6
    f_out = self.features(vgg_params, out)
    f_tau = jax.lax.stop_gradient(self.features(vgg_params, i_tau))
    f_t = jax.lax.stop_gradient(self.features(vgg_params, i_t))
    l_s = losses.style_loss([f_out[k] for k in STYLE_LAYERS],
                            [f_tau[k] for k in STYLE_LAYERS])           # Eq. 7
    l_sp = losses.spatial_pyramid_loss(out, i_tau, c.pyramid_cells)   # Eq. 8
    l_c = losses.content_loss([f_out[k] for k in CONTENT_LAYERS],
                              [f_t[k] for k in CONTENT_LAYERS])         # Eq. 9
    # Eq. 10 along the input's edges; the official code adds the channel means of C^w and C^b
    l_tv = sum(losses.edge_weighted_tv(m, i_t, c.sigma) for m in jnp.split(maps, 2, axis=-1))
    total = (c.lambda_s * l_s + c.lambda_sp * l_sp + c.lambda_c * l_c
             + c.lambda_tv * l_tv)                                      # Eq. 11
    return total, out, {'loss': total, 'loss_s': l_s, 'loss_sp': l_sp, 'loss_c': l_c,
                        'loss_tv': l_tv}

  def loss(self, params, batch_stats, vgg_params, batch, rng=None, critic=None):
    i_t, i_tau = self.frames(batch)
    mu, logvar, new_stats = common.encode_dist(self.encoder, self.config.model.encoder_size,
                                               params, batch_stats, i_tau, True)  # Alg. 3, l. 7
    z, l_z, z_metrics = common.regularised_code(self.config, mu, logvar, rng, critic)  # 6.6
    maps = self.maps(params, i_t, z)                                       # line 8
    total, _, metrics_ = self.terms(vgg_params, maps, i_t, i_tau)           # lines 9-10
    return total + l_z, (new_stats, mu, {**metrics_, 'loss': total + l_z, **z_metrics})

  def train_step(self, state, batch, rng):
    new_stats, params, opt_state, state, metrics_ = self.gradient_step(
        state, self.loss, rng, state.vgg, batch)
    return state.replace(step=state.step + 1, params=params, batch_stats=new_stats,
                         opt_state=opt_state), metrics_

  def eval_step(self, state, batch, inputs=None):
    """Per pair, with z = E^A(target) in evaluation mode: the colour error of the 32x32 cell
    averages (Eq. 8 space) and the PSNR of the output against the target, each next to the
    unchanged input as baseline; plus the Gram style loss of both. `*_affine`: the input under
    the global affine colour map fitted to the target, a reference that sees the target.
    Whether z is used: `cell_rmse_zinput` with z = E^A(input) (ideally about the input's error:
    no change asked for) and `cell_rmse_zother` with the code of the batch's next pair."""
    i_t, i_tau = self.frames(batch)
    z, _ = self.encode(state.params, state.batch_stats, i_tau, train=False)
    z_in, _ = self.encode(state.params, state.batch_stats, i_t, train=False)
    recolour = lambda code: color.color_transfer(self.maps(state.params, i_t, code), i_t)
    out = recolour(z)
    cells = self.config.loss.pyramid_cells
    sp = lambda x: losses.spatial_pyramid(x, cells)
    cell_err = lambda x: jnp.sqrt(jnp.mean(jnp.square(sp(x) - sp(i_tau)), axis=(1, 2, 3)))
    style = lambda x: sum(jnp.mean(jnp.square(losses.gram(a) - losses.gram(b)), axis=(1, 2))
                          for a, b in zip([self.features(state.vgg, x)[k] for k in STYLE_LAYERS],
                                          [self.features(state.vgg, i_tau)[k]
                                           for k in STYLE_LAYERS]))
    to01, psnr = common.to_unit, metrics.psnr
    fit = color.affine_colour_fit(i_t, i_tau)
    return {'cell_rmse': cell_err(out), 'cell_rmse_input': cell_err(i_t),
            'cell_rmse_affine': cell_err(fit),
            'cell_rmse_zinput': cell_err(recolour(z_in)),
            'cell_rmse_zother': cell_err(recolour(jnp.roll(z, 1, axis=0))),
            'psnr': psnr(to01(out), to01(i_tau)), 'psnr_input': psnr(to01(i_t), to01(i_tau)),
            'psnr_affine': psnr(to01(fit), to01(i_tau)),
            'style': style(out), 'style_input': style(i_t)}

  def sample(self, state, batch, rng):
    """The first frame re-coloured with the codes of `num_frames` frames interpolated from the
    pair's two codes (E^A(I_t) -> E^A(I_tau)), as generation interpolates key-frame codes."""
    del rng
    i_t, i_tau = self.frames(batch)
    z0, _ = self.encode(state.params, state.batch_stats, i_t, train=False)
    z1, _ = self.encode(state.params, state.batch_stats, i_tau, train=False)
    n = self.config.sample.num_frames
    frames = [color.color_transfer(self.maps(state.params, i_t, z0 + (z1 - z0) * a), i_t)
              for a in np.linspace(0.0, 1.0, n)]
    return {'appearance': (jnp.stack(frames, axis=1) + 1.0) * 0.5}

  # ---------------------------------------------------------------- codebook
  def clip_code_sequences(self, state, frames_of_clips):
    """[(T_i, Z)] codes of every frame of every clip, E^A in evaluation mode."""
    enc = jax.jit(lambda s, x: self.encode(s.params, s.batch_stats, x, train=False)[0])
    out = []
    for frames in frames_of_clips:
      x = common.to_signed(jnp.asarray(np.asarray(frames)))
      if x.shape[1:3] != (self.size, self.size):
        x = warp.resize(x, self.size, self.size)
      out.append(np.asarray(enc(state, x)))
    return out

  def finalize(self, state, train_records):
    """The appearance codebook (codes of every frame of every training clip) and the latent
    LSTM of Appendix B fitted to its sequences."""
    seqs = self.clip_code_sequences(state, (r['frames'] for r in train_records))
    lc = self.config.lstm
    params, loss = train_latent_lstm(seqs, lc.num_steps, lc.learning_rate, self.config.seed)
    print(f'animgen: appearance codebook ({len(seqs)} sequences) and latent LSTM (next-code '
          f'MSE {loss:.4g})', flush=True)
    return {'codebook_appearance.npz': codebook_artefact(seqs),
            'latent_lstm.npz': latent_lstm_artefact(params)}


def codebook_artefact(sequences) -> dict:
  """Appearance codebook: one code sequence per training clip, stored flat as `codes`
  [sum T_i, Z] with `offsets` [N + 1] (clip i is codes[offsets[i]:offsets[i+1]])."""
  offsets = np.cumsum([0] + [len(s) for s in sequences]).astype(np.int64)
  return {'codes': np.concatenate(sequences).astype(np.float32), 'offsets': offsets}


def codebook_sequences(artefact) -> list[np.ndarray]:
  """The per-clip code sequences of a codebook artefact (inverse of codebook_artefact)."""
  codes, offsets = artefact['codes'], artefact['offsets']
  return [codes[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


# -------------------------------------------------------------------- latent LSTM (Appendix B)
def lstm_next_codes(params, seqs, latent_dim=8):
  """Teacher forcing: codes [B, T, Z] -> predictions of codes[:, 1:] from codes[:, :-1]."""
  model = LatentLSTM(latent_dim)
  carry = model.zero_carry(seqs.shape[0])
  step = lambda c, z: model.apply({'params': params}, c, z, method=LatentLSTM.step)
  _, out = jax.lax.scan(step, carry, jnp.swapaxes(seqs[:, :-1], 0, 1))
  return jnp.swapaxes(out, 0, 1)


def lstm_rollout(params, z0, length: int, latent_dim=8) -> np.ndarray:
  """Appendix B: z_1 = E^A(input), then each next code predicted from the previous one.
  Returns [length, Z]."""
  model = LatentLSTM(latent_dim)
  z0 = jnp.asarray(z0, jnp.float32).reshape(1, -1)

  def body(carry, _):
    c, z = carry
    c, nz = model.apply({'params': params}, c, z, method=LatentLSTM.step)
    return (c, nz), nz[0]

  _, rest = jax.lax.scan(body, (model.zero_carry(1), z0), None, length=length - 1)
  return np.concatenate([np.asarray(z0), np.asarray(rest)], axis=0)


def train_latent_lstm(sequences, num_steps=2000, lr=1e-3, seed=0):
  """Fits the latent LSTM to the codebook sequences (next-code MSE, all clips per step,
  padded and masked). Returns (params, final loss)."""
  sequences = [np.asarray(s, np.float32) for s in sequences if len(s) >= 2]
  if not sequences:
    raise ValueError('the latent LSTM needs code sequences of at least 2 frames')
  zdim = sequences[0].shape[1]
  t_max = max(len(s) for s in sequences)
  codes = np.zeros((len(sequences), t_max, zdim), np.float32)
  mask = np.zeros((len(sequences), t_max - 1), np.float32)
  for i, s in enumerate(sequences):
    codes[i, :len(s)] = s
    mask[i, :len(s) - 1] = 1.0
  codes, mask = jnp.asarray(codes), jnp.asarray(mask)
  model = LatentLSTM(zdim)
  params = model.init(jax.random.key(seed), codes[:, 0])['params']

  def loss_fn(p):
    err = jnp.sum(jnp.square(lstm_next_codes(p, codes, zdim) - codes[:, 1:]), -1)
    return jnp.sum(err * mask) / jnp.sum(mask)

  params, loss = adam_minimise(loss_fn, params, num_steps, lr)
  return params, float(loss)


def latent_lstm_artefact(params) -> dict:
  """latent_lstm.npz: the LSTM's parameters flattened to 'module/param' names."""
  flat = traverse_util.flatten_dict(jax.device_get(params), sep='/')
  return {k: np.asarray(v) for k, v in flat.items()}


def latent_lstm_params(artefact) -> dict:
  """Parameters of a latent_lstm artefact (inverse of latent_lstm_artefact)."""
  return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in artefact.items()}, sep='/')
