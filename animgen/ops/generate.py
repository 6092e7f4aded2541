"""Animating Landscape's generation (Endo et al. 2019, Algorithm 1, Sec. 5) as pure functions,
step for step as the official test.py does it (its motion loop and appearance schedule,
step by step).

Motion, with S the network size and P = S + 2 pad the padded grid (official 256, 64, 384):
P^M sees the UNPADDED current S x S frame; its flow is scaled by S / P, reflection-padded by
`pad` and multiplied by the speed s_m; corr = identity_P + flow, and from the second step on
corr = corr_prev sampled at corr (border). Every output frame samples the reflection-padded
full-resolution photo once through corr upsampled with align_corners=True (no accumulated
resampling); the next network input samples the padded first network input at corr. Output
frame t is t + 1 steps from the photo.

Appearance: the official code schedule (`appearance_codes`) and the cross-faded loop
(`crossfade_weights`). The host-side pipeline around these (progress, codebooks, controls) is
animgen/animate.py.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from animgen.errors import InputError
from animgen.models.layers import reflect_pad
from animgen.ops import warp


def pad_geometry(size: int, pad_fraction: float):
  """(pad, P) of the correspondence grid for network size `size` (official 64 = 256 / 4)."""
  pad = int(round(size * pad_fraction))
  if not 0 <= pad < size:
    raise InputError(f'--pad {pad_fraction}: the padding must be in [0, 1) of the network '
                     f'size {size} (official 0.25)')
  return pad, size + 2 * pad


def scaled_pads(pad: int, size: int, height: int, width: int):
  """The photo's reflection pads (rows, columns) matching `pad` at the network size; int() as
  the official int(pad * H / float(S))."""
  return int(pad * height / float(size)), int(pad * width / float(size))


def resize_u8(x, h: int, w: int):
  """[B, H, W, C] grey levels in [0, 255] -> [B, h, w, C] rounded grey levels: bilinear with
  half-pixel centres and no antialiasing, as cv2.resize(INTER_LINEAR) on the official uint8
  images (cv2's fixed-point weights can differ by one level)."""
  if x.shape[1:3] != (h, w):
    x = jax.image.resize(x, (x.shape[0], h, w, x.shape[3]), 'bilinear', antialias=False)
  return jnp.round(x)


def normalise(u8):
  """Grey levels -> [-1, 1] as the official normalize (x / 127.5 - 1, float32)."""
  return jnp.asarray(u8, jnp.float32) / 127.5 - 1.0


def to_uint8(x):
  """[-1, 1] -> uint8 by truncation, as the official denormalize ((x + 1) * 127.5 cast)."""
  return jnp.clip((x + 1.0) * 127.5, 0.0, 255.0).astype(jnp.uint8)


def upsample(x, h: int, w: int):
  """Bilinear resize with align_corners=True (the official F.upsample): [B, h0, w0, C] ->
  [B, h, w, C]."""
  grid = jnp.broadcast_to(warp.identity_grid(h, w, x.dtype)[None], (x.shape[0], h, w, 2))
  return warp.sample(x, grid, 'border')


def motion_step(predict, frame, corr, compose, z, padded_input, speed, pad: int):
  """One step of the official motion loop.

  frame [1, S, S, 3]: the current network input; corr [1, P, P, 2]: the previous
  correspondence (used only where `compose`); padded_input: the first network input
  reflection-padded by `pad`. Returns (corr, next network input, speed * P^M's flow)."""
  s = frame.shape[1]
  p = s + 2 * pad
  raw = predict(frame, z)
  flow = reflect_pad(raw * (s / p), pad) * speed          # official x w / (w + 2 pad), then pad
  new = warp.identity_grid(p, p, flow.dtype)[None] + flow
  corr = jnp.where(compose, warp.sample(corr, new, 'border'), new)  # corr_t = corr_{t-1}(id + B_t)
  nxt = warp.sample(padded_input, corr, 'border')[:, pad:pad + s, pad:pad + s]
  return corr, nxt, raw * speed


def render(padded_photo, corr, pads):
  """Output frame: the reflection-padded photo [1, Hp, Wp, 3] in [-1, 1] sampled at corr
  upsampled to Hp x Wp (align_corners), the pads (rows, columns) cropped -> uint8 [H, W, 3]."""
  hp, wp = padded_photo.shape[1:3]
  ph, pw = pads
  y = warp.sample(padded_photo, upsample(corr, hp, wp), 'border')
  return to_uint8(y[0, ph:hp - ph, pw:wp - pw])


def motion_frames(predict, image, z, num_frames, speed=1.0, pad_fraction=0.25):
  """Traceable motion loop at the network size, for training samples and the Sec. 6.2
  sequences: image [1, S, S, 3] in [-1, 1] -> frames [T, 1, S, S, 3] in [-1, 1], frame 0 the
  input and frame t the official loop after t steps (at S the photo is the network input, so
  the rendered frame is the next network input)."""
  size = image.shape[1]
  pad, p = pad_geometry(size, pad_fraction)
  padded = reflect_pad(image, pad)
  ident = warp.identity_grid(p, p, image.dtype)[None]

  def body(carry, t):
    frame, corr = carry
    corr, frame, _ = motion_step(predict, frame, corr, t > 0, z, padded, speed, pad)
    return (frame, corr), frame

  _, frames = jax.lax.scan(body, (image, ident), jnp.arange(num_frames - 1))
  return jnp.concatenate([image[None], frames], axis=0)


def crossfade_weights(num_frames: int, loop_length: int):
  """The official generateLoop: loop frame k = sum(w * V[i]) / sum(w) over its [(i, w), ...]
  (in the order the official accumulates them). With F = num_frames - loop_length + 1 (official
  N // 2), the weights ramp up over the first F frames and down over the last F - 1, which are
  faded onto the head."""
  n, fade = num_frames, num_frames - loop_length + 1
  if not 0 <= n - loop_length <= loop_length:
    raise InputError(f'loop length {loop_length} must be between half of and all of the '
                     f'{num_frames} generated frames')
  plan = [[] for _ in range(loop_length)]
  t = 0.0
  for i in range(n):
    if i < fade:
      t += 1.0 / fade
    elif i > n - fade:
      t -= 1.0 / fade
    w = 1.0 - (1.0 - t)                                     # official 1 - (1 - t ** 1) ** 1
    plan[i - n + fade - 1 if i > n - fade else i].append((i, w))
  return plan


def appearance_codes(keys, start: int, z_input, loop_length: int, min_loops: int):
  """The official appearance schedule -> codes [n, Z], output frame k using codes[k] with
  loop frame k % loop_length; n is a whole number (>= min_loops) of motion loops.

  keys [K, Z]: a code sequence whose row `start` is replaced by z_input = E^A(first loop
  frame). Between consecutive keys int((loops * L - K) / K) codes are interpolated, with
  loops = max(min_loops, ceil(K / L)); the last key runs back into the first over the codes
  left to fill ceil(K * (that + 1) / L) loops; frame 0 gets z_input."""
  keys = np.array(keys, np.float32)
  keys[start] = z_input
  ta, length = len(keys), int(loop_length)
  loops = max(int(min_loops), math.ceil(ta / length))
  inner = (loops * length - ta) // ta
  lerp = lambda a, b, k, m: (1.0 - (k + 1) / (m + 1)) * a + (k + 1) / (m + 1) * b
  seq = [keys[0]]
  for a, b in zip(keys[:-1], keys[1:]):
    seq += [lerp(a, b, k, inner) for k in range(inner)] + [b]
  loops = math.ceil(ta * (inner + 1) / length)
  close = inner + loops * length - ta * (inner + 1)
  seq += [lerp(keys[-1], keys[0], k, close) for k in range(close)]
  return np.roll(np.stack(seq).astype(np.float32), -(inner + 1) * start, axis=0)


def nearest_index(sequence, code) -> int:
  """Row of `sequence` nearest to `code` (official: the least MSE, first on ties)."""
  d = np.mean(np.square(np.asarray(sequence, np.float32) - np.asarray(code, np.float32)), -1)
  return int(np.argmin(d))
