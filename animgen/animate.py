"""Single-image video generation, motion part (Endo et al. 2019, Algorithm 1, Sec. 5).

Flows are predicted at the network size from the current frame, composed into correspondence
maps into the input, and every output frame samples the ORIGINAL full-resolution image once
through its upsampled correspondence (no accumulated resampling). The network input is
reflection-padded so that flows near the border see context, as the official test code does.
"""
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from animgen.errors import InputError
from animgen.models.layers import reflect_pad
from animgen.ops import warp


def _pad_geometry(size: int, pad_fraction: float):
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
  pad, sp = _pad_geometry(size, pad_fraction)
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


def choose_code(codebook: np.ndarray, index=None, mix=None, seed=None) -> np.ndarray:
  """z^M from the motion codebook: a row, a fractional row (linear between neighbours), or a
  random row for a seed (the official default)."""
  n = len(codebook)
  if mix is not None:
    if not 0 <= mix <= n - 1:
      raise InputError(f'--z-mix {mix} is outside the codebook rows 0..{n - 1}')
    lo = int(np.floor(mix)); hi = min(lo + 1, n - 1); f = mix - lo
    return (1 - f) * codebook[lo] + f * codebook[hi]
  if index is not None:
    if not 0 <= index < n:
      raise InputError(f'--z-index {index} is outside the codebook rows 0..{n - 1}')
    return codebook[index]
  return codebook[np.random.default_rng(seed).integers(n)]


def _progress(i, n, t0, label):
  if not sys.stderr.isatty() and i not in (n, 1) and i % max(1, n // 10):
    return
  rate = i / max(time.time() - t0, 1e-9)
  eta = (n - i) / max(rate, 1e-9)
  bar = '#' * int(30 * i / n)
  print(f'\r{label} [{bar:<30}] {i}/{n} {rate:.1f} fr/s ETA {eta:.0f}s', end='',
        file=sys.stderr, flush=True)
  if i == n:
    print(file=sys.stderr, flush=True)


def animate_motion(predict, image_full: np.ndarray, z: np.ndarray, size: int, num_frames: int,
                   speed: float = 0.2, pad_fraction: float = 0.25, loop_length: int | None = None,
                   progress: bool = True):
  """image_full [H, W, 3] in [0, 1] at any size. Returns (frames uint8 [L, H, W, 3],
  flows [T-1, S, S, 2] normalised at the network size)."""
  img = jnp.asarray(image_full, jnp.float32)[None] * 2.0 - 1.0
  small = warp.resize(img, size, size, 'bilinear')  # network input; aspect not kept (official)
  pad, sp = _pad_geometry(size, pad_fraction)
  padded = reflect_pad(small, pad)
  zz = jnp.asarray(z, jnp.float32)[None]
  step = jax.jit(lambda corr: motion_step(predict, padded, zz, corr, speed, size, pad))
  to_disp = jax.jit(lambda corr: corr_to_displacement(corr, size, pad))
  corr = warp.identity_grid(sp, sp)[None]
  disps, flows = [jnp.zeros((1, size, size, 2))], []
  t0 = time.time()
  for t in range(1, num_frames):
    corr, flow = step(corr)
    disps.append(to_disp(corr))
    flows.append(np.asarray(flow[0, pad:pad + size, pad:pad + size]) * ((sp - 1) / (size - 1)))
    if progress:
      _progress(t, num_frames - 1, t0, 'motion')
  warp_frame = jax.jit(lambda d: (render(img, d)[0] + 1.0) * 0.5)
  rend = lambda t: jnp.asarray(image_full) if t == 0 else warp_frame(disps[t])  # V^M[0] = I
  to_u8 = lambda x: np.asarray(jnp.clip(jnp.round(x * 255.0), 0, 255)).astype(np.uint8)
  plan = crossfade_plan(num_frames, loop_length) if loop_length else [
      (k, k, 0.0) for k in range(num_frames)]
  frames = []
  t0 = time.time()
  for k, (i, j, w) in enumerate(plan):
    f = rend(i)
    if w > 0:
      f = (1.0 - w) * f + w * rend(j)
    frames.append(to_u8(f))
    if progress:
      _progress(k + 1, len(plan), t0, 'render')
  return np.stack(frames), np.stack(flows) if flows else np.zeros((0, size, size, 2))


# ----------------------------------------------------------------------------- loading runs
def load_motion_run(workdir: str):
  """A trained run -> (predict(image, z), codebook [K, Z] or None, config)."""
  import ml_collections
  from animgen import checkpoint, methods
  cfg_path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(cfg_path):
    raise InputError(f'{workdir} is not a training run (no config.json): pass --workdir of a '
                     'run made by python -m animgen.main')
  with open(cfg_path) as f:
    saved = json.load(f)
  config = ml_collections.ConfigDict(saved['config'])
  ckpt = checkpoint.Checkpointer(workdir)
  if ckpt.latest_step() is None:
    raise InputError(f'no checkpoint in {workdir}/checkpoints: train first with '
                     f'python -m animgen.main --config=configs/landscape.py --workdir={workdir}')
  method = methods.get_method(config.method)(config, num_train=saved['num_train'])
  abstract = jax.eval_shape(lambda: method.init(jax.random.key(0), None))
  state, _ = ckpt.restore(checkpoint.abstract_like(
      abstract, jax.sharding.SingleDeviceSharding(jax.devices()[0])), with_data=False)
  ckpt.close()
  codebook = None
  cb_path = os.path.join(workdir, 'codebook_motion.npz')
  if os.path.isfile(cb_path):
    with np.load(cb_path, allow_pickle=False) as d:
      codebook = d['codes']
  params = state.params
  return (lambda x, z: method.predict(params, x, z)), codebook, config, method, state
