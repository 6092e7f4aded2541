"""Animating Landscape's generation (Endo et al. 2019, Algorithm 1, Sec. 5) as pure functions.

Motion: flows are predicted at the network size from the current frame, composed into
correspondence maps into the input, and every output frame samples the ORIGINAL full-resolution
image once through its upsampled correspondence (no accumulated resampling). The network input
is reflection-padded so that flows near the border see context.

Appearance: key-frame codes are linearly interpolated and closed into a cycle (Sec. 5).
The host-side pipeline around these (progress, codebooks, controls) is animgen/animate.py.
"""
import jax
import jax.numpy as jnp
import numpy as np

from animgen.errors import InputError
from animgen.models.layers import reflect_pad
from animgen.ops import warp

def pad_geometry(size: int, pad_fraction: float):
  pad = int(round(size * pad_fraction))
  return pad, size + 2 * pad


def motion_step(predict, padded, z, corr, speed, size, pad):
  """One recurrent step on the padded grid. corr [1, Sp, Sp, 2]: where each pixel of the current
  frame samples the (padded) input. Returns (next corr, flow in net-normalised units)."""
  sp = padded.shape[1]
  frame = warp.sample(padded, corr, 'reflection')           # I_t
  # The net learned pixel-sized steps at `size`; on the padded grid the same pixel step is
  # (size - 1) / (Sp - 1) as large in normalised units (official code: x 256/384).
  flow = predict(frame, z) * (speed * (size - 1) / (sp - 1))
  ident = warp.identity_grid(sp, sp)[None]
  corr = warp.sample(corr, ident + flow, 'border')          # corr_{t+1}(p) = corr_t(p + B(p))
  return corr, flow


def corr_to_displacement(corr, size, pad):
  """Padded-grid correspondence -> displacement [1, S, S, 2] in normalised units of the image."""
  sp = corr.shape[1]
  disp = corr - warp.identity_grid(sp, sp)[None]
  return disp[:, pad:pad + size, pad:pad + size] * ((sp - 1) / (size - 1))


def render(image, disp):
  """Sample image [1, H, W, C] at identity + upsampled displacement [1, S, S, 2]."""
  h, w = image.shape[1:3]
  d = warp.resize(disp, h, w, 'bilinear')
  return warp.sample(image, warp.identity_grid(h, w)[None] + d, 'reflection')


def motion_frames(predict, image, z, num_frames, speed=1.0, pad_fraction=0.25):
  """Traceable version for training samples. image [1, S, S, 3] -> frames [T, 1, S, S, 3]."""
  size = image.shape[1]
  pad, sp = pad_geometry(size, pad_fraction)
  padded = reflect_pad(image, pad)
  ident = warp.identity_grid(sp, sp)[None]

  def body(corr, _):
    corr, _ = motion_step(predict, padded, z, corr, speed, size, pad)
    return corr, render(image, corr_to_displacement(corr, size, pad))

  _, frames = jax.lax.scan(body, ident, None, length=num_frames - 1)
  return jnp.concatenate([image[None], frames], axis=0)


def crossfade_plan(num_frames: int, loop_length: int):
  """Frame k of the loop = (1 - w) * V[i] + w * V[j] as (i, j, w) (Sec. 5, cross-fading).

  The tail V[L:] is faded onto the head so that the frame after the last one continues it."""
  fade = num_frames - loop_length
  if not 0 <= fade <= loop_length:
    raise InputError(f'loop length {loop_length} must be between half of and all of the '
                     f'{num_frames} generated frames')
  plan = []
  for k in range(loop_length):
    if k < fade:
      w_head = (k + 1) / (fade + 1)
      plan.append((k + loop_length, k, w_head))
    else:
      plan.append((k, k, 0.0))
  return plan


def cyclic_codes(keys: np.ndarray, num_frames: int) -> np.ndarray:
  """Key-frame codes [K, Z] -> one code per output frame [N, Z], linearly interpolated and
  closed into a cycle (the last key blends back into the first; Sec. 5)."""
  keys = np.asarray(keys, np.float32)
  k = len(keys)
  u = np.arange(num_frames) * (k / num_frames)
  lo = np.floor(u).astype(int)
  f = (u - lo)[:, None].astype(np.float32)
  return (1.0 - f) * keys[lo % k] + f * keys[(lo + 1) % k]


def start_at_nearest(sequence: np.ndarray, code: np.ndarray) -> np.ndarray:
  """Rolls a code sequence so that it starts at the code nearest to `code` (official test code:
  the start is the code nearest E^A(input))."""
  j = int(np.argmin(np.linalg.norm(np.asarray(sequence) - np.asarray(code)[None], axis=-1)))
  return np.roll(np.asarray(sequence), -j, axis=0)
