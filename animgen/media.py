"""Reading and writing images, videos, GIFs and frame folders.

This is the one place where animgen touches media files. Readers return float32 RGB in [0, 1]
(images [H, W, 3], videos [T, H, W, 3]) and turn every problem with the file into a one-line
`InputError` that says what is wrong and what to do. Writers never leave a half-written output:
they write to a hidden temporary name next to the target and rename it into place at the end.

Back ends: Pillow for still images, GIF, animated PNG/WebP and frame folders; imageio-ffmpeg
(`read_frames`, `write_frames`, over the ffmpeg binary it ships) for MP4/MOV/MKV/AVI and other
video containers.
"""

from __future__ import annotations

import contextlib
import fractions
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, ImageSequence

from animgen.errors import InputError

DEFAULT_FPS = 30.0  # frame rate reported for a folder of frames (a folder stores none)

# Extensions read through Pillow (all frames of animated files); everything else goes to ffmpeg.
_PIL_EXTS = ('.gif', '.png', '.apng', '.webp', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
# Extensions accepted for frames inside a folder.
_FRAME_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
# Video containers written with libx264, and the ffmpeg muxer for each.
_VIDEO_MUXERS = {'.mp4': 'mp4', '.m4v': 'mp4', '.mov': 'mov', '.mkv': 'matroska'}
_IMAGE_FORMATS = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG'}
_FRAME_NAME = 'frame_{:05d}.png'
_FRAME_RE = re.compile(r'frame_\d+\.png')
_X264_CRF = 16  # x264 constant quality; 16 is visually near-lossless (default 23 blurs detail)


@contextlib.contextmanager
def _quiet_fork():
  """Silences JAX's os.fork() warning around starting ffmpeg: the child execs at once and runs
  no Python, so the deadlock the warning is about cannot happen."""
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=r'os\.fork\(\) was called', category=RuntimeWarning)
    yield


def _error(message: str) -> InputError:
  """An InputError whose message is guaranteed to be a single line."""
  return InputError(' '.join(str(message).split()))


def _check_file(path, what: str, allow_dir: bool = False) -> str:
  """Validates that `path` names a readable, non-empty file (or a folder when allowed)."""
  path = os.fspath(path)
  if not os.path.exists(path):
    parent = os.path.dirname(os.path.abspath(path))
    hint = '' if os.path.isdir(parent) else f' (folder {parent} does not exist either)'
    raise _error(f'no such file: {path}{hint}; check the path to {what}')
  if os.path.isdir(path):
    if allow_dir:
      return path
    raise _error(f'{path} is a folder, not {what}; pass a file inside it')
  if not os.path.isfile(path):
    raise _error(f'{path} is not a regular file; pass {what}')
  if not os.access(path, os.R_OK):
    raise _error(f'cannot read {path}: permission denied; fix its permissions')
  if os.path.getsize(path) == 0:
    raise _error(f'{path} is empty (0 bytes); re-export or re-download it')
  return path


# ----------------------------------------------------------------------------------- conversion


def to_uint8(frames) -> np.ndarray:
  """Converts float frames in [0, 1] (clipped) or integer frames in [0, 255] to uint8.

  Works on any shape (an image, a video, a batch). Rounds to nearest. Raises ValueError for NaN
  or Inf (a bug upstream, not something to hide in an output file).
  """
  x = np.asarray(frames)
  if x.dtype == np.uint8:
    return x
  if x.dtype == np.bool_:
    return x.astype(np.uint8) * 255
  if np.issubdtype(x.dtype, np.integer):
    if x.size and (x.min() < 0 or x.max() > 255):
      raise ValueError(f'integer frames must lie in [0, 255], got [{x.min()}, {x.max()}]')
    return x.astype(np.uint8)
  x = x.astype(np.float32)
  if not np.all(np.isfinite(x)):
    raise ValueError('frames contain NaN or Inf')
  return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_rgb_u8(frames, ndim: int) -> np.ndarray:
  """uint8 with 3 channels; 1 channel (grey) is repeated, a 4th (alpha) is dropped.

  An image may also be [H, W]; a video must have its channel axis ([T, H, W] would be
  ambiguous with an [H, W, 3] image passed by mistake).
  """
  x = to_uint8(frames)
  if ndim == 3 and x.ndim == 2:
    x = x[..., None]
  if x.ndim != ndim or x.shape[-1] not in (1, 3, 4):
    kind = 'image [H, W, 3]' if ndim == 3 else 'frames [T, H, W, 3]'
    raise ValueError(f'expected {kind}, got shape {x.shape}')
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
  elif x.shape[-1] == 4:
    x = x[..., :3]
  if min(x.shape[:-1]) < 1:
    raise ValueError(f'cannot write an empty array of shape {x.shape}')
  return np.ascontiguousarray(x)


def _pil_to_float(im: Image.Image, path) -> np.ndarray:
  """Any Pillow mode -> float32 RGB [H, W, 3] in [0, 1]; alpha is dropped."""
  mode = im.mode
  if mode.startswith('I;16'):  # 16-bit grey (e.g. 16-bit grey PNG)
    grey = np.asarray(im).astype(np.float32) / 65535.0
  elif mode == 'I':  # 32-bit int: Pillow's mode for 16-bit sources in many plugins
    grey = np.clip(np.asarray(im).astype(np.float32) / 65535.0, 0.0, 1.0)
  elif mode == 'F':  # float images are taken to be in [0, 1] already
    grey = np.clip(np.nan_to_num(np.asarray(im).astype(np.float32)), 0.0, 1.0)
  else:
    try:
      rgb = im.convert('RGB')  # L, 1, P, PA, LA, RGBA, CMYK, YCbCr, ...
    except ValueError as e:  # an unsupported mode; decoding errors (OSError) go to the caller
      raise _error(f'cannot convert {path} (mode {mode}) to RGB: {e}; save it as 8-bit RGB') from e
    return np.asarray(rgb, dtype=np.float32) / 255.0
  return np.repeat(grey[..., None], 3, axis=-1)


@contextlib.contextmanager
def _open_pil(path) -> Iterator[Image.Image]:
  """Image.open with file problems turned into InputError; truncated files are never accepted."""
  path = _check_file(path, 'an image')
  saved = ImageFile.LOAD_TRUNCATED_IMAGES
  ImageFile.LOAD_TRUNCATED_IMAGES = False  # another library may have switched it on
  try:
    try:
      im = Image.open(path)
    except Image.DecompressionBombError as e:
      raise _error(f'{path} is too large to decode safely ({e}); downscale it first') from e
    except Image.UnidentifiedImageError as e:
      raise _error(f'{path} is not an image Pillow can read (corrupt, or another file type '
                   'renamed); pass a PNG, JPEG, GIF, BMP, TIFF or WebP file') from e
    except OSError as e:
      raise _error(f'cannot open {path}: {e}; check the file') from e
    with im:
      yield im
  finally:
    ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _decode_frame(im: Image.Image, path, orient: bool) -> np.ndarray:
  """Fully decodes the current frame (so truncation is caught) and converts it."""
  try:
    im.load()
    if orient:
      try:
        im = ImageOps.exif_transpose(im)
      except Exception:  # a broken EXIF block should not stop reading the pixels
        pass
    return _pil_to_float(im, path)
  except InputError:
    raise
  except (OSError, ValueError, SyntaxError, EOFError) as e:
    raise _error(f'{path} is truncated or corrupt ({e}); re-export or re-download it') from e


# --------------------------------------------------------------------------------------- readers


def read_image(path) -> np.ndarray:
  """Reads any Pillow-readable image as float32 RGB [H, W, 3] in [0, 1].

  Grey (8/16/32-bit, float), palette, alpha (dropped, not composited), CMYK and YCbCr inputs are
  converted to RGB; 16-bit grey is scaled by 65535. EXIF orientation is applied. For an
  animated file the first frame is returned. Note: Pillow itself reduces 16-bit *colour* PNGs to
  8 bits per channel, so those keep only 8-bit precision.

  Raises:
    InputError: missing path, folder, empty/truncated/corrupt file, or not an image.
  """
  with _open_pil(path) as im:
    return _decode_frame(im, path, orient=True)


def natural_key(name: str):
  """Sort key for file names in natural order: digit runs compare as numbers ('frame_2' before
  'frame_10'), the rest case-insensitively; names equal under that compare as plain text."""
  parts = re.split(r'(\d+)', name)  # text, digits, text, ...: numbers sit at the odd places
  return [int(t) if i % 2 else t.lower() for i, t in enumerate(parts)], name


def _read_folder(path: str, max_frames):
  names = [n for n in os.listdir(path)
           if not n.startswith('.') and os.path.splitext(n)[1].lower() in _FRAME_EXTS
           and os.path.isfile(os.path.join(path, n))]
  if not names:
    raise _error(f'folder {path} holds no image frames ({", ".join(_FRAME_EXTS)}); '
                 'pass a folder of numbered frames or a video file')
  names.sort(key=natural_key)
  if max_frames is not None:
    names = names[:max_frames]
  frames = []
  for n in names:
    f = read_image(os.path.join(path, n))
    if frames and f.shape != frames[0].shape:
      raise _error(f'frame {n} in {path} is {f.shape[1]}x{f.shape[0]} but the first frame is '
                   f'{frames[0].shape[1]}x{frames[0].shape[0]}; all frames must have one size')
    frames.append(f)
  return np.stack(frames), DEFAULT_FPS


def _read_pil_frames(path: str, max_frames):
  """All frames of a (possibly animated) Pillow file, resampled to a constant frame rate.

  read_video returns one fps, so a frame shown for k times the shortest frame duration is
  repeated k times (rounded). This also restores frames that Pillow's GIF/APNG writers merge
  when consecutive frames are identical. GIF delays of 0-10 ms count as 100 ms, as in browsers.
  """
  frames, durations = [], []
  with _open_pil(path) as im:
    is_gif = im.format == 'GIF'
    n = getattr(im, 'n_frames', 1)
    for i, frame in enumerate(ImageSequence.Iterator(im)):
      if max_frames is not None and sum(_repeats(durations, is_gif)) >= max_frames:
        break
      try:
        frames.append(_decode_frame(frame, path, orient=(n == 1)))
      except InputError:
        if i == 0:
          raise
        raise _error(f'{path} is truncated or corrupt at frame {i} of {n}; '
                     're-export or re-download it') from None
      durations.append(frame.info.get('duration'))
  reps = _repeats(durations, is_gif)
  base = _base_duration(durations, is_gif)
  out = np.repeat(np.stack(frames), reps, axis=0)
  if max_frames is not None:
    out = out[:max_frames]
  fps = 1000.0 / base if base else DEFAULT_FPS
  return out, float(fps)


def _durations_ms(durations, is_gif):
  out = []
  for d in durations:
    d = float(d) if d else 0.0
    if is_gif and d <= 10.0:
      d = 100.0
    out.append(d)
  return out


def _base_duration(durations, is_gif):
  d = [x for x in _durations_ms(durations, is_gif) if x > 0]
  return min(d) if d else None


def _repeats(durations, is_gif):
  base = _base_duration(durations, is_gif)
  if base is None:
    return [1] * len(durations)
  return [max(1, int(round(d / base))) if d > 0 else 1 for d in _durations_ms(durations, is_gif)]


_FFMPEG_REASONS = (  # (phrase in ffmpeg's log, what to tell the user), most specific first
    ('does not contain any stream', 'it has no video stream'),
    ('matches no streams', 'it has no video stream'),
    ('moov atom not found', 'no moov atom: an incomplete MP4/MOV, or not one at all'),
    ('partial file', 'the file is incomplete'),
    ('Invalid data found', 'invalid data: not a video ffmpeg can read, or corrupt'),
)


def _ffmpeg_reason(err: Exception) -> str:
  """A short reason from an imageio-ffmpeg error text (which embeds ffmpeg's whole log)."""
  text = str(err)
  for phrase, reason in _FFMPEG_REASONS:
    if phrase in text:
      return reason
  lines = [re.sub(r'^\[[^\]]*\]\s*', '', l.strip()) for l in text.splitlines()]
  skip = ('ffmpeg version', 'built with', 'configuration:', 'lib', '===', 'Could not',
          'Conversion failed', 'frame=', 'Press [q]')
  useful = [l for l in lines if l and not l.startswith(skip)]
  return useful[-1][:200] if useful else type(err).__name__


def _read_ffmpeg(path: str, max_frames):
  import imageio_ffmpeg  # pylint: disable=g-import-not-at-top

  gen = imageio_ffmpeg.read_frames(path)
  frames = []
  try:
    try:
      with _quiet_fork():
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration) as e:
      raise _error(f'cannot decode {path} as a video ({_ffmpeg_reason(e)}); check that it is a '
                   'complete video file (MP4/H.264 is safest)') from e
    w, h = meta['size']
    try:
      for buf in gen:
        frames.append(np.frombuffer(buf, np.uint8).reshape(h, w, 3))
        if max_frames is not None and len(frames) >= max_frames:
          break
    except (OSError, RuntimeError) as e:
      if not frames:
        raise _error(f'cannot decode frames of {path} ({_ffmpeg_reason(e)}); '
                     're-export or re-download it') from e
      # A damaged tail: keep the frames that decoded, as players do.
  finally:
    gen.close()
  if not frames:
    raise _error(f'{path} contains no video frames; pass a video with at least one frame')
  fps = float(meta.get('fps') or 0.0)
  if not np.isfinite(fps) or fps <= 0:
    fps = DEFAULT_FPS
  expected = float(meta.get('duration') or 0.0) * fps
  if max_frames is None and len(frames) < 0.9 * expected - 1:
    # Not an error: the container duration can include a longer audio track.
    warnings.warn(f'{path}: decoded {len(frames)} frames but its duration suggests about '
                  f'{expected:.0f}; the file may be truncated', stacklevel=2)
  return np.stack(frames).astype(np.float32) / 255.0, fps


def read_video(path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
  """Reads a video as (frames float32 [T, H, W, 3] in [0, 1], fps).

  Accepts: video files decoded by ffmpeg (MP4, AVI, MOV, MKV, WebM, ...); GIF, APNG, animated
  WebP and still images via Pillow (frames composited by Pillow, then resampled to a constant
  rate, see `_read_pil_frames`); a folder of images, taken in natural order (frame_2 before
  frame_10), reported at DEFAULT_FPS.

  Args:
    path: file or folder.
    max_frames: keep at most this many frames from the start (None: all).

  Raises:
    InputError: missing, empty, corrupt or frameless input, or mixed frame sizes in a folder.
  """
  if max_frames is not None and max_frames < 1:
    raise ValueError(f'max_frames must be >= 1 or None, got {max_frames}')
  path = _check_file(path, 'a video', allow_dir=True)
  if os.path.isdir(path):
    return _read_folder(path, max_frames)
  if os.path.splitext(path)[1].lower() in _PIL_EXTS:
    return _read_pil_frames(path, max_frames)
  return _read_ffmpeg(path, max_frames)


# --------------------------------------------------------------------------------------- writers


def _tmp_name(path: str) -> str:
  head, tail = os.path.split(path)
  return os.path.join(head, f'.{tail}.{uuid.uuid4().hex[:8]}.tmp')


def _make_parent(path: str) -> None:
  parent = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(parent, exist_ok=True)
  except OSError as e:
    raise _error(f'cannot create folder {parent} for {path}: {e.strerror or e}') from e


def _remove(p: str) -> None:
  if os.path.isdir(p) and not os.path.islink(p):
    shutil.rmtree(p, ignore_errors=True)
  else:
    with contextlib.suppress(FileNotFoundError):
      os.remove(p)


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[str]:
  """Yields a hidden temp path next to `path`; renames it onto `path` if the body succeeds.

  The one way animgen writes a file: nothing half-written is ever left at `path`."""
  if os.path.isdir(path):
    raise _error(f'{path} is a folder; pass a file name for the output')
  _make_parent(path)
  tmp = _tmp_name(path)
  try:
    yield tmp
    if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
      raise OSError(f'the encoder produced no output for {path}')
    os.replace(tmp, path)
  except BaseException:
    _remove(tmp)
    raise


@contextlib.contextmanager
def _atomic_dir(path: str) -> Iterator[str]:
  """Like _atomic_file for a folder of frames; only ever replaces a folder of our own frames."""
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise _error(f'{path} exists and is a file; pass a new folder name for the frames')
    foreign = [n for n in os.listdir(path) if not _FRAME_RE.fullmatch(n)]
    if foreign:
      raise _error(f'folder {path} exists and holds other files (e.g. {foreign[0]}); '
                   'pass a new or empty folder for the frames')
  _make_parent(path)
  tmp = _tmp_name(path)
  os.mkdir(tmp)
  old = None
  try:
    yield tmp
    if os.path.isdir(path):
      old = _tmp_name(path)
      os.rename(path, old)
    os.rename(tmp, path)
  except BaseException:
    if old is not None and not os.path.exists(path):
      os.rename(old, path)  # put the previous frames back
      old = None
    _remove(tmp)
    raise
  finally:
    if old is not None:
      _remove(old)


def write_json(path: str, obj, indent: int | None = 1) -> None:
  """Writes `obj` as JSON atomically (values json cannot hold are written with str)."""
  import json
  with atomic_file(path) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(obj, f, indent=indent, default=str)


def write_text(path: str, text: str) -> None:
  """Writes a text file atomically."""
  with atomic_file(path) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)


def write_npz(path: str, **arrays) -> None:
  """Writes numpy arrays as an .npz atomically (read them with np.load(allow_pickle=False))."""
  with atomic_file(path) as tmp:
    with open(tmp, 'wb') as f:
      np.savez(f, **arrays)


OUTPUT_EXTS = ('.mp4', '.m4v', '.mov', '.mkv', '.gif', '.png', '.apng', '')


def check_output(path: str, flag: str = '-o') -> None:
  """InputError unless `path` is an animation output animgen can write (by extension; '' is a
  folder of frames) in a writable folder. Called before any work starts."""
  ext = os.path.splitext(path.rstrip('/'))[1].lower()
  if ext not in OUTPUT_EXTS:
    raise InputError(f'{flag} {path}: unknown extension {ext}; use .mp4, .gif, .png or a folder')
  _check_parent(path, flag)


def _check_parent(path: str, flag: str) -> None:
  check_can_make(os.path.dirname(os.path.abspath(path.rstrip('/'))) or '.', flag, path)


def check_can_make(folder: str, flag: str, shown: str | None = None) -> None:
  """InputError unless `folder` is a folder, or can be made in the nearest existing folder
  above it, and that folder is writable."""
  shown = shown or folder
  probe = os.path.abspath(os.path.expanduser(folder))
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.path.isdir(probe):
    raise InputError(f'{flag} {shown}: {probe} is a file, not a folder')
  if not os.access(probe, os.W_OK | os.X_OK):
    raise InputError(f'{flag} {shown}: folder {probe} is not writable; give a folder you can '
                     'write to')


def available_memory() -> int | None:
  """Bytes of memory available to a new allocation (Linux MemAvailable), None if unknown."""
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return None


def check_fits(nbytes: float, what: str, hint: str) -> None:
  """InputError, before any work, when `what` needs more memory than is available."""
  avail = available_memory()
  if avail is not None and nbytes > avail:
    raise InputError(f'{what} needs about {nbytes / 2**30:.1f} GiB, more than the '
                     f'{avail / 2**30:.1f} GiB of memory available: {hint}')


def check_distinct(inputs, outputs) -> None:
  """InputError if an output path is an input or two outputs are one file; `inputs` and
  `outputs` are (flag, path) pairs (paths compared after resolving links and case-free of
  trailing slashes). Called before any work starts."""
  key = lambda p: os.path.realpath(os.path.abspath(p.rstrip('/') or p))
  seen = {key(p): (f, p) for f, p in inputs if p}
  for flag, path in outputs:
    if not path:
      continue
    if key(path) in seen:
      other_flag, other = seen[key(path)]
      what = 'the input' if (other_flag, other) in inputs else f'the {other_flag} output'
      raise InputError(f'{flag} {path} is {what} {other}: give another output path')
    seen[key(path)] = (flag, path)


def check_data_output(path: str, flag: str = '-o', ext: str | None = None) -> None:
  """InputError unless `path` can be written as a data file with extension `ext` (None: a
  folder) in a writable folder. Called before any work starts."""
  if ext and not path.endswith(ext):
    raise InputError(f'{flag} {path}: use a {ext} path')
  if ext and os.path.isdir(path):
    raise InputError(f'{flag} {path}: is a folder; give a {ext} file name')
  if not ext and os.path.exists(path) and not os.path.isdir(path):
    raise InputError(f'{flag} {path}: is a file; give a folder')
  _check_parent(path, flag)


def _save_pil(im: Image.Image, path: str, fmt: str, **kwargs) -> None:
  """Saves one Pillow image atomically in format `fmt`."""
  with atomic_file(path) as tmp:
    im.save(tmp, format=fmt, **kwargs)


def write_image(path, image) -> None:
  """Writes an image ([H, W, 3] float in [0, 1] or uint8; grey/RGBA accepted) as PNG or JPEG.

  The file is written atomically; parent folders are created.

  Raises:
    InputError: an extension other than .png, .jpg, .jpeg.
  """
  path = os.fspath(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in _IMAGE_FORMATS:
    raise _error(f'cannot write image {path}: unknown extension {ext or "(none)"}; '
                 f'use one of {", ".join(_IMAGE_FORMATS)}')
  im = Image.fromarray(_as_rgb_u8(image, 3))
  fmt = _IMAGE_FORMATS[ext]
  _save_pil(im, path, fmt, **({'quality': 95} if fmt == 'JPEG' else {}))


# BT.709 matrix, limited range, tagged on the frames (encoder-level -color_* flags are overridden
# by untagged frames in recent ffmpeg, so players would have to guess).
_BT709 = ('scale=out_color_matrix=bt709:out_range=tv,'
          'setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv')


@contextlib.contextmanager
def _child_stderr(log) -> Iterator[None]:
  """Points file descriptor 2 at `log` while a child process starts, so that the child's
  messages land in `log` instead of on the user's terminal (imageio-ffmpeg lets ffmpeg inherit
  stderr). Python's own stderr is flushed first so nothing of it ends in `log`; the redirect
  lasts only for the start (milliseconds), the child keeps its copy of the descriptor."""
  try:
    sys.stderr.flush()
    saved = os.dup(2)
  except (AttributeError, OSError, ValueError):  # no usable stderr (None or closed)
    yield
    return
  try:
    os.dup2(log.fileno(), 2)
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)


def _log_tail(log) -> str:
  """The last non-empty line of ffmpeg's log file, or ''."""
  log.seek(0)
  lines = [l.strip() for l in log.read().decode(errors='replace').splitlines()]
  lines = [l for l in lines if l]
  return lines[-1][:200] if lines else ''


def _write_ffmpeg(path: str, frames: np.ndarray, fps: float, muxer: str) -> None:
  """H.264 (libx264, CRF _X264_CRF, BT.709) through imageio-ffmpeg's write_frames, atomically.

  yuv420p plays everywhere but needs even sizes (x264 and H.264 crop only in 2-pixel steps); odd
  sizes use yuv444p, which keeps the exact WxH (plays in ffmpeg/VLC/mpv, not in browsers). ffmpeg
  logs errors only, into a temporary file; write_frames does not report ffmpeg's exit status, so
  a failure is an error line in that log (-xerror makes every error fatal) or an empty output.
  """
  import imageio_ffmpeg  # pylint: disable=g-import-not-at-top

  _, h, w, _ = frames.shape
  pix_fmt = 'yuv420p' if w % 2 == 0 and h % 2 == 0 else 'yuv444p'
  params = ['-nostdin', '-xerror', '-vf', _BT709, '-crf', str(_X264_CRF), '-preset', 'medium',
            '-movflags', '+faststart', '-f', muxer]
  with atomic_file(path) as tmp, tempfile.TemporaryFile() as log:
    gen = imageio_ffmpeg.write_frames(
        tmp, (w, h), pix_fmt_in='rgb24', pix_fmt_out=pix_fmt, codec='libx264', quality=None,
        fps=fractions.Fraction(fps).limit_denominator(1001), macro_block_size=1,
        ffmpeg_log_level='error', output_params=params)
    try:
      with _quiet_fork(), _child_stderr(log):
        gen.send(None)  # starts ffmpeg
    except OSError as e:  # e.g. IMAGEIO_FFMPEG_EXE names no program
      raise OSError(f'cannot start ffmpeg: {e}') from e
    try:
      for frame in frames:
        gen.send(frame)
    except OSError as e:  # the pipe broke: ffmpeg stopped early
      gen.close()
      raise OSError(f'ffmpeg stopped while encoding: {_log_tail(log) or "no message"}') from e
    except BaseException:
      gen.close()
      raise
    gen.close()  # waits for ffmpeg to finish the file
    reason = _log_tail(log)
    if reason or not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
      raise OSError(f'ffmpeg failed: {reason or "it wrote no output"}')


def _global_palette(frames: np.ndarray):
  """A 'P' image holding one palette for all frames, and whether it is exact (<= 256 colours)."""
  flat = frames.reshape(-1, 3)
  step = max(1, flat.shape[0] // (512 * 512))
  sample = flat[::step]
  packed = lambda a: (a[:, 0].astype(np.uint32) << 16) | (a[:, 1].astype(np.uint32) << 8) | a[:, 2]
  colours = np.unique(packed(sample))
  if colours.size <= 256 and step > 1:
    colours = np.unique(packed(flat))
  if colours.size <= 256:
    rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], -1)
    pal = Image.new('P', (1, 1))
    pal.putpalette(rgb.astype(np.uint8).ravel().tolist())
    return pal, True
  strip = Image.fromarray(np.ascontiguousarray(sample[None]))
  return strip.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE), False


def _gif_duration_ms(fps: float) -> int:
  # GIF stores centiseconds; browsers play delays under 20 ms at 100 ms, so never go below 20.
  return int(max(20, 10 * round(100.0 / fps)))


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
  # One global palette (median cut over all frames) avoids the flicker of per-frame palettes;
  # Floyd-Steinberg dithering hides banding in skies. Exact when there are <= 256 colours.
  pal, exact = _global_palette(frames)
  dither = Image.Dither.NONE if exact else Image.Dither.FLOYDSTEINBERG
  ims = [Image.fromarray(f).quantize(palette=pal, dither=dither) for f in frames]
  with atomic_file(path) as tmp:
    ims[0].save(tmp, format='GIF', save_all=True, append_images=ims[1:], loop=0,
                duration=_gif_duration_ms(fps), optimize=False, disposal=1)


def _write_apng(path: str, frames: np.ndarray, fps: float) -> None:
  ims = [Image.fromarray(f) for f in frames]
  with atomic_file(path) as tmp:
    ims[0].save(tmp, format='PNG', save_all=True, append_images=ims[1:], loop=0,
                duration=1000.0 / fps, disposal=0, blend=0)


def _write_folder(path: str, frames: np.ndarray) -> None:
  with _atomic_dir(path) as tmp:
    for i, f in enumerate(frames):
      Image.fromarray(f).save(os.path.join(tmp, _FRAME_NAME.format(i)), format='PNG')


def write_video(path, frames, fps: float = 30) -> None:
  """Writes frames ([T, H, W, 3] float in [0, 1] or uint8; [T, H, W, 1] or 4 channels accepted).

  The format follows the path:
    .mp4/.m4v/.mov/.mkv  H.264 (libx264, CRF 16, BT.709) at the exact WxH (see _write_ffmpeg).
    .gif                 global adaptive palette, loops forever, delay rounded to 10 ms.
    .png/.apng           animated PNG (lossless), loops forever.
    no extension or a trailing '/': a folder of frame_00000.png, frame_00001.png, ...
  Writing is atomic (temp name + rename); on any failure nothing is left behind. Parent folders
  are created. An existing folder is only replaced if it holds nothing but frame_*.png files.

  Raises:
    InputError: unknown extension, or an output path that cannot be used.
  """
  raw = os.fspath(path)
  is_dir = raw.endswith(('/', os.sep))
  path = raw.rstrip('/' + os.sep) or raw
  ext = '' if is_dir else os.path.splitext(os.path.basename(path))[1].lower()
  supported = [*_VIDEO_MUXERS, '.gif', '.png', '.apng']
  if ext and ext not in supported:
    raise _error(f'cannot write video {raw}: unknown extension {ext}; use one of '
                 f'{", ".join(supported)}, or a folder name (no extension) for PNG frames')
  if not (np.isfinite(fps) and fps > 0):
    raise ValueError(f'fps must be a positive number, got {fps}')
  frames = _as_rgb_u8(frames, 4)
  try:
    if ext in _VIDEO_MUXERS:
      _write_ffmpeg(path, frames, float(fps), _VIDEO_MUXERS[ext])
    elif ext == '.gif':
      _write_gif(path, frames, float(fps))
    elif ext in ('.png', '.apng'):
      _write_apng(path, frames, float(fps))
    else:
      _write_folder(path, frames)
  except PermissionError as e:
    raise _error(f'cannot write {raw}: permission denied; choose a writable location') from e
