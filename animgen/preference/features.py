"""The context feature v of a cinemagraph (Oh et al. 2017, Sec. 4 and supplement).

Three parts, in `PARTS` order:
  hand      the 55 hand-designed values of supp. Fig. 7 (`HAND_NAMES`): face, sharpness, motion
            flow, trajectory, global loopability and face ratio, each as Min, Max, Mean,
            Median, Std (np.std, ddof=0) over its items; zeros where a group has no items.
  motion    the paper uses C3D (4096-d, supp.), whose weights we do not have. Our stand-in
            (`MOTION_DIM` = 64): Farneback flow between consecutive rendered frames, restricted
            to the dynamic region (period > 1); each dynamic pixel adds its speed / frame
            diagonal to one of 8 orientation x 4 speed x 2 temporal-half bins, and each half is
            divided by (frame pairs in it) x H x W. Real C3D features replace it (`motion=`,
            `load_motion_features`).
  semantic  [h_static, h_dyn]: the (time-mean) class responses summed over static and over
            dynamic pixels (supp.), divided by H x W.

`normalise_parts` divides each part by its largest absolute value over a set of cinemagraphs
(supp.: the infinity norm, before concatenation); `apply_scales` reuses those scales.
"""
from __future__ import annotations

import functools
import os
import zipfile

import cv2
import numpy as np

from animgen.errors import InputError

PARTS = ('hand', 'motion', 'semantic')
_STATS = ('Min', 'Max', 'Mean', 'Median', 'Std')  # supp. Fig. 7's order of the statistics
_GROUPS = (('facesize', 'facexs', 'faceys'), ('sharpness',), ('motion', 'motionSurround'),
           ('tracklength', 'trackBoundingBox', 'trackTravels'), ('globalLoopCosts',),
           ('faceRatios',))
HAND_NAMES = tuple(f + s for group in _GROUPS for f in group for s in _STATS)  # supp. Fig. 7
_ORIENT_BINS = 8
# speed bin edges as fractions of the frame diagonal per frame (our choice; 64 px frame: about
# 0.45, 1.4 and 3.6 px / frame)
_SPEED_EDGES = (0.005, 0.015, 0.04)
MOTION_DIM = _ORIENT_BINS * (len(_SPEED_EDGES) + 1) * 2
_MAX_FACE_FRAMES = 8  # faces are searched on at most this many evenly spaced frames (speed)
# OpenCV's example Farneback values (our choice), but a window of min(H, W) / 8 px between 5 and
# 15 (odd): a 15 px window smears a 64 px frame's motion into its static surround
_FARNEBACK = dict(pyr_scale=0.5, levels=3, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
_LK = dict(winSize=(15, 15), maxLevel=2,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


def _stats(x) -> np.ndarray:
  """[Min, Max, Mean, Median, Std] of the values x (zeros when x is empty)."""
  x = np.asarray(x, np.float64).ravel()
  if not x.size:
    return np.zeros(5)
  return np.array([x.min(), x.max(), x.mean(), np.median(x), x.std()])


def _grey(frames) -> np.ndarray:
  """uint8 grey [T, H, W] of float RGB frames in [0, 1] (OpenCV's Rec. 601 weights)."""
  u8 = np.clip(np.asarray(frames, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
  return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in u8])


# ------------------------------------------------------------------------------------ faces


@functools.lru_cache(maxsize=None)
def _cascade() -> cv2.CascadeClassifier:
  """OpenCV's frontal-face Haar cascade, loaded once."""
  path = os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml')
  cascade = cv2.CascadeClassifier(path)
  if cascade.empty():
    raise InputError(f'cannot load the OpenCV face cascade {path}; reinstall '
                     'opencv-python-headless (4.x ships it)')
  return cascade


def detect_faces(frames) -> list[np.ndarray]:
  """Haar-cascade faces on at most `_MAX_FACE_FRAMES` evenly spaced frames of [T, H, W, 3]:
  one int array [n, 4] of boxes (x, y, w, h) per searched frame."""
  grey = _grey(frames)
  # supp. Fig. 7 names face features only; a few evenly spaced frames: our choice (speed)
  idx = np.unique(np.linspace(0, len(grey) - 1, min(_MAX_FACE_FRAMES, len(grey))).round())
  boxes = []
  for i in idx.astype(int):
    found = _cascade().detectMultiScale(grey[i], scaleFactor=1.1, minNeighbors=5)
    boxes.append(np.asarray(found, np.int64).reshape(-1, 4))
  return boxes


def face_stats(boxes, h: int, w: int, dynamic) -> np.ndarray:
  """20 values: stats of face size (box area / frame area), x (box centre / W), y (centre / H)
  and face ratio (share of the box, clipped to the frame, that is dynamic) over all boxes."""
  b = np.concatenate([np.asarray(x, np.float64).reshape(-1, 4) for x in boxes] or
                     [np.zeros((0, 4))])
  dyn = np.asarray(dynamic, bool)
  ratios = []
  for x, y, bw, bh in b.astype(int):
    inside = dyn[max(y, 0):y + bh, max(x, 0):x + bw]
    ratios.append(inside.mean() if inside.size else 0.0)
  # supp. Fig. 7 names them only; size, x, y, ratio per detection: our choices
  size = b[:, 2] * b[:, 3] / (h * w)
  cx, cy = (b[:, 0] + b[:, 2] / 2) / w, (b[:, 1] + b[:, 3] / 2) / h
  return np.concatenate([_stats(size), _stats(cx), _stats(cy), _stats(ratios)])


# ------------------------------------------------------------------------ texture, motion


def sharpness(frames) -> np.ndarray:
  """[T]: variance of the Laplacian (cv2.Laplacian, 3x3 4-neighbour kernel, reflect-101
  border) of each frame's float grey image in [0, 1]."""
  f = np.asarray(frames, np.float32)  # supp. Fig. 7 "sharpness": Laplacian variance, our choice
  return np.array([cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()
                   for x in f])


def flows(frames) -> np.ndarray:
  """Farneback dense flow [T-1, H, W, 2] (dx, dy in px) between consecutive frames; the wrap
  pair (last, first) is left out (our choice)."""
  g = _grey(frames)
  win = int(np.clip(min(g.shape[1:]) // 8, 5, 15)) | 1
  out = [cv2.calcOpticalFlowFarneback(a, b, None, winsize=win, **_FARNEBACK)
         for a, b in zip(g[:-1], g[1:])]
  return np.stack(out) if out else np.zeros((0,) + g.shape[1:] + (2,), np.float32)


def ring(dynamic) -> np.ndarray:
  """bool [H, W]: the dynamic region dilated by r = max(2, min(H, W) // 16) px (our choice),
  minus the region itself."""
  dyn = np.asarray(dynamic, bool)
  r = max(2, min(dyn.shape) // 16)
  disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
  return cv2.dilate(dyn.astype(np.uint8), disc).astype(bool) & ~dyn


def flow_motion(flow, dynamic) -> tuple[np.ndarray, np.ndarray]:
  """Per frame pair: mean flow speed (px / frame) inside the dynamic region and inside its
  `ring` (empty arrays where a region is empty)."""
  speed = np.linalg.norm(np.asarray(flow), axis=-1)
  dyn = np.asarray(dynamic, bool)  # supp. Fig. 7 "motion" / "motionSurround": stats over pairs
  sur = ring(dyn)
  inside = speed[:, dyn].mean(1) if dyn.any() else np.zeros(0)
  around = speed[:, sur].mean(1) if sur.any() else np.zeros(0)
  return inside, around


def tracks(frames, dynamic) -> np.ndarray:
  """KLT tracks: corners of the dynamic region of the first frame followed with pyramidal
  Lucas-Kanade; a point is dropped once lost or out of the frame. [T, N, 2] (x, y), NaN after
  a track ends."""
  g = _grey(frames)
  mask = np.asarray(dynamic, np.uint8)
  pts = None
  if mask.any():  # minDistance 3 px, 64 corners: our choice
    pts = cv2.goodFeaturesToTrack(g[0], 64, 0.01, 3, mask=mask)
  if pts is None:
    return np.zeros((len(g), 0, 2))
  out = np.full((len(g), len(pts), 2), np.nan)
  out[0] = pts.reshape(-1, 2)
  alive = np.ones(len(pts), bool)
  h, w = g.shape[1:]
  for t in range(1, len(g)):
    if not alive.any():
      break
    prev = out[t - 1, alive].astype(np.float32).reshape(-1, 1, 2)
    nxt, ok, _ = cv2.calcOpticalFlowPyrLK(g[t - 1], g[t], prev, None, **_LK)
    nxt = nxt.reshape(-1, 2)
    ok = ok.ravel().astype(bool) & (nxt >= 0).all(1) & (nxt <= (w - 1, h - 1)).all(1)
    idx = np.flatnonzero(alive)
    out[t, idx[ok]] = nxt[ok]
    alive[idx[~ok]] = False
  return out


def track_stats(paths, h: int, w: int) -> np.ndarray:
  """15 values: stats over tracks of length (frames tracked / frames), bounding-box diagonal of
  the positions / frame diagonal and travel (path length) / frame diagonal."""
  p = np.asarray(paths, np.float64)
  if not p.shape[1]:
    return np.zeros(15)
  diag = np.hypot(h, w)  # supp. Fig. 7 names them only; normalisers: our choice
  length = (~np.isnan(p[..., 0])).sum(0) / len(p)
  extent = np.nanmax(p, 0) - np.nanmin(p, 0)  # [N, 2]: each track's box (width, height)
  box = np.hypot(extent[:, 0], extent[:, 1]) / diag
  steps = np.linalg.norm(np.diff(p, axis=0), axis=-1)  # NaN once a track has ended
  travel = np.nansum(steps, 0) / diag
  return np.concatenate([_stats(length), _stats(box), _stats(travel)])


def loop_costs(video, periods, starts) -> np.ndarray:
  """Per dynamic pixel (period > 1), Liao 2013's temporal seam cost on the source video:
  (||V(s) - V(s+p)||^2 + ||V(s+p-1) - V(s-1)||^2) / 2, squared norm over RGB."""
  v = np.asarray(video, np.float32)  # supp. Fig. 7 "globalLoopCosts": Liao's E_temp, unweighted
  p, s = np.asarray(periods), np.asarray(starts)
  dyn = p > 1
  ys, xs = np.nonzero(dyn)
  p, s = p[dyn], s[dyn]
  last = len(v) - 1
  # frames outside the clip are clamped (our choice): s + p = T compares V(s) with V(T-1),
  # s = 0 compares V(p-1) with V(0)
  a, b = v[s, ys, xs], v[np.minimum(s + p, last), ys, xs]
  c, d = v[s + p - 1, ys, xs], v[np.maximum(s - 1, 0), ys, xs]
  return 0.5 * (((a - b) ** 2).sum(-1) + ((c - d) ** 2).sum(-1))  # mean of the two seams


# ------------------------------------------------------------------------------- the parts


def _check(video, periods, starts, frames) -> np.ndarray:
  """The dynamic mask (period > 1) after checking the shapes; InputError otherwise."""
  v, f = np.shape(video), np.shape(frames)
  p, s = np.shape(periods), np.shape(starts)
  if len(v) != 4 or len(f) != 4 or v[1:] != f[1:] or v[-1] != 3 or p != v[1:3] or s != p:
    raise InputError(f'context features need video and frames [T, H, W, 3] and periods, '
                     f'starts [H, W] of one size (got {v}, {f}, {p}, {s})')
  if not f[0] or not v[0]:
    raise InputError('context features need at least one source and one rendered frame')
  p, s = np.asarray(periods), np.asarray(starts)
  if p.min() < 1 or s.min() < 0 or (s + p).max() > v[0]:
    raise InputError(f'loop labels need p >= 1, s >= 0 and s + p <= T = {v[0]}; pass the '
                     'labels solved on this video')
  return p > 1


def _hand(video, periods, starts, frames, faces, flow) -> np.ndarray:
  """`hand_features` on checked inputs, with the flow of the frames given."""
  dyn = np.asarray(periods) > 1
  h, w = dyn.shape
  face = face_stats(detect_faces(frames) if faces else [], h, w, dyn)
  inside, around = flow_motion(flow, dyn)
  parts = [face[:15], _stats(sharpness(frames)), _stats(inside), _stats(around),
           track_stats(tracks(frames, dyn), h, w), _stats(loop_costs(video, periods, starts)),
           face[15:]]  # supp. Fig. 7 order
  return np.concatenate(parts).astype(np.float32)


def hand_features(video, periods, starts, frames, *, faces=True) -> np.ndarray:
  """float32 [55] in `HAND_NAMES` order; faces=False zeros the face and face-ratio values."""
  _check(video, periods, starts, frames)
  return _hand(video, periods, starts, frames, faces, flows(frames))


def _motion(flow, dynamic) -> np.ndarray:
  """`motion_feature` from the flow [T'-1, H, W, 2] of the frames."""
  flow = np.asarray(flow, np.float32)
  hist = np.zeros((2, len(_SPEED_EDGES) + 1, _ORIENT_BINS))
  if len(flow):
    dyn = np.asarray(dynamic, bool)
    h, w = dyn.shape
    f = flow[:, dyn]  # [pairs, n, 2]
    speed = np.linalg.norm(f, axis=-1) / np.hypot(h, w)
    sector = 2 * np.pi / _ORIENT_BINS  # bins centred on 0 = +x, pi/2 = +y (image axes, y down)
    o = np.floor(np.arctan2(f[..., 1], f[..., 0]) / sector + 0.5).astype(int) % _ORIENT_BINS
    m = np.searchsorted(_SPEED_EDGES, speed, side='right')
    for half, pairs in enumerate(np.array_split(np.arange(len(flow)), 2)):
      if len(pairs):
        np.add.at(hist[half], (m[pairs].ravel(), o[pairs].ravel()), speed[pairs].ravel())
        hist[half] /= len(pairs) * h * w
  return hist.ravel().astype(np.float32)


def motion_feature(frames, dynamic) -> np.ndarray:
  """float32 [MOTION_DIM]: the C3D stand-in of the module docstring, bins ordered (temporal
  half, speed bin, orientation bin); orientation bin k is centred on angle k pi / 4 (bin 0: +x,
  bin 2: +y, down)."""
  if np.ndim(frames) != 4 or np.shape(dynamic) != np.shape(frames)[1:3]:
    raise InputError(f'the motion feature needs frames [T, H, W, 3] and a dynamic mask [H, W] '
                     f'(got {np.shape(frames)}, {np.shape(dynamic)})')
  return _motion(flows(frames), dynamic)


def semantic_feature(responses, dynamic) -> np.ndarray:
  """float32 [2C]: [h_static, h_dyn] (supp.), the responses summed over static and dynamic
  pixels and divided by H x W (our choice: frame size does not matter). responses [T, H, W, C]
  (time mean), [H, W, C], or None (one class of ones)."""
  dyn = np.asarray(dynamic, bool)
  r = np.ones(dyn.shape + (1,)) if responses is None else np.asarray(responses, np.float64)
  if r.ndim == 4:
    r = r.mean(0)
  if r.ndim != 3 or r.shape[:2] != dyn.shape:
    raise InputError(f'class responses {np.shape(responses)} do not match the {dyn.shape} '
                     'frames; give [T, H, W, C] or [H, W, C] of the same video')
  n = dyn.size
  return np.concatenate([r[~dyn].sum(0) / n, r[dyn].sum(0) / n]).astype(np.float32)


def _vector(x, what: str) -> np.ndarray:
  """x as float32 [d], d >= 1, all finite; InputError naming `what` otherwise."""
  v = np.asarray(x)
  if v.ndim != 1 or not v.size or not np.issubdtype(v.dtype, np.number) or \
      np.iscomplexobj(v) or not np.all(np.isfinite(v)):
    raise InputError(f'{what} must be a non-empty 1-D vector of finite numbers (got '
                     f'{v.dtype} {v.shape})')
  return v.astype(np.float32)


def cinemagraph_parts(video, periods, starts, frames, responses=None, *, faces=True,
                      motion=None) -> dict[str, np.ndarray]:
  """{'hand': [55], 'motion': [MOTION_DIM] (or the given `motion` vector), 'semantic': [2C]}."""
  dyn = _check(video, periods, starts, frames)
  flow = flows(frames)
  return {'hand': _hand(video, periods, starts, frames, faces, flow),
          'motion': _motion(flow, dyn) if motion is None else _vector(motion, 'the motion feature'),
          'semantic': semantic_feature(responses, dyn)}


def background_responses(h: int, w: int) -> np.ndarray:
  """[H, W, C] responses over Oh's 32 classes that say 'background' everywhere: the semantic
  part of a cinemagraph without segmenter output."""
  from animgen.looper import semantics
  c = len(semantics.class_table().classes)
  return np.eye(c, dtype=np.float32)[np.zeros((h, w), int)]


# a rendered cinemagraph's pixel moves when its value range over the loop exceeds this (of the
# [0, 1] scale): ours, above the +-4 grey levels of GIF dithering and MP4 coding noise
_MOVING_RANGE = 0.05


def rendered_parts(frames, *, faces=True, motion=None) -> dict[str, np.ndarray]:
  """The parts of a finished cinemagraph file, without its source video or loop labels: the
  dynamic region is where the value range over the loop exceeds `_MOVING_RANGE`, its pixels
  loop with the file's length from frame 0 (so globalLoopCosts is the file's own wrap-around
  seam), and the semantic part is `background_responses` (ours: for a real study's files)."""
  f = np.asarray(frames, np.float32)
  if f.ndim != 4 or f.shape[-1] != 3 or not len(f):
    raise InputError(f'a cinemagraph needs RGB frames [T, H, W, 3], got {f.shape}')
  if len(f) == 1:  # a file with one frame (GIF writers merge identical frames) is all still
    f = np.concatenate([f, f])
  moving = (f.max(0) - f.min(0)).max(-1) > _MOVING_RANGE
  periods = np.where(moving, len(f), 1)
  return cinemagraph_parts(f, periods, np.zeros_like(periods), f,
                           background_responses(*f.shape[1:3]), faces=faces, motion=motion)


# --------------------------------------------------------------------------- normalisation


def _block(rows, part) -> np.ndarray:
  """[m, d]: one part of every cinemagraph, all of the same size."""
  sizes = sorted({np.size(r[part]) for r in rows})
  if len(sizes) != 1:
    raise InputError(f'the {part} features have different sizes {sizes} across cinemagraphs; '
                     'extract them all the same way')
  return np.stack([_vector(r[part], f'the {part} feature') for r in rows])


def normalise_parts(parts: list[dict]) -> tuple[np.ndarray, dict]:
  """(V float32 [m, D], scales {part: float}): each part divided by its largest absolute value
  over the m cinemagraphs (supp.: infinity norm; 0 -> 1), concatenated in PARTS order."""
  if not parts:
    raise InputError('no cinemagraphs to normalise')
  missing = sorted(set(PARTS) - set(parts[0]))
  if missing or any(set(PARTS) - set(r) for r in parts):
    raise InputError(f'every cinemagraph needs the feature parts {", ".join(PARTS)}')
  blocks = {p: _block(parts, p) for p in PARTS}
  scales = {p: float(np.abs(b).max()) or 1.0 for p, b in blocks.items()}
  V = np.concatenate([blocks[p] / scales[p] for p in PARTS], axis=1)
  return V.astype(np.float32), scales


def apply_scales(parts: dict, scales: dict) -> np.ndarray:
  """One row of V (float32 [D]) for a new cinemagraph, with the scales of `normalise_parts`."""
  missing = [p for p in PARTS if p not in parts or p not in scales]
  if missing:
    raise InputError(f'feature part(s) {", ".join(missing)} missing from the cinemagraph or '
                     'the stored scales')
  row = {p: _vector(parts[p], f'the {p} feature') for p in PARTS}
  bad = [p for p in PARTS if not np.isfinite(scales[p]) or scales[p] <= 0]
  if bad:
    raise InputError(f'stored scale(s) of {", ".join(bad)} must be finite and positive; '
                     'rebuild them with normalise_parts')
  if row['hand'].size != len(HAND_NAMES) or row['semantic'].size % 2:
    raise InputError(f'the hand part has {row["hand"].size} values (want {len(HAND_NAMES)}) '
                     f'and the semantic part {row["semantic"].size} (want an even number)')
  return np.concatenate([row[p] / float(scales[p]) for p in PARTS]).astype(np.float32)


# ------------------------------------------------------------------- user motion features

_HOW = 'save it with numpy.savez(path, features=array) with one float row per cinemagraph'


def _read_features(path: str) -> np.ndarray:
  """The 'features' array of the .npz at path, never unpickled."""
  try:
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise InputError(f'{path} holds a single array, not an .npz archive; {_HOW}')
    with archive:
      if 'features' not in archive.files:
        raise InputError(f'{path} has no array named features (found '
                         f'{", ".join(archive.files) or "nothing"}); {_HOW}')
      return archive['features']
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # pickled objects, bad zip
    msg = ' '.join(str(e).split()) or type(e).__name__
    raise InputError(f'cannot read {path} ({msg}); {_HOW}') from e


def load_motion_features(path, num) -> np.ndarray:
  """float32 [num, D]: the 'features' array of an .npz (e.g. real C3D features, one row per
  cinemagraph); every problem raises InputError with a one-line message."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise InputError(f'no such file: {path}; check the path to the motion features')
  x = _read_features(path)
  if x.ndim != 2 or x.shape[0] != num or not x.shape[1] or x.dtype.kind not in 'iuf':
    raise InputError(f'{path}: features is {x.dtype} {x.shape}, expected a number array '
                     f'[{num}, D] (one row per cinemagraph); {_HOW}')
  if not np.all(np.isfinite(x)):
    raise InputError(f'{path}: features holds NaN or Inf values; recompute them')
  return x.astype(np.float32)
