"""The figures animgen draws with matplotlib (animgen.plot, the flow colour key): readable PNGs
of a sensible size, written atomically."""
import os

import numpy as np
import pytest
from PIL import Image

from animgen import plot
from animgen.ops import flow_viz


def _open_png(path):
  with Image.open(path) as im:
    im.load()  # decodes every byte: a truncated file fails here
    return im.format, im.size, np.asarray(im.convert('RGB'))


def _panels():
  x = list(range(1, 24))
  m = 0.05 + 0.002 * np.arange(23)
  return [('RMSE per predicted frame (8 codes)',
           [('animgen (mean, min-max)', x, m, m - 0.01, m + 0.01),
            ('still input', x, m + 0.003, None, None)]),
          ('PSNR (dB) per generated frame', [('rollout', x[:5], [20, 19, 18, 17, 16], None, None)])]


def test_line_panels_png(tmp_path):
  path = tmp_path / 'eval.png'
  assert plot.line_panels(str(path), _panels()) == str(path)
  fmt, (w, h), rgb = _open_png(path)
  assert fmt == 'PNG' and (w, h) == (960, 400)  # two panels of the default 480 x 400
  assert rgb.std() > 10  # something is drawn on the white background
  assert os.listdir(tmp_path) == ['eval.png']  # no temporary file left
  assert plot._measure('PSNR (dB) per generated frame') == 'PSNR (dB)'  # the y-axis label


def test_line_panels_is_atomic(tmp_path, monkeypatch):
  (tmp_path / 'eval.png').write_bytes(b'old')

  def broken(*args, **kwargs):
    raise OSError('disk full')
  from matplotlib.figure import Figure
  monkeypatch.setattr(Figure, 'savefig', broken)
  with pytest.raises(OSError):
    plot.line_panels(str(tmp_path / 'eval.png'), _panels())
  assert os.listdir(tmp_path) == ['eval.png']
  assert (tmp_path / 'eval.png').read_bytes() == b'old'  # the old figure stays whole


def test_colour_wheel_figure(tmp_path):
  flow = np.zeros((2, 4, 4, 2), np.float32)
  flow[1, 2, 3] = [3.0, 4.0]
  assert flow_viz.max_magnitude(flow) == pytest.approx(5.0)
  path = tmp_path / 'key.png'
  assert plot.flow_key(str(path), flow_viz.max_magnitude(flow)) == str(path)
  fmt, (w, h), rgb = _open_png(path)
  assert fmt == 'PNG' and (w, h) == (560, 560)
  # the saturated hues of the wheel are in the figure: pure-ish red (right) and cyan (left)
  assert ((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).any()
  assert ((rgb[..., 0] < 60) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)).any()
  assert os.listdir(tmp_path) == ['key.png']
