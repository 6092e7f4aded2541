"""Bouncing balls (Sutskever, Hinton & Taylor 2008, RTRBM), as DeepGIFs Sec. 3.1 uses them.

Balls of radius 1.2 move in a 10 x 10 box and collide elastically with each other and with the
walls; the velocities of all balls together start with norm 0.5 (random direction). Every frame
is rendered as sum_i exp(-(d_i^2 / r^2)^4) clipped to 1 at 64 x 64, where d_i is the distance of
the pixel (grid [0, 1) * box along each axis) from ball i. 20 frames per clip (DeepGIFs Sec. 3.2).

`simulate_balls` is the pure-numpy simulator; `render_balls` the renderer. The builder stores
`frames` uint8 [T, 64, 64, 1] and the ball `positions` [T, n, 2] (box units, (x, y)).
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from animgen.datasets import common

BOX = 10.0        # RTRBM box side
RADIUS = 1.2      # ball radius
SPEED = 0.5       # norm of the stacked velocity vector of all balls (RTRBM)
SUBSTEPS = 2      # integration sub-steps per frame (RTRBM: step 0.5 of a frame)


def _initial_state(rng: np.random.Generator, n: int, box: float, radius: float, speed: float):
  """Non-overlapping centres inside the box and Gaussian velocities scaled to `speed`."""
  v = rng.standard_normal((n, 2))
  v *= speed / np.linalg.norm(v)
  for _ in range(10_000):
    x = radius + rng.uniform(size=(n, 2)) * (box - 2 * radius)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1) + np.eye(n) * 2 * box
    if np.all(d >= 2 * radius):
      return x, v
  raise ValueError(f'cannot place {n} balls of radius {radius} in a box of {box}')


def simulate_balls(rng: np.random.Generator, num_balls: int, frames: int, box: float = BOX,
                   radius: float = RADIUS, speed: float = SPEED, substeps: int = SUBSTEPS,
                   x0: np.ndarray | None = None, v0: np.ndarray | None = None,
                   walls: bool = True):
  """Elastic billiards of equal-mass balls -> (positions, velocities), each [frames, n, 2].

  Each frame advances `substeps` Euler steps of 1 / substeps. A ball crossing a wall is
  reflected back inside (position mirrored, normal velocity negated). Two approaching balls
  closer than 2 r exchange the velocity components along the line of their centres (equal
  masses), which conserves kinetic energy and momentum. x0 / v0 override the random start;
  walls=False removes the walls (for tests of ball-ball collisions).
  """
  n = num_balls
  if x0 is None or v0 is None:
    x, v = _initial_state(rng, n, box, radius, speed)
  x = np.array(x0 if x0 is not None else x, np.float64)
  v = np.array(v0 if v0 is not None else v, np.float64)
  dt = 1.0 / substeps
  pos, vel = np.empty((frames, n, 2)), np.empty((frames, n, 2))
  lo, hi = radius, box - radius
  for t in range(frames):
    pos[t], vel[t] = x, v
    for _ in range(substeps):
      x = x + dt * v
      if walls:
        below, above = x < lo, x > hi
        x = np.where(below, 2 * lo - x, np.where(above, 2 * hi - x, x))
        v = np.where(below, np.abs(v), np.where(above, -np.abs(v), v))
      for i in range(n):
        for j in range(i):
          w = x[i] - x[j]
          dist = np.linalg.norm(w)
          if dist >= 2 * radius or dist == 0.0:
            continue
          w = w / dist
          closing = np.dot(v[i] - v[j], w)
          if closing >= 0:  # already separating: no second exchange while they overlap
            continue
          v[i] = v[i] - closing * w   # equal masses: swap the normal components
          v[j] = v[j] + closing * w
  return pos, vel


def render_balls(positions: np.ndarray, size: int = 64, box: float = BOX,
                 radius: float = RADIUS) -> np.ndarray:
  """positions [T, n, 2] (x, y) -> frames float [T, size, size] in [0, 1]."""
  grid = np.arange(size) / size * box
  dx = grid[None, None, None, :] - positions[:, :, 0, None, None]   # [T, n, 1, W]
  dy = grid[None, None, :, None] - positions[:, :, 1, None, None]   # [T, n, H, 1]
  d2 = (dx ** 2 + dy ** 2) / radius ** 2
  return np.minimum(np.exp(-d2 ** 4).sum(axis=1), 1.0)


def make_clip(rng: np.random.Generator, num_balls: int, frames: int, size: int):
  """-> frames uint8 [T, size, size, 1], positions float32 [T, n, 2]."""
  pos, _ = simulate_balls(rng, num_balls, frames)
  img = render_balls(pos, size)
  return (np.round(img * 255.0).astype(np.uint8)[..., None], pos.astype(np.float32))


@dataclasses.dataclass(eq=False)
class BouncingBallsConfig(tfds.core.BuilderConfig):
  """min_balls..max_balls balls per clip (uniform); frames T; size H = W; clips per split."""
  min_balls: int = 2
  max_balls: int = 2
  frames: int = 20
  size: int = 64
  train_clips: int = 8000
  test_clips: int = 800
  seed: int = 0


CONFIGS = {
    'balls1': BouncingBallsConfig(name='balls1', min_balls=1, max_balls=1,
                                  description='1 ball, 8000 train / 800 test clips.'),
    'balls2': BouncingBallsConfig(name='balls2', min_balls=2, max_balls=2,
                                  description='2 balls (DeepGIFs Sec. 3.1), 8000 / 800 clips.'),
    'balls3': BouncingBallsConfig(name='balls3', min_balls=3, max_balls=3,
                                  description='3 balls, 8000 / 800 clips.'),
    'mixed': BouncingBallsConfig(name='mixed', min_balls=1, max_balls=3,
                                 description='1-3 balls (uniform), 8000 / 800 clips.'),
    'paper': BouncingBallsConfig(name='paper', min_balls=2, max_balls=2, train_clips=80_000,
                                 test_clips=10_000,
                                 description='2 balls, DeepGIFs sizes 80000 / 10000 (6.6 GB).'),
    'tiny': BouncingBallsConfig(name='tiny', min_balls=1, max_balls=3, frames=6, size=32,
                                train_clips=16, test_clips=8,
                                description='1-3 balls, 32x32, 6 frames, 16 / 8 clips (tests).'),
}


class BouncingBalls(tfds.core.GeneratorBasedBuilder):
  """RTRBM bouncing balls rendered at 64x64, 20 frames (DeepGIFs Sec. 3)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = list(CONFIGS.values())
  DEFAULT_CONFIG_NAME = 'balls2'

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            'frames': tfds.features.Tensor(shape=(c.frames, c.size, c.size, 1), dtype=np.uint8),
            'positions': tfds.features.Tensor(shape=(c.frames, None, 2), dtype=np.float32),
            'num_balls': tfds.features.Tensor(shape=(), dtype=np.int64),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    c = self.builder_config
    if not 1 <= c.min_balls <= c.max_balls or c.frames < 2 or c.size < 8:
      raise ValueError(f'bouncing_balls config {c.name!r}: need 1 <= min_balls <= max_balls, '
                       f'frames >= 2, size >= 8')
    return common.generated_splits(self, {'train': c.train_clips, 'test': c.test_clips})

  def _generate_examples(self, split: str, num_clips: int):
    c = self.builder_config
    for i in range(num_clips):
      rng = common.split_rng(c.seed, split, i)
      n = int(rng.integers(c.min_balls, c.max_balls + 1))
      frames, pos = make_clip(rng, n, c.frames, c.size)
      yield i, {'frames': frames, 'positions': pos, 'num_balls': np.int64(n)}
