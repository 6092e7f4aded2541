"""Procedural landscape time-lapse clips with exact ground-truth flow (offline Sky Timelapse proxy).

Each clip is a still landscape under a moving sky: spectral-fBm clouds over a sky gradient,
advected by a stationary, smoothly varying per-clip wind; a static land silhouette; optionally a
water band with its own horizontal ripple drift; and a slow global colour drift. The `daycycle`
configs (for the appearance predictor, Endo 2019 Sec. 4.2) replace the drift by a passage of the
day: every clip runs part of the way day -> golden hour -> dusk -> night (or back, a sunrise), its
sky, clouds, land and water re-lit frame by frame, like the paper's one-day time-lapses whose
kept frames differ by >= 0.3 in summed mean RGB (Sec. 6.1).

Flow convention (pixels, channel order (dx, dy), pixel centres at integer coordinates, i.e.
align_corners=True): `frame[t+1][y, x] ~= bilinear(frame[t], x + dx, y + dy)`. Convert with
`animgen.ops.warp.pixels_to_normalised` for the motion network.

How the frames are made to match the flow exactly: the backward flow f is an analytic function
of position, and with Phi(p) = p + f(p) the moving layer at time t is a periodic texture sampled
at C_t = Phi^t(grid). Because Phi^(t+1) = Phi^t o Phi = Phi o Phi^t, the coordinates update as
C_(t+1) = C_t + f(C_t), and layer_(t+1)(p) = layer_t(p + f(p)) holds for every pixel. The whole
sky layer (gradient and clouds) is advected; the wind's vertical component fades toward the
horizon (perspective), so the horizon glow stays put. Warping frame t by flow[t] therefore gives
frame t+1 up to bilinear resampling, uint8 rounding, the colour drift (< 0.2 % per frame) and
disocclusions at land edges and image borders. The flow is stationary: flow[t] is the same for
every t. Speeds: |flow| <= max_speed(size) = 0.9 * size / 128 px/frame (water <= 0.5 of that).
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from animgen.datasets import common

_MAX_SPEED_AT_128 = 0.9   # px/frame at size 128; scales linearly with size
_TEX_SCALE = 2            # texture samples per image pixel
# Cloud texture spectrum. Fine detail and sharp edges make consecutive frames differ enough for
# the self-supervised warping loss (1.1.0: 15x the squared frame difference of 1.0.0, with the
# true flow still explaining ~2/3 of it); bilinear resampling error grows with them.
_MIN_WAVELENGTH = 3.0     # px, absolute floor of the detail cut-off
_MIN_WL_REL = 0.025       # detail cut-off relative to size (3.2 px at 128)
_CLOUD_MAXWL_REL = 0.35   # largest puff scale relative to size
_CLOUD_BETA = (0.5, 0.8)  # amplitude spectrum exponent range (fBm roughness)
_CLOUD_SOFTNESS = (0.06, 0.15)  # sigmoid width of the cloud threshold, in noise std units
_DRIFT = 0.02             # colour drift scale: up to ~2x this fraction per 24 frames
_WISP_LENGTH = 0.06       # trailing wisps behind each cloud, relative to size
_SKY_GAMMA = 2.0          # sky gradient exponent (colour change concentrated near the horizon)


@dataclasses.dataclass(eq=False)
class SyntheticTimelapseConfig(tfds.core.BuilderConfig):
  """size: H = W in pixels; frames: T per clip; *_clips: clips per split; seed: base seed."""
  size: int = 128
  frames: int = 24
  train_clips: int = 64
  test_clips: int = 16
  seed: int = 0
  day_cycle: bool = False   # True: a passage of the day instead of the slow drift (appearance)


CONFIGS = {
    'default': SyntheticTimelapseConfig(
        name='default', size=128, frames=24, train_clips=64, test_clips=16,
        description='128x128, 24 frames, 64 train / 16 test clips.'),
    'large': SyntheticTimelapseConfig(
        name='large', size=128, frames=24, train_clips=512, test_clips=16,
        description='default with 512 train clips (the first 64 and the 16 test clips are '
                    'those of default).'),
    'tiny': SyntheticTimelapseConfig(
        name='tiny', size=32, frames=6, train_clips=4, test_clips=2,
        description='32x32, 6 frames, 4 train / 2 test clips (tests).'),
    'daycycle': SyntheticTimelapseConfig(
        name='daycycle', size=128, frames=24, train_clips=64, test_clips=16, day_cycle=True,
        description='128x128, 24 frames, 64 train / 16 test clips, each a passage of the day '
                    '(appearance predictor).'),
    'daycycle_large': SyntheticTimelapseConfig(
        name='daycycle_large', size=128, frames=24, train_clips=512, test_clips=16,
        day_cycle=True,
        description='daycycle with 512 train clips (the first 64 and the 16 test clips are '
                    'those of daycycle).'),
    'daycycle_tiny': SyntheticTimelapseConfig(
        name='daycycle_tiny', size=32, frames=6, train_clips=4, test_clips=2, day_cycle=True,
        description='daycycle at 32x32, 6 frames, 4 train / 2 test clips (tests).'),
}


def max_speed(size: int) -> float:
  """Largest per-pixel |flow| in px/frame that clips of this size contain."""
  return _MAX_SPEED_AT_128 * size / 128.0


class SyntheticTimelapse(tfds.core.GeneratorBasedBuilder):
  """Procedural sky/land/water time-lapse clips with exact backward flow in pixels."""

  VERSION = tfds.core.Version('1.2.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': 'Sharper, faster clouds: 15x the squared difference between '
                            'consecutive frames of 1.0.0 (mean abs difference ~0.013).',
                   '1.2.0': 'Clouds trail wisps behind their motion: a still frame shows which '
                            'way the sky moves.'}
  BUILDER_CONFIGS = list(CONFIGS.values())
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=common.clip_features(
            s, flow=tfds.features.Tensor(shape=(None, s, s, 2), dtype=np.float32)),
        disable_shuffling=True,  # record i holds clip_id i
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    c = self.builder_config
    _check_config(c)
    return common.generated_splits(self, {'train': c.train_clips, 'test': c.test_clips},
                                   times=8)

  def _generate_examples(self, split: str, num_clips: int):
    c = self.builder_config
    for i in range(num_clips):
      frames, flow = render_clip(c.size, c.frames, split, i, seed=c.seed,
                                 day_cycle=c.day_cycle)
      yield i, {'frames': frames, 'flow': flow, 'clip_id': np.int64(i),
                'pair_ok': np.ones((c.frames - 1,), np.bool_)}


def _check_config(c: SyntheticTimelapseConfig):
  if c.size < 8 or c.frames < 2 or c.train_clips < 1 or c.test_clips < 1:
    raise ValueError(f'synthetic_timelapse config {c.name!r} needs size >= 8, frames >= 2 and '
                     f'at least one clip per split, got size={c.size} frames={c.frames} '
                     f'train_clips={c.train_clips} test_clips={c.test_clips}')


def make_builder(data_dir, name: str = 'default', **overrides) -> SyntheticTimelapse:
  """Builder for config `name`, optionally with fields (size, frames, ...) overridden.

  An overridden config gets a name that encodes its fields (e.g. 'default_s64_f12_tr64_te16'),
  so differently sized variants live side by side in `data_dir`.
  """
  if name not in CONFIGS:
    raise ValueError(f'unknown synthetic_timelapse config {name!r}; known: {sorted(CONFIGS)}')
  config = CONFIGS[name]
  if overrides:
    config = dataclasses.replace(config, **overrides)
    suffix = f'_s{config.size}_f{config.frames}_tr{config.train_clips}_te{config.test_clips}'
    if config.day_cycle != CONFIGS[name].day_cycle:
      suffix += f'_day{int(config.day_cycle)}'
    if config.seed:
      suffix += f'_seed{config.seed}'
    config = dataclasses.replace(config, name=name + suffix,
                                 description=f'{name} with {overrides}')
  _check_config(config)
  return SyntheticTimelapse(data_dir=data_dir, config=config, file_format='array_record')


# ----------------------------------------------------------------------------- rendering


def _spectral_noise(rng, n: int, scale: float, beta: float, min_wl: float, max_wl: float,
                    aniso: float = 1.0, angle: float = 0.0, channels: int = 1) -> np.ndarray:
  """Periodic fBm-like field [channels, n, n], zero mean, unit std, by spectral synthesis.

  Wavelengths are in image pixels (the grid has `scale` samples per pixel). Amplitude falls as
  k^-beta between max_wl and min_wl; aniso > 1 suppresses frequencies along `angle`, which
  stretches features along that direction.
  """
  fy = np.fft.fftfreq(n)[:, None] * scale   # cycles per image pixel
  fx = np.fft.rfftfreq(n)[None, :] * scale
  ca, sa = np.cos(angle), np.sin(angle)
  along, across = fx * ca + fy * sa, -fx * sa + fy * ca
  k = np.sqrt((aniso * along) ** 2 + across ** 2)
  k0 = 1.0 / max_wl
  amp = (k ** 2 + k0 ** 2) ** (-beta / 2) * np.exp(-(k * min_wl) ** 2)
  amp[0, 0] = 0.0
  white = rng.standard_normal((channels, n, n))
  field = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(n, n))
  field -= field.mean(axis=(1, 2), keepdims=True)
  field /= field.std(axis=(1, 2), keepdims=True) + 1e-12
  return field


def _noise_1d(rng, n: int, beta: float, min_wl: float, max_wl: float) -> np.ndarray:
  """Smooth 1-D noise of length n (unit std) for silhouettes."""
  m = 2 * n
  f = np.fft.rfftfreq(m)
  amp = (f ** 2 + (1.0 / max_wl) ** 2) ** (-beta / 2) * np.exp(-(f * min_wl / 2.0) ** 2)
  amp[0] = 0.0
  x = np.fft.irfft(np.fft.rfft(rng.standard_normal(m)) * amp, n=m)[:n]
  return (x - x.mean()) / (x.std() + 1e-12)


def _sample_periodic(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Bilinear sample of a periodic texture [n, n, C] at texture coordinates x, y -> [..., C]."""
  n = tex.shape[0]
  x0, y0 = np.floor(x), np.floor(y)
  fx, fy = (x - x0)[..., None], (y - y0)[..., None]
  x0 = x0.astype(np.int64) % n
  y0 = y0.astype(np.int64) % n
  x1, y1 = (x0 + 1) % n, (y0 + 1) % n
  top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
  bottom = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
  return top * (1 - fy) + bottom * fy


def _sigmoid(x):
  return 0.5 * (1.0 + np.tanh(0.5 * x))


_PALETTES = (  # (zenith, horizon, cloud lit, cloud shadow), linear-ish RGB in [0, 1]
    ((0.16, 0.36, 0.72), (0.66, 0.80, 0.93), (0.97, 0.97, 0.97), (0.62, 0.66, 0.74)),  # day
    ((0.20, 0.34, 0.62), (0.96, 0.70, 0.42), (1.00, 0.88, 0.72), (0.55, 0.45, 0.50)),  # golden
    ((0.22, 0.20, 0.45), (0.93, 0.55, 0.52), (0.98, 0.75, 0.70), (0.38, 0.32, 0.45)),  # dusk
    ((0.45, 0.50, 0.56), (0.72, 0.75, 0.78), (0.86, 0.87, 0.88), (0.50, 0.52, 0.56)),  # overcast
)
_NIGHT = ((0.02, 0.03, 0.09), (0.09, 0.10, 0.20), (0.22, 0.23, 0.30), (0.05, 0.05, 0.09))
_DAY_PATH = _PALETTES[:3] + (_NIGHT,)     # day -> golden hour -> dusk -> night
_DAY_LIGHT = (1.0, 0.8, 0.5, 0.15)        # illumination of land along the path
_DAY_SPAN = (1.2, 3.0)                    # how much of the path (of 3) one clip covers


def day_path(rng, frames: int) -> np.ndarray:
  """Per-frame positions on _DAY_PATH (0 day ... 3 night), linear in time: a sunset, or a
  sunrise (reversed) for half the clips."""
  span = rng.uniform(*_DAY_SPAN)
  p = rng.uniform(0.0, 3.0 - span) + span * np.linspace(0.0, 1.0, frames)
  return p if rng.uniform() < 0.5 else p[::-1].copy()


def day_colours(p: float):
  """Palette (zenith, horizon, cloud lit, cloud shadow) and land illumination at path
  position p, interpolated linearly between the path's key palettes."""
  i = min(int(p), len(_DAY_PATH) - 2)
  f = p - i
  cols = tuple(np.array(a) * (1 - f) + np.array(b) * f
               for a, b in zip(_DAY_PATH[i], _DAY_PATH[i + 1]))
  return cols, _DAY_LIGHT[i] * (1 - f) + _DAY_LIGHT[i + 1] * f


def _trailing_wisps(alpha: np.ndarray, theta: float, length: float) -> np.ndarray:
  """Fading copies of the cloud cover behind the motion direction theta: clouds get a sharp
  leading edge and a wispy tail, so a still frame shows which way the sky moves (as streaks
  and virga do in real skies). alpha: periodic [n, n] texture; length in texels."""
  out = alpha.copy()
  tx, ty = -np.cos(theta), -np.sin(theta)   # behind the motion (image coords, y down)
  steps = max(int(round(length)), 1)
  for k in range(1, steps + 1):
    fade = (1.0 - k / (steps + 1)) ** 2
    shifted = np.roll(alpha, (int(round(k * ty)), int(round(k * tx))), axis=(0, 1))
    out = np.maximum(out, 0.8 * fade * shifted)
  return out


class _Wind:
  """Stationary backward flow field of the sky, analytic in continuous pixel coordinates."""

  def __init__(self, rng, size: int, horizon: float):
    vmax = max_speed(size)
    self.vmax = vmax
    self.size = size
    self.horizon = horizon
    self.theta0 = rng.uniform(0, 2 * np.pi)             # wind direction (image coords, y down)
    self.v0 = rng.uniform(0.75, 1.0) * vmax             # speed high in the sky
    self.near = rng.uniform(0.5, 0.7)                    # relative speed at the horizon
    # low-frequency perturbations of direction and speed: (amplitude, kx, ky, phase)
    self.dir_waves = [(rng.uniform(0.1, 0.35), *rng.uniform(-1.5, 1.5, 2), rng.uniform(0, 6.3))
                      for _ in range(2)]
    self.speed_waves = [(rng.uniform(0.05, 0.12), *rng.uniform(-2, 2, 2), rng.uniform(0, 6.3))
                        for _ in range(2)]

  def __call__(self, x: np.ndarray, y: np.ndarray):
    """Backward flow (dx, dy) in px at positions (x, y)."""
    u, v = x / self.size, y / self.size
    theta = np.full_like(x, self.theta0)
    for a, kx, ky, ph in self.dir_waves:
      theta = theta + a * np.sin(2 * np.pi * (kx * u + ky * v) + ph)
    mod = np.ones_like(x)
    for a, kx, ky, ph in self.speed_waves:
      mod = mod + a * np.sin(2 * np.pi * (kx * u + ky * v) + ph)
    height = np.clip((self.horizon - y) / max(self.horizon, 1.0), 0.0, 1.0)  # 0 at horizon
    # perspective of a cloud layer: slower toward the horizon, vertical motion even more so
    along_x = self.near + (1.0 - self.near) * height ** 0.7
    along_y = along_x * (0.25 + 0.75 * height)
    vx = self.v0 * mod * along_x * np.cos(theta)
    vy = self.v0 * mod * along_y * np.sin(theta)
    shrink = np.minimum(1.0, self.vmax / np.maximum(np.hypot(vx, vy), 1e-12))
    return -vx * shrink, -vy * shrink   # backward flow = minus the motion


def render_clip(size: int, frames: int, split: str, index: int, seed: int = 0,
                day_cycle: bool = False):
  """One clip: frames [T, S, S, 3] uint8 and backward flow [T-1, S, S, 2] float32 (px, (dx, dy)).

  Deterministic in (size, frames, split, index, seed, day_cycle). A day-cycle clip has the same
  layout, clouds and flow as the clip without it, re-lit frame by frame.
  """
  frames_f, flow = _render_float(size, frames, split, index, seed, day_cycle)
  return np.clip(np.round(frames_f * 255.0), 0, 255).astype(np.uint8), flow


def _render_float(size: int, frames: int, split: str, index: int, seed: int,
                  day_cycle: bool = False):
  """As render_clip, with frames in float [0, 1] (before quantisation)."""
  scene = _Scene(size, frames, common.split_rng(seed, split, index))
  path = None
  if day_cycle:  # a stream of its own, so the layout, clouds and flow match the plain clip
    path = day_path(common.split_rng(seed, split, index, 1), frames)
  return _render_frames(scene, frames, path), scene.flows(frames)


@dataclasses.dataclass
class _Layout:
  """Where the sky, the land (far and near ridges) and the optional water band are."""
  far: np.ndarray          # [S] top of the far ridge per column
  near: np.ndarray         # [S] top of the near ridge (jagged treeline)
  has_water: bool
  shore: float             # first water row (S without water)
  sky: np.ndarray          # [S, S] bool
  water: np.ndarray        # [S, S] bool
  land: np.ndarray         # [S, S] bool
  sky_horizon: float       # mean lowest sky row


def _layout(rng, s: int, ys: np.ndarray) -> _Layout:
  """Hills silhouette and an optional water band."""
  horizon = rng.uniform(0.45, 0.62) * s
  far = horizon + 0.06 * s * _noise_1d(rng, s, 2.0, max(0.08 * s, 3.0), 0.8 * s)
  near = (horizon + rng.uniform(0.05, 0.12) * s
          + 0.05 * s * _noise_1d(rng, s, 1.6, max(0.05 * s, 3.0), 0.5 * s)
          + 0.012 * s * _noise_1d(rng, s, 0.5, 2.0, 0.05 * s))       # jagged treeline
  far, near = np.minimum(far, s - 2), np.minimum(near, s - 2)
  has_water = rng.uniform() < 0.5
  shore = rng.uniform(0.74, 0.86) * s if has_water else float(s)
  sky_top = np.minimum(far, near)                                   # per column
  sky = ys < sky_top[None, :]
  water = (ys >= shore) & ~sky
  return _Layout(far, near, has_water, shore, sky, water, ~sky & ~water, float(sky_top.mean()))


def _cloud_texture(rng, s: int, n: int, theta: float) -> np.ndarray:
  """Periodic cloud texture [n, n, 2] (alpha, shading) for wind direction theta."""
  streak = rng.uniform(1.3, 2.2)
  noise = _spectral_noise(rng, n, _TEX_SCALE, beta=rng.uniform(*_CLOUD_BETA),
                          min_wl=max(_MIN_WAVELENGTH, _MIN_WL_REL * s), max_wl=_CLOUD_MAXWL_REL * s,
                          aniso=streak, angle=theta, channels=2)
  # large-scale coverage: cloud banks and clear patches
  banks = _spectral_noise(rng, n, _TEX_SCALE, beta=2.0, min_wl=0.15 * s, max_wl=0.8 * s,
                          aniso=streak, angle=theta)[0]
  cover = rng.uniform(-0.3, 0.6) - rng.uniform(0.3, 0.9) * banks
  softness = rng.uniform(*_CLOUD_SOFTNESS)
  opacity = rng.uniform(0.75, 1.0)
  alpha = _trailing_wisps(opacity * _sigmoid((noise[0] - cover) / softness), theta,
                          _WISP_LENGTH * s * _TEX_SCALE)
  light = _sigmoid(4.0 * noise[1] + 2.0 * noise[0])
  return np.stack([alpha, light], axis=-1)


class _Water:
  """Horizontal ripples drifting at a speed growing toward the viewer; mirrors the sky."""

  def __init__(self, rng, s: int, n: int, layout: _Layout, ys: np.ndarray, vmax: float):
    w_speed = rng.uniform(0.2, 0.5) * vmax * rng.choice([-1.0, 1.0])
    depth = np.clip((ys - layout.shore) / max(s - layout.shore, 1.0), 0, 1)
    self.dx = -w_speed * (0.6 + 0.4 * depth)                         # backward flow, dy = 0
    ripples = _spectral_noise(rng, n, _TEX_SCALE, beta=0.9, min_wl=max(_MIN_WAVELENGTH, 0.05 * s),
                              max_wl=0.2 * s, aniso=2.5, angle=0.0, channels=1)[0]
    self.tex = np.stack([ripples, _sigmoid((ripples - 1.0) / 0.3)], axis=-1)  # waves, glints
    self.mirror = np.clip((2 * layout.shore - ys) / max(layout.sky_horizon, 1.0),
                          0, 1)[..., None] ** 1.3
    self.offset = rng.uniform(0, n, 2)

  def colour(self, zenith, hor):
    return (zenith * (1 - self.mirror) + hor * self.mirror) * np.array([0.62, 0.7, 0.76])


class _Land:
  """Static textured ridges: far ones take the horizon's colour, near ones a little."""

  def __init__(self, rng, s: int, n: int, layout: _Layout, xs: np.ndarray, ys: np.ndarray):
    land_tex = _spectral_noise(rng, n, _TEX_SCALE, beta=1.2, min_wl=2.0, max_wl=0.3 * s,
                               channels=1)[0]
    self.lt = _sample_periodic(land_tex[..., None], xs * _TEX_SCALE, ys * _TEX_SCALE)
    self.green = np.array([0.10, 0.16, 0.08]) * rng.uniform(0.7, 1.3)
    self.is_near = ys >= layout.near[None, :]
    self.haze = np.where(self.is_near[..., None], 1.0, 1.0 - 0.25 * np.clip(
        (ys - layout.far[None, :]) / (0.1 * s), 0, 1)[..., None])  # far ridge fades downward

  def colour(self, hor):
    far_col = hor * 0.45 + np.array([0.10, 0.14, 0.16])
    near_col = self.green + 0.08 * hor
    return np.where(self.is_near[..., None], near_col, far_col) * (1 + 0.18 * self.lt) * self.haze


class _Scene:
  """Everything random about one clip, drawn from `rng` in a fixed order."""

  def __init__(self, s: int, frames: int, rng):
    self.ys, self.xs = np.mgrid[0:s, 0:s].astype(np.float64)
    self.layout = _layout(rng, s, self.ys)
    self.palette = tuple(np.array(c) for c in _PALETTES[rng.integers(len(_PALETTES))])
    self.jitter = rng.uniform(-0.05, 0.05, 3)
    self.wind = _Wind(rng, s, self.layout.sky_horizon)
    travel = self.wind.vmax * frames + 4
    n = int(2 ** np.ceil(np.log2((s + 2 * travel) * _TEX_SCALE)))
    self.cloud_tex = _cloud_texture(rng, s, n, self.wind.theta0)
    self.cloud_offset = rng.uniform(0, n, 2)
    self.water = (_Water(rng, s, n, self.layout, self.ys, self.wind.vmax)
                  if self.layout.has_water else None)
    self.land = _Land(rng, s, n, self.layout, self.xs, self.ys)
    # slow colour drift (a few % per 24 frames), e.g. warming and dimming toward sunset
    self.drift = _DRIFT * (rng.uniform(-1, 1, 3) + rng.uniform(-1, 0.5)) / 23.0   # per frame

  def water_dx(self) -> np.ndarray:
    return self.water.dx if self.water is not None else np.zeros_like(self.xs)

  def flows(self, frames: int) -> np.ndarray:
    """Stationary backward flow, identical for every pair: [frames - 1, S, S, 2] float32."""
    sky, water = self.layout.sky, self.layout.water
    sky_dx, sky_dy = self.wind(self.xs, self.ys)
    flow = np.zeros(self.xs.shape + (2,))
    flow[..., 0] = np.where(sky, sky_dx, np.where(water, self.water_dx(), 0.0))
    flow[..., 1] = np.where(sky, sky_dy, 0.0)
    return np.broadcast_to(flow.astype(np.float32), (frames - 1,) + flow.shape).copy()

  def colours(self, day: float | None = None):
    """(zenith, horizon, cloud lit, cloud shadow, land RGB, water base RGB or None): the clip's
    palette, or the palette at position `day` of the day path; with the clip's jitter."""
    if day is None:
      zenith, hor, lit, shade = self.palette
      light = None
    else:
      (zenith, hor, lit, shade), light = day_colours(day)
    zenith, hor = np.clip(zenith + self.jitter, 0, 1), np.clip(hor + self.jitter, 0, 1)
    land = self.land.colour(hor) if light is None else self.land.colour(hor) * light
    water = self.water.colour(zenith, hor) if self.water is not None else None
    return zenith, hor, lit, shade, land, water


def _sky_gradient(y, zenith, hor, sky_horizon: float):
  """Zenith -> horizon colour at rows y, [..., 3]."""
  g = np.clip(y / max(sky_horizon, 1.0), 0.0, 1.0)[..., None] ** _SKY_GAMMA
  return zenith * (1 - g) + hor * g


def _render_frames(scene: _Scene, frames: int, path=None) -> np.ndarray:
  """Float frames [T, S, S, 3]: the sky layer sampled at the advected coordinates C_t; re-lit
  along the day-path positions `path` [T], or with the slow colour drift when it is None."""
  xs, ys, layout = scene.xs, scene.ys, scene.layout
  ox, oy = scene.cloud_offset
  water_dx = scene.water_dx()
  cx, cy = xs.copy(), ys.copy()           # cloud coordinates C_t (image px)
  wcx = xs.copy()                         # water coordinates (x only; y is fixed)
  out = np.empty((frames,) + xs.shape + (3,))
  for t in range(frames):
    zenith, hor, lit, shade, land_rgb, water_base = scene.colours(
        None if path is None else path[t])
    cl = _sample_periodic(scene.cloud_tex, (cx + ox) * _TEX_SCALE, (cy + oy) * _TEX_SCALE)
    a, li = cl[..., :1], cl[..., 1:]
    cloud_rgb = shade * (1 - li) + lit * li
    img = (_sky_gradient(cy, zenith, hor, layout.sky_horizon) * (1 - a)
           + cloud_rgb * a)               # the sky layer is advected
    if scene.water is not None:
      wx, wy = scene.water.offset
      r = _sample_periodic(scene.water.tex, (wcx + wx) * _TEX_SCALE, (ys + wy) * _TEX_SCALE)
      water_rgb = water_base * (0.8 + 0.25 * r[..., :1]) + 0.3 * hor * r[..., 1:]
      img = np.where(layout.water[..., None], water_rgb, img)
    img = np.where(layout.land[..., None], land_rgb, img)
    if path is None:
      img = img * (1.0 + scene.drift * t)
    out[t] = img
    dx, dy = scene.wind(cx, cy)           # C_(t+1) = C_t + f(C_t)
    cx, cy = cx + dx, cy + dy
    wcx = wcx + water_dx
  return out
