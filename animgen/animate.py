"""Animating Landscape from a photo (Endo et al. 2019, Algorithm 1, Sec. 5) and its controls.

The pure steps of Algorithm 1 are animgen/ops/generate.py; this module runs them over a photo at
its own resolution with progress bars, picks codes from codebooks, and optimises codes for the
user controls of Sec. 6.4 (arrows -> z^M by Eq. 12; colour patches -> z^A by Eq. 13).
"""
import dataclasses
import functools
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from animgen import runs, runtime
from animgen.errors import InputError
from animgen.models.layers import reflect_pad
from animgen.ops import color, generate, warp
from animgen.ops.optimise import adam_minimise
from animgen.progress import Progress


@dataclasses.dataclass
class MotionModel:
  """A trained motion run ready for Algorithm 1."""
  predict: Callable          # (image [1, S, S, 3] in [-1, 1], z [1, Z]) -> flow
  codebook: np.ndarray | None  # [K, Z] motion codebook, None before finalize
  size: int                  # the network's input size S
  run: runs.Run


@dataclasses.dataclass
class AppearanceModel:
  """A trained appearance run: P^A, E^A, its codebook sequences and latent LSTM."""
  maps: Callable             # (image, z) -> colour-transfer maps [1, S, S, 6]
  encode: Callable           # image [1, S, S, 3] -> z [1, Z]
  sequences: list | None     # codebook: one [T_i, Z] code sequence per training clip
  lstm: dict | None          # latent LSTM parameters (Appendix B)
  size: int
  run: runs.Run


def motion_model(workdir: str) -> MotionModel:
  run = runs.load(workdir, 'landscape_motion')
  params = run.state.params
  book = run.artefacts.get('codebook_motion.npz')
  return MotionModel(lambda x, z: run.method.predict(params, x, z),
                     None if book is None else np.asarray(book['codes']),
                     run.config.image_size, run)


def appearance_model(workdir: str) -> AppearanceModel:
  from animgen.methods import landscape_appearance as la
  run = runs.load(workdir, 'landscape_appearance')
  params, stats = run.state.params, run.state.batch_stats
  book, lstm = run.artefacts.get('codebook_appearance.npz'), run.artefacts.get('latent_lstm.npz')
  return AppearanceModel(lambda x, z: run.method.maps(params, x, z),
                         lambda x: run.method.encode(params, stats, x, train=False)[0],
                         None if book is None else la.codebook_sequences(book),
                         None if lstm is None else la.latent_lstm_params(lstm),
                         run.config.image_size, run)


def lstm_codes(model: AppearanceModel, z0, length: int) -> np.ndarray:
  """Appendix B: the latent LSTM's code sequence from z0 -> [length, Z]."""
  from animgen.methods import landscape_appearance as la
  return la.lstm_rollout(model.lstm, z0, length, len(z0))


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


def progress_bar(items, label: str, enabled: bool = True, total: int | None = None):
  """`items`, counted on one 'animgen animate' progress stage (animgen/progress.py)."""
  items = list(items)
  prog = Progress('animgen animate', quiet=not enabled)
  with prog.stage(label, total=total or len(items), unit='frame') as stage:
    for item in items:
      yield item
      stage.advance()


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
  disps, flows = motion_displacements(predict, network_input(image_full, size), z, num_frames,
                                      speed, pad_fraction, progress)
  img = jnp.asarray(image_full, jnp.float32)[None] * 2.0 - 1.0
  warp_frame = jax.jit(lambda d: (generate.render(img, d)[0] + 1.0) * 0.5)
  rend = lambda t: jnp.asarray(image_full) if t == 0 else warp_frame(disps[t])  # V^M[0] = I
  to_u8 = lambda x: np.asarray(jnp.clip(jnp.round(x * 255.0), 0, 255)).astype(np.uint8)
  plan = generate.crossfade_plan(num_frames, loop_length) if loop_length else [
      (k, k, 0.0) for k in range(num_frames)]
  frames = []
  for i, j, w in progress_bar(plan, 'render', progress):
    f = rend(i)
    if w > 0:
      f = (1.0 - w) * f + w * rend(j)
    frames.append(to_u8(f))
  return np.stack(frames), np.stack(flows) if flows else np.zeros((0, size, size, 2))


def motion_displacements(predict, small, z, num_frames, speed, pad_fraction, progress=True):
  """The motion steps of Algorithm 1 at the network size -> (displacements [T] of [1, S, S, 2]
  into the photo, frame 0 zero; flows [T - 1] of [S, S, 2] on the unpadded grid)."""
  size = small.shape[1]
  pad, sp = generate.pad_geometry(size, pad_fraction)
  padded = reflect_pad(small, pad)
  zz = jnp.asarray(z, jnp.float32)[None]
  step = jax.jit(lambda corr: generate.motion_step(predict, padded, zz, corr, speed, size, pad),
                 compiler_options=runtime.cnn_compiler_options())
  to_disp = jax.jit(lambda corr: generate.corr_to_displacement(corr, size, pad))
  corr = warp.identity_grid(sp, sp)[None]
  disps, flows = [jnp.zeros((1, size, size, 2))], []
  for _ in progress_bar(range(1, num_frames), 'motion', progress):
    corr, flow = step(corr)
    disps.append(to_disp(corr))
    flows.append(np.asarray(flow[0, pad:pad + size, pad:pad + size]) * ((sp - 1) / (size - 1)))
  return disps, flows


def appearance_repeats(speed: float) -> int:
  """Appearance speed s_a -> motion loops per appearance cycle (Sec. 5; official 0.1 -> 10)."""
  if not (np.isfinite(speed) and 0 < speed <= 1):
    raise InputError(f'--a-speed {speed}: use a number in (0, 1], e.g. 0.1 for one appearance '
                     'cycle every 10 motion loops')
  return max(1, int(round(1.0 / speed)))


def recolour_fn(maps_fn, size: int):
  """jit(frame uint8 [H, W, 3], z [Z]) -> uint8 frame recoloured by P^A (Alg. 1, lines 14-15)."""

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
  for i in progress_bar(range(n), 'appearance', progress):
    out[i] = np.asarray(f(jnp.asarray(loop_frames[i % len(loop_frames)]), jnp.asarray(codes[i])))
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

  def loss(z):
    out = color.color_transfer(maps_fn(image_small, z[None]), image_small)
    return jnp.sum(jnp.square(mask_small * (target_small - out)))

  return optimise_code(loss, z0, steps, lr)
