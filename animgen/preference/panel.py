"""A simulated user panel for the preference model (Oh et al. 2017 Sec. 4; the user study is not
public): candidate cinemagraphs made by the looper from procedurally varied clips and the shipped
real clips, and users in a few latent taste groups whose 1-5 ratings depend on the cinemagraphs'
context features through group weights, a personal bias and noise.

A panel is a folder: `ratings.csv` (cinemagraph,user,rating; the observed entries only),
`cinemagraphs.npz` (ids, clip, name and one [m, d] array per context-feature part) and, for a
simulated panel, `truth.npz` (the generator's hidden groups, weights, biases, scores and full
ratings). A real study gives the same two files: its ratings as the CSV, and the context features
of its cinemagraphs as the npz (`animgen prefs features FOLDER` makes it from the cinemagraph
files).
"""
import csv
import dataclasses
import os

import numpy as np

from animgen.errors import InputError

# Supp. Sec. 1: 72.66 % of the cinemagraphs have a rating std > 1 across users, ~0 % below 0.5
PAPER_SHARE_STD_ABOVE_1 = 0.7266
KINDS = ('water', 'sky & tree', 'light', 'person', 'car', 'curtain', 'grass', 'animal')
REAL_CLIPS = ('clips/tree.mp4', 'clips/newtonscradle.gif')
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class Panel:
  ratings: np.ndarray              # [m, n] float, NaN where not rated
  parts: dict                      # context-feature part -> [m, d] float32
  ids: np.ndarray                  # [m] cinemagraph ids (str)
  users: np.ndarray                # [n] user ids (str)
  clips: np.ndarray                # [m] int: the clip each cinemagraph was made from
  names: np.ndarray                # [m] the candidate's name (its object class)

  @property
  def observed(self) -> np.ndarray:
    return ~np.isnan(self.ratings)


# ---------------------------------------------------------------------------------- clips


def _background(rng, size, frames):
  """A random crop of the shipped photo under slowly drifting light, with sensor noise (a still
  background must not loop for free, as Liao's energy would otherwise let it)."""
  from animgen import media
  from PIL import Image
  photo = media.read_image(os.path.join(_ROOT, 'data', 'photos', 'china.jpg'))
  h, w = photo.shape[:2]
  side = int(rng.integers(size * 2, min(h, w)))
  y, x = rng.integers(0, h - side), rng.integers(0, w - side)
  crop = Image.fromarray((photo[y:y + side, x:x + side] * 255).astype(np.uint8))
  still = np.asarray(crop.resize((size, size), Image.BILINEAR), np.float32) / 255.0
  drift = 1.0 + rng.uniform(-0.15, 0.15) * np.linspace(0, 1, frames)[:, None, None, None]
  return still[None] * drift + rng.normal(0, 0.01, (frames, size, size, 3))


def _face(side):
  """The astronaut's face (scikit-image's public-domain sample), side x side."""
  import skimage.data
  from PIL import Image
  face = skimage.data.astronaut()[40:190, 150:300]
  return np.asarray(Image.fromarray(face).resize((side, side), Image.LANCZOS), np.float32) / 255


def _object(rng, kind, side, frames):
  """An object's frames [T, side, side, 3] and its mask [side, side]: one periodic motion per
  kind, with a random period, amplitude and phase jitter (jitter makes it loop worse)."""
  t = np.arange(frames)[:, None, None]
  period = rng.choice([8, 12, 16, 20])
  phase = 2 * np.pi * t / period + rng.uniform(0, 0.6) * np.cumsum(
      rng.normal(0, 0.3, frames))[:, None, None]
  yy, xx = np.mgrid[0:side, 0:side] / side
  disc = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.25
  amp = rng.uniform(0.2, 0.45)
  colour = rng.uniform(0.1, 0.9, 3)
  if kind == 'water':
    g = 0.5 + amp * np.sin(phase + 12 * xx + 6 * yy)
    rgb = np.stack([0.2 * g, 0.4 * g + 0.1, 0.5 + 0.4 * g], -1)
    return rgb, np.ones((side, side), bool)
  if kind in ('sky & tree', 'grass', 'curtain'):
    freq = {'sky & tree': 5, 'grass': 14, 'curtain': 8}[kind]
    sway = amp * 0.6 * np.sin(phase)
    g = 0.5 + 0.4 * np.sin(2 * np.pi * freq * (xx + sway * (1 - yy)))
    return g[..., None] * colour + (1 - g[..., None]) * 0.2, np.ones((side, side), bool)
  if kind == 'light':
    g = 0.5 + amp * np.sign(np.sin(phase)) * np.ones_like(xx)
    return np.where(disc[..., None], g[..., None] * colour / colour.max(), 0.1), disc
  if kind == 'person':
    face = _face(side)
    shift = np.round(2 * np.sin(phase[:, 0, 0])).astype(int)
    return np.stack([np.roll(face, s, axis=0) for s in shift]), np.ones((side, side), bool)
  # car / animal: a disc moving back and forth (car) or in a circle (animal)
  cy = 0.5 + (0 if kind == 'car' else 0.2 * np.cos(phase))
  cx = 0.5 + 0.25 * np.sin(phase)
  blob = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.06
  rgb = np.where(blob[..., None], colour, 1 - colour)
  return rgb, np.ones((side, side), bool)


def _place(rng, size, sides, taken):
  """Top-left corners for boxes of the given sides that overlap no box in `taken`."""
  for _ in range(200):
    y, x = (int(v) for v in rng.integers(0, size - sides + 1, 2))
    box = np.zeros((size, size), bool)
    box[y:y + sides, x:x + sides] = True
    if not (box & taken).any():
      return y, x, box
  return None


def synthetic_clip(rng, size, frames, num_objects):
  """-> (video [T, S, S, 3] float32 in [0, 1], responses [S, S, C] one-hot Oh classes): a photo
  background and `num_objects` moving objects, each of one class of KINDS."""
  from animgen.looper import semantics
  classes = semantics.class_table().classes
  video = _background(rng, size, frames)
  labels = np.zeros((size, size), int)                # background
  taken = np.zeros((size, size), bool)
  for _ in range(num_objects):
    kind = KINDS[rng.integers(len(KINDS))]
    side = int(size * 5 // 8) if kind == 'person' else int(rng.integers(size // 4, size // 2))
    spot = _place(rng, size, side, taken)
    if spot is None:
      continue
    y, x, box = spot
    rgb, mask = _object(rng, kind, side, frames)
    win = video[:, y:y + side, x:x + side]
    video[:, y:y + side, x:x + side] = np.where(mask[..., None], rgb, win)
    labels[y:y + side, x:x + side][mask] = classes.index(kind)
    taken |= box
  video = np.clip(video, 0, 1).astype(np.float32)
  return video, np.eye(len(classes), dtype=np.float32)[labels]


def real_clip(rng, path, size, frames):
  """A random square crop of a shipped real clip, resized, from a random start, maybe flipped;
  responses: all background (no segmenter offline; candidates come from motion)."""
  from animgen import media
  from animgen.ops import warp
  import jax.numpy as jnp
  from animgen.preference import features
  video, _ = media.read_video(os.path.join(_ROOT, 'data', path))
  t, h, w, _ = video.shape
  side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
  y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
  t0 = int(rng.integers(0, t - frames + 1))
  clip = video[t0:t0 + frames, y:y + side, x:x + side]
  if rng.random() < 0.5:
    clip = clip[:, :, ::-1]
  clip = np.clip(np.asarray(warp.resize(jnp.asarray(clip), size, size)), 0, 1)
  return clip.astype(np.float32), features.background_responses(size, size)


# ---------------------------------------------------------------------------- cinemagraphs


def clip_loops(video, responses, config, top_k=2):
  """The candidate cinemagraphs of one clip as `animgen loop --candidates` makes them: the top-k
  semantic candidates of the responses (motion regions when all is background) and, with two or
  more, all of them together (Oh Sec. 3.3). -> list of stages.Loop (names: the classes)."""
  from animgen.looper import semantics, stages
  t = len(video)
  classes = list(semantics.class_table().classes)
  F = np.broadcast_to(responses, (t,) + responses.shape)
  idx = semantics.select_candidates(F, video, classes, K=top_k, min_blob=4)
  if idx:
    maps, names = np.asarray(semantics.candidate_maps(F, idx)), [classes[i] for i in idx]
    F = semantics.topk_responses(F, idx)
    natural = semantics.natural_union(maps, names)
  else:
    maps, _ = semantics.motion_candidates(video, K=top_k)
    maps, F = np.asarray(maps, bool), None
    names, natural = [f'region {i + 1}' for i in range(len(maps))], np.zeros(video.shape[1:3], bool)
  if not len(maps):
    return []
  if len(maps) > 1:
    maps, names = np.concatenate([maps, maps.any(0, keepdims=True)]), names + ['all']
  return stages.solve(video, config, semantics=F, natural=natural, targets=maps, names=names)


def cinemagraph_rows(rng, num_clips, size=64, frames=40, min_period=16, real_share=0.2,
                     faces=True, progress=None):
  """-> (list of feature-part dicts, clip index per cinemagraph, names): every candidate of
  `num_clips` clips, a `real_share` of them crops of the shipped real clips."""
  from animgen.looper import render, stages
  from animgen.preference import features
  config = stages.LoopConfig(min_period=min_period)
  rows, clip_of, names = [], [], []
  for c in range(num_clips):
    for _ in range(20):               # a clip in which the looper finds nothing is drawn again
      if rng.random() < real_share:
        video, responses = real_clip(rng, REAL_CLIPS[rng.integers(len(REAL_CLIPS))], size,
                                     frames)
      else:
        video, responses = synthetic_clip(rng, size, frames, int(rng.choice([1, 2, 3],
                                                                            p=[.4, .4, .2])))
      loops = clip_loops(video, responses, config)
      if loops:
        break
    else:
      raise InputError(f'no candidate cinemagraph in 20 clips of {size}x{size}x{frames}: use '
                       'larger or longer clips')
    for loop in loops:
      out = render.render(video, loop.periods, loop.starts, int(loop.periods.max()))
      rows.append(features.cinemagraph_parts(video, loop.periods, loop.starts, np.asarray(out),
                                             responses, faces=faces))
      clip_of.append(c)
      names.append(loop.name)
    if progress:
      progress(c + 1, len(rows))
  return rows, np.asarray(clip_of), np.asarray(names)


# --------------------------------------------------------------------------------- ratings


def rating_stats(ratings) -> dict:
  """Supp. Sec. 1's statistics of a ratings matrix [m, n] (NaN = missing): the share of
  cinemagraphs whose rating std across users is > 1 and < 0.5, and the observed share."""
  std = np.nanstd(ratings, axis=1)
  return {'share_std_above_1': float(np.mean(std > 1)), 'share_std_below_0.5': float(
      np.mean(std < 0.5)), 'observed': float(np.mean(~np.isnan(ratings)))}


def _gaussianise(V):
  """Each feature column through its empirical CDF to a standard normal (ties share a rank,
  constant columns become 0). Ours: with plainly standardised, heavy-tailed features, a taste
  that weighs such a column gives a few cinemagraphs extreme scores that every user rates 1 (or
  5), and no taste strength reaches the paper's rating spread."""
  from scipy import special, stats
  Z = special.ndtri((stats.rankdata(V, axis=0) - 0.5) / len(V))
  return np.where(np.ptp(V, axis=0) > 0, Z, 0.0)


def taste_truth(V, rng, num_users=59, groups=4, active=8):
  """The hidden truth: each group's weights on `active` random context-feature columns (plus
  a weight shared by all users, the common sense G-RF can learn), user groups and biases, and
  the noiseless taste scores [m, n] of the features, Gaussianised per column."""
  Z = _gaussianise(np.asarray(V, np.float64))
  d = Z.shape[1]
  weights = np.zeros((groups, d))
  for g in range(groups):
    cols = rng.choice(d, size=min(active, d), replace=False)
    weights[g, cols] = rng.normal(0, 1, len(cols))
  common = np.zeros(d)
  common[rng.choice(d, size=min(active, d), replace=False)] = rng.normal(0, 0.5, min(active, d))
  group = rng.integers(0, groups, num_users)
  bias = rng.normal(0, 0.4, num_users)
  scores = Z @ (weights[group] + common).T / np.sqrt(active)
  return {'group': group, 'weights': weights, 'common': common, 'bias': bias,
          'scores': scores / scores.std()}


def ratings_from(truth, rng, strength, noise=0.8):
  """1-5 star ratings [m, n]: round(3 + strength * score + bias + noise), clipped."""
  s = truth['scores']
  y = 3 + strength * s + truth['bias'][None] + rng.normal(0, noise, s.shape)
  return np.clip(np.round(y), 1, 5)


def calibrate(truth, rng_seed, target=PAPER_SHARE_STD_ABOVE_1, noise=0.8):
  """The taste strength whose full ratings come nearest supp. Sec. 1's spread: the paper's share
  of cinemagraphs with std > 1 across users and ~none below 0.5 (minimises |share above 1 -
  target| + share below 0.5 over strengths 0.05 ... 6). Ours: a grid, not a bisection; the
  share above 1 levels off where ratings saturate at 1 and 5 while the share below 0.5 keeps
  growing, so for some tastes no strength reaches the target."""
  def miss(strength):
    stats = rating_stats(ratings_from(truth, np.random.default_rng(rng_seed), strength, noise))
    return abs(stats['share_std_above_1'] - target) + stats['share_std_below_0.5']
  grid = np.arange(1, 121) * 0.05
  return float(grid[np.argmin([miss(g) for g in grid])])


def observe(ratings, rng, share=0.63):
  """Keeps each entry with probability `share` (supp.: ~63 % of the matrix rated), at least two
  per cinemagraph and per user; NaN elsewhere."""
  keep = rng.random(ratings.shape) < share
  for axis in (0, 1):
    for i in range(ratings.shape[1 - axis]):
      line = keep[:, i] if axis == 0 else keep[i]
      while line.sum() < 2:
        line[rng.integers(len(line))] = True
  return np.where(keep, ratings, np.nan)


# ------------------------------------------------------------------------------ the panel


def make_panel(seed=0, num_clips=244, num_users=59, groups=4, size=64, frames=40,
               observed=0.63, faces=True, progress=None):
  """-> (Panel, truth dict): the simulated panel (defaults: the paper's 244 clips and 59 users,
  ~459 candidates depending on what the looper finds), seeded end to end."""
  from animgen.preference import features
  rng = np.random.default_rng(seed)
  rows, clip_of, names = cinemagraph_rows(rng, num_clips, size, frames, faces=faces,
                                          progress=progress)
  if len(rows) < 4:
    raise InputError(f'{len(rows)} cinemagraph(s) from {num_clips} clips: use more clips')
  V, _ = features.normalise_parts(rows)
  truth = taste_truth(V, rng, num_users, groups)
  truth['strength'] = np.float64(calibrate(truth, seed))
  full = ratings_from(truth, rng, float(truth['strength']))
  truth['full_ratings'] = full
  parts = {p: np.stack([r[p] for r in rows]).astype(np.float32) for p in features.PARTS}
  m = len(rows)
  panel = Panel(observe(full, rng, observed), parts, np.asarray([f'c{i:04d}' for i in range(m)]),
                np.asarray([f'u{j:03d}' for j in range(num_users)]), clip_of, names)
  return panel, truth


def write_panel(path, panel, truth=None):
  """The panel folder (ratings.csv, cinemagraphs.npz, truth.npz), written atomically."""
  from animgen import media
  rows = [(panel.ids[i], panel.users[j], int(panel.ratings[i, j]))
          for i, j in zip(*np.nonzero(panel.observed))]
  lines = ['cinemagraph,user,rating'] + [f'{c},{u},{r}' for c, u, r in rows]
  media.write_text(os.path.join(path, 'ratings.csv'), '\n'.join(lines) + '\n')
  media.write_npz(os.path.join(path, 'cinemagraphs.npz'), ids=panel.ids, clip=panel.clips,
                  name=panel.names, **{f'part_{k}': v for k, v in panel.parts.items()})
  if truth is not None:
    media.write_npz(os.path.join(path, 'truth.npz'), users=panel.users, **truth)


def read_npz(path, what):
  if not os.path.isfile(path):
    raise InputError(f'{path}: not found; a panel folder holds ratings.csv and cinemagraphs.npz '
                     '(animgen prefs panel DIR makes a simulated one)')
  try:
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  except Exception as e:  # noqa: BLE001 - any unreadable npz is the same user error
    raise InputError(f'{path}: not a readable {what} npz without pickles '
                     f'({type(e).__name__}: {str(e).splitlines()[0][:120]})') from None


def read_ratings_csv(path, user_column=True):
  """-> list of (cinemagraph id, user id, rating): a CSV with a header naming the columns
  cinemagraph, user and rating (ratings 1-5; without `user_column`, one user's ratings and the
  user id ''); one-line errors naming the row."""
  columns = ('cinemagraph', 'user', 'rating') if user_column else ('cinemagraph', 'rating')
  if not os.path.isfile(path):
    raise InputError(f'{path}: not found; give a CSV with columns {",".join(columns)}')
  out, seen = [], set()
  with open(path, newline='', encoding='utf-8', errors='replace') as f:
    reader = csv.DictReader(f)
    if not reader.fieldnames or not set(columns) <= set(reader.fieldnames):
      raise InputError(f'{path}: the header must name the columns {",".join(columns)} '
                       f'(found {",".join(reader.fieldnames or [])[:80] or "nothing"})')
    for k, row in enumerate(reader, start=2):
      try:
        r = float(row['rating'])
      except (TypeError, ValueError):
        r = np.nan
      if not 1 <= r <= 5:
        raise InputError(f'{path} line {k}: rating {str(row["rating"])[:20]!r}; use a number '
                         'from 1 to 5')
      key = (row['cinemagraph'], row['user'] if user_column else '')
      if key in seen:
        raise InputError(f'{path} line {k}: a second rating of {key[0]}' +
                         (f' by {key[1]}' if user_column else ''))
      seen.add(key)
      out.append((row['cinemagraph'], key[1], r))
  if not out:
    raise InputError(f'{path}: no ratings')
  return out


def load_panel(path) -> Panel:
  """A panel folder (simulated, or a real study's ratings.csv and cinemagraphs.npz)."""
  if not os.path.isdir(path):
    raise InputError(f'{path}: not a folder; a panel folder holds ratings.csv and '
                     'cinemagraphs.npz (animgen prefs panel DIR makes a simulated one)')
  arrays = read_npz(os.path.join(path, 'cinemagraphs.npz'), 'cinemagraphs')
  from animgen.preference import features
  missing = [k for k in ['ids'] + [f'part_{p}' for p in features.PARTS] if k not in arrays]
  if missing:
    raise InputError(f'{path}/cinemagraphs.npz: no {", ".join(missing)} array(s)')
  ids = arrays['ids'].astype(str)
  parts = {p: np.asarray(arrays[f'part_{p}'], np.float32) for p in features.PARTS}
  for p, v in parts.items():
    if v.ndim != 2 or len(v) != len(ids) or not np.isfinite(v).all():
      raise InputError(f'{path}/cinemagraphs.npz: part_{p} must be finite [{len(ids)}, d], '
                       f'got shape {v.shape}')
  rows = read_ratings_csv(os.path.join(path, 'ratings.csv'))
  index = {c: i for i, c in enumerate(ids)}
  unknown = sorted({c for c, _, _ in rows if c not in index})
  if unknown:
    raise InputError(f'{path}/ratings.csv: cinemagraph {unknown[0]} is not in cinemagraphs.npz '
                     f'({len(unknown)} unknown id(s))')
  from animgen import media
  users = np.asarray(sorted({u for _, u, _ in rows}, key=media.natural_key))  # u2 before u10
  col = {u: j for j, u in enumerate(users)}
  Y = np.full((len(ids), len(users)), np.nan)
  for c, u, r in rows:
    Y[index[c], col[u]] = r
  m = len(ids)
  clips = arrays.get('clip', np.arange(m)).astype(int)
  names = arrays.get('name', np.asarray([''] * m)).astype(str)
  return Panel(Y, parts, ids, users, clips, names)


def load_truth(path) -> dict:
  return read_npz(os.path.join(path, 'truth.npz'), 'truth')
