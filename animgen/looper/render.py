"""Rendering a video loop from per-pixel labels (p, s) (Liao et al. 2013).

The output is L(x, t) = V(x, phi(x, t)), phi(x, t) = s + ((t - s) mod p), optionally time
stretched so that every pixel's loop fits a common output length, with a temporal cross-fade at
each pixel's loop wrap and a gradient-domain blend of the spatial seams between labels (after
Liao et al. 2015: by default one time-periodic screened Poisson solve in 3-D; see `render`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from animgen.media import to_uint8
from animgen.ops.flow_viz import hsv_to_rgb

# Cross-fade width in frames; the paper does not fix one: our choice, the label quantum q = 4.
CROSSFADE = 4
# Weight of the data term of the screened Poisson solve; Liao 2015's value is not given to us:
# our choice. A seam's correction decays over about 1 / sqrt(eps) = 10 pixels.
SCREEN_EPS = 0.01
_GREY = 0.5  # static pixels in label images (as Oh Fig. 3)


def loop_counts(periods, num_frames: int) -> jax.Array:
  """k_x = max(1, round(num_frames / p_x)) loops per output period, rounding halves up."""
  p = jnp.asarray(periods, jnp.int32)
  return jnp.maximum(1, (2 * num_frames + p) // (2 * p))  # floor(N / p + 1/2), exact in ints


def time_map(periods, starts, num_frames: int, stretch: bool = True) -> jax.Array:
  """phi [num_frames, H, W] int32: the input frame each output pixel shows (Liao 2013).

  stretch=False: phi = s + ((t - s) mod p). stretch=True: pixel x plays k_x = `loop_counts`
  loops in num_frames output frames; its local time u = t k_x p_x / num_frames is rounded down
  (u_int = floor(t k_x p_x / num_frames), exact integer arithmetic) and phi = s + ((u_int - s)
  mod p). Then phi(x, num_frames) = phi(x, 0): the output is a perfect loop. A loop that is slowed
  down (k p <= num_frames) shows each of its p frames; one that is sped up (k p > num_frames)
  skips k p - num_frames of its k p loop frames per output period, so some of its p frames may
  never show. Static pixels (p = 1) always show frame s.
  """
  p = jnp.asarray(periods, jnp.int32)
  s = jnp.asarray(starts, jnp.int32)
  t = jnp.arange(num_frames, dtype=jnp.int32)[:, None, None]
  u = (t * loop_counts(p, num_frames) * p) // num_frames if stretch else t
  return s + jnp.mod(u - s, p)


def _check_labels(video_shape, periods, starts) -> None:
  """Labels must be [H, W], p >= 1, s >= 0 and s + p <= T (concrete arrays only)."""
  t, h, w = video_shape[:3]
  p, s = np.asarray(periods), np.asarray(starts)
  if p.shape != (h, w) or s.shape != (h, w):
    raise ValueError(f'periods {p.shape} and starts {s.shape} must both be [H, W] = {(h, w)}')
  if p.min() < 1 or s.min() < 0 or (s + p).max() > t:
    raise ValueError(f'labels need p >= 1, s >= 0 and s + p <= T = {t}')


def _fade(phi, periods, starts, width):
  """Two-tap sources (f1, f2, a) of the temporal cross-fade: show (1 - a) V(f1) + a V(f2).

  Pixel x fades over its last c = min(width, s, p // 2) loop frames (c <= s so that the frames
  before its start exist; c <= p // 2 our choice): local frame j = phi - s >= p - c is blended
  with the frame one period earlier, phi - p (one of the c frames just before s), with weight
  a = (j - (p - c) + 1) / (c + 1). So the last loop frame is mostly V(s - 1), whose natural
  successor V(s) comes next; elsewhere a = 0 and f2 is unused.
  """
  c = jnp.minimum(jnp.minimum(width, starts), periods // 2)
  a = jnp.maximum(phi - starts - (periods - c) + 1, 0) / (c + 1)
  return phi, jnp.maximum(phi - periods, 0), a.astype(jnp.float32)


def screened_poisson(frame, gx, gy, eps: float = SCREEN_EPS) -> jax.Array:
  """argmin_u ||D_x u - gx||^2 + ||D_y u - gy||^2 + eps ||u - frame||^2, per channel.

  frame [H, W, C]; gx [H, W-1, C] the wanted u[:, j+1] - u[:, j]; gy [H-1, W, C] the wanted
  u[i+1] - u[i]. Normal equations (D^T D + eps) u = D^T g + eps frame with Neumann boundary:
  D^T D is diagonalised by the orthonormal DCT-II with eigenvalues
  (2 - 2 cos(pi k / H)) + (2 - 2 cos(pi l / W)), so one dctn / idctn pair solves it exactly.
  """
  h, w = frame.shape[:2]
  def pad(g, axis, before):  # one zero slot before / after along `axis`
    return jnp.pad(g, [((1, 0) if before else (0, 1)) if i == axis else (0, 0) for i in range(3)])
  # (D^T g)[j] = g[j - 1] - g[j] (zero outside the grid): minus the divergence of g
  dtg = pad(gx, 1, True) - pad(gx, 1, False) + pad(gy, 0, True) - pad(gy, 0, False)
  lam = ((2 - 2 * jnp.cos(jnp.pi * jnp.arange(h) / h))[:, None]
         + (2 - 2 * jnp.cos(jnp.pi * jnp.arange(w) / w))[None, :])
  spec = jax.scipy.fft.dctn(dtg + eps * frame, axes=(0, 1), norm='ortho')
  return jax.scipy.fft.idctn(spec / (lam + eps)[..., None], axes=(0, 1), norm='ortho')


def _blend_frame(video, phi, periods, starts, width, eps):
  """One output frame: cross-faded gather, then the seam blend described in `render`."""
  h, w = phi.shape
  rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  f1, f2, a = _fade(phi, periods, starts, width)

  def at(sel, r, c):
    """V at pixels (r, c), read through the sources (f1, f2, a) of the pixels `sel`."""
    wa = a[sel][..., None]
    return (1 - wa) * video[f1[sel], r, c] + wa * video[f2[sel], r, c]

  frame = at(Ellipsis, rows, cols)
  left, right, up, down = np.s_[:, :-1], np.s_[:, 1:], np.s_[:-1], np.s_[1:]
  # mean of the two pixels' own consistent gradients; equals the frame's where labels agree
  gx = 0.5 * (at(left, rows, cols[right]) - frame[left]
              + frame[right] - at(right, rows, cols[left]))
  gy = 0.5 * (at(up, rows[down], cols) - frame[up] + frame[down] - at(down, rows[up], cols))
  return jnp.clip(screened_poisson(frame, gx, gy, eps), 0.0, 1.0)


@jax.jit
def _render_blended(video, phi, periods, starts, width, eps):
  return jax.lax.map(lambda f: _blend_frame(video, f, periods, starts, width, eps), phi)


def screened_poisson_periodic(frames, gt, gx, gy, eps: float = SCREEN_EPS) -> jax.Array:
  """argmin_u ||D_t u - gt||^2 + ||D_x u - gx||^2 + ||D_y u - gy||^2 + eps ||u - frames||^2.

  frames [N, H, W, C]; gt [N, H, W, C] the wanted u[(t + 1) mod N] - u[t] (periodic in time: the
  loop's last frame is followed by its first); gx [N, H, W-1, C], gy [N, H-1, W, C] as in
  `screened_poisson`. D_t^T D_t is circulant, diagonalised by the FFT over time with eigenvalues
  2 - 2 cos(2 pi k / N); space as in `screened_poisson` (DCT-II, Neumann): one exact solve.
  """
  n, h, w = frames.shape[:3]
  def pad(g, axis, before):
    return jnp.pad(g, [((1, 0) if before else (0, 1)) if i == axis else (0, 0)
                       for i in range(4)])
  dtg = (jnp.roll(gt, 1, axis=0) - gt + pad(gx, 2, True) - pad(gx, 2, False)
         + pad(gy, 1, True) - pad(gy, 1, False))
  lam = ((2 - 2 * jnp.cos(2 * jnp.pi * jnp.arange(n // 2 + 1) / n))[:, None, None]
         + (2 - 2 * jnp.cos(jnp.pi * jnp.arange(h) / h))[None, :, None]
         + (2 - 2 * jnp.cos(jnp.pi * jnp.arange(w) / w))[None, None, :])
  spec = jax.scipy.fft.dctn(dtg + eps * frames, axes=(1, 2), norm='ortho')
  spec = jnp.fft.rfft(spec, axis=0) / (lam + eps)[..., None]
  spec = jnp.fft.irfft(spec, n=n, axis=0)
  return jax.scipy.fft.idctn(spec, axes=(1, 2), norm='ortho')


def _periodic_targets(video, phi):
  """(L, gt, gx, gy) of the 3-D blend: the plain loop L = V(x, phi) and target gradients.

  Space: as in `_blend_frame`, the mean of the two pixels' own consistent gradients. Time, from
  output frame t to (t + 1) mod N at pixel x: where phi does not go back (the loop runs on, or
  holds a frame while slowed down) the loop's own step L(t + 1) - L(t); at a wrap (phi goes
  back to the loop's start) the mean of the step that continues t's source,
  V(phi(t) + 1) - V(phi(t)), and the step that arrives at t + 1's source,
  V(phi(t + 1)) - V(phi(t + 1) - 1) (Liao 2015 / Hoppe's seam gradients in time; frames outside
  the clip are clamped)."""
  t_in, h, w = video.shape[:3]
  rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  at = lambda f, r=rows, c=cols: video[jnp.clip(f, 0, t_in - 1), r, c]
  L = at(phi)
  nxt = jnp.roll(phi, -1, axis=0)
  wrap = (nxt < phi)[..., None]
  seam = 0.5 * (at(phi + 1) - L + at(nxt) - at(nxt - 1))
  gt = jnp.where(wrap, seam, jnp.roll(L, -1, axis=0) - L)
  left, right, up, down = np.s_[:, :, :-1], np.s_[:, :, 1:], np.s_[:, :-1], np.s_[:, 1:]
  gx = 0.5 * (at(phi[left], rows, cols[:, 1:]) - L[left]
              + L[right] - at(phi[right], rows, cols[:, :-1]))
  gy = 0.5 * (at(phi[up], rows[1:], cols) - L[up] + L[down] - at(phi[down], rows[:-1], cols))
  return L, gt, gx, gy


@jax.jit
def _render_periodic(video, phi, eps):
  L, gt, gx, gy = _periodic_targets(video, phi)
  return jnp.clip(screened_poisson_periodic(L, gt, gx, gy, eps), 0.0, 1.0)


def render(video, periods, starts, num_frames: int, crossfade: int = CROSSFADE,
           blend: bool = True, stretch: bool = True, eps: float = SCREEN_EPS,
           method: str = 'frames') -> jax.Array:
  """The loop [num_frames, H, W, 3] of video [T, H, W, 3] under labels periods, starts [H, W].

  blend=False: exactly video[phi(x, t), x] (no cross-fade, no seam blend).
  blend=True, method='periodic' (Liao et al. 2015's gradient-domain loop blend): one
  screened Poisson solve over the whole loop in 3-D, periodic in time, whose target gradients
  are the loop's own except across spatial seams and loop wraps, where they are the mean of the
  two sources' gradients (`_periodic_targets`, `screened_poisson_periodic`); `crossfade` is
  unused.
  blend=True, method='frames' (default; the per-frame renderer the simulated preference panel
  was made with):
  1. temporal cross-fade of each pixel's last `crossfade` loop frames with the frames just
     before its start (see `_fade`; 0 turns it off);
  2. seam blend, per output frame and colour channel: with C the cross-faded frame, the target
     gradient g of each 4-connected edge (x, z) is the mean of V(z, .) - V(x, .) read at x's own
     sources and at z's own sources (the two consistent gradients); where x and z have the same
     label both equal C(z) - C(x). Then u = argmin ||grad u - g||^2 + eps ||u - C||^2 (screened
     Poisson, Neumann boundary, solved exactly by DCT: `screened_poisson`), clipped to [0, 1].
     This is Liao et al. 2015's gradient-domain blend simplified to independent 2D frames.
  """
  video = jnp.asarray(video, jnp.float32)
  _check_labels(video.shape, periods, starts)
  p, s = jnp.asarray(periods, jnp.int32), jnp.asarray(starts, jnp.int32)
  phi = time_map(p, s, num_frames, stretch)
  if not blend:
    h, w = p.shape
    return video[phi, jnp.arange(h)[:, None], jnp.arange(w)[None, :]]
  if method == 'periodic':
    return _render_periodic(video, phi, jnp.float32(eps))
  if method != 'frames':
    raise ValueError(f'render method {method!r}: use periodic or frames')
  return _render_blended(video, phi, p, s, jnp.int32(crossfade), jnp.float32(eps))


def label_images(periods, starts, num_periods_max: int,
                 T: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(period_rgb, start_rgb) uint8 [H, W, 3]: hue ramps red -> blue over periods in
  [0, num_periods_max] and starts in [0, T - 1] (T defaults to num_periods_max, so passing the
  clip length once colours both); static pixels (p = 1) grey in both maps (as Oh Fig. 3).
  """
  p, s = np.asarray(periods), np.asarray(starts)
  static = (p <= 1)[..., None]

  def paint(v, vmax):
    hue = (2 / 3) * np.clip(v / max(vmax, 1), 0.0, 1.0)
    return to_uint8(np.where(static, _GREY, np.asarray(hsv_to_rgb(hue, 1.0, 1.0))))

  return paint(p, num_periods_max), paint(s, (num_periods_max if T is None else T) - 1)


def loop_seam(frames) -> tuple[float, float]:
  """(seam, neighbour_median): mean |last - first frame| and the median over t of the mean
  |frame t+1 - frame t|. A seamless loop has seam no larger than its typical neighbour step."""
  f = jnp.asarray(frames, jnp.float32)
  steps = jnp.mean(jnp.abs(f[1:] - f[:-1]), axis=tuple(range(1, f.ndim)))
  return float(jnp.mean(jnp.abs(f[-1] - f[0]))), float(jnp.median(steps))


def _label_panel(fig, ax, values, static, name, unit, step):
  """One label map: looping pixels coloured by value with a stepped colour bar (one step per
  label, `step` frames apart), static pixels grey."""
  from matplotlib import colormaps, colors
  cmap = colormaps['viridis'].with_extremes(bad=(_GREY,) * 3)
  ax.set_title(name, fontsize='medium')
  ax.set_xticks([])
  ax.set_yticks([])
  loops = values[~static]
  if not loops.size:
    ax.imshow(np.full(values.shape + (3,), _GREY), interpolation='nearest')
    return
  lo, hi = int(loops.min()), int(loops.max())
  levels = np.arange(lo, hi + step, step)
  norm = colors.BoundaryNorm(np.append(levels, hi + step) - step / 2, cmap.N)
  im = ax.imshow(np.ma.masked_where(static, values), cmap=cmap, norm=norm,
                 interpolation='nearest')
  bar = fig.colorbar(im, ax=ax, shrink=0.9, label=unit)
  bar.set_ticks(levels[::max(1, -(-len(levels) // 10))])  # at most about 10 ticks
  bar.minorticks_off()


def label_figure(path: str, periods, starts, title: str | None = None, step: int = 4) -> str:
  """Writes the label maps of a loop as a PNG figure (atomically); returns path.

  Period p (left) and start s (right) per pixel, each with a colour bar in frames; static
  pixels (p = 1) are grey in both (as Oh Fig. 3) and named in the legend; `title` on top.
  Labels are multiples of `step` frames (the label quantum q)."""
  from matplotlib.patches import Patch
  from animgen import plot
  p, s = np.asarray(periods), np.asarray(starts)
  static = p <= 1
  h, w = p.shape
  scale = 420 / max(h, w)  # the longer side of each map drawn at about 420 px
  img_w, img_h = max(150, round(w * scale)), max(100, round(h * scale))
  fig = plot.new_figure(2 * (img_w + 140), img_h + 110)
  axes = fig.subplots(1, 2)
  _label_panel(fig, axes[0], p, static, 'loop period p', 'period (frames)', step)
  _label_panel(fig, axes[1], s, static, 'loop start s', 'start (input frame)', step)
  fig.legend(handles=[Patch(color=(_GREY,) * 3, label=f'static pixel (p = 1): '
                            f'{static.mean():.0%} of {w}x{h}')],
             loc='outside lower center', frameon=False)
  if title:
    fig.suptitle(title)
  return plot.save(fig, path)
