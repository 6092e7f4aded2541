"""Small line plots drawn with Pillow (no plotting library needed), written atomically as PNG."""
import os

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def _fmt(v: float) -> str:
  return f'{v:.3g}'


def line_panels(path: str, panels, xlabel: str = 'frame', size=(420, 300)) -> str:
  """panels: [(title, [(label, x, y_mean, y_lo or None, y_hi or None), ...]), ...] side by side.
  Lines are the means; the lo/hi curves are drawn as error bars at every x."""
  w, h = size
  img = Image.new('RGB', (w * len(panels), h), 'white')
  draw = ImageDraw.Draw(img)
  left, right, top, bottom = 52, 12, 24, 40
  for p, (title, series) in enumerate(panels):
    ox = p * w
    xs = np.concatenate([np.asarray(s[1], float) for s in series])
    ys = np.concatenate([np.asarray(v, float) for s in series for v in s[2:] if v is not None])
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = 0.0 if ys.min() >= 0 else float(ys.min()), float(ys.max())
    if x1 == x0:
      x1 = x0 + 1.0
    if y1 == y0:
      y1 = y0 + 1.0
    px = lambda x: ox + left + (x - x0) / (x1 - x0) * (w - left - right)
    py = lambda y: top + (1.0 - (y - y0) / (y1 - y0)) * (h - top - bottom)
    draw.rectangle([px(x0), py(y1), px(x1), py(y0)], outline=(0, 0, 0))
    draw.text((ox + left, 4), title, fill=(0, 0, 0))
    draw.text((ox + 2, py(y1) - 5), _fmt(y1), fill=(0, 0, 0))
    draw.text((ox + 2, py(y0) - 5), _fmt(y0), fill=(0, 0, 0))
    draw.text((px(x0) - 3, h - bottom + 4), _fmt(x0), fill=(0, 0, 0))
    draw.text((px(x1) - 12, h - bottom + 4), _fmt(x1), fill=(0, 0, 0))
    draw.text((ox + (w - len(xlabel) * 6) // 2, h - 16), xlabel, fill=(0, 0, 0))
    for k, (label, x, y, lo, hi) in enumerate(series):
      c = COLOURS[k % len(COLOURS)]
      x, y = np.asarray(x, float), np.asarray(y, float)
      draw.line([(px(a), py(b)) for a, b in zip(x, y)], fill=c, width=2)
      if lo is not None and hi is not None:
        for a, l, u in zip(x, np.asarray(lo, float), np.asarray(hi, float)):
          draw.line([(px(a), py(l)), (px(a), py(u))], fill=c, width=1)
      draw.text((ox + left + 6, top + 4 + 12 * k), label, fill=c)
  tmp = path + '.tmp.png'
  img.save(tmp)
  os.replace(tmp, path)
  return path
