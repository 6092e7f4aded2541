"""Tests for animgen.media and animgen.ops.flow_viz (CPU, a few seconds)."""

import colorsys
import os
import struct
import subprocess
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from animgen import media
from animgen.errors import InputError
from animgen.ops import flow_viz

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHINA = os.path.join(REPO, 'data', 'photos', 'china.jpg')


def smooth_video(t, h, w):
  """A smooth, moving colour pattern in [0, 1] (easy for a video codec)."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  frames = []
  for i in range(t):
    r = 0.5 + 0.4 * np.sin(2 * np.pi * (xx / w + i / t))
    g = 0.2 + 0.6 * yy / max(h - 1, 1)
    b = 0.5 + 0.3 * np.cos(2 * np.pi * (yy / h - i / t) + xx / w)
    frames.append(np.stack([r, g, b], -1))
  return np.stack(frames).astype(np.float32)


def square_video(t, h, w):
  """A red square moving over a blue background: few colours, exact in a GIF."""
  frames = np.zeros((t, h, w, 3), np.uint8)
  frames[..., 2] = 200
  for i in range(t):
    x = (3 * i) % (w - 6)
    frames[i, 4:10, x:x + 6] = (255, 30, 0)
  return frames


def assert_one_line_error(excinfo, *needles):
  msg = str(excinfo.value)
  assert '\n' not in msg and msg.strip() == msg and msg
  for n in needles:
    assert n in msg, (n, msg)


def listdir_all(d):
  return sorted(os.listdir(d))


def ffprobe_pix_fmt(path):
  import imageio_ffmpeg
  out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-hide_banner', '-i', path],
                       capture_output=True, text=True).stderr
  line = next(l for l in out.splitlines() if 'Video:' in l)
  return line


# ------------------------------------------------------------------------------------- to_uint8


def test_to_uint8_rounds_clips_and_rejects_nan():
  x = np.array([-0.5, 0.0, 0.5, 1.0, 2.0, 127.4 / 255], np.float32)
  np.testing.assert_array_equal(media.to_uint8(x), [0, 0, 128, 255, 255, 127])
  u = np.arange(256, dtype=np.uint8)
  assert media.to_uint8(u) is u
  np.testing.assert_array_equal(media.to_uint8(jnp.array([0.0, 1.0])), [0, 255])
  with pytest.raises(ValueError):
    media.to_uint8(np.array([0.1, np.nan]))
  with pytest.raises(ValueError):
    media.to_uint8(np.array([0, 300]))


# --------------------------------------------------------------------------------- image round trips


def test_png_round_trip_within_one_level(tmp_path):
  rng = np.random.default_rng(0)
  img = rng.random((13, 17, 3), dtype=np.float32)
  p = tmp_path / 'sub' / 'x.png'  # parent folder is created
  media.write_image(p, img)
  back = media.read_image(p)
  assert back.dtype == np.float32 and back.shape == (13, 17, 3)
  assert np.abs(back - img).max() <= 0.5 / 255 + 1e-6
  u8 = (img * 255).astype(np.uint8)
  media.write_image(p, u8)
  np.testing.assert_array_equal(media.to_uint8(media.read_image(p)), u8)
  assert listdir_all(p.parent) == ['x.png']  # no temp left over


def test_jpeg_write_and_read(tmp_path):
  img = smooth_video(1, 40, 60)[0]
  p = tmp_path / 'x.jpg'
  media.write_image(p, img)
  assert Image.open(p).format == 'JPEG'
  back = media.read_image(p)
  assert back.shape == img.shape and np.abs(back - img).mean() < 0.02


def test_shipped_photo_and_licence():
  img = media.read_image(CHINA)
  assert img.shape == (427, 640, 3) and img.dtype == np.float32
  assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.1
  licence = open(os.path.join(REPO, 'data', 'LICENSE.md')).read()
  data = os.path.join(REPO, 'data')
  for root, _, files in os.walk(data):
    for f in files:
      rel = os.path.relpath(os.path.join(root, f), data)
      if rel != 'LICENSE.md':
        assert f'`{rel}`' in licence, f'{rel} is not listed in data/LICENSE.md'
  assert 'CC BY 2.0' in licence and 'danielbuechele' in licence


# ------------------------------------------------------------------------------------ input modes


def _write_png16_rgb(path, arr):
  """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
  h, w, _ = arr.shape
  raw = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))

  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def test_grey_8bit(tmp_path):
  p = tmp_path / 'g.png'
  Image.fromarray(np.full((3, 4), 128, np.uint8), 'L').save(p)
  x = media.read_image(p)
  assert x.shape == (3, 4, 3) and x.dtype == np.float32
  np.testing.assert_allclose(x, 128 / 255, atol=1e-7)


def test_grey_16bit_scaled_by_65535(tmp_path):
  p = tmp_path / 'g16.png'
  Image.fromarray(np.array([[65535, 0, 32768]], np.uint16)).save(p)
  assert Image.open(p).mode.startswith('I')
  x = media.read_image(p)
  assert x.shape == (1, 3, 3)
  np.testing.assert_allclose(x[0, :, 0], [1.0, 0.0, 32768 / 65535], atol=1e-6)
  np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_rgb_16bit_png(tmp_path):
  p = tmp_path / 'c16.png'
  a = np.zeros((2, 2, 3), np.uint16)
  a[0, 0] = 65535
  a[0, 1] = (65535, 0, 257 * 128)
  _write_png16_rgb(p, a)
  x = media.read_image(p)
  assert x.shape == (2, 2, 3)
  np.testing.assert_allclose(x[0, 0], 1.0)
  np.testing.assert_allclose(x[0, 1], [1.0, 0.0, 128 / 255], atol=1 / 255)
  np.testing.assert_allclose(x[1], 0.0)


def test_rgba_la_palette_bilevel_cmyk_float(tmp_path):
  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[..., 0] = 200
  rgba[..., 3] = 0  # fully transparent: alpha is dropped, colour kept
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'a.png')
  np.testing.assert_allclose(media.read_image(tmp_path / 'a.png')[0, 0], [200 / 255, 0, 0])

  Image.new('LA', (2, 2), (77, 10)).save(tmp_path / 'la.png')
  np.testing.assert_allclose(media.read_image(tmp_path / 'la.png'), 77 / 255, atol=1e-7)

  pal = Image.new('P', (3, 2), 1)
  pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
  pal.save(tmp_path / 'p.png')
  np.testing.assert_allclose(media.read_image(tmp_path / 'p.png')[1, 2],
                             np.array([10, 20, 30]) / 255, atol=1e-7)

  Image.new('1', (2, 2), 1).save(tmp_path / 'b.png')
  np.testing.assert_allclose(media.read_image(tmp_path / 'b.png'), 1.0)

  Image.new('CMYK', (2, 2), (0, 255, 255, 0)).save(tmp_path / 'c.tif')  # pure red
  np.testing.assert_allclose(media.read_image(tmp_path / 'c.tif')[0, 0], [1, 0, 0], atol=1e-7)

  Image.fromarray(np.array([[0.25, 2.0]], np.float32), 'F').save(tmp_path / 'f.tif')
  np.testing.assert_allclose(media.read_image(tmp_path / 'f.tif')[0, :, 1], [0.25, 1.0])


def test_exif_orientation_applied(tmp_path):
  img = np.zeros((2, 4, 3), np.uint8)  # 4 wide, 2 high; left half white
  img[:, :2] = 255
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 CW to display"
  p = tmp_path / 'o.png'
  Image.fromarray(img).save(p, exif=exif)
  x = media.read_image(p)
  assert x.shape == (4, 2, 3)
  # After rotating 90 degrees clockwise the white (left) half ends on top.
  assert x[0].min() > 0.9 and x[-1].max() < 0.1


# ------------------------------------------------------------------------------------ bad inputs


def _bad_files(tmp_path):
  (tmp_path / 'empty.jpg').write_bytes(b'')
  (tmp_path / 'notes.jpg').write_text('this is not an image\n')
  full = tmp_path / 'full.jpg'
  Image.fromarray((smooth_video(1, 64, 64)[0] * 255).astype(np.uint8)).save(full, quality=95)
  data = full.read_bytes()
  (tmp_path / 'half.jpg').write_bytes(data[:len(data) // 2])
  (tmp_path / 'folder').mkdir()
  return {
      'missing': (tmp_path / 'nope.jpg', 'no such file'),
      'dir': (tmp_path / 'folder', 'folder'),
      'empty': (tmp_path / 'empty.jpg', 'empty'),
      'text': (tmp_path / 'notes.jpg', 'not an image'),
      'truncated': (tmp_path / 'half.jpg', 'truncated'),
  }


@pytest.mark.parametrize('case', ['missing', 'dir', 'empty', 'text', 'truncated'])
def test_read_image_bad_inputs(tmp_path, case):
  path, needle = _bad_files(tmp_path)[case]
  with pytest.raises(InputError) as e:
    media.read_image(path)
  assert_one_line_error(e, needle, str(path))


def test_truncated_image_rejected_even_if_pillow_allows_it(tmp_path, monkeypatch):
  from PIL import ImageFile
  monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
  path, _ = _bad_files(tmp_path)['truncated']
  with pytest.raises(InputError):
    media.read_image(path)
  assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


@pytest.mark.parametrize('case', ['missing', 'empty', 'text', 'truncated'])
def test_read_video_bad_image_inputs(tmp_path, case):
  path, needle = _bad_files(tmp_path)[case]
  with pytest.raises(InputError) as e:
    media.read_video(path)
  assert_one_line_error(e, needle)


def test_read_video_bad_video_files(tmp_path):
  (tmp_path / 'empty.mp4').write_bytes(b'')
  (tmp_path / 'text.mp4').write_text('hello, not a video\n' * 50)
  for name, needle in [('empty.mp4', 'empty'), ('text.mp4', 'no moov atom'),
                       ('missing.avi', 'no such file')]:
    with pytest.raises(InputError) as e:
      media.read_video(tmp_path / name)
    assert_one_line_error(e, needle, name)
  # A folder with no frames.
  (tmp_path / 'nothing').mkdir()
  (tmp_path / 'nothing' / 'readme.txt').write_text('x')
  with pytest.raises(InputError) as e:
    media.read_video(tmp_path / 'nothing')
  assert_one_line_error(e, 'no image frames')


def test_read_video_audio_only_file_has_no_frames(tmp_path):
  import imageio_ffmpeg
  p = tmp_path / 'sound.mp4'
  subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-loglevel', 'error', '-f', 'lavfi',
                  '-i', 'anullsrc=r=8000:cl=mono', '-t', '0.2', '-c:a', 'aac', str(p)],
                 check=True)
  with pytest.raises(InputError) as e:
    media.read_video(p)
  assert_one_line_error(e, 'sound.mp4', 'no video stream')


def test_unknown_extensions_create_nothing(tmp_path):
  frames = np.zeros((2, 4, 4, 3), np.float32)
  with pytest.raises(InputError) as e:
    media.write_video(tmp_path / 'out.avi', frames)
  assert_one_line_error(e, '.avi', '.mp4', '.gif')
  with pytest.raises(InputError) as e:
    media.write_image(tmp_path / 'out.bmp', frames[0])
  assert_one_line_error(e, '.bmp', '.png')
  assert listdir_all(tmp_path) == []


# ----------------------------------------------------------------------------------- video round trips


@pytest.mark.parametrize('h,w', [(21, 33), (24, 32), (7, 5)])
def test_mp4_round_trip_exact_size(tmp_path, h, w):
  frames = smooth_video(12, h, w)
  p = tmp_path / 'v.mp4'
  media.write_video(p, frames, fps=24)
  assert listdir_all(tmp_path) == ['v.mp4']
  back, fps = media.read_video(p)
  assert back.shape == frames.shape and back.dtype == np.float32
  assert fps == pytest.approx(24.0)
  assert np.abs(back - frames).mean() < 0.05
  # Even sizes use the universally playable yuv420p; odd sizes yuv444p to keep the exact size.
  line = ffprobe_pix_fmt(str(p))
  assert ('yuv420p' in line) == (h % 2 == 0 and w % 2 == 0), line
  assert 'h264' in line and 'tv, bt709,' in line  # matrix, primaries and transfer all tagged
  first, _ = media.read_video(p, max_frames=5)
  assert first.shape[0] == 5
  np.testing.assert_array_equal(first, back[:5])


def test_truncated_mp4(tmp_path):
  p = tmp_path / 'v.mp4'
  noise = np.random.default_rng(0).random((30, 32, 32, 3), dtype=np.float32)  # big frames
  media.write_video(p, noise, fps=30)
  data = p.read_bytes()
  # Cut in the middle of the frame data: the decodable frames come back, with a warning.
  cut = tmp_path / 'cut.mp4'
  cut.write_bytes(data[:len(data) // 2])
  with pytest.warns(UserWarning, match='truncated'):
    frames, _ = media.read_video(cut)
  assert 0 < frames.shape[0] < 30
  # Cut before the first frame is complete: nothing decodes, so it is an error.
  cut.write_bytes(data[:1500])
  with pytest.raises(InputError) as e:
    media.read_video(cut)
  assert_one_line_error(e, 'cut.mp4')


def test_mp4_uint8_grey_input_and_fractional_fps(tmp_path):
  grey = (smooth_video(4, 16, 16)[..., 1] * 255).astype(np.uint8)  # [T, H, W]
  p = tmp_path / 'g.mp4'
  with pytest.raises(ValueError):  # ambiguous with an [H, W, 3] image: channel axis required
    media.write_video(p, grey)
  media.write_video(p, grey[..., None], fps=29.97)
  back, fps = media.read_video(p)
  assert back.shape == (4, 16, 16, 3) and fps == pytest.approx(29.97, abs=0.01)
  assert np.abs(back[..., 0] - grey / 255).mean() < 0.03


def test_gif_round_trip_exact_colours_and_loop(tmp_path):
  frames = square_video(8, 20, 30)
  frames[4] = frames[3]  # identical consecutive frames are merged by Pillow; must come back
  p = tmp_path / 'a.gif'
  media.write_video(p, frames, fps=25)
  with Image.open(p) as im:
    assert im.info.get('loop') == 0  # loops forever
    assert im.size == (30, 20)
  back, fps = media.read_video(p)
  assert back.shape == (8, 20, 30, 3)
  assert fps == pytest.approx(25.0)
  np.testing.assert_array_equal(media.to_uint8(back), frames)  # <= 256 colours: exact


def test_gif_photo_quality(tmp_path):
  photo = media.read_image(CHINA)[100:196:2, 200:328:2]  # 48x64 crop
  frames = np.stack([np.roll(photo, i, axis=1) for i in range(4)])
  p = tmp_path / 'photo.gif'
  media.write_video(p, frames, fps=30)
  back, fps = media.read_video(p)
  assert back.shape == frames.shape
  assert fps == pytest.approx(1000 / 30)  # GIF delays are whole centiseconds: 30 ms
  assert np.abs(back - frames).mean() < 0.03


def test_apng_round_trip_exact(tmp_path):
  frames = (smooth_video(5, 9, 11) * 255).astype(np.uint8)
  frames[2] = frames[1]
  p = tmp_path / 'a.png'
  media.write_video(p, frames, fps=10)
  back, fps = media.read_video(p)
  np.testing.assert_array_equal(media.to_uint8(back), frames)
  assert fps == pytest.approx(10.0)
  # read_image of an animated file gives its first frame.
  np.testing.assert_array_equal(media.to_uint8(media.read_image(p)), frames[0])


def test_png_folder_round_trip_exact(tmp_path):
  frames = (smooth_video(12, 9, 11) * 255).astype(np.uint8)
  out = tmp_path / 'frames'
  media.write_video(str(out) + '/', frames)
  names = listdir_all(out)
  assert names[0] == 'frame_00000.png' and len(names) == 12
  assert listdir_all(tmp_path) == ['frames']
  back, fps = media.read_video(out)
  np.testing.assert_array_equal(media.to_uint8(back), frames)
  assert fps == media.DEFAULT_FPS
  # Overwriting a folder of our own frames replaces it (no stale frames remain).
  media.write_video(out, frames[:3])
  assert len(os.listdir(out)) == 3
  assert listdir_all(tmp_path) == ['frames']


def test_folder_natural_order_and_size_check(tmp_path):
  d = tmp_path / 'clip'
  d.mkdir()
  for i in (1, 2, 10):
    Image.new('L', (3, 2), 10 * i).save(d / f'f{i}.png')
  (d / '.hidden.png').write_bytes(b'junk')
  frames, _ = media.read_video(d)
  np.testing.assert_allclose(frames[:, 0, 0, 0], np.array([10, 20, 100]) / 255)
  Image.new('L', (4, 2), 0).save(d / 'f11.png')
  with pytest.raises(InputError) as e:
    media.read_video(d)
  assert_one_line_error(e, 'f11.png')


def test_folder_with_foreign_files_is_not_replaced(tmp_path):
  d = tmp_path / 'mine'
  d.mkdir()
  (d / 'thesis.tex').write_text('precious')
  with pytest.raises(InputError) as e:
    media.write_video(d, np.zeros((2, 4, 4, 3)))
  assert_one_line_error(e, 'thesis.tex')
  assert listdir_all(d) == ['thesis.tex'] and listdir_all(tmp_path) == ['mine']


def test_read_real_gif_with_disposal(tmp_path):
  """A GIF written by Pillow with partial frames and 'restore to background' disposal."""
  base = Image.new('RGB', (8, 8), (0, 0, 255))
  dot = Image.new('RGB', (8, 8), (0, 0, 255))
  dot.paste((255, 0, 0), (2, 2, 4, 4))
  p = tmp_path / 'd.gif'
  base.save(p, save_all=True, append_images=[dot, base], duration=[50, 100, 50], loop=0)
  frames, fps = media.read_video(p)
  # 50 ms base: the 100 ms frame is shown twice.
  assert frames.shape == (4, 8, 8, 3) and fps == pytest.approx(20.0)
  np.testing.assert_allclose(frames[1, 3, 3], [1, 0, 0])
  np.testing.assert_allclose(frames[2, 3, 3], [1, 0, 0])
  np.testing.assert_allclose(frames[3, 3, 3], [0, 0, 1])


# --------------------------------------------------------------------------------------- atomicity


def test_mp4_failure_midway_leaves_nothing(tmp_path, monkeypatch):
  import imageio_ffmpeg
  frames = smooth_video(6, 16, 16)
  real_write_frames = imageio_ffmpeg.write_frames
  calls = []

  def write_frames(*args, **kwargs):  # the real encoder, failing at the second frame
    inner = real_write_frames(*args, **kwargs)
    inner.send(None)
    try:
      while True:
        frame = yield
        calls.append(1)
        if len(calls) > 1:
          raise RuntimeError('encoder exploded')
        inner.send(frame)
    finally:
      inner.close()

  monkeypatch.setattr(imageio_ffmpeg, 'write_frames', write_frames)
  with pytest.raises(RuntimeError, match='exploded'):
    media.write_video(tmp_path / 'v.mp4', frames)
  assert len(calls) == 2
  assert listdir_all(tmp_path) == []


def test_ffmpeg_error_exit_leaves_nothing(tmp_path, monkeypatch):
  monkeypatch.setenv('IMAGEIO_FFMPEG_EXE', 'false')  # exits 1 at once, says nothing
  with pytest.raises(OSError, match='ffmpeg'):
    media.write_video(tmp_path / 'v.mp4', smooth_video(3, 8, 8))
  assert listdir_all(tmp_path) == []


def test_ffmpeg_failure_is_one_line_and_quiet(tmp_path, monkeypatch, capfd):
  """ffmpeg's own error line becomes the message; nothing reaches the terminal."""
  fake = tmp_path / 'bin' / 'ffmpeg'
  fake.parent.mkdir()
  fake.write_text('#!/bin/sh\ncat > /dev/null\necho "[libx264 @ 0x1] broken encoder" >&2\n'
                  'echo "Error while opening encoder" >&2\nexit 1\n')
  fake.chmod(0o755)
  monkeypatch.setenv('IMAGEIO_FFMPEG_EXE', str(fake))
  out = tmp_path / 'out'
  with pytest.raises(OSError) as e:
    media.write_video(out / 'v.mp4', smooth_video(3, 8, 8))
  assert_one_line_error(e, 'ffmpeg', 'Error while opening encoder')
  assert listdir_all(out) == []
  monkeypatch.setenv('IMAGEIO_FFMPEG_EXE', str(tmp_path / 'no_such_ffmpeg'))
  with pytest.raises(OSError) as e:
    media.write_video(out / 'v.mp4', smooth_video(3, 8, 8))
  assert_one_line_error(e, 'cannot start ffmpeg')
  assert listdir_all(out) == []
  assert capfd.readouterr() == ('', '')


def test_mp4_writing_prints_nothing(tmp_path, capfd):
  media.write_video(tmp_path / 'v.mp4', smooth_video(4, 15, 17), fps=12)   # odd size too
  media.write_video(tmp_path / 'w.mov', smooth_video(4, 16, 16), fps=12)
  assert capfd.readouterr() == ('', '')
  assert media.read_video(tmp_path / 'w.mov')[0].shape == (4, 16, 16, 3)


@pytest.mark.parametrize('target', ['a.gif', 'a.png', 'frames', 'still.png'])
def test_pil_failure_midway_leaves_nothing_and_keeps_old_output(tmp_path, monkeypatch, target):
  frames = square_video(4, 16, 20)
  out = tmp_path / target
  still = target == 'still.png'  # write_image; the others are write_video
  write = (lambda f: media.write_image(out, f[0])) if still else (
      lambda f: media.write_video(out, f))
  write(frames)  # a previous good output
  before = sorted(os.walk(tmp_path))
  old = media.read_image(out) if still else media.read_video(out)[0]

  real_save = Image.Image.save
  calls = []

  def save(self, fp, *args, **kwargs):
    calls.append(1)
    if len(calls) == (2 if target == 'frames' else 1):
      with open(fp, 'wb') as f:
        f.write(b'GIF89a partial')  # half a file, then the failure
      raise OSError('disk full')
    return real_save(self, fp, *args, **kwargs)

  monkeypatch.setattr(Image.Image, 'save', save)
  with pytest.raises(OSError, match='disk full'):
    write(255 - frames)
  monkeypatch.undo()
  assert sorted(os.walk(tmp_path)) == before  # no temp files or folders
  new = media.read_image(out) if still else media.read_video(out)[0]
  np.testing.assert_array_equal(new, old)


def test_write_into_missing_parents_and_over_a_folder(tmp_path):
  p = tmp_path / 'a' / 'b' / 'v.gif'
  media.write_video(p, square_video(2, 16, 16))
  assert p.is_file()
  (tmp_path / 'dir.mp4').mkdir()
  with pytest.raises(InputError) as e:
    media.write_video(tmp_path / 'dir.mp4', square_video(2, 16, 16))
  assert_one_line_error(e, 'folder')


# --------------------------------------------------------------------------------------- flow_viz


def _hue(rgb):
  return colorsys.rgb_to_hsv(*np.asarray(rgb, np.float64))[0]


def test_flow_zero_is_white_and_max_is_saturated():
  flow = jnp.zeros((4, 5, 2))
  np.testing.assert_allclose(flow_viz.flow_to_rgb(flow), 1.0)
  flow = flow.at[1, 2].set(jnp.array([3.0, 0.0]))
  rgb = np.asarray(flow_viz.flow_to_rgb(flow))
  assert rgb.shape == (4, 5, 3) and rgb.dtype == np.float32
  np.testing.assert_allclose(rgb[1, 2], [1.0, 0.0, 0.0], atol=1e-6)  # right, at max: pure red
  np.testing.assert_allclose(rgb[0, 0], 1.0)
  half = np.asarray(flow_viz.flow_to_rgb(flow, max_mag=6.0))[1, 2]
  np.testing.assert_allclose(half, [1.0, 0.5, 0.5], atol=1e-6)  # half saturation
  over = np.asarray(flow_viz.flow_to_rgb(flow, max_mag=1.0))[1, 2]
  np.testing.assert_allclose(over, [0.75, 0.0, 0.0], atol=1e-6)  # beyond max: darkened


def test_flow_cardinal_directions_have_distinct_hues():
  dirs = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])  # right, down, left, up
  rgb = np.asarray(flow_viz.flow_to_rgb(dirs[:, None, :]))[:, 0]
  hues = [_hue(c) for c in rgb]
  np.testing.assert_allclose(hues, [0.0, 0.25, 0.5, 0.75], atol=1e-6)
  assert len({tuple(np.round(c, 3)) for c in rgb}) == 4
  # Opposite directions are complementary colours.
  np.testing.assert_allclose(rgb[0] + rgb[2], 1.0, atol=1e-6)


def test_flow_jit_vmap_and_shared_scale():
  rng = np.random.default_rng(0)
  flow = jnp.asarray(rng.normal(size=(3, 6, 7, 2)).astype(np.float32))
  eager = flow_viz.flow_to_rgb(flow)
  jitted = jax.jit(flow_viz.flow_to_rgb)(flow)
  np.testing.assert_allclose(jitted, eager, atol=1e-6)
  # max_mag can be traced; vmap over frames with one shared scale equals the batched call.
  m = jnp.max(jnp.linalg.norm(flow, axis=-1))
  mapped = jax.jit(jax.vmap(flow_viz.flow_to_rgb, in_axes=(0, None)))(flow, m)
  np.testing.assert_allclose(mapped, eager, atol=1e-5)
  # With max_mag=None the scale is over the whole input: exactly one pixel is fully saturated.
  sat = np.asarray(eager).max(-1) - np.asarray(eager).min(-1)
  assert np.sum(sat > 1 - 1e-5) == 1
  assert 0.0 <= float(eager.min()) and float(eager.max()) <= 1.0


def test_flow_gradients():
  from jax.test_util import check_grads
  with jax.enable_x64(True):
    rng = np.random.default_rng(1)
    flow = jnp.asarray(rng.uniform(-1, 1, size=(2, 3, 2)))
    fn = jax.jit(lambda f: flow_viz.flow_to_rgb(f, max_mag=2.0))
    check_grads(fn, (flow,), order=2, modes=('rev',))
    g = jax.grad(lambda f: flow_viz.flow_to_rgb(f).sum())(jnp.zeros((2, 2, 2)))
    assert np.all(np.isfinite(g))


def test_colour_wheel_legend():
  wheel = np.asarray(flow_viz.colour_wheel(65))
  assert wheel.shape == (65, 65, 3)
  np.testing.assert_allclose(wheel[32, 32], 1.0)  # centre: no motion
  np.testing.assert_allclose(wheel[0, 0], 1.0)  # outside the disc
  np.testing.assert_allclose(wheel[32, 64], [1, 0, 0], atol=1e-6)  # right edge = flow (+1, 0)
  np.testing.assert_allclose(wheel[32, 64], flow_viz.flow_to_rgb(jnp.array([[[1.0, 0.0]]]))[0, 0],
                             atol=1e-6)
  assert _hue(wheel[64, 32]) == pytest.approx(0.25, abs=1e-6)  # bottom = downward flow
