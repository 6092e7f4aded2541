"""What Animating Landscape's motion and appearance methods share (Endo et al. 2019, Sec. 4):
the predictor/encoder pair, frame handling, the encoder's two BatchNorm modes, the optional
latent regularisation of Sec. 6.6 with the official code's latent critic, and the train step
around a method's loss."""
import flax.struct
import jax
import jax.numpy as jnp
import optax

from animgen import runtime
from animgen.methods.base import Method
from animgen.models.landscape import Encoder, LatentCritic, Predictor
from animgen.ops import losses, warp

CRITIC_CLIP = 0.01        # official train.py: WGAN weight clipping to [-0.01, 0.01]
CRITIC_LR_SCALE = 0.1     # official train.py: critic learning rate 0.1 x the main one


def to_signed(frames_uint8):
  """uint8 [0, 255] -> float32 [-1, 1] (Sec. 4: linearly normalised RGB)."""
  return frames_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_unit(x):
  """[-1, 1] -> [0, 1]."""
  return (x + 1.0) * 0.5


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


def uses_critic(config) -> bool:
  return config.model.get('latent_reg', 'none') == 'wae_gan'


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


def critic_tx(config):
  """Adam with the main betas at 0.1 x the main learning rate (official train.py)."""
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

  # WGAN critic maximises D(prior) - D(E(x)): prior scores high (official train.py; sign ours).
  def loss(p):
    return d(p, codes) - d(p, prior)

  value, grads = jax.value_and_grad(loss)(state.critic)
  updates, opt_state = critic_tx(config).update(grads, state.critic_opt_state, state.critic)
  critic = optax.apply_updates(state.critic, updates)
  # Clip every critic parameter (kernels and biases) after each update, as WGAN (official train.py).
  critic = jax.tree_util.tree_map(lambda w: jnp.clip(w, -CRITIC_CLIP, CRITIC_CLIP), critic)
  return state.replace(critic=critic, critic_opt_state=opt_state), {'critic_gap': -value}


@flax.struct.dataclass
class CriticFields:
  """Mixed into a landscape state when model.latent_reg='wae_gan', so that every other state
  (and checkpoint, and `animgen convert` output) keeps its plain pytree."""
  critic: dict                    # LatentCritic params
  critic_opt_state: optax.OptState


class LandscapeMethod(Method):
  """P (motion or appearance predictor) and E (its latent encoder), trained jointly with Adam."""

  out_channels: int = 2
  beta: float | None = None

  def __init__(self, config, num_train: int = 0):
    super().__init__(config, num_train)
    m = config.model
    self.predictor = Predictor(out_channels=self.out_channels, widths=tuple(m.widths),
                               num_res_blocks=m.num_res_blocks, beta=self.beta, fast=m.fast,
                               dtype=jnp.dtype(config.get('dtype', 'float32')))
    self.encoder = Encoder(latent_dim=m.latent_dim, widths=tuple(m.encoder_widths))
    self.size = config.image_size
    self.tx = self.optimizer()

  def optimizer(self):
    o = self.config.optim
    return optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)

  @property
  def compiler_options(self):
    return runtime.cnn_compiler_options()

  def frames(self, batch):
    return frame_pair(batch, self.size)

  def encode(self, params, batch_stats, x, train):
    """z = mu = E(x resized to the encoder size) -> (mu, new batch_stats)."""
    mu, _, stats = encode_dist(self.encoder, self.config.model.encoder_size, params,
                               batch_stats, x, train)
    return mu, stats

  def init_networks(self, rng, encoder_channels: int):
    """-> (params {'predictor', 'encoder'}, encoder batch_stats)."""
    k1, k2 = jax.random.split(rng)
    e = self.config.model.encoder_size
    x = jnp.zeros((1, self.size, self.size, 3))
    z = jnp.zeros((1, self.config.model.latent_dim))
    pvars = self.predictor.init(k1, x, z)
    evars = self.encoder.init(k2, jnp.zeros((1, e, e, encoder_channels)), train=False)
    return {'predictor': pvars['params'], 'encoder': evars['params']}, evars['batch_stats']

  def with_critic(self, plain_cls, critic_cls, rng, **fields):
    """plain_cls(**fields), or critic_cls with a fresh latent critic under wae_gan."""
    if not uses_critic(self.config):
      return plain_cls(**fields)
    critic, critic_opt = init_critic(self.config, jax.random.fold_in(rng, 2))
    return critic_cls(**fields, critic=critic, critic_opt_state=critic_opt)

  def gradient_step(self, state, loss_fn, rng, *args):
    """Adam on loss_fn(params, batch_stats, *args, rng, critic) -> (aux, params, opt_state,
    state, metrics); one critic step per train step under wae_gan, simultaneous with P/E on the
    same pre-step codes E(x) (official train.py gives no order or n_critic; ours, Sec. 6.6)."""
    gan = isinstance(state, CriticFields)
    critic_rng = None
    if gan and rng is not None:  # a key of its own for the critic's N(0, I) prior samples
      rng, critic_rng = jax.random.split(rng)
    (_, (aux, mu, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, *args, rng, state.critic if gan else None)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if gan:
      state, critic_metrics = critic_update(self.config, state, mu, critic_rng)
      metrics.update(critic_metrics)
    metrics['grad_norm'] = optax.tree.norm(grads)
    metrics['update_norm'] = optax.tree.norm(updates)
    return aux, params, opt_state, state, metrics
