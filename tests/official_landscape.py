"""The official Animating Landscape networks and test.py generation, re-expressed in PyTorch.

Written for animgen's tests from the published layer and step facts of predictor.py,
encoder.py and test.py of endo-yuki-t/Animating-Landscape, not copied: the state dicts carry the
official key names, and `official_motion` / `official_appearance` run the official generation
loop with torch's own grid_sample, reflect padding and align_corners=True interpolation, so that
animgen's JAX generation can be checked against an independent implementation.

Images here are uint8 [H, W, 3] in BGR order, as the official code read them with OpenCV.
"""
import math
import os
import pickle

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

NZ = 8


# ----------------------------------------------------------------------------- networks
class TInstanceNorm(tnn.Module):
  """Per-sample, per-channel norm, biased variance, eps 1e-9; params `scale`, `shift`."""

  def __init__(self, c):
    super().__init__()
    self.scale = tnn.Parameter(torch.rand(c))
    self.shift = tnn.Parameter(torch.randn(c) * 0.1)  # official init is 0; random to test it

  def forward(self, x):
    m = x.mean((2, 3), keepdim=True)
    v = ((x - m) ** 2).mean((2, 3), keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-9) * self.scale[:, None, None] + self.shift[:, None, None]


class TConv(tnn.Module):
  """Optional nearest x2 upsample, reflection pad k // 2, conv; param path `conv2d`."""

  def __init__(self, cin, cout, k, stride=1, up=False):
    super().__init__()
    self.up, self.pad = up, k // 2
    self.conv2d = tnn.Conv2d(cin, cout, k, stride)

  def forward(self, x):
    if self.up:
      x = F.interpolate(x, scale_factor=2, mode='nearest')
    return self.conv2d(F.pad(x, [self.pad] * 4, mode='reflect'))


class TRes(tnn.Module):
  def __init__(self, c):
    super().__init__()
    self.conv1, self.in1 = TConv(c, c, 3), TInstanceNorm(c)
    self.conv2, self.in2 = TConv(c, c, 3), TInstanceNorm(c)

  def forward(self, x):
    h = self.conv1(F.leaky_relu(self.in1(x), 0.1))
    return x + self.conv2(F.leaky_relu(self.in2(h), 0.1))


class TPredictor(tnn.Module):
  """ConditionalMotionNet (nout 2) / ConditionalAppearanceNet (nout 6, plus unused fc1)."""

  def __init__(self, nout, widths, n_res=5, nz=NZ):
    super().__init__()
    w1, w2, w3 = widths
    self.n_res = n_res
    self.conv1 = TConv(3 + nz, w1, 5, 2)
    self.conv2, self.in2 = TConv(w1 + nz, w2, 3, 2), TInstanceNorm(w2)
    self.conv3, self.in3 = TConv(w2 + nz, w3, 3, 2), TInstanceNorm(w3)
    for i in range(1, n_res + 1):
      setattr(self, f'res{i}', TRes(w3))
    self.deconv1, self.in4 = TConv(2 * w3, w2, 3, up=True), TInstanceNorm(w2)
    self.deconv2, self.in5 = TConv(2 * w2, w1, 3, up=True), TInstanceNorm(w1)
    self.deconv3 = TConv(2 * w1, nout, 5, up=True)
    if nout == 6:
      self.fc1 = tnn.Linear(w3, 6)

  def forward(self, x, z):
    """Raw last-layer output h7 (NCHW)."""
    cat = lambda h: torch.cat([h, z[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1)
    lr = lambda h: F.leaky_relu(h, 0.1)
    h1 = lr(self.conv1(cat(x)))
    h2 = lr(self.in2(self.conv2(cat(h1))))
    h3 = lr(self.in3(self.conv3(cat(h2))))
    h = h3
    for i in range(1, self.n_res + 1):
      h = getattr(self, f'res{i}')(h)
    h = lr(self.in4(self.deconv1(torch.cat([h, h3], 1))))
    h = lr(self.in5(self.deconv2(torch.cat([h, h2], 1))))
    return self.deconv3(torch.cat([h, h1], 1))


def motion_out(net, x, z):
  return torch.tanh(net(x, z)) / 64.0


def appearance_out(net, x, z):
  h = net(x, z)
  al, bl = h[:, :3], h[:, 3:]
  return torch.tanh(al * x + bl), al, bl


class TBlock(tnn.Module):
  """BicycleGAN BasicBlock: conv = [BN, LReLU, conv3x3, BN, LReLU, [conv3x3, avgpool]],
  shortcut = [avgpool, conv1x1]."""

  def __init__(self, c, o):
    super().__init__()
    self.conv = tnn.Sequential(
        tnn.BatchNorm2d(c), tnn.LeakyReLU(0.2), tnn.Conv2d(c, c, 3, 1, 1), tnn.BatchNorm2d(c),
        tnn.LeakyReLU(0.2), tnn.Sequential(tnn.Conv2d(c, o, 3, 1, 1), tnn.AvgPool2d(2, 2)))
    self.shortcut = tnn.Sequential(tnn.AvgPool2d(2, 2), tnn.Conv2d(c, o, 1))

  def forward(self, x):
    return self.conv(x) + self.shortcut(x)


class TEncoder(tnn.Module):
  """E_ResNet resnet_128 (vaeLike): conv.0 conv4/s2, conv.1-3 blocks, LReLU, AvgPool(8),
  heads fc.0 and fcVar.0."""

  def __init__(self, cin, widths, nz=NZ):
    super().__init__()
    layers = [tnn.Conv2d(cin, widths[0], 4, 2, 1)]
    layers += [TBlock(a, b) for a, b in zip(widths[:-1], widths[1:])]
    layers += [tnn.LeakyReLU(0.2), tnn.AvgPool2d(8)]
    self.conv = tnn.Sequential(*layers)
    self.fc = tnn.Sequential(tnn.Linear(widths[-1], nz))
    self.fcVar = tnn.Sequential(tnn.Linear(widths[-1], nz))

  def forward(self, x):
    h = self.conv(x).flatten(1)
    return self.fc(h), self.fcVar(h)


def randomise_bn(net, seed):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, tnn.BatchNorm2d):
        c = m.num_features
        m.weight.copy_(1.0 + 0.2 * torch.randn(c, generator=g))
        m.bias.copy_(0.1 * torch.randn(c, generator=g))
        m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
        m.running_var.copy_(0.5 + torch.rand(c, generator=g))
  return net


def state_dict(net):
  return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


# ----------------------------------------------------------------------------- files
def py2_style_pickle(obj):
  """Protocol 2 with the numpy-1 / Python-2 module name of the array reconstructor."""
  return pickle.dumps(obj, protocol=2).replace(b'numpy._core.multiarray',
                                               b'numpy.core.multiarray')


def write_model_dir(path, nets, epoch, motion_book=None, appearance_book=None, legacy=False):
  """An official-style model folder: <name>_weight_<epoch>.pth per net (torch.save; legacy:
  the pre-1.6 format) and the codebook pickles that are given."""
  os.makedirs(path, exist_ok=True)
  for name, net in nets.items():
    torch.save(net.state_dict(), os.path.join(path, f'{name}_weight_{epoch}.pth'),
               _use_new_zipfile_serialization=not legacy)
  for stem, book in (('codebook_m', motion_book), ('codebook_a', appearance_book)):
    if book is not None:
      with open(os.path.join(path, f'{stem}_{epoch}.pkl'), 'wb') as f:
        f.write(py2_style_pickle(book))
  return str(path)


# ----------------------------------------------------------------------------- test.py
def _nchw(img_u8):
  """uint8 [H, W, 3] -> normalised float32 [1, 3, H, W] (official normalize: x / 127.5 - 1)."""
  return torch.from_numpy(img_u8.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]


def _u8(t):
  """[1, 3, H, W] in [-1, 1] -> uint8 [H, W, 3] (official denormalize: truncation)."""
  return ((t[0].permute(1, 2, 0).numpy() + 1.0) * 127.5).astype(np.uint8)


def resize_u8(img_u8, h, w):
  """Stands in for cv2.resize(img, (w, h)) (INTER_LINEAR): half-pixel-centre bilinear without
  antialiasing, rounded to uint8 (cv2's fixed-point weights may differ by one level; animgen
  uses the same emulation, so the resize is the one step checked only against itself)."""
  x = torch.from_numpy(img_u8.astype(np.float32)).permute(2, 0, 1)[None]
  if x.shape[2:] != (h, w):
    x = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False, antialias=False)
  return x[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8)


def _grid(img, corr):
  return F.grid_sample(img, corr.permute(0, 2, 3, 1), mode='bilinear', padding_mode='border',
                       align_corners=True)


def motion_code(book, t):
  """-mz t: rows floor and ceil of (K - 1) t, linearly mixed (float64, then float32)."""
  x = (len(book) - 1) * t
  w = x - math.floor(x)
  z = (1.0 - w) * np.asarray(book[math.floor(x)]) + w * np.asarray(book[math.ceil(x)])
  return torch.from_numpy(z.astype(np.float32))[None]


@torch.no_grad()
def official_motion(pm, photo, z, size, num_frames, speed):
  """The test.py motion loop with P^M `pm` on a BGR uint8 photo -> list of uint8 frames.
  Network size `size`, pad size / 4 (official 256 and 64)."""
  pad, (h, w) = size // 4, photo.shape[:2]
  grid_n = size + 2 * pad
  cur = _nchw(resize_u8(photo, size, size))
  padded = F.pad(cur, (pad,) * 4, mode='reflect')
  ph, pw = int(pad * h / float(size)), int(pad * w / float(size))
  big = F.pad(_nchw(photo), (pw, pw, ph, ph), mode='reflect')
  lin = torch.linspace(-1.0, 1.0, grid_n)
  ident = torch.stack([lin[None, :].expand(grid_n, -1), lin[:, None].expand(-1, grid_n)])[None]
  frames, old = [], None
  for _ in range(num_frames):
    flow = motion_out(pm, cur, z) * (size / float(grid_n))
    flow = F.pad(flow, (pad,) * 4, mode='reflect') * speed
    corr = ident + flow
    if old is not None:
      corr = _grid(old, corr)
    big_corr = F.interpolate(corr, size=(h + 2 * ph, w + 2 * pw), mode='bilinear',
                             align_corners=True)
    frames.append(_u8(_grid(big, big_corr))[ph:ph + h, pw:pw + w])
    cur = _grid(padded, corr)[:, :, pad:pad + size, pad:pad + size]
    old = corr
  return frames


def official_loop(frames):
  """generateLoop: nb = N // 2; N - nb + 1 frames; frame k < nb - 1 mixes V[k] (weight
  (k + 1) / nb) with V[k + N - nb + 1] (the rest), in float64, truncated to uint8."""
  n = len(frames)
  nb = n // 2
  length = n - nb + 1
  out = []
  for k in range(length):
    if k < nb - 1:
      a = (k + 1) / nb
      mix = a * frames[k].astype(np.float64) + (1.0 - a) * frames[k + length].astype(np.float64)
      out.append(mix.astype(np.uint8))
    else:
      out.append(frames[k])
  return out


def _appearance_schedule(seq, start, za, length, min_loops):
  """The code of every official output frame: the sequence with its start row replaced by za,
  `inner` codes between neighbours, `close` codes from the last back to the first; playback
  begins at za."""
  keys = [torch.from_numpy(np.asarray(c, np.float32))[None] for c in seq]
  keys[start] = za
  ta = len(keys)
  loops = max(min_loops, int(math.ceil(ta / float(length))))
  inner = int((loops * length - ta) / ta)
  codes = []
  for k in range(ta):
    codes.append(keys[k])
    if k + 1 < ta:
      codes += [(1.0 - j / (inner + 1.0)) * keys[k] + j / (inner + 1.0) * keys[k + 1]
                for j in range(1, inner + 1)]
  loops = int(math.ceil(ta * (inner + 1) / float(length)))
  close = inner + loops * length - ta * (inner + 1)
  codes += [(1.0 - j / (close + 1.0)) * keys[-1] + j / (close + 1.0) * keys[0]
            for j in range(1, close + 1)]
  first = (inner + 1) * start
  return [codes[(first + n) % len(codes)] for n in range(loops * length)]


@torch.no_grad()
def official_appearance(pa, ea, loop, sequences, t_a, s_a, size):
  """The test.py appearance pass over the motion loop (BGR uint8 frames) -> uint8 frames.
  E^A runs with BatchNorm in training mode (batch statistics of the one input)."""
  ea.train()
  za, _ = ea(_nchw(resize_u8(loop[0], 128, 128)))
  seq = sequences[int((len(sequences) - 1) * t_a)]
  dist = [float(F.mse_loss(za, torch.from_numpy(np.asarray(c, np.float32))[None])) for c in seq]
  start = int(np.argmin(dist))
  codes = _appearance_schedule(seq, start, za, len(loop), int(1 / s_a))
  h, w = loop[0].shape[:2]
  out = []
  for n, z in enumerate(codes):
    frame = loop[n % len(loop)]
    _, al, bl = appearance_out(pa, _nchw(resize_u8(frame, size, size)), z)
    up = lambda m: F.interpolate(m, size=(h, w), mode='bilinear', align_corners=True)
    out.append(_u8(torch.tanh(up(al) * _nchw(frame) + up(bl))))
  return out
