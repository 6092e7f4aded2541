"""Single-image video generation (Endo et al. 2019, Algorithm 1, Sec. 5) and its controls.

Motion: flows are predicted at the network size from the current frame, composed into
correspondence maps into the input, and every output frame samples the ORIGINAL full-resolution
image once through its upsampled correspondence (no accumulated resampling). The network input
is reflection-padded so that flows near the border see context, as the official test code does.

Appearance: the motion loop is played cyclically while a sequence of appearance codes, linearly
interpolated between key frames and closed into a cycle, recolours each frame with maps
predicted at the network size and applied to the full-resolution frame (Alg. 1, lines 10-17).

Controls (Sec. 6.4): arrows -> z^M by Eq. 12; colour patches -> z^A by Eq. 13.
"""
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from animgen import runtime
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


def network_input(image_full, size: int):
  """Photo [H, W, 3] in [0, 1] -> network input [1, size, size, 3] in [-1, 1] (aspect not kept,
  as the official code)."""
  img = jnp.asarray(image_full, jnp.float32)[None] * 2.0 - 1.0
  return warp.resize(img, size, size, 'bilinear')


def animate_motion(predict, image_full: np.ndarray, z: np.ndarray, size: int, num_frames: int,
                   speed: float = 0.2, pad_fraction: float = 0.25, loop_length: int | None = None,
                   progress: bool = True):
  """image_full [H, W, 3] in [0, 1] at any size. Returns (frames uint8 [L, H, W, 3],
  flows [T-1, S, S, 2] normalised at the network size)."""
  img = jnp.asarray(image_full, jnp.float32)[None] * 2.0 - 1.0
  small = network_input(image_full, size)
  pad, sp = _pad_geometry(size, pad_fraction)
  padded = reflect_pad(small, pad)
  zz = jnp.asarray(z, jnp.float32)[None]
  step = jax.jit(lambda corr: motion_step(predict, padded, zz, corr, speed, size, pad),
                 compiler_options=runtime.cnn_compiler_options())
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
def load_run(workdir: str, expect: str):
  """A trained run of method `expect` -> (method, state, config)."""
  import ml_collections
  from animgen import checkpoint, methods
  cfg_path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(cfg_path):
    raise InputError(f'{workdir} is not a training run (no config.json): pass a --workdir '
                     'made by python -m animgen.main')
  with open(cfg_path) as f:
    saved = json.load(f)
  config = ml_collections.ConfigDict(saved['config'])
  if config.method != expect:
    raise InputError(f'{workdir} holds a {config.method} run, not {expect}: pass the workdir of '
                     f'a {expect} training run')
  ckpt = checkpoint.Checkpointer(workdir)
  if ckpt.latest_step() is None:
    raise InputError(f'no checkpoint in {workdir}/checkpoints: train first with '
                     f'python -m animgen.main --config=CONFIG --workdir={workdir}')
  method = methods.get_method(config.method)(config, num_train=saved['num_train'])
  abstract = jax.eval_shape(lambda: method.init(jax.random.key(0), None))
  state, _ = ckpt.restore(checkpoint.abstract_like(
      abstract, jax.sharding.SingleDeviceSharding(jax.devices()[0])), with_data=False)
  ckpt.close()
  return method, state, config


def load_motion_run(workdir: str):
  """A trained motion run -> (predict(image, z), codebook [K, Z] or None, config, method, state)."""
  method, state, config = load_run(workdir, 'landscape_motion')
  codebook = None
  cb_path = os.path.join(workdir, 'codebook_motion.npz')
  if os.path.isfile(cb_path):
    with np.load(cb_path, allow_pickle=False) as d:
      codebook = d['codes']
  params = state.params
  return (lambda x, z: method.predict(params, x, z)), codebook, config, method, state


def load_appearance_run(workdir: str):
  """A trained appearance run -> (maps(image, z), encode(image) -> z, sequences or None,
  config, method, state). Sequences: the appearance codebook, one [T_i, Z] array per clip."""
  from animgen.methods import landscape_appearance
  method, state, config = load_run(workdir, 'landscape_appearance')
  seqs = None
  cb_path = os.path.join(workdir, 'codebook_appearance.npz')
  if os.path.isfile(cb_path):
    seqs = landscape_appearance.load_codebook(cb_path)
  params, stats = state.params, state.batch_stats
  maps_fn = lambda x, z: method.maps(params, x, z)
  encode_fn = lambda x: method.encode(params, stats, x, train=False)[0]
  return maps_fn, encode_fn, seqs, config, method, state


# ----------------------------------------------------------------------------- appearance
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


def appearance_repeats(speed: float) -> int:
  """Appearance speed s_a -> motion loops per appearance cycle (Sec. 5; official 0.1 -> 10)."""
  if not (np.isfinite(speed) and 0 < speed <= 1):
    raise InputError(f'--a-speed {speed}: use a number in (0, 1], e.g. 0.1 for one appearance '
                     'cycle every 10 motion loops')
  return max(1, int(round(1.0 / speed)))


def recolour_fn(maps_fn, size: int):
  """jit(frame uint8 [H, W, 3], z [Z]) -> uint8 frame recoloured by P^A (Alg. 1, lines 14-15)."""
  from animgen.ops import color

  @functools.partial(jax.jit, compiler_options=runtime.cnn_compiler_options())
  def f(frame_u8, z):
    x = frame_u8.astype(jnp.float32)[None] / 127.5 - 1.0
    small = warp.resize(x, size, size, 'bilinear')
    out = color.color_transfer(maps_fn(small, z[None]), x)   # maps resized to the full frame
    return jnp.clip(jnp.round((out[0] + 1.0) * 127.5), 0, 255).astype(jnp.uint8)

  return f


def animate_appearance(maps_fn, loop_frames: np.ndarray, codes: np.ndarray, size: int,
                       progress: bool = True) -> np.ndarray:
  """Plays the motion loop [L, H, W, 3] uint8 cyclically under per-frame codes [N, Z]."""
  f = recolour_fn(maps_fn, size)
  n = len(codes)
  out = np.empty((n,) + loop_frames.shape[1:], np.uint8)
  t0 = time.time()
  for i in range(n):
    out[i] = np.asarray(f(jnp.asarray(loop_frames[i % len(loop_frames)]), jnp.asarray(codes[i])))
    if progress:
      _progress(i + 1, n, t0, 'appearance')
  return out


# ----------------------------------------------------------------------------- controls
def parse_arrows(spec: str) -> np.ndarray:
  """Arrows in pixel coordinates of the photo -> [A, 4] (x0, y0, x1, y1), motion from (x0, y0)
  towards (x1, y1). `spec` is 'x0,y0,x1,y1;...' or a JSON file holding [[x0, y0, x1, y1], ...]
  (or {"arrows": [...]})."""
  if os.path.isfile(spec):
    try:
      with open(spec) as f:
        data = json.load(f)
    except (OSError, ValueError) as e:
      raise InputError(f'--arrows {spec}: not a JSON file of [[x0, y0, x1, y1], ...] ({e})')
    if isinstance(data, dict):
      data = data.get('arrows')
  else:
    try:
      data = [[float(v) for v in a.split(',')] for a in spec.split(';') if a.strip()]
    except ValueError:
      data = None
  try:
    arr = np.asarray(data, np.float64)
  except (TypeError, ValueError):
    arr = np.zeros((0, 0))
  if arr.ndim != 2 or arr.shape[1] != 4 or not len(arr) or not np.all(np.isfinite(arr)):
    raise InputError(f'--arrows {spec!r}: give arrows as "x0,y0,x1,y1;..." in pixels or a JSON '
                     'file with [[x0, y0, x1, y1], ...]')
  if np.any(np.hypot(arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]) == 0):
    raise InputError(f'--arrows {spec!r}: an arrow has zero length')
  return arr


def arrow_maps(arrows: np.ndarray, height: int, width: int, size: int):
  """Rasterises arrows onto the size x size network grid: (U^M [S, S, 2], mask M [S, S]).

  U^M holds the arrow's unit direction as a BACKWARD flow, i.e. pointing against the motion:
  P^M predicts where each pixel comes from (Eq. 12 compares U^M with P^M's output)."""
  u = np.zeros((size, size, 2), np.float32)
  m = np.zeros((size, size), np.float32)
  sx, sy = (size - 1) / max(width - 1, 1), (size - 1) / max(height - 1, 1)
  for x0, y0, x1, y1 in arrows:
    p0 = np.array([x0 * sx, y0 * sy]); p1 = np.array([x1 * sx, y1 * sy])
    d = p1 - p0
    n = np.linalg.norm(d)
    if n == 0:
      continue
    steps = max(2, int(np.ceil(n * 2)) + 1)
    for t in np.linspace(0.0, 1.0, steps):
      x, y = np.round(p0 + t * d).astype(int)
      if 0 <= x < size and 0 <= y < size:
        u[y, x] = -d / n
        m[y, x] = 1.0
  if not m.any():
    raise InputError('--arrows: every arrow lies outside the photo')
  return u, m


def arrow_loss(flow, u, mask, margin=0.5):
  """Eq. 12: || max(0, M o (1 - D(U, P(I, z)) - m)) ||^2 with D the per-pixel cosine."""
  dot = jnp.sum(flow * u, axis=-1)
  cos = dot / jnp.maximum(jnp.linalg.norm(flow, axis=-1) * jnp.linalg.norm(u, axis=-1), 1e-12)
  return jnp.sum(jnp.square(jnp.maximum(0.0, mask * (1.0 - cos - margin))))


def optimise_code(loss_fn, z0, steps: int = 200, lr: float = 0.05):
  """argmin_z loss_fn(z) by Adam from z0 with the networks frozen (Eqs. 12-13; Adam as in the
  paper, step count and rate ours). Returns (z, loss at z)."""
  from animgen.ops.optimise import adam_minimise
  z, loss = adam_minimise(loss_fn, jnp.asarray(z0, jnp.float32), steps, lr)
  return np.asarray(z), float(loss)


def code_from_arrows(predict, image_small, arrows, height, width, z0, steps=200, lr=0.05):
  """Eq. 12: z^M whose predicted flow follows the arrows (cosine, margin 0.5), P^M frozen."""
  size = image_small.shape[1]
  u, m = arrow_maps(arrows, height, width, size)
  u, m = jnp.asarray(u)[None], jnp.asarray(m)[None]
  return optimise_code(lambda z: arrow_loss(predict(image_small, z[None]), u, m), z0, steps, lr)


def code_from_patch(maps_fn, image_small, target_small, mask_small, z0, steps=200, lr=0.05):
  """Eq. 13: z^A whose colour transfer of the input matches the patch colours under the mask.
  image/target [1, S, S, 3] in [-1, 1]; mask [1, S, S, 1] in {0, 1}."""
  from animgen.ops import color

  def loss(z):
    out = color.color_transfer(maps_fn(image_small, z[None]), image_small)
    return jnp.sum(jnp.square(mask_small * (target_small - out)))

  return optimise_code(loss, z0, steps, lr)
