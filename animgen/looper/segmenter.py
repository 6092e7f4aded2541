"""Per-frame semantic responses from a user's segmentation model (`loop --segmenter MODEL`).

Oh et al. 2017 Sec. 3.1 run a PASCAL-Context FCN on every frame; here any ONNX (onnxruntime) or
TFLite model does: a PASCAL-Context (60 classes) or ADE20K (150) model is merged into Oh's 32
classes by the shipped tables, any other class list (`--segmenter-classes FILE`) is used as it
is, and a one-channel model is one class against the rest. Model contract: one image input,
float32 (normalised by `norm`) or uint8 (0-255), NCHW or NHWC with 3 channels, of any fixed or
free size; first output per-pixel class scores [1, C, h, w] (NHWC models: [1, h, w, C]; logits
or probabilities) or class ids [1, h, w]. Scores are resized bilinearly to the frame, then
softmaxed unless they already are probabilities. `person` is mediapipe's selfie segmentation
model, read from an installed mediapipe package (`person_model`).
"""
import functools
import json
import os
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from animgen.errors import InputError
from animgen.looper import semantics

# channel mean and std of the model input (images in [0, 1]); 'imagenet' is the convention of
# torchvision / mmsegmentation exports
NORMS = {'imagenet': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
         'unit': ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))}
_BY_COUNT = {60: 'pascal-context', 150: 'ade20k'}
# mediapipe's selfie segmentation model, inside the mediapipe package (0.10.14 ships it): input
# [1, 256, 256, 3] float32 in [0, 1], output [1, 256, 256, 1] person probability
PERSON_MODEL = ('modules', 'selfie_segmentation', 'selfie_segmentation.tflite')


def _one_line(e: Exception) -> str:
  return ' '.join(str(e).split())[:300] or type(e).__name__


def read_names(spec: str) -> list[str]:
  """The class names of --segmenter-classes: a shipped list ('pascal-context', 'ade20k'), a
  .json list or a text file with one name per line."""
  lists = semantics.class_lists()
  if spec in lists:
    return list(lists[spec])
  if not os.path.isfile(spec):
    raise InputError(f'--segmenter-classes {spec}: no such file; give {" or ".join(lists)} or '
                     'a file with one class name per line')
  try:
    with open(spec, encoding='utf-8') as f:
      text = f.read()
    names = json.loads(text) if spec.endswith('.json') else [
        n.strip() for n in text.splitlines() if n.strip()]
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise InputError(f'--segmenter-classes {spec}: cannot read it ({_one_line(e)}); give one '
                     'class name per line') from e
  if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
    raise InputError(f'--segmenter-classes {spec}: give a non-empty list of class names')
  return names


def class_names(spec: str | None, num: int) -> list[str]:
  """The model's `num` class names from `spec` (see `read_names`); None picks the shipped list
  with `num` classes."""
  if spec is None:
    if num not in _BY_COUNT:
      raise InputError(f'the segmenter has {num} classes, not PASCAL-Context\'s 60 or ADE20K\'s '
                       '150; name them with --segmenter-classes FILE (one name per line)')
    spec = _BY_COUNT[num]
  names = read_names(spec)
  if len(names) != num:
    raise InputError(f'--segmenter-classes {spec}: {len(names)} names for a model with {num} '
                     'classes; give one name per output channel')
  return names


class Model(NamedTuple):
  """A loaded segmentation model: run(x) -> first output; its input is uint8 (else float32),
  NCHW (else NHWC), of spatial dims `dims` (ints, or None/str where free)."""
  run: Callable[[np.ndarray], np.ndarray]
  uint8: bool
  nchw: bool
  dims: tuple


def _check_input(path, shape, kind):
  if len(shape) != 4 or 3 not in (shape[1], shape[3]) or kind not in ('float32', 'uint8'):
    raise InputError(f'--segmenter {path}: input is {kind} {list(shape)}; expected one float32 '
                     'or uint8 image [1, 3, H, W] or [1, H, W, 3]')


def _onnx(path: str) -> Model:
  try:
    import onnxruntime as ort
  except ImportError as e:
    raise InputError('--segmenter MODEL.onnx needs onnxruntime: pip install onnxruntime') from e
  try:
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
  except Exception as e:  # onnxruntime raises its own pybind classes for every kind of bad file
    raise InputError(f'--segmenter {path}: not a usable ONNX model ({_one_line(e)})') from e
  inp = sess.get_inputs()[0]
  shape = list(inp.shape)
  kind = {'tensor(float)': 'float32', 'tensor(uint8)': 'uint8'}.get(inp.type, inp.type)
  _check_input(path, shape, kind)
  nchw = shape[1] == 3
  return Model(lambda x: sess.run(None, {inp.name: x})[0], kind == 'uint8', nchw,
               tuple(shape[2:4] if nchw else shape[1:3]))


def _tflite(path: str) -> Model:
  try:
    from ai_edge_litert.interpreter import Interpreter
  except ImportError:  # TensorFlow (a dependency) still carries the same interpreter
    import tensorflow as tf
    Interpreter = tf.lite.Interpreter
  try:
    it = Interpreter(model_path=path)
    it.allocate_tensors()
  except Exception as e:  # the interpreter raises ValueError/RuntimeError for bad files
    raise InputError(f'--segmenter {path}: not a usable TFLite model ({_one_line(e)})') from e
  inp, out = it.get_input_details()[0], it.get_output_details()[0]
  shape = [int(d) for d in inp.get('shape_signature', inp['shape'])]  # -1: a free dimension
  _check_input(path, shape, np.dtype(inp['dtype']).name)
  nchw = shape[1] == 3 and shape[3] != 3

  def run(x):
    if list(x.shape) != [int(d) for d in it.get_input_details()[0]['shape']]:
      it.resize_tensor_input(inp['index'], list(x.shape))
      it.allocate_tensors()
    it.set_tensor(inp['index'], x)
    it.invoke()
    return it.get_tensor(out['index'])
  return Model(run, np.dtype(inp['dtype']) == np.uint8, nchw,
               tuple(shape[2:4] if nchw else shape[1:3]))


@functools.lru_cache(maxsize=4)  # `loop` checks the model before any work, then runs it
def _open(path: str) -> Model:
  if not os.path.isfile(path):
    raise InputError(f'--segmenter {path}: no such file; give an .onnx or .tflite segmentation '
                     'model, or person')
  return _tflite(path) if path.lower().endswith('.tflite') else _onnx(path)


def person_model() -> str:
  """The path of mediapipe's selfie segmentation model (`--segmenter person`), found in an
  installed mediapipe package without importing it."""
  import importlib.util
  how = ('pip install --no-deps mediapipe==0.10.14 (only its model file is read; mediapipe\'s '
         'own dependencies would downgrade protobuf)')
  spec = importlib.util.find_spec('mediapipe')
  if spec is None or not spec.submodule_search_locations:
    raise InputError(f'--segmenter person needs the selfie segmentation model of mediapipe: {how}')
  path = os.path.join(list(spec.submodule_search_locations)[0], *PERSON_MODEL)
  if not os.path.isfile(path):
    raise InputError(f'--segmenter person: this mediapipe ships no {PERSON_MODEL[-1]}: {how}')
  return path


def _size(dims, h: int, w: int) -> tuple[int, int]:
  """The model's fixed input size, or the frame's where a dimension is free."""
  fixed = [d if isinstance(d, int) and d > 0 else None for d in dims]
  return fixed[0] or h, fixed[1] or w


def check(path, classes: str | None = None, norm: str = 'imagenet') -> Model:
  """-> the loaded model; raises the InputError of a missing or unusable model, class list or
  norm (`loop` calls it before any work)."""
  if norm not in NORMS:
    raise InputError(f'--segmenter-norm {norm}: use one of {", ".join(NORMS)}')
  if classes is not None:
    read_names(classes)
  return _open(person_model() if path == 'person' else os.fspath(path))


def _scores(model: Model, path, video, norm):
  """The model's first output on each frame of video [T, H, W, 3] in [0, 1], frames resized
  to its input size and normalised; yields (frame index, output)."""
  t, h, w, _ = video.shape
  mh, mw = _size(model.dims, h, w)
  mean, std = (np.array(v, np.float32) for v in NORMS[norm])
  for i in range(t):
    frame = jax.image.resize(jnp.asarray(video[i], jnp.float32), (mh, mw, 3), 'bilinear',
                             antialias=True)
    x = np.asarray(frame)[None]
    x = (np.round(np.clip(x, 0, 1) * 255).astype(np.uint8) if model.uint8
         else ((x - mean) / std).astype(np.float32))
    x = x.transpose(0, 3, 1, 2) if model.nchw else x
    try:
      y = np.asarray(model.run(x))
    except Exception as e:  # the runtimes' own error classes
      raise InputError(f'--segmenter {path}: the model failed on a {list(x.shape)} frame '
                       f'({_one_line(e)})') from e
    yield i, y


def model_responses(path, video, classes: str | None = None, norm: str = 'imagenet',
                   say=None) -> tuple[np.ndarray, list[str]]:
  """(F float32 [T, H, W, C], names) of the ONNX or TFLite model `path` on video [T, H, W, 3]
  in [0, 1]; PASCAL-Context and ADE20K responses come merged into Oh's 32 classes
  (`semantics`). A model with one output channel gives the probability of one class against
  the rest (names: 'background' and that class, default 'person')."""
  path = person_model() if path == 'person' else os.fspath(path)
  model = check(path, classes, norm)
  t, h, w, _ = video.shape
  names, out = None, []
  for i, y in _scores(model, path, video, norm):
    if y.ndim == 4 and y.shape[0] == 1:
      scores = y[0].transpose(1, 2, 0) if model.nchw else y[0]
      if scores.shape[-1] == 1:  # one class against the rest: a probability or its logit
        names = names or ['background', *(read_names(classes)[-1:] if classes else ['person'])]
        p = jnp.asarray(scores, jnp.float32)
        p = jnp.where((p.min() >= 0) & (p.max() <= 1), p, jax.nn.sigmoid(p))
        p = jax.image.resize(p, (h, w, 1), 'bilinear')
        F = jnp.concatenate([1 - p, p], -1)
      else:
        names = names or class_names(classes, scores.shape[-1])
        F = _probabilities(jax.image.resize(jnp.asarray(scores, jnp.float32),
                                            (h, w, scores.shape[-1]), 'bilinear'))
    elif y.ndim == 3 and y.shape[0] == 1 and np.issubdtype(y.dtype, np.integer):
      if classes is None:
        raise InputError(f'--segmenter {path} outputs class ids, not scores: name its classes '
                         'with --segmenter-classes (pascal-context, ade20k or a file)')
      names = names or read_names(classes)
      if y.min() < 0 or y.max() >= len(names):
        raise InputError(f'--segmenter {path}: class ids up to {y.max()} for {len(names)} '
                         'classes; check --segmenter-classes')
      ids = jax.image.resize(jnp.asarray(y[0]), (h, w), 'nearest')
      F = jax.nn.one_hot(ids, len(names), dtype=jnp.float32)
    else:
      raise InputError(f'--segmenter {path}: first output is {y.dtype} {list(y.shape)}; expected '
                       'class scores [1, C, h, w] or class ids [1, h, w]')
    merged, oh_names = semantics.to_oh_classes(F, names)  # 32 channels per frame, not 150
    out.append(np.asarray(merged))
    if say is not None and i == 0:
      say(f'segmenter {os.path.basename(path)}: {len(names)} classes -> {len(oh_names)}')
  return np.stack(out), list(oh_names)


def _probabilities(scores) -> jax.Array:
  """Scores [..., C] as probabilities: kept where they already are (>= 0, summing to 1 per
  pixel), else softmax (logits)."""
  s = jnp.asarray(scores, jnp.float32)
  is_prob = (jnp.min(s) >= 0) & (jnp.max(jnp.abs(jnp.sum(s, -1) - 1)) < 1e-3)
  return jnp.where(is_prob, s / jnp.sum(s, -1, keepdims=True).clip(1e-12),
                   jax.nn.softmax(s, axis=-1))
