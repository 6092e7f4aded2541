"""Same-machine PyTorch references for bench/sequence_models.py and bench/syncdraw.py (NOT part
of animgen, not a test).

Re-expressions, written for these benchmarks from the papers (Zhou et al. 2018 Sec. 3 and 5.1;
Malik et al. Sec. 4 and the published facts of the public DeepGIFs code; Mittal et al. 2017
Sec. 3 and 4) with the layer sizes, losses and optimisers of animgen's configs (read from
configs/<method>.py, so that the shapes are the same by construction), of the train steps of:

  image2gif_rnn    Image2GIF generator (4 conv 5x5/2 -> tanh z 64 -> LSTM -> linear to 4x4x512
                   -> 4 deconv 5x5/2 to RGB, tanh) + per-frame discriminator, Eq. 3 + D's BCE,
                   two Adams (configs/image2gif.py)
  image2gif_dqn    the same with the DQN (Q-vector of 64, epsilon-greedy forward pass, decode
                   with the one-hots, Huber TD loss against a target network)
  deepgifs_vaegan  DeepGIFs VAE-GAN on single frames (configs/deepgifs.py:vaegan)
  deepgifs_lstm    DeepGIFs VAE + latent LSTM + GAN on clips, teacher forcing (configs/deepgifs.py)
  syncdraw         the Sync-DRAW R-VAE, T steps of per-frame Gaussian read / write attention,
                   summed BCE + KL, Adam with global-norm clipping (configs/syncdraw.py)
  syncdraw_captions  the caption model: bidirectional LSTM over the words, alignment (Eqs.
                   12-13) into the decoder, KL to Eq. 16's prior (configs/syncdraw.py:captions)
  syncdraw_cuboid  the cuboid baseline: one K x K x K attention with a temporal bank
                   (configs/syncdraw.py:cuboid)

They are not any official code (none was copied; Image2GIF has none). The layers are PyTorch's
own (Conv2d, ConvTranspose2d, BatchNorm, nn.LSTM for DeepGIFs as its public code), written as a
PyTorch user would; where animgen's layer differs only in alignment (TensorFlow 'SAME' padding,
the 'SAME' transposed conv) the torch layer pads or crops so that values are equal, which the
`--check` mode verifies: it copies animgen's initial parameters into the torch modules and
compares the losses of two train steps (equal weights, equal noise; DQN greedy).

  .venv/bin/python bench/torch_sequence_models.py --variant deepgifs_vaegan --batch 16
  .venv/bin/python bench/torch_sequence_models.py --check all        # loss equality, batch 2
  .venv/bin/python bench/sequence_models.py --torch                  # animgen and torch, one run

The timing child (`--child`) imports torch and the configs only (no JAX), in a fresh process, so
that its peak RSS (VmHWM) is its own; `--malloc tuned` (the default of the comparison) sets
animgen's entry-point allocator (animgen.runtime.tune_malloc: mallopt) first, `stock` leaves
glibc's defaults. `--threads 1` (the default) runs torch on one intra-op thread: on the shared
2-core machine (another training run on the other core) torch's two OpenMP threads made the
DeepGIFs VAE-GAN step at batch 8 take 3.5 s instead of 0.15 s (a descheduled thread stalls every
parallel region); `--threads 0` keeps torch's default of one thread per core.
"""
import argparse
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
  if _p not in sys.path:
    sys.path.insert(0, _p)

from common import peak_rss  # noqa: E402
from sequence_models import reset_peak  # noqa: E402  (numpy / JAX free)

try:
  import numpy as np
  import torch
  from torch import nn
  from torch.nn import functional as F
  from torch.utils.checkpoint import checkpoint
except ImportError:
  raise SystemExit('bench/torch_sequence_models.py needs torch: pip install -e ".[convert]"') \
      from None

VARIANTS = ('image2gif_rnn', 'image2gif_dqn', 'deepgifs_vaegan', 'deepgifs_lstm', 'syncdraw',
            'syncdraw_captions', 'syncdraw_cuboid')


def adam(params, lr, b1, b2):
  """Adam as optax.adam (eps 1e-8 added to sqrt(v_hat)); the fused CPU kernel where torch has it."""
  params = [p for p in params if p.requires_grad]
  try:
    return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=1e-8, fused=True)
  except (RuntimeError, TypeError):
    return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=1e-8)


def grad_norm(params):
  """Global L2 norm of the gradients (animgen logs it every step)."""
  gs = [p.grad for p in params if p.grad is not None]
  return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs]))


def masked_mean(x, mask):
  m = mask.to(x.dtype).expand_as(x)
  return (x * m).sum() / m.sum().clamp(min=1.0)


def bce(logits, target: float):
  """Elementwise BCE of sigmoid(logits) against a constant target (animgen's bce_with_logits)."""
  return F.softplus(logits) - target * logits


class LSTMCell(nn.Module):
  """The flax OptimizedLSTMCell's parameters and gates (i, f, g, o; one bias, on the hidden
  side): gates = W_i x + W_h h + b; c' = sig(f) c + sig(i) tanh(g); h' = sig(o) tanh(c')."""

  def __init__(self, cin, hidden):
    super().__init__()
    self.ih = nn.Linear(cin, 4 * hidden, bias=False)
    self.hh = nn.Linear(hidden, 4 * hidden)

  def forward(self, x, carry):
    c, h = carry
    i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return c, torch.sigmoid(o) * torch.tanh(c)


# ============================================================================ Image2GIF
class SameConvStack(nn.Module):
  """4 conv 5x5 stride 2 with TensorFlow 'SAME' padding (1 before, 2 after at even sizes) and
  ReLU or LeakyReLU(0.2): [N, 3, 64, 64] -> flattened [N, 512 * 4 * 4] (C, H, W order)."""

  def __init__(self, cin, widths, leaky=False):
    super().__init__()
    chans = (cin,) + tuple(widths)
    self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, 2) for a, b in zip(chans[:-1], chans[1:]))
    self.leaky = leaky

  def forward(self, x):
    for conv in self.convs:
      x = conv(F.pad(x, (1, 2, 1, 2)))
      x = F.leaky_relu(x, 0.2) if self.leaky else F.relu(x)
    return x.flatten(1)


class Image2GIFDecoder(nn.Module):
  """State [N, D] -> linear to a 4x4x512 map (ReLU) -> 4 deconvs 5x5 stride 2 (ReLU, tanh last)
  to RGB [N, 3, 64, 64]. ConvTranspose2d(padding=1) gives 2H + 1 rows whose first 2H are the
  'SAME' transposed conv of TensorFlow / lax.conv_transpose (the kernel flipped)."""

  def __init__(self, din, widths):
    super().__init__()
    self.base = widths[0]
    self.project = nn.Linear(din, 16 * widths[0])
    chans = tuple(widths) + (3,)
    self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, 5, 2, padding=1)
                                 for a, b in zip(chans[:-1], chans[1:]))

  def forward(self, h):
    h = F.relu(self.project(h)).view(-1, self.base, 4, 4)
    for i, d in enumerate(self.deconvs):
      h = d(h)[:, :, :-1, :-1]
      if i < len(self.deconvs) - 1:
        h = F.relu(h)
    return torch.tanh(h)


class Image2GIFGenerator(nn.Module):
  def __init__(self, m):
    super().__init__()
    assert m.recurrent == 'dense' and not m.get('rgb_conv', False), \
        'the torch reference has the paper layout only (recurrent=dense, rgb_conv=False)'
    widths = tuple(m.widths)
    self.encoder = SameConvStack(3, widths)
    self.to_z = nn.Linear(widths[-1] * 16, m.z_dim)
    self.cell = LSTMCell(m.z_dim, m.z_dim)
    self.n_actions = m.num_actions if m.dqn else 0
    self.decoder = Image2GIFDecoder(m.z_dim + self.n_actions, tuple(m.decoder_widths))

  def states(self, x, t):
    """x [B, 3, 64, 64] -> LSTM states h_1..h_T [T, B, Z] (the code z is the input every step)."""
    code = torch.tanh(self.to_z(self.encoder(x)))
    c = h = torch.zeros_like(code)
    hs = []
    for _ in range(t):
      c, h = self.cell(code, (c, h))
      hs.append(h)
    return torch.stack(hs)

  def decode(self, h, onehot=None):
    return self.decoder(h if onehot is None else torch.cat([h, onehot], -1))


class QNetwork(nn.Module):
  def __init__(self, m):
    super().__init__()
    self.encoder = SameConvStack(3, tuple(m.widths))
    self.q = nn.Linear(m.widths[-1] * 16, m.num_actions)

  def forward(self, x):
    return self.q(self.encoder(x))


class Discriminator(nn.Module):
  def __init__(self, widths):
    super().__init__()
    self.encoder = SameConvStack(3, widths, leaky=True)
    self.logit = nn.Linear(widths[-1] * 16, 1)

  def forward(self, x):
    return self.logit(self.encoder(x))[:, 0]


class Image2GIFStep:
  """The Image2GIF train step of animgen.methods.image2gif (Eqs. 1-3, the DQN of Sec. 3.2 with
  its Mnih 2015 details), remat = torch.utils.checkpoint per time step as animgen's
  jax.checkpoint per time step."""

  def __init__(self, config, remat):
    self.c = config
    m = config.model
    self.dqn, self.n = bool(m.dqn), int(m.num_actions)
    self.remat = remat
    self.g = Image2GIFGenerator(m)
    self.d = Discriminator(tuple(m.discriminator_widths))
    self.q = QNetwork(m) if self.dqn else None
    self.target_q = copy.deepcopy(self.q) if self.dqn else None
    if self.dqn:
      self.target_q.requires_grad_(False)
    o = config.optim
    self.gq_params = list(self.g.parameters()) + (list(self.q.parameters()) if self.dqn else [])
    self.opt_g = adam(self.gq_params, o.learning_rate, o.b1, o.b2)
    self.opt_d = adam(self.d.parameters(), o.learning_rate, o.b1, o.b2)
    self.step_count = 0

  def modules(self):
    return [self.g, self.d] + ([self.q] if self.dqn else [])

  def epsilon(self):
    d = self.c.dqn
    frac = min(max(self.step_count / max(d.epsilon_steps, 1), 0.0), 1.0)
    return d.epsilon_start + frac * (d.epsilon_end - d.epsilon_start)

  def act(self, x, hs, eps):
    """Forward-only DQN pass: actions [T, B], states seen [T, B, 3, 64, 64]."""
    prev, actions, seen = x, [], []
    b = x.shape[0]
    with torch.no_grad():
      for h in hs:
        a = self.q(prev).argmax(-1)
        if eps > 0:
          explore = torch.rand(b) < eps
          a = torch.where(explore, torch.randint(0, self.n, (b,)), a)
        frame = self.g.decode(h, F.one_hot(a, self.n).to(h.dtype))
        actions.append(a)
        seen.append(prev)
        prev = frame
    return torch.stack(actions), torch.stack(seen)

  def _decode_all(self, hs, onehots):
    t, b = hs.shape[:2]
    if self.remat:
      if onehots is None:
        return torch.stack([checkpoint(self.g.decode, h, use_reentrant=False) for h in hs])
      return torch.stack([checkpoint(self.g.decode, h, o, use_reentrant=False)
                          for h, o in zip(hs, onehots)])
    flat = lambda a: a.reshape((t * b,) + a.shape[2:])
    out = self.g.decode(flat(hs), None if onehots is None else flat(onehots))
    return out.view(t, b, *out.shape[1:])

  def _disc(self, frames):
    """frames [B, T, 3, 64, 64] -> logits [B, T]."""
    b, t = frames.shape[:2]
    if self.remat:
      return torch.stack([checkpoint(self.d, frames[:, i], use_reentrant=False)
                          for i in range(t)], 1)
    return self.d(frames.reshape((b * t,) + frames.shape[2:])).view(b, t)

  def __call__(self, frames_u8, length, epsilon=None):
    """frames_u8 uint8 [B, T+1, 3, 64, 64], length int [B] -> metrics (floats)."""
    c = self.c
    lam = c.loss.lambda_adv
    frames = frames_u8.float() / 127.5 - 1.0
    x, target = frames[:, 0], frames[:, 1:]
    b, t = target.shape[:2]
    steps = torch.arange(t)[None]
    valid = steps + 1 < length[:, None]                           # generated frames 1..T-1
    eps = self.epsilon() if epsilon is None else epsilon
    self.d.requires_grad_(False)                                  # G's pass: no D weight grads
    hs = self.g.states(x, t)
    onehots = seen = actions = None
    if self.dqn:
      actions, seen = self.act(x, hs.detach(), eps)
      onehots = F.one_hot(actions, self.n).to(hs.dtype)
    pred = self._decode_all(hs, onehots).transpose(0, 1)          # [B, T, 3, 64, 64]
    se = (pred - target).square().sum((2, 3, 4))                   # Eq. 1 per frame
    l_mse = se.mean()
    adv = bce(self._disc(pred), 1.0)                              # Eq. 2 per frame
    l_adv = masked_mean(adv, valid)
    total = l_mse + lam * l_adv                                   # Eq. 3
    out = {'loss_mse': l_mse, 'loss_adv': l_adv, 'loss_g': total}
    if self.dqn:
      reward = -(se + lam * adv).detach() / pred[0, 0].numel()
      with torch.no_grad():
        next_q = self.target_q(pred.detach().flatten(0, 1)).view(b, t, -1)
      done = (steps >= length[:, None] - 2).float()
      y = reward + c.dqn.gamma * (1.0 - done) * next_q.max(-1).values
      q_sa = self.q(seen.transpose(0, 1).flatten(0, 1)).view(b, t, -1).gather(
          -1, actions.transpose(0, 1)[..., None])[..., 0]
      l_td = masked_mean(F.huber_loss(q_sa, y, reduction='none', delta=1.0), valid)
      total = total + l_td
      out['loss_td'] = l_td
    self.opt_g.zero_grad(set_to_none=True)
    total.backward()
    out['grad_norm_g'] = grad_norm(self.gq_params)
    self.opt_g.step()
    self.d.requires_grad_(True)
    fake = pred.detach()
    l_d = (masked_mean(bce(self._disc(target), 1.0), valid)
           + masked_mean(bce(self._disc(fake), 0.0), valid))
    self.opt_d.zero_grad(set_to_none=True)
    l_d.backward()
    self.opt_d.step()
    self.step_count += 1
    if self.dqn and self.step_count % c.dqn.target_update_every == 0:
      self.target_q.load_state_dict(self.q.state_dict())
    out['loss'], out['loss_d'] = total, l_d
    return {k: float(v.detach()) for k, v in out.items()}


# ============================================================================ DeepGIFs
LEAK = 0.01


def _bn2(c):
  return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


class DGConvStack(nn.Module):
  """conv 4x4 / 2, padding 1 -> BatchNorm -> LeakyReLU(0.01) per width; flattened (C, H, W)."""

  def __init__(self, cin, widths):
    super().__init__()
    chans = (cin,) + tuple(widths)
    self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans[:-1], chans[1:]))
    self.bns = nn.ModuleList(_bn2(b) for b in widths)

  def forward(self, x):
    for conv, bn in zip(self.convs, self.bns):
      x = F.leaky_relu(bn(conv(x)), LEAK)
    return x.flatten(1)


class DGEncoder(nn.Module):
  def __init__(self, m, size):
    super().__init__()
    widths = tuple(m.widths)
    flat = widths[-1] * (size // 2 ** len(widths)) ** 2
    self.stack = DGConvStack(m.channels, widths)
    self.fc_mu, self.fc_logvar = nn.Linear(flat, m.latent_dim), nn.Linear(flat, m.latent_dim)

  def forward(self, x):
    h = self.stack(x)
    return self.fc_mu(h), self.fc_logvar(h)


class DGDecoder(nn.Module):
  """Linear to a 4x4 map of 256 (no activation), then per width nearest upsample x2 + conv 3x3
  + BatchNorm + LeakyReLU, the last to `channels`, then tanh (public VAEGAN_Gen)."""

  def __init__(self, m, size):
    super().__init__()
    w = list(m.widths)[::-1]
    self.base, self.c0 = size // 2 ** len(w), w[0]
    self.fc = nn.Linear(m.latent_dim, self.base * self.base * w[0])
    outs = w[1:] + [m.channels]
    self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, 1, 1) for a, b in zip(w, outs))
    self.bns = nn.ModuleList(_bn2(b) for b in outs)

  def forward(self, z):
    h = self.fc(z).view(-1, self.c0, self.base, self.base)
    for conv, bn in zip(self.convs, self.bns):
      h = F.leaky_relu(bn(conv(F.interpolate(h, scale_factor=2, mode='nearest'))), LEAK)
    return torch.tanh(h)


class DGDiscriminator(nn.Module):
  def __init__(self, m, size):
    super().__init__()
    widths = tuple(m.widths)
    flat = widths[-1] * (size // 2 ** len(widths)) ** 2
    self.stack = DGConvStack(m.channels, widths)
    self.fc = nn.Linear(flat, m.latent_dim)
    self.bn_fc = nn.BatchNorm1d(m.latent_dim, eps=1e-5, momentum=0.1)
    self.logit = nn.Linear(m.latent_dim, 1)

  def forward(self, x):
    return self.logit(F.leaky_relu(self.bn_fc(self.fc(self.stack(x))), LEAK))[:, 0]


class LatentLSTM(nn.Module):
  """nn.LSTM(latent, 200) (the public code's; PyTorch's two biases) + fc back to the latent."""

  def __init__(self, m):
    super().__init__()
    self.lstm = nn.LSTM(m.latent_dim, m.lstm_hidden, batch_first=True)
    self.fc = nn.Linear(m.lstm_hidden, m.latent_dim)

  def forward(self, zs):
    return self.fc(self.lstm(zs)[0])


class DeepGIFsStep:
  """animgen.methods.deepgifs' step: one simultaneous update of G (encoder, decoder, LSTM) and D
  from the same forward pass; BatchNorm in training mode in every pass (D twice in its loss)."""

  def __init__(self, config):
    self.c = config
    m, s = config.model, config.image_size
    self.enc, self.dec = DGEncoder(m, s), DGDecoder(m, s)
    self.lstm, self.disc = LatentLSTM(m), DGDiscriminator(m, s)
    self.sequence = config.train.phase == 'lstm'
    o = config.optim
    self.g_params = (list(self.enc.parameters()) + list(self.dec.parameters())
                     + list(self.lstm.parameters()))
    self.opt_g = adam(self.g_params, o.learning_rate, o.b1, o.b2)
    self.opt_d = adam(self.disc.parameters(), o.learning_rate, o.b1, o.b2)

  def modules(self):
    return [self.enc, self.dec, self.lstm, self.disc]

  def __call__(self, frames_u8, noise=None):
    """frames_u8 uint8 [B, k or T, C, H, W]; noise [N, Z] (default: drawn) -> metrics."""
    c = self.c
    frames = frames_u8.float() / 127.5 - 1.0
    b, t = frames.shape[:2]
    x = frames.flatten(0, 1)
    target = frames[:, 1:] if self.sequence else frames
    self.disc.requires_grad_(False)
    mu, logvar = self.enc(x)
    eps = torch.randn_like(mu) if noise is None else noise
    z = mu + torch.exp(0.5 * logvar) * eps
    if self.sequence:   # teacher forcing: prediction t against frame t + 1
      z = self.lstm(z.view(b, t, -1))[:, :-1].reshape(b * (t - 1), -1)
    out = self.dec(z)
    rec = (out - target.reshape(out.shape)).square().mean()
    gan = bce(self.disc(out), 1.0).mean()
    kl = (-0.5 * (1.0 + logvar - mu.square() - logvar.exp()).sum(-1)).mean()
    total = rec + c.loss.lambda_gan * gan + c.loss.lambda_kl * kl
    self.opt_g.zero_grad(set_to_none=True)
    total.backward()
    gn = grad_norm(self.g_params)
    self.disc.requires_grad_(True)
    real = target.reshape(out.shape)
    l_d = bce(self.disc(real), 1.0).mean() + bce(self.disc(out.detach()), 0.0).mean()
    self.opt_d.zero_grad(set_to_none=True)
    l_d.backward()
    self.opt_g.step()
    self.opt_d.step()
    return {'loss': total.item(), 'loss_rec': rec.item(), 'loss_gan_g': gan.item(),
            'loss_kl': kl.item(), 'loss_d': l_d.item(), 'grad_norm': gn.item()}


# ============================================================================ Sync-DRAW
class CaptionEncoder(nn.Module):
  """LSTM_lang (Sec. 3.2): word embeddings through a forward and a backward LSTM over the
  right-padded tokens; the backward one reads each caption from its last word."""

  def __init__(self, vocab, embed, hidden):
    super().__init__()
    self.embed = nn.Embedding(vocab, embed)
    self.fwd, self.bwd = LSTMCell(embed, hidden), LSTMCell(embed, hidden)
    self.hidden = hidden

  def _run(self, cell, x):
    carry = (x.new_zeros(x.shape[0], self.hidden), x.new_zeros(x.shape[0], self.hidden))
    hs = []
    for i in range(x.shape[1]):
      carry = cell(x[:, i], carry)
      hs.append(carry[1])
    return torch.stack(hs, 1)

  def forward(self, tokens):
    """tokens int64 [B, L] (0 pads) -> h^lang [B, L, 2H] (padded positions unused)."""
    length = (tokens > 0).sum(1, keepdim=True)
    pos = torch.arange(tokens.shape[1])[None]
    rev = torch.where(pos < length, length - 1 - pos, pos)       # flip each caption's words
    x = self.embed(tokens)
    back = self._run(self.bwd, x.gather(1, rev[..., None].expand_as(x)))
    back = back.gather(1, rev[..., None].expand_as(back))
    return torch.cat([self._run(self.fwd, x), back], -1)


class SyncDRAWNet(nn.Module):
  """R-VAE with one Gaussian read / write attention per frame (Eqs. 1-11 of Mittal et al.), or
  the cuboid baseline's one attention over the whole volume (Sec. 4.1), with or without a
  caption (Eqs. 12-14, 16): frames [B, N, A, B] in [0, 1], canvases logits."""

  def __init__(self, m, vocab=0):
    super().__init__()
    self.n, self.size, self.k_r, self.k_w = m.frames, m.size, m.read_n, m.write_n
    self.steps, self.z, self.cuboid = m.steps, m.z_size, bool(m.cuboid)
    self.captions = bool(m.captions)
    glimpse = 2 * (m.read_n ** 3 if self.cuboid else m.frames * m.read_n ** 2)
    n_att = 8 if self.cuboid else 5 * m.frames
    lang = 2 * m.lang_size if self.captions else 0
    self.lstm_enc = LSTMCell(glimpse + m.dec_size, m.enc_size)
    self.lstm_dec = LSTMCell(m.z_size + lang, m.dec_size)
    self.q_mu, self.q_logvar = nn.Linear(m.enc_size, m.z_size), nn.Linear(m.enc_size, m.z_size)
    self.read_attention = nn.Linear(m.dec_size, n_att)
    self.write_attention = nn.Linear(m.dec_size, n_att)
    self.write_window = nn.Linear(m.dec_size, m.write_n ** 3 if self.cuboid
                                  else m.frames * m.write_n ** 2)
    if self.captions:
      self.lang = CaptionEncoder(vocab, m.embed_dim, m.lang_size)
      self.align_u = nn.Linear(lang, m.align_size, bias=False)             # U (Eq. 13)
      self.align_w = nn.Linear(m.dec_size, m.align_size)                   # W h^gen + b
      self.align_v = nn.Linear(m.align_size, 1, bias=False)                # v
      self.prior_mu = nn.Linear(m.dec_size, m.z_size, bias=False)          # W_mu (Eq. 16)
      self.prior_sigma = nn.Linear(m.dec_size, m.z_size, bias=False)       # W_sigma
    self.enc_size, self.dec_size = m.enc_size, m.dec_size

  @staticmethod
  def bank(g, delta, sigma2, size, k):
    """K normalised Gaussians over 1..size centred at g + (u - K/2 - 0.5) delta (Eqs. 1-4)."""
    offsets = torch.arange(1, k + 1, dtype=g.dtype) - k / 2.0 - 0.5
    mu = g[..., None] + offsets * delta[..., None]                         # [..., K]
    a = torch.arange(1, size + 1, dtype=g.dtype)
    f = torch.exp(-(a - mu[..., None]).square() / (2.0 * sigma2[..., None, None]))
    return f / f.sum(-1, keepdim=True).clamp(min=1e-8)

  def banks(self, raw, k):
    """raw [B, 5 N] (or [B, 8]) -> F_p, F_q [B, (N,) K, size], beta, F_Z [B, K, N] or None."""
    a_ = self.size
    raw = raw if self.cuboid else raw.view(raw.shape[0], self.n, 5)
    gp = (a_ + 1) / 2.0 * (torch.tanh(raw[..., 0]) + 1.0)
    gq = (a_ + 1) / 2.0 * (torch.tanh(raw[..., 1]) + 1.0)
    sigma2 = torch.exp(raw[..., 2])
    delta = (a_ - 1) / max(k - 1, 1) * torch.exp(raw[..., 3])
    beta = torch.exp(raw[..., 4])
    fz = None
    if self.cuboid:   # the temporal bank: the same rules over the N frames
      gz = (self.n + 1) / 2.0 * (torch.tanh(raw[..., 5]) + 1.0)
      fz = self.bank(gz, (self.n - 1) / max(k - 1, 1) * torch.exp(raw[..., 7]),
                     torch.exp(raw[..., 6]), self.n, k)
    return self.bank(gp, delta, sigma2, a_, k), self.bank(gq, delta, sigma2, a_, k), beta, fz

  def read(self, v, fp, fq, beta, fz):
    if self.cuboid:
      return beta[:, None, None, None] * torch.einsum('bsn,bua,bnac,bvc->bsuv', fz, fp, v, fq)
    return beta[..., None, None] * (fp @ v @ fq.transpose(-1, -2))

  def write(self, h_dec):
    fp, fq, beta, fz = self.banks(self.write_attention(h_dec), self.k_w)
    b, k = h_dec.shape[0], self.k_w
    if self.cuboid:
      w = self.write_window(h_dec).view(b, k, k, k)
      return torch.einsum('bsn,bua,bsuv,bvc->bnac', fz, fp, w, fq) / beta[:, None, None, None]
    w = self.write_window(h_dec).view(b, self.n, k, k)
    return fp.transpose(-1, -2) @ w @ fq / beta[..., None, None]          # Eq. 10

  def forward(self, x, noise=None, tokens=None):
    """x [B, N, A, B] -> (canvas logits, mu, logvar, prior mu, prior logvar [T, B, Z])."""
    b = x.shape[0]
    zeros = lambda n: (x.new_zeros(b, n), x.new_zeros(b, n))
    enc, dec = zeros(self.enc_size), zeros(self.dec_size)
    canvas = torch.zeros_like(x)
    if self.captions:
      h_lang = self.lang(tokens)
      u_h, mask = self.align_u(h_lang), tokens > 0
    outs = []
    for t in range(self.steps):
      h_dec = dec[1]
      x_hat = x - torch.sigmoid(canvas)                                     # Eq. 6
      fp, fq, beta, fz = self.banks(self.read_attention(h_dec), self.k_r)   # Eq. 5
      read = [self.read(v, fp, fq, beta, fz) for v in (x, x_hat)]
      r = torch.cat([v.flatten(1) for v in read] + [h_dec], -1)
      enc = self.lstm_enc(r, enc)                                           # Eq. 7
      mu, logvar = self.q_mu(enc[1]), self.q_logvar(enc[1])
      eps = torch.randn(b, self.z) if noise is None else noise[t]
      z = mu + torch.exp(0.5 * logvar) * eps                                # Eq. 8
      if self.captions:
        e = self.align_v(torch.tanh(u_h + self.align_w(h_dec)[:, None]))[..., 0]   # Eq. 13
        alpha = torch.softmax(e.masked_fill(~mask, float('-inf')), -1)
        s = torch.einsum('bl,blh->bh', alpha, h_lang)                       # Eq. 12
        p_mu, p_logvar = torch.tanh(self.prior_mu(h_dec)), 2 * torch.tanh(self.prior_sigma(h_dec))
        z = torch.cat([z, s], -1)                                           # Eq. 14
      else:
        p_mu, p_logvar = torch.zeros_like(mu), torch.zeros_like(logvar)
      dec = self.lstm_dec(z, dec)                                           # Eq. 9
      canvas = canvas + self.write(dec[1])                                  # Eqs. 10-11
      outs.append((mu, logvar, p_mu, p_logvar))
    return (canvas,) + tuple(torch.stack(v) for v in zip(*outs))


class SyncDRAWStep:
  """Eq. 15 (summed BCE of sigmoid(C^T) + KL to N(0, I), or to Eq. 16's prior with a caption;
  mean over GIFs), Adam(1e-3, 0.5, 0.999) after clipping the global gradient norm at 10
  (animgen.methods.syncdraw)."""

  def __init__(self, config):
    from animgen import captions   # numpy only
    self.c = config
    self.net = SyncDRAWNet(config.model, len(captions.VOCAB))
    o = config.optim
    self.params = list(self.net.parameters())
    self.opt = adam(self.params, o.learning_rate, o.b1, o.b2)

  def modules(self):
    return [self.net]

  def __call__(self, frames_u8, tokens=None, noise=None):
    """frames_u8 uint8 [B, N, A, B], tokens int64 [B, L] (caption model) -> metrics."""
    x = frames_u8.float() / 255.0
    canvas, mu, logvar, p_mu, p_logvar = self.net(x, noise, tokens)
    rec = (F.softplus(canvas) - x * canvas).sum((1, 2, 3))
    kl = (0.5 * (p_logvar - logvar + (logvar.exp() + (mu - p_mu).square()) * (-p_logvar).exp()
                 - 1.0)).sum(-1).sum(0)
    loss = (rec + kl).mean()
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(self.params, self.c.optim.grad_clip)
    self.opt.step()
    return {'loss': loss.item(), 'loss_rec': rec.mean().item(), 'loss_kl': kl.mean().item(),
            'grad_norm': float(gn)}


# ============================================================================ set-up
def get_config(variant, batch=0, remat=None):
  """animgen's config of the variant (configs/<method>.py; no JAX), batch 0 = the config's."""
  if variant.startswith('image2gif'):
    from configs.image2gif import get_config as g
    c = g('dqn' if variant == 'image2gif_dqn' else None)
    if remat is not None:
      c.model.remat = bool(remat)
  elif variant.startswith('deepgifs'):
    from configs.deepgifs import get_config as g
    c = g('vaegan' if variant == 'deepgifs_vaegan' else None)
    c.train.init_from = ''
  elif variant.startswith('syncdraw'):
    from configs.syncdraw import get_config as g
    c = g(variant.partition('_')[2] or None)
  else:
    raise SystemExit(f'unknown variant {variant!r}: choose from {", ".join(VARIANTS)}')
  c.batch_size = batch or c.batch_size
  return c


def frame_count(config, variant):
  if variant.startswith('image2gif'):
    from configs.image2gif import LENGTHS
    return max(LENGTHS.values())                    # the longest pattern, I: 27 frames
  if variant == 'deepgifs_vaegan':
    return config.train.vaegan_frames_per_clip
  if variant == 'deepgifs_lstm':
    return config.frames
  return config.model.frames


def build(variant, config):
  """-> (train step object, random batch as a tuple of step arguments)."""
  torch.manual_seed(0)
  rng = np.random.default_rng(0)
  b, t = config.batch_size, frame_count(config, variant)
  if variant.startswith('image2gif'):
    step = Image2GIFStep(config, bool(config.model.remat))
    frames = rng.integers(0, 256, (b, t, 3, 64, 64), dtype=np.uint8)
    length = rng.integers(17, t + 1, (b,))
    return step, (torch.from_numpy(frames), torch.from_numpy(length))
  if variant.startswith('deepgifs'):
    s, ch = config.image_size, config.model.channels
    return DeepGIFsStep(config), (torch.from_numpy(
        rng.integers(0, 256, (b, t, ch, s, s), dtype=np.uint8)),)
  m = config.model
  frames = torch.from_numpy(rng.integers(0, 256, (b, m.frames, m.size, m.size), dtype=np.uint8))
  return SyncDRAWStep(config), (frames, syncdraw_tokens(config, b))


def syncdraw_tokens(config, batch):
  """The caption tokens of bench/syncdraw.py's batch (digit d % 10, motion d % 2), or None."""
  m = config.model
  if not m.captions:
    return None
  from animgen import captions
  return torch.from_numpy(np.stack([captions.tokenize(
      captions.caption_text([d % 10], [d % 2]), m.caption_length)
      for d in range(batch)]).astype(np.int64))


def count_params(step):
  return sum(p.numel() for mod in step.modules() for p in mod.parameters())


def child(variant, batch, steps, warmup, remat=None):
  config = get_config(variant, batch, remat)
  step, args = build(variant, config)
  metrics = None
  t0 = time.perf_counter()
  for _ in range(max(warmup, 1)):
    metrics = step(*args)
  first_s = time.perf_counter() - t0
  hwm_before = peak_rss()
  reset = reset_peak()
  times, cpu = [], []
  for _ in range(steps):
    t0, c0 = time.perf_counter(), os.times()
    metrics = step(*args)
    c1 = os.times()
    times.append(time.perf_counter() - t0)
    cpu.append(c1.user + c1.system - c0.user - c0.system)
  med = lambda xs: sorted(xs)[len(xs) // 2]
  return {'variant': variant, 'impl': 'torch', 'torch': torch.__version__,
          'threads': torch.get_num_threads(), 'batch': config.batch_size,
          'remat': bool(config.model.get('remat', False)), 'params': count_params(step),
          'warmup_s': first_s, 'times_s': times, 's_per_step_median': med(times),
          's_per_step_min': min(times), 'cpu_s_per_step_median': med(cpu),
          'peak_rss_bytes': max(peak_rss(), hwm_before),
          'steps_peak_rss_bytes': peak_rss() if reset else 0, 'loss': metrics['loss']}


# ============================================================================ --check
def _t(a):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32)))


def _set(param, value):
  value = _t(value)
  assert param.shape == value.shape, (param.shape, value.shape)
  with torch.no_grad():
    param.copy_(value)


def _conv(mod, p):
  _set(mod.weight, np.transpose(p['kernel'], (3, 2, 0, 1)))
  _set(mod.bias, p['bias'])


def _deconv(mod, p):   # lax.conv_transpose's kernel, unflipped HWIO -> torch's flipped IOHW
  _set(mod.weight, np.transpose(np.asarray(p['kernel'])[::-1, ::-1], (2, 3, 0, 1)))
  _set(mod.bias, p['bias'])


def _dense(mod, p, from_hwc=None, to_hwc=None):
  """Flax Dense -> nn.Linear; from_hwc / to_hwc = (H, W, C) of a flattened NHWC map on the
  input / output side (torch flattens C, H, W)."""
  k, bias = np.asarray(p['kernel']), (np.asarray(p['bias']) if 'bias' in p else None)
  if from_hwc:
    h, w, c = from_hwc
    k = k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
  if to_hwc:
    h, w, c = to_hwc
    k = k.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(k.shape[0], -1)
    bias = bias.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
  _set(mod.weight, k.T)
  assert (mod.bias is None) == (bias is None), mod
  if mod.bias is not None:
    _set(mod.bias, bias)


def _lstm_kernels(p):
  wi = np.concatenate([p[f'i{g}']['kernel'] for g in 'ifgo'], 1).T
  wh = np.concatenate([p[f'h{g}']['kernel'] for g in 'ifgo'], 1).T
  return wi, wh, np.concatenate([p[f'h{g}']['bias'] for g in 'ifgo'])


def _cell(mod, p):
  wi, wh, b = _lstm_kernels(p)
  _set(mod.ih.weight, wi)
  _set(mod.hh.weight, wh)
  _set(mod.hh.bias, b)


def _bn(mod, p, s):
  _set(mod.weight, p['scale'])
  _set(mod.bias, p['bias'])
  _set(mod.running_mean, s['mean'])
  _set(mod.running_var, s['var'])


def _stack(mod, p, names='conv{}'):
  for i, conv in enumerate(mod.convs):
    _conv(conv, p[names.format(i)])


def load_image2gif(step, params, target_q):
  g, m = params['generator'], step.c.model
  _stack(step.g.encoder, g['encoder'])
  _dense(step.g.to_z, g['to_z'], from_hwc=(4, 4, m.widths[-1]))
  _cell(step.g.cell, g['cell'])
  _dense(step.g.decoder.project, g['decoder']['project'], to_hwc=(4, 4, m.decoder_widths[0]))
  for i, d in enumerate(step.g.decoder.deconvs):
    _deconv(d, g['decoder'][f'deconv{i}'])
  _stack(step.d.encoder, params['discriminator']['encoder'])
  _dense(step.d.logit, params['discriminator']['logit'],
         from_hwc=(4, 4, m.discriminator_widths[-1]))
  if step.dqn:
    for net, p in ((step.q, params['q']), (step.target_q, target_q)):
      _stack(net.encoder, p['encoder'])
      _dense(net.q, p['q'], from_hwc=(4, 4, m.widths[-1]))


def load_deepgifs(step, params, stats):
  m, s = step.c.model, step.c.image_size
  side = s // 2 ** len(m.widths)
  hwc = (side, side, m.widths[-1])

  def stack(mod, p, st):
    for i, (conv, bn) in enumerate(zip(mod.convs, mod.bns)):
      _conv(conv, p[f'Conv_{i}'])
      _bn(bn, p[f'BatchNorm_{i}'], st[f'BatchNorm_{i}'])

  e, d, c = params['encoder'], params['decoder'], params['disc']
  stack(step.enc.stack, e['stack'], stats['encoder']['stack'])
  _dense(step.enc.fc_mu, e['fc_mu'], from_hwc=hwc)
  _dense(step.enc.fc_logvar, e['fc_logvar'], from_hwc=hwc)
  _dense(step.dec.fc, d['fc'], to_hwc=hwc)
  stack(step.dec, d, stats['decoder'])
  stack(step.disc.stack, c['stack'], stats['disc']['stack'])
  _dense(step.disc.fc, c['fc'], from_hwc=hwc)
  _bn(step.disc.bn_fc, c['bn_fc'], stats['disc']['bn_fc'])
  _dense(step.disc.logit, c['logit'])
  wi, wh, b = _lstm_kernels(params['lstm']['step']['cell'])
  lstm = step.lstm.lstm
  _set(lstm.weight_ih_l0, wi)
  _set(lstm.weight_hh_l0, wh)
  _set(lstm.bias_hh_l0, b)
  _set(lstm.bias_ih_l0, np.zeros_like(b))           # flax's cell has one bias
  _dense(step.lstm.fc, params['lstm']['step']['fc'])


def load_syncdraw(step, params):
  n = step.net
  _cell(n.lstm_enc, params['lstm_enc'])
  _cell(n.lstm_dec, params['lstm_dec'])
  names = ['q_mu', 'q_logvar', 'read_attention', 'write_attention', 'write_window']
  if n.captions:
    names += ['align_u', 'align_w', 'align_v', 'prior_mu', 'prior_sigma']
    lang = params['lang']
    _set(n.lang.embed.weight, lang['Embed_0']['embedding'])
    _cell(n.lang.fwd, lang['OptimizedLSTMCell_0'])      # flax's Bidirectional: forward first
    _cell(n.lang.bwd, lang['OptimizedLSTMCell_1'])
  for name in names:
    _dense(getattr(n, name), params[name])


def check(variant, batch=2, steps=2):
  """animgen's jitted train_step and the torch step from the same initial parameters, batch and
  noise: the loss metrics of `steps` consecutive steps (the second after one Adam update)."""
  import jax
  import jax.numpy as jnp
  from sequence_models import _setup
  if variant.startswith('syncdraw'):
    from animgen.methods.syncdraw import SyncDRAW
    config = get_config(variant, batch)
    method = SyncDRAW(config)
    m = config.model
    frames = np.random.default_rng(0).integers(0, 256, (batch, m.frames, m.size, m.size, 1),
                                               dtype=np.uint8)
    tokens = syncdraw_tokens(config, batch)
    jbatch = {'frames': jnp.asarray(frames)}
    if tokens is not None:
      jbatch['caption'] = jnp.asarray(tokens.numpy(), jnp.int32)
  else:
    config, method, nb = _setup(variant, batch)
    if variant == 'image2gif_dqn':   # greedy actions: the two sides explore with other RNGs
      config.dqn.epsilon_start = config.dqn.epsilon_end = 0.0
    jbatch = jax.tree.map(jnp.asarray, nb)
  key = jax.random.key(1)
  state = jax.jit(method.init)(jax.random.key(0), jbatch)
  host = jax.device_get
  if variant.startswith('image2gif'):
    step = Image2GIFStep(config, bool(config.model.remat))
    load_image2gif(step, host(state.params), host(state.target_q))
    args = (torch.from_numpy(np.transpose(nb['frames'], (0, 1, 4, 2, 3)).copy()),
            torch.from_numpy(np.asarray(nb['length'], np.int64)))
    kwargs = {}
  elif variant.startswith('deepgifs'):
    step = DeepGIFsStep(config)
    load_deepgifs(step, host(state.params), host(state.batch_stats))
    f = nb['frames']
    args = (torch.from_numpy(np.transpose(f, (0, 1, 4, 2, 3)).copy()),)
    noise = jax.random.normal(key, (f.shape[0] * f.shape[1], config.model.latent_dim))
    kwargs = {'noise': _t(host(noise))}
  else:
    step = SyncDRAWStep(config)
    load_syncdraw(step, host(state.params))
    args = (torch.from_numpy(frames[..., 0].copy()), tokens)
    noise = [jax.random.normal(jax.random.fold_in(key, t), (batch, m.z_size))
             for t in range(m.steps)]
    kwargs = {'noise': torch.stack([_t(host(v)) for v in noise])}
  n_jax = int(sum(x.size for x in jax.tree_util.tree_leaves(state.params)))
  n_torch = count_params(step)
  if variant == 'deepgifs_lstm' or variant == 'deepgifs_vaegan':
    n_torch -= step.lstm.lstm.bias_ih_l0.numel()    # nn.LSTM's second bias (zero here)
  train = jax.jit(method.train_step)
  rows = []
  for i in range(steps):
    state, jm = train(state, jbatch, key)
    tm = step(*args, **kwargs)
    for k in ('loss', 'loss_d', 'loss_mse', 'loss_adv', 'loss_td', 'loss_rec', 'loss_kl'):
      if k in tm and k in jm:
        a, b = float(jm[k]), tm[k]
        rows.append((i + 1, k, a, b, abs(a - b) / max(abs(a), 1e-12)))
  return {'variant': variant, 'batch': batch, 'params_animgen': n_jax, 'params_torch': n_torch,
          'rows': rows}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--variant', default='deepgifs_vaegan', choices=VARIANTS)
  p.add_argument('--batch', type=int, default=0, help="0: the config's batch size")
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  p.add_argument('--remat', choices=['config', 'on', 'off'], default='config',
                 help='Image2GIF: recompute per time step (torch.utils.checkpoint)')
  p.add_argument('--malloc', choices=['tuned', 'stock'], default='tuned',
                 help="tuned: animgen.runtime.tune_malloc() first (the entry points' mallopt)")
  p.add_argument('--threads', type=int, default=1,
                 help="torch's intra-op threads (0: torch's default, one per core). 1 by default: "
                      'on the shared 2-core machine 2 OpenMP threads ran 10-25x slower')
  p.add_argument('--check', default=None,
                 help='comma list of variants (or all): loss equality with animgen at batch 2')
  p.add_argument('--check-batch', type=int, default=2)
  p.add_argument('--child', action='store_true', help='print one RESULT line (for the benches)')
  a = p.parse_args()
  remat = {'config': None, 'on': True, 'off': False}[a.remat]
  if a.check:
    names = VARIANTS if a.check == 'all' else a.check.split(',')
    for v in names:
      r = check(v, a.check_batch)
      print(f'{v}: batch {r["batch"]}, parameters animgen {r["params_animgen"]:,} '
            f'torch {r["params_torch"]:,}')
      for i, k, x, y, rel in r['rows']:
        print(f'  step {i} {k:>9}: animgen {x:.6g}  torch {y:.6g}  rel. diff {rel:.1e}')
    return
  if a.malloc == 'tuned':
    from animgen import runtime
    runtime.tune_malloc()
  if a.threads:
    torch.set_num_threads(a.threads)
  r = child(a.variant, a.batch, a.steps, a.warmup, remat)
  r['malloc'] = a.malloc
  if a.child:
    print('RESULT ' + json.dumps(r))
    return
  print(f'{r["variant"]} torch {r["torch"]} ({r["threads"]} threads), batch {r["batch"]}: '
        f'{r["s_per_step_median"]:.3f} s/step (min {r["s_per_step_min"]:.3f}, CPU '
        f'{r["cpu_s_per_step_median"]:.2f} s), peak RSS {r["peak_rss_bytes"] / 2**30:.2f} GiB '
        f'(steps {r["steps_peak_rss_bytes"] / 2**30:.2f}), {r["params"]:,} parameters')


if __name__ == '__main__':
  main()
