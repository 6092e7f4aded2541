"""`loop --segmenter MODEL`: a user's ONNX or TFLite segmentation model run on every frame,
`--segmenter person`, and the shipped ADE20K -> Oh class table. The models here are built by
the tests (onnx.helper, TensorFlow's TFLite converter): 1x1 convolutions whose output is known
in closed form."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import ndimage

from animgen.errors import InputError
from animgen.looper import semantics, segmenter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def conv_model(path, weight, bias, *, nhwc=False, size=None, argmax=False, dtype='float'):
  """An ONNX model: per-pixel scores = weight @ x + bias (a 1x1 conv), [1, C, h, w]; with
  `argmax` the class ids [1, h, w] instead; `nhwc` takes and returns channels last."""
  c = weight.shape[0]
  h, w = size or ('H', 'W')
  elem = TensorProto.FLOAT if dtype == 'float' else TensorProto.UINT8
  shape = [1, h, w, 3] if nhwc else [1, 3, h, w]
  nodes, x = [], 'image'
  if dtype != 'float':
    nodes.append(helper.make_node('Cast', [x], ['xf'], to=TensorProto.FLOAT))
    x = 'xf'
  if nhwc:
    nodes.append(helper.make_node('Transpose', [x], ['nchw'], perm=[0, 3, 1, 2]))
    x = 'nchw'
  nodes.append(helper.make_node('Conv', [x, 'W', 'B'], ['scores']))
  out, out_shape, out_type = 'scores', [1, c, h, w], TensorProto.FLOAT
  if argmax:
    nodes.append(helper.make_node('ArgMax', ['scores'], ['ids'], axis=1, keepdims=0))
    out, out_shape, out_type = 'ids', [1, h, w], TensorProto.INT64
  elif nhwc:
    nodes.append(helper.make_node('Transpose', ['scores'], ['scores_nhwc'], perm=[0, 2, 3, 1]))
    out, out_shape = 'scores_nhwc', [1, h, w, c]
  graph = helper.make_graph(
      nodes, 'tiny_segmenter', [helper.make_tensor_value_info('image', elem, shape)],
      [helper.make_tensor_value_info(out, out_type, out_shape)],
      [numpy_helper.from_array(weight.reshape(c, 3, 1, 1).astype(np.float32), 'W'),
       numpy_helper.from_array(bias.astype(np.float32), 'B')])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
  model.ir_version = 8
  onnx.checker.check_model(model)
  onnx.save(model, str(path))
  return str(path)


def softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


@pytest.fixture
def video():
  return np.random.default_rng(0).uniform(0, 1, (3, 10, 12, 3)).astype(np.float32)


@pytest.fixture
def three_classes(tmp_path):
  path = tmp_path / 'classes.txt'
  path.write_text('sky\nwater\ncar\n')
  return str(path)


W3 = np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, 2.0], [0.3, 0.3, -2.0]])
B3 = np.array([0.1, -0.2, 0.3])


@pytest.mark.parametrize('nhwc', [False, True])
def test_scores_are_the_softmax_of_the_model_on_normalised_frames(tmp_path, video, three_classes,
                                                                  nhwc):
  model = conv_model(tmp_path / 'm.onnx', W3, B3, nhwc=nhwc)
  F, names = segmenter.model_responses(model, video, three_classes, 'imagenet')
  mean, std = (np.array(v) for v in segmenter.NORMS['imagenet'])
  x = (video - mean) / std
  assert names == ['sky', 'water', 'car']  # not PASCAL-Context or ADE20K: kept as given
  np.testing.assert_allclose(F, softmax(x @ W3.T + B3), atol=1e-5)


def test_uint8_input_and_a_fixed_model_size(tmp_path, video, three_classes):
  """A uint8 model gets 0-255 frames; a fixed 5x6 model input is resized to, and its scores
  back from, the 10x12 frame (bilinear), then softmaxed."""
  import jax
  model = conv_model(tmp_path / 'm.onnx', W3, B3, size=(5, 6), dtype='uint8')
  F, _ = segmenter.model_responses(model, video, three_classes)
  small = np.asarray(jax.image.resize(video, (3, 5, 6, 3), 'bilinear', antialias=True))
  scores = np.round(np.clip(small, 0, 1) * 255) @ W3.T + B3
  big = np.asarray(jax.image.resize(scores, (3, 10, 12, 3), 'bilinear'))
  assert F.shape == (3, 10, 12, 3)
  np.testing.assert_allclose(F, softmax(big), atol=1e-4)


def test_class_ids_become_one_hot(tmp_path, video, three_classes):
  model = conv_model(tmp_path / 'm.onnx', W3, B3, argmax=True)
  F, _ = segmenter.model_responses(model, video, three_classes, 'unit')
  expect = np.eye(3)[np.argmax(video @ W3.T + B3, -1)]
  np.testing.assert_array_equal(F, expect)
  with pytest.raises(InputError, match='class ids, not scores'):
    segmenter.model_responses(model, video, None, 'unit')


def test_a_150_class_model_is_merged_into_ohs_32_by_the_ade20k_table(tmp_path, video):
  """Without --segmenter-classes, 150 outputs are ADE20K's: each Oh class sums its members."""
  rng = np.random.default_rng(1)
  w, b = rng.normal(0, 1, (150, 3)), rng.normal(0, 1, 150)
  F, names = segmenter.model_responses(conv_model(tmp_path / 'ade.onnx', w, b), video)
  mean, std = (np.array(v) for v in segmenter.NORMS['imagenet'])
  p = softmax(((video - mean) / std) @ w.T + b)
  ade, to_class = semantics.ade20k_table()
  oh = list(semantics.class_table().classes)
  assert names == oh and F.shape == (3, 10, 12, 32)
  water = [i for i, n in enumerate(ade) if n in ('sea', 'river', 'lake', 'water')]
  assert len(water) == 4 and all(to_class[i] == oh.index('water') for i in water)
  np.testing.assert_allclose(F[..., oh.index('water')], p[..., to_class == oh.index('water')].sum(-1),
                             atol=1e-5)
  np.testing.assert_allclose(F.sum(-1), 1.0, atol=1e-5)


def test_the_ade20k_table_agrees_with_the_pascal_context_table():
  """150 distinct names, each mapped to one of Oh's 32, and a name both datasets have goes where
  PASCAL-Context's table sends it (the one mapping Oh published)."""
  ade, to_class = semantics.ade20k_table()
  table = semantics.class_table()
  assert len(ade) == 150 and len(set(ade)) == 150
  assert to_class.min() >= 0 and to_class.max() < len(table.classes)
  shared = [n for n in ade if n in table.pascal]
  assert len(shared) >= 30
  for n in shared:
    assert to_class[ade.index(n)] == table.to_class[table.pascal.index(n)], n
  assert semantics.is_natural('sea') and semantics.is_natural('palm')
  assert not semantics.is_natural('television receiver')
  with open(os.path.join(ROOT, 'data', 'looper', 'ade20k_32.json')) as f:
    assert [r['id'] for r in json.load(f)['classes']] == list(range(1, 151))


def test_bad_models_and_class_lists_are_input_errors(tmp_path, video, three_classes):
  with pytest.raises(InputError, match='no such file'):
    segmenter.check(tmp_path / 'missing.onnx')
  junk = tmp_path / 'junk.onnx'
  junk.write_bytes(b'not a model')
  with pytest.raises(InputError, match='not a usable ONNX model'):
    segmenter.check(junk)
  model = conv_model(tmp_path / 'm.onnx', W3, B3)
  with pytest.raises(InputError, match='3 classes, not PASCAL'):
    segmenter.model_responses(model, video)
  two = tmp_path / 'two.txt'
  two.write_text('sky\nwater\n')
  with pytest.raises(InputError, match='2 names for a model with 3'):
    segmenter.model_responses(model, video, str(two))
  with pytest.raises(InputError, match='--segmenter-norm'):
    segmenter.check(model, None, 'zscore')


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'animgen.cli', 'loop', *args], cwd=ROOT,
                        capture_output=True, text=True)


def test_loop_with_a_segmenter_loops_the_dynamic_class(tmp_path):
  """A clip with a textured still background and a square whose content has period 16; the
  segmenter calls the square's pixels 'water' (by their blue channel, which only the square
  has). The water class is the candidate and loops; the background stays still."""
  from test_looper_stages import periodic_square
  from animgen import media
  video, square = periodic_square(T=32, H=40, W=40, lo=8, hi=32)
  video[..., 2] = np.where(square, 0.9, 0.1)  # blue marks the square
  clip = tmp_path / 'frames'  # a folder of PNG frames: lossless, unlike a GIF's dithered palette
  media.write_video(str(clip), video, fps=10)
  classes = tmp_path / 'classes.txt'
  classes.write_text('wall\nwater\n')
  # scores: wall = 0, water = 20 * (blue - 0.5): a sharp, linear classifier of the blue channel
  model = conv_model(tmp_path / 'seg.onnx', np.array([[0, 0, 0], [0, 0, 20.0]]),
                     np.array([0.0, -10.0]))
  out, labels = tmp_path / 'loop.gif', tmp_path / 'labels.npz'
  r = _cli(str(clip), '-o', str(out), '--segmenter', model, '--segmenter-classes', str(classes),
           '--segmenter-norm', 'unit', '--min-period', '8', '--coarse', '1',
           '--labels-out', str(labels))
  assert r.returncode == 0, r.stderr
  assert 'segmentation seg.onnx: water' in r.stderr
  with np.load(labels) as d:
    periods = d['periods'][0]
  assert np.mean(periods[square] % 16 == 0) > 0.9 and np.mean(periods[square] > 1) > 0.9
  far = ~ndimage.binary_dilation(square, iterations=2)
  assert np.all(periods[far] == 1)  # the background stays still


@pytest.mark.parametrize('extra, message', [
    (('--segmenter', 'missing.onnx'), '--segmenter missing.onnx: no such file'),
    (('--segmenter-classes', 'ade20k'), 'give the model too'),
    (('--segmenter', 'junk.onnx'), 'not a usable ONNX model'),
    (('--segmenter', 'junk.onnx', '--segmentation', 'x.npz'), 'use one'),
])
def test_loop_segmenter_errors_are_one_line_exit_2(tmp_path, extra, message):
  (tmp_path / 'junk.onnx').write_bytes(b'\x00junk')
  extra = [str(tmp_path / a) if a.endswith('.onnx') or a.endswith('.npz') else a for a in extra]
  out = tmp_path / 'out' / 'x.gif'
  out.parent.mkdir()
  r = _cli('data/clips/newtonscradle.gif', '-o', str(out), '--min-period', '16', *extra)
  assert r.returncode == 2
  assert message.replace('missing.onnx', str(tmp_path / 'missing.onnx')) in r.stderr, r.stderr
  assert len(r.stderr.strip().splitlines()) == 1, r.stderr
  assert not list(out.parent.iterdir())


def tflite_person_model(path, weight, bias, size=None):
  """A TFLite model as mediapipe's selfie segmentation is one: NHWC float input, one sigmoid
  output channel (here sigmoid(weight . rgb + bias) per pixel, a 1x1 convolution)."""
  import tensorflow as tf
  h, w = size or (None, None)
  inp = tf.keras.Input((h, w, 3), batch_size=1)
  conv = tf.keras.layers.Conv2D(1, 1, activation='sigmoid')
  model = tf.keras.Model(inp, conv(inp))
  conv.set_weights([np.asarray(weight, np.float32).reshape(1, 1, 3, 1),
                    np.asarray([bias], np.float32)])
  with open(path, 'wb') as f:
    f.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
  return str(path)


def test_a_tflite_model_with_one_channel_is_a_class_against_the_rest(tmp_path, video):
  """Fixed 6x8 input: frames resized to it, the probability resized back, [1 - p, p]."""
  import jax
  w, b = np.array([3.0, -2.0, 1.0]), -0.5
  model = tflite_person_model(tmp_path / 'p.tflite', w, b, size=(6, 8))
  F, names = segmenter.model_responses(model, video, None, 'unit')
  small = np.asarray(jax.image.resize(video, (3, 6, 8, 3), 'bilinear', antialias=True))
  p = 1 / (1 + np.exp(-(small @ w + b)))
  p = np.asarray(jax.image.resize(p[..., None], (3, 10, 12, 1), 'bilinear'))[..., 0]
  assert names == ['background', 'person'] and F.shape == (3, 10, 12, 2)
  np.testing.assert_allclose(F[..., 1], p, atol=1e-5)
  np.testing.assert_allclose(F.sum(-1), 1.0, atol=1e-6)


def test_person_needs_the_mediapipe_model_file(monkeypatch):
  import importlib.util
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(InputError, match='pip install --no-deps mediapipe==0.10.14'):
    segmenter.check('person')


def test_segmenter_person_protects_the_person_and_loops_the_water(tmp_path, monkeypatch):
  """`--segmenter person` on the Fig. 3 clip, with a stand-in person model that finds the
  person by its blue channel: the motion fallback's water region is a natural candidate, the
  person a non-natural one carved out of the motion regions; 95 % of the person stays on one
  period (Liao's energy: 48 %, test_looper_stages), the water loops with a multiple of 24."""
  import types
  from test_looper_stages import person_beside_water
  from animgen.looper import command, stages
  video, labels = person_beside_water()
  person, water = labels == 2, labels == 1
  video[..., 2] = np.where(person, 0.95, 0.5 * video[..., 2])   # only the person is this blue
  model = tflite_person_model(tmp_path / 'selfie.tflite', [0, 0, 40.0], -30.0)
  monkeypatch.setattr(segmenter, 'person_model', lambda: model)
  args = types.SimpleNamespace(segmentation=None, segmenter='person', segmenter_classes=None,
                               segmenter_norm='imagenet', top_k=4, candidates=1)
  F, natural, maps, names = command.candidates(video, args, lambda line: None)
  assert 'person' in names and any(n.startswith('region ') for n in names), names
  pmap = maps[names.index('person')]
  assert (pmap == person).mean() > 0.99
  regions = maps[[n.startswith('region ') for n in names]].any(0)
  np.testing.assert_array_equal(natural, regions)         # the motion regions count as natural
  assert not natural[person].any() and natural[water].mean() > 0.4  # the fallback finds half
  loop = stages.solve(video, stages.LoopConfig(min_period=8), semantics=F, natural=natural,
                      targets=maps.any(0, keepdims=True))[0]
  counts = np.unique(loop.periods[person], return_counts=True)[1]
  assert counts.max() >= 0.9 * person.sum(), np.unique(loop.periods[person], return_counts=True)
  assert np.mean(loop.periods[water & natural] % 24 == 0) > 0.95
