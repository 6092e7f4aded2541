"""Semantic information for the looper (Oh et al. 2017, Sec. 3.1).

Class responses F [T, H, W, C] (per-pixel probabilities of a segmenter such as FCN-8 on
PASCAL-Context) are merged from 60 to 32 classes by the table of Oh's supplementary Fig. 8
(shipped as data/looper/pascal_context_32.json), reduced to the top-K candidate classes, and
turned into candidate maps pi. Without a segmenter, `motion_candidates` finds candidate regions
from motion alone.
"""

from __future__ import annotations

import functools
import json
import os
import zipfile
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from animgen.errors import InputError
from animgen.looper import costs

# data/ sits next to the animgen package in a source checkout (like configs/, see convert.py)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TABLE = os.path.join(_ROOT, 'data', 'looper', 'pascal_context_32.json')
_ADE20K = os.path.join(_ROOT, 'data', 'looper', 'ade20k_32.json')
_PAPER_SIZE = 960 * 540  # frame size the paper's thresholds refer to (pixels)
_LUMA = (0.299, 0.587, 0.114)  # "intensity" = Rec. 601 luma: our choice, the paper says intensity
# Fallback thresholds, our choices (Oh has no unsupervised mode):
_MOTION_FLOOR = 0.02  # a pixel is dynamic only if its motion score exceeds this (and Otsu's)
_POS_WEIGHT = 0.5  # weight of (y, x) / max(H, W) next to mean RGB in the KMeans features
_SILHOUETTE_MIN = 0.5  # k > 1 regions only if the clustering's silhouette beats this


class ClassTable(NamedTuple):
  """Oh's supplementary Fig. 8: PASCAL-Context 60 -> 32 classes with natural flags."""
  pascal: tuple[str, ...]  # the 60 PASCAL-Context names, in the table's order
  classes: tuple[str, ...]  # the 32 mapped names, in order of first appearance (background 0)
  to_class: np.ndarray  # [60] int: index into `classes` of each PASCAL-Context class
  natural: np.ndarray  # [32] bool: the table's natural-category flag of each mapped class
  # mapped classes discarded as static (Oh Sec. 3.1 step 2a): our choice, stored in the JSON;
  # the paper's full list is in a supplementary we do not have
  static: tuple[str, ...]


@functools.lru_cache(maxsize=None)
def class_table() -> ClassTable:
  """Loads the shipped table; a '.' in the mapping column keeps the class's own name."""
  if not os.path.isfile(_TABLE):
    raise InputError(f'{_TABLE} not found: run animgen from a source checkout (data/ sits next '
                     'to the animgen package)')
  with open(_TABLE) as f:
    table = json.load(f)
  rows = table['classes']
  mapped = [r['name'] if r['mapping'] == '.' else r['mapping'] for r in rows]
  classes = tuple(dict.fromkeys(mapped))
  # The printed table gives exactly 32 mapped names, and its natural flag is the same for all
  # members of a merged class (tests check both), so `any` below is just the shared flag.
  to_class = np.array([classes.index(m) for m in mapped])
  natural = np.array([any(r['natural'] for r, m in zip(rows, mapped) if m == c) for c in classes])
  return ClassTable(tuple(r['name'] for r in rows), classes, to_class, natural,
                    tuple(table['static']))


@functools.lru_cache(maxsize=None)
def ade20k_table() -> tuple[tuple[str, ...], np.ndarray]:
  """(the 150 ADE20K names, [150] int index into Oh's 32 classes) of the shipped ADE20K map."""
  if not os.path.isfile(_ADE20K):
    raise InputError(f'{_ADE20K} not found: run animgen from a source checkout')
  with open(_ADE20K) as f:
    rows = json.load(f)['classes']
  oh = class_table().classes
  return tuple(r['name'] for r in rows), np.array([oh.index(r['mapping']) for r in rows])


def class_lists() -> dict[str, tuple[str, ...]]:
  """The segmenter class lists animgen merges into Oh's 32: name -> class names in order."""
  return {'pascal-context': class_table().pascal, 'ade20k': ade20k_table()[0]}


def _merge(responses, to_class, source: str) -> jax.Array:
  r = jnp.asarray(responses, jnp.float32)
  if r.shape[-1] != len(to_class):
    raise ValueError(f'expected {len(to_class)} {source} channels, got {r.shape}')
  merge = jax.nn.one_hot(to_class, len(class_table().classes), dtype=jnp.float32)
  return jnp.matmul(r, merge, precision=jax.lax.Precision.HIGHEST)


def map_responses(responses_60) -> jax.Array:
  """[..., 60] PASCAL-Context probabilities -> [..., 32]: each merged class sums its members."""
  return _merge(responses_60, class_table().to_class, 'PASCAL-Context')


def to_oh_classes(F, names: Sequence[str]) -> tuple[jax.Array, list[str]]:
  """(F, names) with the 60 PASCAL-Context or the 150 ADE20K classes (in their shipped tables'
  order) merged to Oh's 32; responses over any other class list are returned unchanged."""
  table = class_table()
  if list(names) == list(table.pascal):
    return map_responses(F), list(table.classes)
  ade_names, ade_to_class = ade20k_table()
  if list(names) == list(ade_names):
    return _merge(F, ade_to_class, 'ADE20K'), list(table.classes)
  return jnp.asarray(F, jnp.float32), list(names)


def is_natural(name: str) -> bool:
  """The table's natural flag of a mapped, PASCAL-Context or ADE20K class name; unknown names:
  False."""
  table = class_table()
  if name in table.classes:
    return bool(table.natural[table.classes.index(name)])
  if name in table.pascal:
    return bool(table.natural[table.to_class[table.pascal.index(name)]])
  ade_names, ade_to_class = ade20k_table()
  if name in ade_names:
    return bool(table.natural[ade_to_class[ade_names.index(name)]])
  return False


def natural_union(maps, names: Sequence[str]) -> np.ndarray:
  """[H, W] bool: the union of the candidate maps [K, H, W] whose class is natural."""
  maps = np.asarray(maps, bool)
  natural = np.array([is_natural(n) for n in names], bool).reshape(-1, 1, 1)
  return (maps & natural).any(axis=0)


def _grey(video) -> jax.Array:
  """[T, H, W, 3] -> intensity [T, H, W]."""
  return jnp.asarray(video, jnp.float32) @ jnp.asarray(_LUMA, jnp.float32)


@functools.partial(jax.jit, static_argnames='num_classes')
def _class_stats(labels, grey, num_classes: int):
  """Per class c: (h_g(c) = #(x, t) with argmax c, dynamicity).

  Dynamicity (Oh step 2b, the paper's "std of intensity variation across time"): the temporal
  std of intensity of each pixel over the frames it is labelled c, averaged over the pixels
  weighted by those frame counts (pixels seen once have no std and are left out): our reading.
  """
  hw = grey.shape[1] * grey.shape[2]
  ids = (labels * hw + jnp.arange(hw).reshape(grey.shape[1:])).ravel()
  n = num_classes * hw
  count = jax.ops.segment_sum(jnp.ones_like(ids, jnp.float32), ids, n)
  mean = jax.ops.segment_sum(grey.ravel(), ids, n) / jnp.maximum(count, 1)
  var = jax.ops.segment_sum((grey.ravel() - mean[ids]) ** 2, ids, n) / jnp.maximum(count, 1)
  count, std = count.reshape(num_classes, hw), jnp.sqrt(var).reshape(num_classes, hw)
  seen = jnp.where(count >= 2, count, 0.0)
  return count.sum(1), (seen * std).sum(1) / jnp.maximum(seen.sum(1), 1)


@jax.jit
def _num_components(mask) -> jax.Array:
  """Number of 4-connected components of mask [N, H, W], summed over the N frames.

  Each pixel carries the smallest pixel index reached so far: neighbour minimum, then pointer
  jumping (label <- label of label) until nothing changes; each component ends with the index
  of its first pixel, so the count is the number of pixels labelled with their own index.
  """
  n, h, w = mask.shape
  own = jnp.broadcast_to(jnp.arange(h * w).reshape(h, w), mask.shape)
  none = h * w

  def step(state):
    lab, _ = state
    p = jnp.pad(lab, ((0, 0), (1, 1), (1, 1)), constant_values=none)
    low = jnp.minimum(jnp.minimum(p[:, :-2, 1:-1], p[:, 2:, 1:-1]),
                      jnp.minimum(p[:, 1:-1, :-2], p[:, 1:-1, 2:]))
    new = jnp.where(mask, jnp.minimum(lab, low), none).reshape(n, h * w)
    table = jnp.concatenate([new, jnp.full((n, 1), none)], axis=1)
    new = jnp.take_along_axis(table, new, axis=1).reshape(n, h, w)
    return new, jnp.any(new != lab)

  lab, _ = jax.lax.while_loop(lambda s: s[1], step, (jnp.where(mask, own, none), True))
  return jnp.sum(mask & (lab == own))


def blob_threshold(h: int, w: int, side: int = 20) -> float:
  """Oh's blob-size threshold side x side pixels (step 2c) at 960x540, scaled to an H x W frame
  by area (the paper states it for its frame size only; the scaling is our choice)."""
  return side * side * h * w / _PAPER_SIZE


def select_candidates(F, video, class_names: Sequence[str], K: int = 4,
                      static: Sequence[str] | None = None, min_blob: int = 20,
                      min_std: float = 0.05) -> list[int]:
  """Top-K candidate classes of responses F [T, H, W, C] (Oh Sec. 3.1 steps 1-3).

  1. global histogram h_g of the per-(x, t) argmax class; 2. discard (a) classes named in
  `static` (default: the shipped table's static list), (b) classes whose dynamicity (see
  `_class_stats`) is <= min_std, (c) classes whose mean 4-connected blob area over all frames
  is <= `blob_threshold(H, W, min_blob)`; 3. the K classes with the largest h_g, largest first.
  Classes that are never the argmax are not candidates. Returns channel indices into F.
  """
  F = jnp.asarray(F, jnp.float32)
  num_classes = F.shape[-1]
  if len(class_names) != num_classes:
    raise ValueError(f'{len(class_names)} class names for {num_classes} channels')
  static = set(class_table().static if static is None else static)
  labels = jnp.argmax(F, axis=-1)
  hist, dyn = map(np.asarray, _class_stats(labels, _grey(video), num_classes))
  min_area = blob_threshold(F.shape[1], F.shape[2], min_blob)
  chosen = []
  for c in np.argsort(-hist, kind='stable'):  # ties: lower channel index first
    if len(chosen) == K or hist[c] == 0:
      break
    if class_names[c] in static or dyn[c] <= min_std:
      continue
    if hist[c] / max(int(_num_components(labels == c)), 1) <= min_area:
      continue
    chosen.append(int(c))
  return chosen


def topk_responses(F, idx: Sequence[int]) -> jax.Array:
  """F[..., idx] renormalised to sum to one per pixel (Oh footnote 5); all-zero -> uniform."""
  sub = jnp.asarray(F, jnp.float32)[..., jnp.asarray(idx, jnp.int32)]
  total = sub.sum(-1, keepdims=True)
  return jnp.where(total > 0, sub / jnp.where(total > 0, total, 1), 1.0 / sub.shape[-1])


def candidate_maps(F, idx: Sequence[int], thr: float = 0.15) -> jax.Array:
  """pi [K, H, W] bool (Oh Sec. 3.1): class idx[k] is the per-pixel argmax of F [T, H, W, C] in
  >= thr * T frames. Ours: the argmax runs over all C classes, not only the K kept ones (over the
  K, every pixel would fall in some candidate, and a clip with one candidate would be all of it)."""
  F = jnp.asarray(F)
  labels = jnp.argmax(F, axis=-1)
  counts = jnp.stack([jnp.sum(labels == c, axis=0) for c in idx])
  return counts >= thr * F.shape[0]


# ------------------------------------------------------------------- user-supplied responses


_HOW = ('save it with numpy.savez(path, responses=probs) or labels=ids, plus classes=names as '
        'a str array')


def _read_npz(path: str) -> dict:
  """The arrays of an .npz archive (never unpickled); InputError with a one-line message."""
  if not os.path.isfile(path):
    raise InputError(f'no such file: {path}; check the path to the segmentation responses')
  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise InputError(f'cannot read {path} as an .npz archive ({_one_line(e)}); {_HOW}') from e
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise InputError(f'{path} holds a single array, not an .npz archive; {_HOW}')
  with archive:
    try:
      return {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # e.g. object arrays
      raise InputError(f'cannot read {path} ({_one_line(e)}); {_HOW}') from e


def load_responses(path, T: int, H: int, W: int) -> tuple[np.ndarray, list[str]]:
  """Reads a segmenter's output for a video of T frames of H x W from an .npz archive.

  Keys: exactly one of 'responses' (float [T, H, W, C] probabilities, renormalised per pixel)
  and 'labels' (int [T, H, W] class ids, turned into one-hot responses), and optionally
  'classes' (str [C], the channel names). Without 'classes' the channels are the 60
  PASCAL-Context classes in the shipped table's order. Returns (F float32 [T, H, W, C], names).
  Every problem raises InputError with a one-line message.
  """
  path = os.fspath(path)
  arrays = _read_npz(path)
  given = sorted({'responses', 'labels'} & set(arrays))
  if len(given) != 1:
    found = ', '.join(sorted(arrays)) or 'nothing'
    raise InputError(f'{path} must hold exactly one of the keys responses or labels (found '
                     f'{found}); {_HOW}')
  key, data = given[0], arrays[given[0]]
  names = _class_names(path, arrays)
  want = (T, H, W)
  if key == 'responses':
    if data.ndim != 4 or data.shape[:3] != want or not np.issubdtype(data.dtype, np.floating):
      raise InputError(f'{path}: responses is {data.dtype} {data.shape}, expected float '
                       f'[T, H, W, C] with T, H, W = {want} (the video\'s frames); re-run the '
                       'segmenter on the same frames')
    if not np.all(np.isfinite(data)) or data.min() < 0 or data.max() > 1 + 1e-3:
      raise InputError(f'{path}: responses must be probabilities in [0, 1] (found values in '
                       f'[{np.nanmin(data):.3g}, {np.nanmax(data):.3g}] or NaN); apply a softmax '
                       'to the scores first')
    num = data.shape[-1]
  else:
    if data.shape != want or not np.issubdtype(data.dtype, np.integer):
      raise InputError(f'{path}: labels is {data.dtype} {data.shape}, expected int [T, H, W] = '
                       f'{want} (the video\'s frames); re-run the segmenter on the same frames')
    num = len(names) if names is not None else len(class_table().pascal)
    if data.size and (data.min() < 0 or data.max() >= num):
      raise InputError(f'{path}: labels must be class ids in [0, {num}) but range over '
                       f'[{data.min()}, {data.max()}]; pass classes=names for all of them')
  if names is None:
    names = list(class_table().pascal)
  if len(names) != num:
    raise InputError(f'{path}: {len(names)} class names for {num} classes; give one name per '
                     'channel in classes (or 60 PASCAL-Context channels without classes)')
  if key == 'labels':
    return np.eye(num, dtype=np.float32)[data], names
  data = data.astype(np.float32)
  total = data.sum(-1, keepdims=True)
  return np.where(total > 0, data / np.where(total > 0, total, 1), 1.0 / num), names


def _one_line(e: Exception) -> str:
  return ' '.join(str(e).split()) or type(e).__name__


def _class_names(path: str, arrays: dict) -> list[str] | None:
  """The optional 'classes' entry as a list of str, checked."""
  if 'classes' not in arrays:
    return None
  names = arrays['classes']
  if names.ndim != 1 or names.dtype.kind not in 'US':
    raise InputError(f'{path}: classes must be a 1-D str array (got {names.dtype} '
                     f'{names.shape}); save it as numpy.array(list_of_names)')
  return [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]


# ------------------------------------------------------------------ unsupervised fallback


def _scale(h: int, w: int) -> int:
  """Smoothing / morphology radius in pixels, round(min(H, W) / 135): 1 below 203 px, 4 at 540
  (our choice)."""
  return max(1, round(min(h, w) / 135))


def _blur(x, sigma: float) -> jax.Array:
  """Separable Gaussian blur of [H, W] with reflected borders."""
  r = int(np.ceil(3 * sigma))
  k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
  k = jnp.asarray(k / k.sum(), jnp.float32)
  for axis in (0, 1):
    pad = [(r, r) if a == axis else (0, 0) for a in (0, 1)]
    xp = jnp.pad(x, pad, mode='reflect')
    n = x.shape[axis]
    x = sum(k[i] * jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i in range(2 * r + 1))
  return x


def _morph(mask, r: int, grow: bool) -> jax.Array:
  """Dilation (grow) or erosion of a bool [H, W] mask by a (2r+1)^2 square; erosion treats the
  outside of the frame as set."""
  x = mask.astype(jnp.float32)
  init, op = (-jnp.inf, jax.lax.max) if grow else (jnp.inf, jax.lax.min)
  return jax.lax.reduce_window(x, init, op, (2 * r + 1, 2 * r + 1), (1, 1), 'SAME') > 0.5


def _otsu(values: np.ndarray, bins: int = 256) -> float:
  """Otsu's threshold: the histogram cut maximising the between-class variance."""
  hist, edges = np.histogram(values, bins=bins)
  centres = 0.5 * (edges[1:] + edges[:-1])
  w0 = np.cumsum(hist)[:-1].astype(np.float64)
  w1 = hist.sum() - w0
  m = np.cumsum(hist * centres)[:-1]
  mu0 = m / np.maximum(w0, 1)
  mu1 = (np.dot(hist, centres) - m) / np.maximum(w1, 1)
  return float(edges[1 + np.argmax(w0 * w1 * (mu0 - mu1) ** 2)])


def motion_score(video) -> jax.Array:
  """[H, W] dynamicity: sqrt(pi / 2) x the MEAN absolute deviation over t of the intensity
  differences d(t) = V(t+1) - V(t) from their temporal median (a std under Gaussian noise),
  blurred with a Gaussian of sigma `_scale` pixels. Subtracting the median ignores slow lighting
  drift; the mean (not a median, as in the MAD) counts a pixel that an object sweeps over in a
  few frames only, where most d(t) are zero."""
  grey = _grey(video)
  h, w = grey.shape[1:]
  d = jnp.diff(grey, axis=0)
  dev = jnp.mean(jnp.abs(d - costs.median0(d)), axis=0)
  return _blur(float(np.sqrt(np.pi / 2)) * dev, float(_scale(h, w)))


def motion_candidates(video, K: int = 4) -> tuple[jax.Array, jax.Array]:
  """Candidate regions from motion alone, for videos without segmenter output.

  1. dynamic pixels: `motion_score` above both Otsu's threshold and `_MOTION_FLOOR`;
  2. KMeans (scikit-learn) of the dynamic pixels on (mean RGB over time, _POS_WEIGHT * (y, x) /
     max(H, W)) with k = 1..K; the k > 1 with the best silhouette wins if it beats
     _SILHOUETTE_MIN, else one region;
  3. each region is opened then closed with a (2r+1)^2 square (r = `_scale`), regions smaller
     than `blob_threshold` (Oh's 20 x 20 at 960x540) are dropped, and the rest are sorted by
     area, largest first (a pixel claimed by two regions stays with the larger).

  Returns (maps [K', H, W] bool, F [T, H, W, K'+1] float32) with F one-hot: channel k on region
  k and the last channel (background) elsewhere, so F can stand in for segmenter responses.
  `animgen loop` passes F to the energy as the semantics (Phi_F, Psi_F and the semantic gamma_s
  then act on the regions) and counts the regions as natural (`command.FALLBACK_NATURAL`).
  """
  from sklearn.cluster import KMeans
  from sklearn.metrics import silhouette_score
  video = jnp.asarray(video, jnp.float32)
  t, h, w = video.shape[:3]
  if t < 3:
    raise ValueError(f'motion_candidates needs at least 3 frames, got {t}')
  score = np.asarray(motion_score(video))
  dynamic = score > max(_otsu(score), _MOTION_FLOOR)
  yx = np.stack(np.nonzero(dynamic), axis=1)
  maps = []
  if len(yx) > K:
    mean_rgb = np.asarray(video.mean(axis=0))[dynamic]
    feats = np.concatenate([mean_rgb, _POS_WEIGHT * yx / max(h, w)], axis=1)
    assign, best = np.zeros(len(yx), int), _SILHOUETTE_MIN
    for k in range(2, K + 1):
      lab = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(feats)
      sil = silhouette_score(feats, lab, sample_size=min(len(yx), 2000), random_state=0)
      if sil > best:
        assign, best = lab, sil
    r = _scale(h, w)
    for c in range(assign.max() + 1):
      region = np.zeros((h, w), bool)
      region[tuple(yx[assign == c].T)] = True
      region = _morph(_morph(jnp.asarray(region), r, False), r, True)  # open
      region = np.asarray(_morph(_morph(region, r, True), r, False))  # close
      if region.sum() >= blob_threshold(h, w):
        maps.append(region)
  maps.sort(key=lambda m: -m.sum())
  region_of = np.full((h, w), len(maps))
  for k in reversed(range(len(maps))):  # larger regions last, so they win overlaps
    region_of[maps[k]] = k
  maps = np.array([region_of == k for k in range(len(maps))], bool).reshape(-1, h, w)
  F = jax.nn.one_hot(jnp.asarray(region_of), len(maps) + 1, dtype=jnp.float32)
  return jnp.asarray(maps), jnp.broadcast_to(F, (t,) + F.shape)
