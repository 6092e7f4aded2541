"""The figures animgen draws, with matplotlib, written atomically as PNG.

Figures are `matplotlib.figure.Figure` objects on the Agg canvas, created directly: no pyplot,
no global backend switch, no GUI and no state kept between calls, so plotting works on a
headless machine and inside any program that uses matplotlib itself. Every figure is written
through `animgen.media.atomic_file`: a reader never sees a half-written PNG.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

DPI = 100


def new_figure(width_px: int, height_px: int) -> Figure:
  """An empty figure of about width_px x height_px pixels with constrained layout (titles,
  labels, colour bars and outside legends are fitted in without overlapping)."""
  fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout='constrained')
  FigureCanvasAgg(fig)
  return fig


def save(fig: Figure, path: str) -> str:
  """Writes `fig` to `path` as PNG, atomically."""
  from animgen import media
  with media.atomic_file(path) as tmp:
    fig.savefig(tmp, format='png', dpi=DPI)
  return path


def _measure(title: str) -> str:
  """The y-axis label of a panel: its title up to ' per ' ('PSNR (dB) per generated frame' ->
  'PSNR (dB)'), else the whole title."""
  return title.split(' per ')[0] if ' per ' in title else title


def _draw_series(ax, k, label, x, y, lo, hi):
  """One series: the mean as a line; lo/hi (when both are given) as a shaded band. -> the
  legend handle (line over band when there is one)."""
  colour = f'C{k}'
  x = np.asarray(x, float)
  few = len(x) <= 12  # markers show where the samples are when there are few
  (line,) = ax.plot(x, np.asarray(y, float), color=colour, lw=1.8, marker='o' if few else None,
                    ms=3.5, zorder=3)
  if lo is None or hi is None:
    return line
  ax.fill_between(x, np.asarray(lo, float), np.asarray(hi, float), color=colour, alpha=0.22,
                  lw=0, zorder=2)
  return (Patch(color=colour, alpha=0.22, lw=0), line)


def _draw_panel(ax, title, series, xlabel):
  handles = [_draw_series(ax, k, *s) for k, s in enumerate(series)]
  ax.set_title(title, fontsize='medium')
  ax.set_xlabel(xlabel)
  ax.set_ylabel(_measure(title))
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.grid(alpha=0.3)
  # below the axes, so that no legend ever hides a curve
  ax.legend(handles, [s[0] for s in series], loc='upper center', bbox_to_anchor=(0.5, -0.16),
            ncol=min(len(series), 2), frameon=False, fontsize='small',
            handler_map={tuple: HandlerTuple(ndivide=1)})


def line_panels(path: str, panels, xlabel: str = 'frame', size=(480, 400)) -> str:
  """Line plots side by side, written to `path` as PNG; returns path.

  panels: [(title, [(label, x, y_mean, y_lo or None, y_hi or None), ...]), ...]. Each panel has
  its own axes: x labelled `xlabel`, y labelled with the title's measure (the title up to
  ' per '), lines for the means, a shaded band between lo and hi where both are given, and a
  legend under the axes. size: (width, height) in pixels of one panel.
  """
  w, h = size
  fig = new_figure(w * len(panels), h)
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  for ax, (title, series) in zip(axes, panels):
    _draw_panel(ax, title, series, xlabel)
  return save(fig, path)


def flow_key(path: str, max_mag: float, size: int = 256, unit: str = 'px') -> str:
  """Writes the colour key of flow_to_rgb as a labelled PNG figure (atomically); returns path.

  The wheel on axes dx (right) and dy (down, as image rows) in `unit`: the colour at (dx, dy)
  is that of a flow (dx, dy); its rim, radius = max_mag, is the magnitude drawn fully
  saturated. Pass the max_mag given to flow_to_rgb, or `max_magnitude(flow)` when it chose it.
  """
  from matplotlib.patches import Circle
  from animgen.ops.flow_viz import colour_wheel
  m = float(max_mag) if max_mag and max_mag > 0 else 1.0
  fig = new_figure(560, 560)
  ax = fig.subplots()
  ax.imshow(np.asarray(colour_wheel(size)), extent=(-m, m, m, -m), interpolation='bilinear')
  ax.add_patch(Circle((0, 0), m, fill=False, lw=1.0, ec='0.35'))
  ax.axhline(0, color='0.55', lw=0.6)
  ax.axvline(0, color='0.55', lw=0.6)
  for x, y, name in ((1, 0, 'right'), (0, 1, 'down'), (-1, 0, 'left'), (0, -1, 'up')):
    ax.text(1.12 * m * x, 1.12 * m * y, name, ha='center', va='center', fontsize='small',
            bbox={'fc': 'white', 'ec': 'none', 'pad': 1.5})
  ax.set_xlim(-1.25 * m, 1.25 * m)
  ax.set_ylim(1.25 * m, -1.25 * m)  # dy grows downwards, as image rows do
  ax.set_aspect('equal')
  ax.set_xlabel(f'dx ({unit}, + = right)')
  ax.set_ylabel(f'dy ({unit}, + = down)')
  ax.set_title(f'flow colour key: radius = max magnitude = {m:.3g} {unit}\n'
               'white: no motion; flows beyond the rim: 75 % brightness', fontsize='medium')
  return save(fig, path)
