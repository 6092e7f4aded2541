"""Animating Landscape from a photo (Endo et al. 2019, Algorithm 1, Sec. 5) and its controls.

The pure steps of Algorithm 1 are animgen/ops/generate.py; this module runs them over a photo at
its own resolution as the official test.py does (the network sees the photo resized to S x S
without keeping the aspect; the motion loop, the cross-faded loop and the appearance schedule
follow the official code step by step), with progress bars, codebook choices, and the code
optimisation of the user controls of Sec. 6.4 (arrows -> z^M by Eq. 12; colour patches -> z^A
by Eq. 13). Network parameters reach every jitted program as arguments (a
jax.tree_util.Partial around the apply function), never as constants.
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

PROJECT_PAGE = 'http://www.cgg.cs.tsukuba.ac.jp/~endo/projects/AnimatingLandscape/'


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
  encode: Callable           # image [1, E, E, 3] at the encoder size -> z [1, Z]
  sequences: list | None     # codebook: one [T_i, Z] code sequence per training clip
  lstm: dict | None          # latent LSTM parameters (Appendix B)
  size: int
  encoder_size: int
  run: runs.Run


def jit_arg(fn):
  """fn as an argument of a jitted program: a Partial's bound arrays (network parameters) are
  traced arguments, not constants folded into the program."""
  return fn if isinstance(fn, jax.tree_util.Partial) else jax.tree_util.Partial(fn)


def require_run(workdir: str, kind: str) -> None:
  """One-line InputError saying how to get a model when `workdir` holds no training run."""
  if os.path.isfile(os.path.join(workdir, 'config.json')):
    return
  config = {'motion': 'landscape', 'appearance': 'landscape_appearance'}[kind]
  out = {'motion': '--motion-out', 'appearance': '--appearance-out'}[kind]
  raise InputError(f'no trained {kind} model in {workdir}: train one with python -m '
                   f'animgen.main --config=configs/{config}.py --workdir={workdir}, or download '
                   f'the official pretrained models from {PROJECT_PAGE} and run animgen convert '
                   f'MODEL_DIR --trust-pickle {out} {workdir}')


def motion_model(workdir: str) -> MotionModel:
  require_run(workdir, 'motion')
  run = runs.load(workdir, 'landscape_motion')
  book = run.artefacts.get('codebook_motion.npz')
  return MotionModel(jax.tree_util.Partial(run.method.predict, run.state.params),
                     None if book is None else np.asarray(book['codes']),
                     run.config.image_size, run)


def appearance_model(workdir: str) -> AppearanceModel:
  from animgen.methods import landscape_appearance as la
  require_run(workdir, 'appearance')
  run = runs.load(workdir, 'landscape_appearance')
  params, stats = run.state.params, run.state.batch_stats
  # The official test code runs E^A with BatchNorm in training mode (batch statistics of the
  # one input; a quirk of the official code): converted runs do the same, animgen's own runs use the
  # running statistics they were evaluated with.
  batch_stats = run.converted_from is not None
  book, lstm = run.artefacts.get('codebook_appearance.npz'), run.artefacts.get('latent_lstm.npz')
  return AppearanceModel(jax.tree_util.Partial(run.method.maps, params),
                         lambda x: run.method.encode(params, stats, x, train=batch_stats)[0],
                         None if book is None else la.codebook_sequences(book),
                         None if lstm is None else la.latent_lstm_params(lstm),
                         run.config.image_size, run.config.model.encoder_size, run)


def lstm_codes(model: AppearanceModel, z0, length: int) -> np.ndarray:
  """Appendix B: the latent LSTM's code sequence from z0 -> [length, Z]."""
  from animgen.methods import landscape_appearance as la
  return la.lstm_rollout(model.lstm, z0, length, len(z0))


def choose_code(codebook: np.ndarray, index=None, mix=None, seed=None) -> np.ndarray:
  """z^M from the motion codebook [K, Z]: a row, or the official -mz fraction t in [0, 1]
  (linear between rows floor and ceil of (K - 1) t), by default a random t from `seed` (the
  official default)."""
  n = len(codebook)
  if index is not None:
    if not 0 <= index < n:
      raise InputError(f'--z-index {index} is outside the codebook rows 0..{n - 1}')
    return np.asarray(codebook[index], np.float32)
  if mix is None:
    mix = float(np.random.default_rng(seed).random())
  if not 0 <= mix <= 1:
    raise InputError(f'--z-mix {mix}: give a fraction in [0, 1] (official -mz), the position '
                     f'between codebook rows 0 and {n - 1}')
  x = (n - 1) * mix
  lo, hi, w = int(np.floor(x)), int(np.ceil(x)), x - np.floor(x)
  book = np.asarray(codebook, np.float64)
  return ((1.0 - w) * book[lo] + w * book[hi]).astype(np.float32)


def choose_sequence(num: int, index=None, mix=None, seed=None) -> int:
  """Appearance codebook sequence: an index, or the official -az fraction t in [0, 1] (row
  int((N - 1) t)), by default a random t: the second draw from `seed` (the official default
  draws -mz, then -az; choose_code takes the first)."""
  if index is not None:
    if not 0 <= index < num:
      raise InputError(f'--a-index {index} is outside the appearance codebook sequences '
                       f'0..{num - 1}')
    return int(index)
  if mix is None:
    mix = float(np.random.default_rng(seed).random(2)[1])
  if not 0 <= mix <= 1:
    raise InputError(f'--a-mix {mix}: give a fraction in [0, 1] (official -az)')
  return int((num - 1) * mix)


def progress_bar(items, label: str, enabled: bool = True, total: int | None = None):
  """`items`, counted on one 'animgen animate' progress stage (animgen/progress.py)."""
  items = list(items)
  prog = Progress('animgen animate', quiet=not enabled)
  with prog.stage(label, total=total or len(items), unit='frame') as stage:
    for item in items:
      yield item
      stage.advance()


def photo_levels(image_full) -> jax.Array:
  """Photo [H, W, 3] in [0, 1] (or uint8) -> [1, H, W, 3] float grey levels 0..255, as the
  official code's 8-bit reading."""
  from animgen import media
  return jnp.asarray(media.to_uint8(image_full), jnp.float32)[None]


def network_input(image_full, size: int):
  """Photo [H, W, 3] -> network input [1, size, size, 3] in [-1, 1]: resized to size x size
  (aspect not kept), 8-bit, normalised, as the official cv2.resize + normalize."""
  return generate.normalise(generate.resize_u8(photo_levels(image_full), size, size))


# ----------------------------------------------------------------------------- motion
@functools.lru_cache(maxsize=None)
def _programs() -> dict:
  """The jitted generation programs, built once so that their compilations are reused."""
  opts = runtime.cnn_compiler_options()
  return {'step': jax.jit(generate.motion_step, static_argnames=('pad',), compiler_options=opts),
          'render': jax.jit(generate.render, static_argnames=('pads',)),
          'recolour': jax.jit(recolour, static_argnames=('size',), compiler_options=opts)}


def motion_correspondences(predict, small, z, num_frames: int, speed: float, pad: int,
                           progress: bool = True):
  """The official motion loop at the network size from small [1, S, S, 3] -> (correspondences
  [T] of [1, P, P, 2] into the padded input, flows [T] of [S, S, 2]: speed * P^M's output)."""
  step, predict = _programs()['step'], jit_arg(predict)
  padded = reflect_pad(small, pad)
  zz = jnp.asarray(z, jnp.float32)[None]
  p = small.shape[1] + 2 * pad
  corr, frame = warp.identity_grid(p, p)[None], small
  corrs, flows = [], []
  for t in progress_bar(range(num_frames), 'motion', progress):
    corr, frame, flow = step(predict, frame, corr, t > 0, zz, padded, speed, pad=pad)
    corrs.append(corr)
    flows.append(np.asarray(flow[0]))
  return corrs, flows


def blend(frame: Callable, parts) -> np.ndarray:
  """A cross-faded loop frame as the official generateLoop: sum(w * V[i]) / sum(w) in float64
  over parts [(i, w), ...], truncated to uint8; frame(i) gives V[i] as uint8."""
  acc, wsum = 0.0, 0.0
  for i, w in parts:
    acc = acc + w * frame(i).astype(np.float64)
    wsum += w
  return (acc / wsum).astype(np.uint8)


def animate_motion(predict, image_full: np.ndarray, z: np.ndarray, size: int, num_frames: int,
                   speed: float = 0.2, pad_fraction: float = 0.25, loop_length: int | None = None,
                   progress: bool = True):
  """Algorithm 1, lines 1-9, as the official test.py: image_full [H, W, 3] in [0, 1] at any
  size -> (frames uint8 [L, H, W, 3], the first already one step from the photo; flows
  [T, S, S, 2] normalised at the network size). loop_length None: the T frames unlooped."""
  pad, _ = generate.pad_geometry(size, pad_fraction)
  corrs, flows = motion_correspondences(predict, network_input(image_full, size), z, num_frames,
                                        speed, pad, progress)
  h, w = image_full.shape[:2]
  pads = generate.scaled_pads(pad, size, h, w)
  photo = generate.normalise(photo_levels(image_full))
  padded = jnp.pad(photo, ((0, 0), (pads[0], pads[0]), (pads[1], pads[1]), (0, 0)), 'reflect')
  render = _programs()['render']
  frame = lambda i: np.asarray(render(padded, corrs[i], pads=pads))
  if not loop_length:
    frames = [frame(i) for i in progress_bar(range(num_frames), 'render', progress)]
  else:
    plan = generate.crossfade_weights(num_frames, loop_length)
    frames = [blend(frame, parts) for parts in progress_bar(plan, 'render', progress)]
  return np.stack(frames), np.stack(flows)


# ----------------------------------------------------------------------------- appearance
def appearance_repeats(speed: float) -> int:
  """Appearance speed s_a -> the least number of motion loops per appearance cycle (official
  int(1 / s_a): 0.1 -> 10)."""
  if not (np.isfinite(speed) and 0 < speed <= 1):
    raise InputError(f'--a-speed {speed}: use a number in (0, 1], e.g. 0.1 for one appearance '
                     'cycle every 10 motion loops')
  return max(1, int(1.0 / speed))


def encode_frame(model: AppearanceModel, frame_u8: np.ndarray) -> np.ndarray:
  """z^A = E^A(frame resized to the encoder size, 8-bit) -> [Z] (official: E^A of the first
  loop frame through cv2.resize to 128)."""
  e = model.encoder_size
  x = generate.normalise(generate.resize_u8(photo_levels(frame_u8), e, e))
  return np.asarray(model.encode(x))[0]


def recolour(maps_fn, frame_u8, z, size: int):
  """Alg. 1, lines 14-15, as the official: P^A on the frame resized to size x size (8-bit),
  maps upsampled to the frame (align_corners), tanh(al * x + bl) on the full-resolution frame
  -> uint8 [H, W, 3]."""
  levels = frame_u8.astype(jnp.float32)[None]
  small = generate.normalise(generate.resize_u8(levels, size, size))
  maps = generate.upsample(maps_fn(small, z[None]), *frame_u8.shape[:2])
  return generate.to_uint8(color.color_transfer(maps, generate.normalise(levels))[0])


def animate_appearance(maps_fn, loop_frames: np.ndarray, codes: np.ndarray, size: int,
                       progress: bool = True) -> np.ndarray:
  """Plays the motion loop [L, H, W, 3] uint8 cyclically under per-frame codes [N, Z]."""
  f, maps_fn = _programs()['recolour'], jit_arg(maps_fn)
  n = len(codes)
  out = np.empty((n,) + loop_frames.shape[1:], np.uint8)
  for i in progress_bar(range(n), 'appearance', progress):
    out[i] = np.asarray(f(maps_fn, jnp.asarray(loop_frames[i % len(loop_frames)]),
                          jnp.asarray(codes[i], jnp.float32), size=size))
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
    except (OSError, ValueError, RecursionError) as e:
      raise InputError(f'--arrows {spec}: not a JSON file of [[x0, y0, x1, y1], ...] '
                       f'({type(e).__name__})') from None
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


def optimise_code(loss_fn, z0, operands=(), steps: int = 200, lr: float = 0.05):
  """argmin_z loss_fn(z, *operands) by Adam from z0 with the networks frozen (Eqs. 12-13; Adam
  as in the paper, step count and rate ours). The operands (networks as Partials, images) are
  arguments of the jitted solver. Returns (z, loss at z)."""
  solve = jax.jit(lambda ops, z: adam_minimise(lambda x: loss_fn(x, *ops), z, steps, lr))
  z, loss = solve(tuple(operands), jnp.asarray(z0, jnp.float32))
  return np.asarray(z), float(loss)


def _arrow_objective(z, predict, image_small, u, mask):
  return arrow_loss(predict(image_small, z[None]), u, mask)


def code_from_arrows(predict, image_small, arrows, height, width, z0, steps=200, lr=0.05):
  """Eq. 12: z^M whose predicted flow follows the arrows (cosine, margin 0.5), P^M frozen."""
  size = image_small.shape[1]
  u, m = arrow_maps(arrows, height, width, size)
  ops = (jit_arg(predict), jnp.asarray(image_small), jnp.asarray(u)[None], jnp.asarray(m)[None])
  return optimise_code(_arrow_objective, z0, ops, steps, lr)


def _patch_objective(z, maps_fn, image_small, target_small, mask_small):
  out = color.color_transfer(maps_fn(image_small, z[None]), image_small)
  return jnp.sum(jnp.square(mask_small * (target_small - out)))


def code_from_patch(maps_fn, image_small, target_small, mask_small, z0, steps=200, lr=0.05):
  """Eq. 13: z^A whose colour transfer of the input matches the patch colours under the mask.
  image/target [1, S, S, 3] in [-1, 1]; mask [1, S, S, 1] in {0, 1}."""
  ops = (jit_arg(maps_fn), jnp.asarray(image_small), jnp.asarray(target_small),
         jnp.asarray(mask_small))
  return optimise_code(_patch_objective, z0, ops, steps, lr)
