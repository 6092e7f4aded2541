"""DeepGIFs (Malik, Troute & Capoor, Sec. 4): a VAE-GAN whose latent codes a LSTM rolls forward.

Training has the two phases of the public code, as two runs of the one trainer:
`train.phase='vaegan'` pretrains the VAE-GAN on single frames (public code: Adam 5e-4, 128
frames per batch; loss MSE(x_hat, x) + 1e-4 GAN + 1e-8 KL), then `train.phase='lstm'` starts
from that run's latest checkpoint (`train.init_from`, its workdir) and trains the VAE-LSTM on
clips with teacher forcing (public code: Adam 1e-3, batch 32, loss MSE(x[:, 1:], x_hat[:, :-1])
+ lambda_gan BCE; ours: + lambda_KL KL as Sec. 4.2's objective, which the public LSTM loss
does not list; encoder and decoder train on as Sec. 5's "VAE-LSTM"). (Ours: one run switching
phase by step count inside the jitted step needs lax.cond, and XLA:CPU ran the convolutions
inside the cond ~45x slower, measured.) Ours: each phase starts its optimisers fresh. The
discriminator is the same network in both phases (Sec. 4.1: "employed in two separate GAN
architectures").

Sampling (Sec. 4.1): encode the seed frame, let the LSTM predict the next code, decode it, encode
the generated frame again, and so on for a 20-frame GIF. Evaluation: per-frame PSNR / SSIM of
that rollout against the true clip, next to repeating the seed frame (the `deepgifs_rollout`
evaluator); eval_step adds the VAE reconstruction and teacher-forced next-frame PSNR.
"""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen import runtime
from animgen.errors import InputError
from animgen.methods.base import Method
from animgen.models.deepgifs import Decoder, Discriminator, Encoder, LatentLSTM
from animgen.ops import losses, metrics

PSNR_CAP = 100.0   # dB, for frames equal to the truth (PSNR would be +inf)


@flax.struct.dataclass
class DeepGIFsState:
  step: jax.Array
  params: dict          # {'encoder', 'decoder', 'lstm', 'disc'}
  batch_stats: dict     # {'encoder', 'decoder', 'disc'}
  opt_g: optax.OptState  # Adam of encoder, decoder and LSTM
  opt_d: optax.OptState  # Adam of the discriminator


def to_input(frames_uint8):
  """uint8 [0, 255] -> float32 [0, 1], the frames the networks see. Not [-1, 1]: the public
  decoder ends in BN + LeakyReLU before its tanh, so it cannot go much below 0 (on [-1, 1]
  frames it draws no black background and collapses to grey, loss_rec stuck at 0.97)."""
  return frames_uint8.astype(jnp.float32) / 255.0


def to_unit(x):
  return jnp.clip(x, 0.0, 1.0)


class DeepGIFs(Method):
  """VAE-GAN pretraining (train.phase=vaegan) or the latent LSTM phase (train.phase=lstm)."""

  def __init__(self, config, num_train: int = 0):
    super().__init__(config, num_train)
    m = config.model
    dtype = jnp.dtype(config.get('dtype', 'float32'))
    widths = tuple(m.widths)
    self.size, self.channels, self.frames = config.image_size, m.channels, config.frames
    down = 2 ** len(widths)   # one stride-2 conv per width (4 in the paper: 64 -> 4)
    if self.size % down:
      raise InputError(f'image_size {self.size} must be a multiple of {down} '
                       f'({len(widths)} stride-2 convs)')
    self.encoder = Encoder(m.latent_dim, widths, dtype)
    self.decoder = Decoder(m.channels, widths, self.size // down, dtype)
    self.lstm = LatentLSTM(m.latent_dim, m.lstm_hidden, dtype)
    self.disc = Discriminator(m.latent_dim, widths, dtype)
    o = config.optim
    self.phase = config.train.phase
    if self.phase not in ('vaegan', 'lstm'):
      raise InputError(f"train.phase must be 'vaegan' or 'lstm', not {self.phase!r}")
    self.tx = optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)

  @property
  def compiler_options(self):
    return runtime.cnn_compiler_options(runtime.DOT_ONLY_YNN_OPTIONS)

  # ---------------------------------------------------------------- data
  def make_example(self, record, rng, train):
    """Training, VAE-GAN phase: train.vaegan_frames_per_clip random frames of the clip. LSTM
    phase: the clip's first `frames` frames, or a random window of data.train_frames of them
    (0: all; a CPU-budget option, the paper trains on 20). Evaluation: the first `frames`."""
    frames = np.asarray(record['frames'])
    if frames.shape[1:] != (self.size, self.size, self.channels):
      raise InputError(f'{self.config.dataset}: frames {frames.shape[1:]} but the config '
                       f'expects {(self.size, self.size, self.channels)}: set image_size')
    frames = frames[:self.frames]
    if train and self.phase == 'vaegan':
      k = self.config.train.vaegan_frames_per_clip
      return {'frames': frames[np.sort(rng.choice(len(frames), k, replace=False))]}
    window = self.config.data.get('train_frames', 0)
    if train and window and window < len(frames):
      start = int(rng.integers(0, len(frames) - window + 1))
      frames = frames[start:start + window]
    return {'frames': frames}

  # ---------------------------------------------------------------- networks
  def encode(self, params, stats, x, train):
    """x [N, H, W, C] -> (mu, logvar, new encoder batch_stats)."""
    v = {'params': params['encoder'], 'batch_stats': stats['encoder']}
    if train:
      (mu, logvar), upd = self.encoder.apply(v, x, True, mutable=['batch_stats'])
      return mu, logvar, upd['batch_stats']
    mu, logvar = self.encoder.apply(v, x, False)
    return mu, logvar, stats['encoder']

  def decode(self, params, stats, z, train):
    v = {'params': params['decoder'], 'batch_stats': stats['decoder']}
    if train:
      x, upd = self.decoder.apply(v, z, True, mutable=['batch_stats'])
      return x, upd['batch_stats']
    return self.decoder.apply(v, z, False), stats['decoder']

  def discriminate(self, params, stats, x, train):
    v = {'params': params['disc'], 'batch_stats': stats['disc']}
    if train:
      logits, upd = self.disc.apply(v, x, True, mutable=['batch_stats'])
      return logits, upd['batch_stats']
    return self.disc.apply(v, x, False), stats['disc']

  def lstm_unroll(self, params, codes):
    """Teacher forcing: codes [B, T, Z] -> predicted next codes [B, T, Z]."""
    carry = self.lstm.initialize_carry(codes.shape[0])
    return self.lstm.apply({'params': params['lstm']}, carry, codes,
                           method=LatentLSTM.unroll)[1]

  # ---------------------------------------------------------------- state
  def _fresh(self, rng):
    k = jax.random.split(rng, 4)
    x = jnp.zeros((1, self.size, self.size, self.channels))
    z = jnp.zeros((1, self.config.model.latent_dim))
    ev = self.encoder.init(k[0], x, False)
    dv = self.decoder.init(k[1], z, False)
    lv = self.lstm.init(k[2], self.lstm.initialize_carry(1), z)
    cv = self.disc.init(k[3], x, False)
    params = {'encoder': ev['params'], 'decoder': dv['params'], 'lstm': lv['params'],
              'disc': cv['params']}
    stats = {'encoder': ev['batch_stats'], 'decoder': dv['batch_stats'],
             'disc': cv['batch_stats']}
    g, d = self._split(params)
    return DeepGIFsState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                         opt_g=self.tx.init(g), opt_d=self.tx.init(d))

  def init(self, rng, batch):
    del batch
    return self._fresh(rng)

  def warm_start(self, state, source):
    """LSTM phase with train.init_from: the encoder, decoder and discriminator (and their
    BatchNorm statistics) of the VAE-GAN run, a fresh LSTM (the public code's two phases)."""
    params = dict(source.params, lstm=state.params['lstm'])
    return state.replace(params=params, batch_stats=source.batch_stats)

  @staticmethod
  def _split(params):
    g = {k: params[k] for k in ('encoder', 'decoder', 'lstm')}
    return g, params['disc']

  # ---------------------------------------------------------------- losses
  def _generator_loss(self, g_params, d_params, stats, x, target, lambda_gan, rng, sequence):
    """Reconstruction / prediction MSE + lambda_gan * (-log D(G)) + lambda_KL * KL (Sec. 4.2).

    x: frames fed to the encoder, [N, H, W, C] (VAE-GAN) or [B, T, H, W, C] (LSTM, teacher
    forcing: frame t predicts frame t + 1). target: what the output is compared with."""
    params = dict(g_params, disc=d_params)
    frames = x.reshape((-1,) + x.shape[-3:])
    mu, logvar, enc_stats = self.encode(params, stats, frames, True)
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)   # z ~ N(mu, Sigma)
    if sequence:
      b, t = x.shape[:2]
      # public code: MSE(x[:, 1:], pred[:, :-1]), prediction t is compared with frame t + 1
      codes = self.lstm_unroll(params, z.reshape(b, t, -1))[:, :-1]
      z = codes.reshape(b * (t - 1), -1)
    out, dec_stats = self.decode(params, stats, z, True)
    rec = losses.mse(out, target.reshape(out.shape))
    fake_logits, _ = self.discriminate(params, stats, out, True)
    gan = losses.gan_g_loss(fake_logits)
    kl = losses.gaussian_kl(mu, logvar)
    total = rec + lambda_gan * gan + self.config.loss.lambda_kl * kl
    new_stats = dict(stats, encoder=enc_stats, decoder=dec_stats)
    return total, (out, new_stats, {'loss': total, 'loss_rec': rec, 'loss_gan_g': gan,
                                    'loss_kl': kl})

  def _disc_loss(self, d_params, params, stats, real, fake):
    """Binary cross-entropy of D on real frames against generated ones (Sec. 4.1.3)."""
    p = dict(params, disc=d_params)
    real_logits, s1 = self.discriminate(p, stats, real, True)
    fake_logits, s2 = self.discriminate(p, dict(stats, disc=s1), fake, True)
    return losses.gan_d_loss(real_logits, fake_logits), (s2, jnp.mean(real_logits > 0),
                                                         jnp.mean(fake_logits < 0))

  def _update(self, state, x, target, lambda_gan, rng, sequence):
    """One simultaneous update of G (encoder, decoder, LSTM) and D from the same forward pass
    (ours: the published facts of the public code do not give its update order)."""
    g_params, d_params = self._split(state.params)
    (_, (fake, stats, m)), g_grads = jax.value_and_grad(self._generator_loss, has_aux=True)(
        g_params, d_params, state.batch_stats, x, target, lambda_gan, rng, sequence)
    real = target.reshape(fake.shape)
    (d_loss, (d_stats, acc_real, acc_fake)), d_grads = jax.value_and_grad(
        self._disc_loss, has_aux=True)(d_params, state.params, stats, real,
                                       jax.lax.stop_gradient(fake))
    g_upd, opt_g = self.tx.update(g_grads, state.opt_g, g_params)
    d_upd, opt_d = self.tx.update(d_grads, state.opt_d, d_params)
    g_params = optax.apply_updates(g_params, g_upd)
    d_params = optax.apply_updates(d_params, d_upd)
    m.update(loss_d=d_loss, d_acc_real=acc_real, d_acc_fake=acc_fake,
             grad_norm=optax.tree.norm(g_grads))
    return state.replace(step=state.step + 1, params=dict(g_params, disc=d_params),
                         batch_stats=dict(stats, disc=d_stats), opt_g=opt_g, opt_d=opt_d), m

  def train_step(self, state, batch, rng):
    """VAE-GAN phase: batch['frames'] [B, k, H, W, C] are B * k single frames (the public
    code's batch of 128 frames), reconstructed. LSTM phase: clips [B, T, H, W, C], frame t
    predicts frame t + 1 (teacher forcing, MSE(x[:, 1:], x_hat[:, :-1]) as the public code)."""
    frames = to_input(batch['frames'])
    if self.phase == 'vaegan':
      x = frames.reshape((-1,) + frames.shape[2:])
      return self._update(state, x, x, self.config.loss.lambda_gan, rng, False)
    return self._update(state, frames, frames[:, 1:], self.config.loss.lambda_gan, rng, True)

  # ---------------------------------------------------------------- inference
  def rollout(self, state, batch, num_frames):
    """From the first frame of each clip in batch['frames'] (uint8) -> [B, num_frames, H, W, C]
    in [0, 1], frame 0 = the seed frame."""
    return to_unit(self.rollout_from(state, to_input(batch['frames'])[:, 0], num_frames))

  def rollout_from(self, state, seed, num_frames):
    """seed [B, H, W, C] in [0, 1] -> [B, num_frames, H, W, C], frame 0 = seed: encode the last
    frame (mu, BatchNorm running averages), LSTM step, decode (Sec. 4.1)."""
    p, s = state.params, state.batch_stats
    carry = self.lstm.initialize_carry(seed.shape[0])

    def step(c, _):
      carry, x = c
      mu, _, _ = self.encode(p, s, x, False)   # Sec. 4.1: the last generated frame, re-encoded
      carry, z = self.lstm.apply({'params': p['lstm']}, carry, mu)
      x, _ = self.decode(p, s, z, False)
      return (carry, x), x

    _, xs = jax.lax.scan(step, (carry, seed), None, length=num_frames - 1)
    return jnp.concatenate([seed[:, None], jnp.moveaxis(xs, 0, 1)], axis=1)

  def sample(self, state, batch, rng):
    """LSTM phase: the rollout from each clip's first frame; VAE-GAN phase: reconstructions."""
    del rng
    frames = to_input(batch['frames'])
    rgb = lambda v: jnp.repeat(to_unit(v), 3 // self.channels, axis=-1)
    if self.phase == 'vaegan':
      p, s = state.params, state.batch_stats
      flat = frames.reshape((-1,) + frames.shape[2:])
      recon = self.decode(p, s, self.encode(p, s, flat, False)[0], False)[0]
      return {'reconstruction': rgb(recon.reshape(frames.shape)), 'truth': rgb(frames)}
    gen = self.rollout_from(state, frames[:, 0], self.config.sample.num_frames)
    return {'rollout': rgb(gen), 'truth': rgb(frames)}

  def eval_step(self, state, batch, inputs=None):
    """Per clip: VAE reconstruction PSNR, teacher-forced next-frame PSNR and its
    copy-the-previous-frame baseline (codes = mu, BatchNorm running averages)."""
    p, s = state.params, state.batch_stats
    frames = to_input(batch['frames'])
    b, t = frames.shape[:2]
    flat = frames.reshape((-1,) + frames.shape[2:])
    mu, _, _ = self.encode(p, s, flat, False)
    recon, _ = self.decode(p, s, mu, False)
    codes = self.lstm_unroll(p, mu.reshape(b, t, -1))[:, :-1]
    nxt, _ = self.decode(p, s, codes.reshape(b * (t - 1), -1), False)
    psnr = lambda a, x: metrics.psnr(to_unit(a), to_unit(x), cap=PSNR_CAP)
    truth_next = frames[:, 1:]
    return {'recon_psnr': psnr(recon.reshape(frames.shape), frames).mean(1),
            'next_psnr': psnr(nxt.reshape(truth_next.shape), truth_next).mean(1),
            'next_psnr_copy': psnr(frames[:, :-1], truth_next).mean(1)}
