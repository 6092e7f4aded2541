"""Image2GIF synthetic cinemagraphs (Zhou et al. 2018, Sec. 4.1, Fig. 4).

A still textured background with one moving foreground object: one of 10 clustered texture
images, multiplied by random per-channel offsets in [0.9, 1.1], and a randomly sized rectangle of
a random colour that moves in one of 6 patterns: 'I' (straight down and back up), 'O' (a circle,
counter-clockwise), 'L' (down the stem, then right along the foot), 'eight' (a figure of eight),
'rotate' (a counter-clockwise half turn about its fixed centre) and 'scale' (stretched
horizontally and back, then vertically and back, about its fixed centre). 64x64x3 uint8.

Lengths: the paper gives the per-pattern maxima I 27, O 21, L 26, eight 21, rotate 21, scale 17
(Sec. 5.2) and pads shorter sequences with black frames. It does not say why lengths vary; here
the length falls linearly with the object's size (larger objects have less room to travel), from
the maximum down to 3/4 of it, so the length is visible in the input frame. Every record holds
`frames` [T, 64, 64, 3] (T = the config's maximum, black after `length`), `masks` [T, 64, 64] (the
object's pixels, for the centre-distance metric of Table 4; empty on padding), `length` and
`pattern` (index into PATTERNS).

Texture images: the paper's 10 "clustered texture images" are not published; ours are smooth
coloured noise whose pixel colours are k-means clustered (k = 4..7), i.e. piecewise-constant
colour regions with textured boundaries, generated from a fixed seed.

Sizes: the paper uses 95K training / 5K test sequences per pattern (Sec. 5.2): configs
`paper_<pattern>` (about 15 min and 0.9 GB each to generate here). The configs `<pattern>` and
`all` hold 2,000 / 100 per pattern (about 10 s per pattern); `small_all` (500 / 20 per pattern) is
the CPU training set; `tiny_all` (2 / 1 per pattern) and `tiny_<pattern>` (4 / 2) are for tests.
A single-pattern config stores its sequences at that pattern's own maximum length (O: 21
frames), `all`-type configs at 27 (the longest, I). Other sizes: `Image2gifPatternsConfig(...)`.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from animgen.datasets import common

PATTERNS = ('I', 'O', 'L', 'eight', 'rotate', 'scale')
MAX_LENGTHS = {'I': 27, 'O': 21, 'L': 26, 'eight': 21, 'rotate': 21, 'scale': 17}  # Sec. 5.2
SIZE = 64
NUM_TEXTURES = 10
_SIDE = (8, 18)       # rectangle side range in px (ours; "randomly sized", Sec. 4.1)
_MARGIN = 2           # px kept between the object and the image border


@dataclasses.dataclass
class Image2gifPatternsConfig(tfds.core.BuilderConfig):
  patterns: tuple = PATTERNS
  train_per_pattern: int = 2000
  test_per_pattern: int = 100
  seed: int = 0


def _configs():
  out = []
  for p in PATTERNS:
    out.append(Image2gifPatternsConfig(name=p, patterns=(p,),
                                       description=f'"{p}" pattern, 2,000 / 100 sequences.'))
  out.append(Image2gifPatternsConfig(name='all', description='all 6 patterns, 2,000 / 100 each.'))
  for p in PATTERNS:  # the paper's size (Sec. 5.2): one model per pattern
    out.append(Image2gifPatternsConfig(name=f'paper_{p}', patterns=(p,), train_per_pattern=95_000,
                                       test_per_pattern=5_000,
                                       description=f'"{p}" pattern, 95,000 / 5,000 (Sec. 5.2).'))
  out.append(Image2gifPatternsConfig(name='small_all', train_per_pattern=500,
                                     test_per_pattern=20,
                                     description='all 6 patterns, 500 / 20 each (CPU runs).'))
  out.append(Image2gifPatternsConfig(name='tiny_all', train_per_pattern=2, test_per_pattern=1,
                                     description='all 6 patterns, 2 / 1 each (tests).'))
  for p in PATTERNS:  # configs/image2gif.py:smoke,pattern=<p>
    out.append(Image2gifPatternsConfig(name=f'tiny_{p}', patterns=(p,), train_per_pattern=4,
                                       test_per_pattern=2, description=f'"{p}", 4 / 2 (tests).'))
  return out


def max_length(patterns) -> int:
  return max(MAX_LENGTHS[p] for p in patterns)


class Image2gifPatterns(tfds.core.GeneratorBasedBuilder):
  """Synthetic cinemagraphs of Image2GIF Sec. 4.1 with per-frame object masks."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = _configs()
  DEFAULT_CONFIG_NAME = 'all'

  def _info(self) -> tfds.core.DatasetInfo:
    t = max_length(self.builder_config.patterns)
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            'frames': tfds.features.Tensor(shape=(t, SIZE, SIZE, 3), dtype=np.uint8,
                                           encoding='zlib'),
            'masks': tfds.features.Tensor(shape=(t, SIZE, SIZE), dtype=np.uint8,
                                          encoding='zlib'),
            'length': tfds.features.Tensor(shape=(), dtype=np.int64),
            'pattern': tfds.features.Tensor(shape=(), dtype=np.int64),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    c = self.builder_config
    k = len(c.patterns)
    return common.generated_splits(
        self, {'train': c.train_per_pattern * k, 'test': c.test_per_pattern * k},
        unit='sequences', times=k)

  def _generate_examples(self, split: str, count: int):
    """`count` sequences: count / len(patterns) of each pattern, pattern after pattern."""
    c = self.builder_config
    t_max = max_length(c.patterns)
    textures = make_textures(c.seed)
    for p in c.patterns:
      for i in range(count // len(c.patterns)):
        frames, masks, length = render_sequence(p, split, i, t_max, textures, c.seed)
        yield f'{p}_{i}', {'frames': frames, 'masks': masks, 'length': np.int64(length),
                           'pattern': np.int64(PATTERNS.index(p))}


# ----------------------------------------------------------------------------- backgrounds


def _kmeans_colours(pixels: np.ndarray, k: int, rng, iters: int = 10) -> np.ndarray:
  """Lloyd's k-means on [N, 3] colours -> the index of each pixel's centre.

  Starts from k distinct pixels drawn by `rng` and runs at most `iters` Lloyd iterations (tol 0:
  stops early only at a fixed point), one start only, so the textures depend on the seed alone.
  scikit-learn moves the centre of a cluster that empties to a far pixel; no cluster empties on
  the seed-0 textures, whose labels equal plain Lloyd iterations (tests/test_datasets.py).
  """
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top  (slow to import)
  centres = pixels[rng.choice(len(pixels), k, replace=False)]
  km = KMeans(n_clusters=k, init=centres, n_init=1, max_iter=iters, tol=0.0, algorithm='lloyd')
  return km.fit(pixels).labels_


def make_textures(seed: int = 0, size: int = SIZE) -> np.ndarray:
  """10 clustered texture images [10, size, size, 3] float in [0, 1] (deterministic)."""
  out = []
  for n in range(NUM_TEXTURES):
    rng = np.random.default_rng([seed, 1000 + n])   # textures: a stream apart from the splits
    f = np.fft.fftfreq(size)
    k = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    wl = rng.uniform(6.0, 14.0)                         # feature size of the texture in px
    amp = np.exp(-(k * wl) ** 2) * (k > 0)
    noise = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((3, size, size))) * amp))
    noise = noise / (noise.std(axis=(1, 2), keepdims=True) + 1e-12)
    label = _kmeans_colours(noise.reshape(3, -1).T, int(rng.integers(4, 8)), rng)
    palette = rng.uniform(0.15, 0.85, (label.max() + 1, 3))
    out.append(palette[label].reshape(size, size, 3))
  return np.stack(out)


# ----------------------------------------------------------------------------- trajectories


def trajectory(pattern: str, length: int, room: float):
  """Per frame (dx, dy, angle, sx, sy) relative to the start pose, for t = 0..length-1.

  `room` is the largest displacement in px that keeps the object inside the image. Image
  coordinates: x right, y down; a counter-clockwise turn on screen is a positive angle here.
  """
  s = np.arange(length) / (length - 1)                 # phase in [0, 1]
  zero, one = np.zeros(length), np.ones(length)
  tri = 1.0 - np.abs(2.0 * s - 1.0)                    # 0 -> 1 -> 0
  if pattern == 'I':    # straight down and back up
    return zero, room * tri, zero, one, one
  if pattern == 'O':    # a closed circle, counter-clockwise on screen, starting at its top
    r = room / 2.0
    a = 2 * np.pi * s
    return -r * np.sin(a), r * (1 - np.cos(a)), zero, one, one
  if pattern == 'L':    # down the stem, then right along the foot, at constant speed
    d = 2 * room * s
    return np.clip(d - room, 0, None), np.minimum(d, room), zero, one, one
  if pattern == 'eight':  # a figure of eight (Gerono lemniscate), closed
    a = 2 * np.pi * s
    return (room / 4.0) * np.sin(2 * a), (room / 2.0) * (1 - np.cos(a)), zero, one, one
  if pattern == 'rotate':  # counter-clockwise half turn about the fixed centre
    return zero, zero, np.pi * s, one, one
  if pattern == 'scale':   # stretch x (out and back), then y (out and back), centre fixed
    first = s <= 0.5
    sx = np.where(first, 1.0 + 0.8 * np.sin(2 * np.pi * s), 1.0)
    sy = np.where(first, 1.0, 1.0 + 0.8 * np.sin(2 * np.pi * (s - 0.5)))
    return zero, zero, zero, sx, sy
  raise ValueError(f'unknown pattern {pattern!r}; known: {PATTERNS}')


def rectangle_mask(cx, cy, w, h, angle, size: int = SIZE) -> np.ndarray:
  """Pixels whose centre lies inside the rectangle (centre, width, height, CCW angle) [S, S]."""
  ys, xs = np.mgrid[0:size, 0:size] + 0.5
  dx, dy = xs - cx, ys - cy
  c, s = np.cos(angle), np.sin(angle)
  u = c * dx - s * dy          # rotate screen coordinates back by the (CCW on screen) angle
  v = s * dx + c * dy
  return (np.abs(u) <= w / 2.0) & (np.abs(v) <= h / 2.0)


def sequence_length(pattern: str, w: float, h: float) -> int:
  """From the pattern's maximum (smallest objects) down to 3/4 of it (largest)."""
  big = (max(w, h) - _SIDE[0]) / (_SIDE[1] - _SIDE[0])
  t = MAX_LENGTHS[pattern]
  return int(round(t - big * (t - int(np.ceil(0.75 * t)))))


def render_sequence(pattern: str, split: str, index: int, t_max: int, textures, seed: int = 0):
  """One sequence: frames [t_max, 64, 64, 3] uint8, masks [t_max, 64, 64] uint8, length."""
  rng = common.split_rng(seed, split, PATTERNS.index(pattern), index)
  background = textures[rng.integers(len(textures))] * rng.uniform(0.9, 1.1, 3)  # Sec. 4.1
  w, h = rng.uniform(*_SIDE, 2)
  colour = rng.uniform(0, 1, 3)
  length = sequence_length(pattern, w, h)
  # the largest extent the object takes during the pattern (stretch of 'scale', diagonal turning)
  if pattern == 'rotate':
    ext_x = ext_y = np.hypot(w, h)
  elif pattern == 'scale':
    ext_x, ext_y = 1.8 * w, 1.8 * h
  else:
    ext_x, ext_y = w, h
  if pattern in ('rotate', 'scale'):
    room = 0.0
    x0 = rng.uniform(ext_x / 2 + _MARGIN, SIZE - ext_x / 2 - _MARGIN)
    y0 = rng.uniform(ext_y / 2 + _MARGIN, SIZE - ext_y / 2 - _MARGIN)
  else:
    free = SIZE - 2 * _MARGIN - max(ext_x, ext_y)
    room = rng.uniform(0.6, 1.0) * free
    dxs, dys, *_ = trajectory(pattern, length, room)
    lo_x = _MARGIN + ext_x / 2 - dxs.min()
    hi_x = SIZE - _MARGIN - ext_x / 2 - dxs.max()
    lo_y = _MARGIN + ext_y / 2 - dys.min()
    hi_y = SIZE - _MARGIN - ext_y / 2 - dys.max()
    x0, y0 = rng.uniform(lo_x, max(lo_x, hi_x)), rng.uniform(lo_y, max(lo_y, hi_y))
  dxs, dys, angles, sxs, sys_ = trajectory(pattern, length, room)
  frames = np.zeros((t_max, SIZE, SIZE, 3), np.uint8)
  masks = np.zeros((t_max, SIZE, SIZE), np.uint8)
  for t in range(length):
    m = rectangle_mask(x0 + dxs[t], y0 + dys[t], w * sxs[t], h * sys_[t], angles[t])
    img = np.where(m[..., None], colour, background)
    frames[t] = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    masks[t] = m
  return frames, masks, length
