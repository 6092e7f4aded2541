"""Sync-DRAW (Mittal et al. 2017): a recurrent VAE over the whole GIF with one Gaussian
attention per frame, and its caption-conditioned form (Sec. 3.2).

At every step t = 1..T (Sec. 3.1.2):
  X^_t = X - sigmoid(C^{t-1})                                  (Eq. 6)
  R^t = [beta_i F_p x_i F_q^T, beta_i F_p x^_i F_q^T]_i          (Eq. 5, read from h_dec^{t-1})
  h_enc^t = LSTM_enc(h_enc^{t-1}, [R^t, h_dec^{t-1}])           (Eq. 7)
  z^t ~ Q(Z^t | h_enc^t) = N(mu^t, sigma^t)                    (Eq. 8, reparameterised)
  h_dec^t = LSTM_dec(h_dec^{t-1}, z^t)  or  [z^t, s^t]          (Eq. 9 / Eq. 14)
  c_i^t = c_i^{t-1} + (1/beta^_i) F^_p^T w_i F^_q               (Eqs. 10-11, write from h_dec^t)
With captions, s^t = sum_k alpha_k^t h_k^lang (Eqs. 12-13) over a bidirectional LSTM's states, and
the prior is N(tanh(W_mu h_dec^{t-1}), exp(tanh(W_sigma h_dec^{t-1}))^2) (Eq. 16).

`cuboid=True` is the paper's baseline (Sec. 4.1): DRAW over the GIF as one N x A x B volume, one
attention whose temporal bank F_Z (K x N) joins the two spatial ones, K x K x K glimpses.

Frames are [B, N, A, B] grey values in [0, 1]; canvases are logits.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from animgen.models.layers import LSTMCell
from animgen.ops import filterbank as fb


class CaptionEncoder(nn.Module):
  """LSTM_lang (Sec. 3.2): word embeddings through a bidirectional LSTM -> h^lang [B, L, 2H]."""
  vocab_size: int
  embed_dim: int = 128
  hidden: int = 128
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens, lengths):
    x = nn.Embed(self.vocab_size, self.embed_dim, dtype=self.dtype)(tokens)
    rnn = nn.Bidirectional(nn.RNN(LSTMCell(self.hidden, dtype=self.dtype)),
                           nn.RNN(LSTMCell(self.hidden, dtype=self.dtype)))
    return rnn(x, seq_lengths=lengths)


class SyncDRAW(nn.Module):
  """The R-VAE with synchronised per-frame attention (or the cuboid baseline)."""
  frames: int = 10            # N
  height: int = 64            # A
  width: int = 64             # B
  steps: int = 10             # T (Sec. 4)
  read_n: int = 8             # K (Sec. 4; the public code used 10)
  write_n: int = 8
  enc_size: int = 256
  dec_size: int = 256
  z_size: int = 100
  cuboid: bool = False        # Sec. 4.1 baseline
  vocab_size: int = 0         # > 0: caption model (Sec. 3.2)
  embed_dim: int = 128
  lang_size: int = 128        # per direction
  align_size: int = 256
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    d = lambda n, **kw: nn.Dense(n, dtype=self.dtype, **kw)
    self.lstm_enc = LSTMCell(self.enc_size, dtype=self.dtype)
    self.lstm_dec = LSTMCell(self.dec_size, dtype=self.dtype)
    self.q_mu, self.q_logvar = d(self.z_size), d(self.z_size)
    n_att = fb.NUM_CUBOID_PARAMS if self.cuboid else self.frames * fb.NUM_PARAMS
    self.read_attention = d(n_att)                   # linear in h_dec^{t-1} (Sec. 3.1.2)
    self.write_attention = d(n_att)                  # linear in h_dec^t (Sec. 3.1.3)
    k = self.write_n
    self.write_window = d(k ** 3 if self.cuboid else self.frames * k * k)   # w^t
    if self.vocab_size:
      self.lang = CaptionEncoder(self.vocab_size, self.embed_dim, self.lang_size, self.dtype)
      self.align_u = d(self.align_size, use_bias=False)    # U (Eq. 13)
      self.align_w = d(self.align_size)                    # W h^gen + b
      self.align_v = d(1, use_bias=False)                  # v
      self.prior_mu = d(self.z_size, use_bias=False)       # W_mu (Eq. 16)
      self.prior_sigma = d(self.z_size, use_bias=False)    # W_sigma

  # ------------------------------------------------------------------ attention
  def attention(self, raw, k):
    """Raw linear outputs -> per-frame (or cuboid) attention parameters."""
    if self.cuboid:
      return fb.cuboid_params(raw, self.frames, self.height, self.width, k)
    raw = raw.reshape(raw.shape[:-1] + (self.frames, fb.NUM_PARAMS))
    return fb.attention_params(raw, self.height, self.width, k)

  def _banks(self, p, k):
    fp, fq = fb.filterbanks(p, self.height, self.width, k)
    fz = fb.temporal_filterbank(p, self.frames, k) if self.cuboid else None
    return fz, fp, fq

  def read(self, x, x_hat, h_dec_prev):
    """R^t [B, 2 N K^2] (sync) or [B, 2 K^3] (cuboid) from x, X^ [B, N, A, B] (Eq. 5)."""
    k = self.read_n
    p = self.attention(self.read_attention(h_dec_prev), k)
    fz, fp, fq = self._banks(p, k)
    if self.cuboid:
      r = [fb.read_cuboid(v, fz, fp, fq, p['beta']) for v in (x, x_hat)]
    else:
      r = [fb.read(v, fp, fq, p['beta']) for v in (x, x_hat)]
    b = x.shape[0]
    return jnp.concatenate([v.reshape(b, -1) for v in r], axis=-1)

  def write(self, h_dec):
    """Canvas increment [B, N, A, B] (Eq. 10) and the write attention parameters."""
    k = self.write_n
    p = self.attention(self.write_attention(h_dec), k)
    fz, fp, fq = self._banks(p, k)
    b = h_dec.shape[0]
    if self.cuboid:
      w = self.write_window(h_dec).reshape(b, k, k, k)
      return fb.write_cuboid(w, fz, fp, fq, p['beta']), p
    w = self.write_window(h_dec).reshape(b, self.frames, k, k)
    return fb.write(w, fp, fq, p['beta']), p

  # ------------------------------------------------------------------ captions
  def encode_caption(self, tokens):
    """tokens int [B, L] (0 pads, right-padded) -> (h^lang [B, L, 2H], U h^lang, mask)."""
    mask = tokens > 0
    h_lang = self.lang(tokens, jnp.sum(mask, axis=-1))
    return h_lang, self.align_u(h_lang), mask

  def align(self, caption, h_dec_prev):
    """Eqs. 12-13 -> (s^t [B, 2H], alpha^t [B, L])."""
    h_lang, u_h, mask = caption
    e = self.align_v(jnp.tanh(u_h + self.align_w(h_dec_prev)[:, None]))[..., 0]
    alpha = jax.nn.softmax(jnp.where(mask, e, -jnp.inf), axis=-1)
    return jnp.einsum('bl,blh->bh', alpha, h_lang), alpha

  def prior(self, h_dec_prev):
    """Eq. 16: (mu_prior, log sigma_prior^2) = (tanh(W_mu h), 2 tanh(W_sigma h))."""
    return jnp.tanh(self.prior_mu(h_dec_prev)), 2.0 * jnp.tanh(self.prior_sigma(h_dec_prev))

  # ------------------------------------------------------------------ the R-VAE
  def _zeros(self, b, n):
    return (jnp.zeros((b, n), self.dtype), jnp.zeros((b, n), self.dtype))

  def step(self, carry, x, eps, cap=None):
    """One step t of the R-VAE (Eqs. 6-11; with a caption, 12-14 and 16).
    carry = (LSTM_enc carry, LSTM_dec carry, C^{t-1} logits [B, N, A, B]), each LSTM carry
    (c, h), so h_dec^{t-1} = carry[1][1]; eps [B, Z] the noise of Eq. 8; cap from
    encode_caption or None -> (carry at t, {'mu', 'logvar'[, 'alpha', 'prior_mu',
    'prior_logvar']}, each [B, .])."""
    enc, dec, canvas = carry
    h_dec = dec[1]                                                     # h_dec^{t-1}
    x_hat = x - jax.nn.sigmoid(canvas)                                 # Eq. 6
    r = self.read(x, x_hat, h_dec)                                     # Eq. 5, from h_dec^{t-1}
    enc, h_enc = self.lstm_enc(enc, jnp.concatenate([r, h_dec], -1))   # Eq. 7
    mu, logvar = self.q_mu(h_enc), self.q_logvar(h_enc)
    z = mu + jnp.exp(0.5 * logvar) * eps                               # Eq. 8
    out = {'mu': mu, 'logvar': logvar}
    if cap is not None:
      s, out['alpha'] = self.align(cap, h_dec)                         # Eqs. 12-13
      out['prior_mu'], out['prior_logvar'] = self.prior(h_dec)         # Eq. 16
      z = jnp.concatenate([z, s], -1)                                  # Eq. 14
    dec, h_dec = self.lstm_dec(dec, z)                                 # Eq. 9
    canvas = canvas + self.write(h_dec)[0]                             # Eqs. 10-11, from h_dec^t
    return (enc, dec, canvas), out

  def __call__(self, x, rng, caption=None):
    """Training pass. x [B, N, A, B] in [0, 1] -> {'canvas': C^T logits [B, N, A, B],
    'mu', 'logvar' [B, T, Z] of Q, 'prior_mu', 'prior_logvar' [B, T, Z], 'alpha' [B, T, L]}."""
    b = x.shape[0]
    carry = (self._zeros(b, self.enc_size), self._zeros(b, self.dec_size),
             jnp.zeros(x.shape, self.dtype))
    cap = self.encode_caption(caption) if caption is not None else None
    outs = []
    for t in range(self.steps):
      eps = jax.random.normal(jax.random.fold_in(rng, t), (b, self.z_size), self.dtype)
      carry, out = self.step(carry, x, eps, cap)
      outs.append(out)
    result = {k: jnp.stack([o[k] for o in outs], 1) for k in outs[0]}
    if cap is None:
      result['prior_mu'] = jnp.zeros_like(result['mu'])                 # N(0, I) (Eq. 15)
      result['prior_logvar'] = jnp.zeros_like(result['logvar'])
    result['canvas'] = carry[2]
    return result

  def generate(self, rng, batch_size, caption=None):
    """Sec. 3.4: z^t from the prior (N(0, I), or Eq. 16's given the caption), canvases
    accumulated over T. -> {'canvases': C^t logits [B, T, N, A, B], 'write': write attention
    parameters, each [B, T, N] (sync) or [B, T] (cuboid), 'alpha' [B, T, L] with a caption}."""
    b = batch_size
    dec = self._zeros(b, self.dec_size)
    h_dec = dec[1]
    canvas = jnp.zeros((b, self.frames, self.height, self.width), self.dtype)
    cap = self.encode_caption(caption) if caption is not None else None
    canvases, params, alphas = [], [], []
    for t in range(self.steps):
      key = jax.random.fold_in(rng, t)
      if cap is None:
        z = jax.random.normal(key, (b, self.z_size), self.dtype)
      else:
        p_mu, p_logvar = self.prior(h_dec)
        s, alpha = self.align(cap, h_dec)
        alphas.append(alpha)
        z = p_mu + jnp.exp(0.5 * p_logvar) * jax.random.normal(key, p_mu.shape, p_mu.dtype)
        z = jnp.concatenate([z, s], -1)
      dec, h_dec = self.lstm_dec(dec, z)
      delta, p = self.write(h_dec)
      canvas = canvas + delta
      canvases.append(canvas)
      params.append(p)
    out = {'canvases': jnp.stack(canvases, 1),
           'write': jax.tree.map(lambda *v: jnp.stack(v, 1), *params)}
    if alphas:
      out['alpha'] = jnp.stack(alphas, 1)
    return out


class GifClassifier(nn.Module):
  """The judge of the caption-adherence evaluation (ours), on GIFs [B, N, H, W] (frames as
  channels). digits=1: digit logits [B, 10] and motion logits [B, 2] of a single-digit GIF.
  digits=2: digit-presence logits [B, 10] (multi-label) and each digit's motion logits
  [B, 10, 2] of a two-digit GIF."""
  digits: int = 1

  @nn.compact
  def __call__(self, x):
    h = jnp.moveaxis(x, 1, -1)
    for width in (32, 64, 64):
      h = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2))(h))
    h = nn.relu(nn.Dense(128 * self.digits)(h.reshape(h.shape[0], -1)))
    if self.digits == 1:
      return nn.Dense(10)(h), nn.Dense(2)(h)
    return nn.Dense(10)(h), nn.Dense(20)(h).reshape(-1, 10, 2)
