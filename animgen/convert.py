"""`animgen convert`: the official Animating Landscape PyTorch checkpoints -> animgen runs.

The official code (endo-yuki-t/Animating-Landscape, PyTorch 0.4) saves, per epoch E,

  PMNet_weight_E.pth   motion predictor P^M          -> motion run, params['predictor']
  EMNet_weight_E.pth   motion encoder E^M (train.py) -> motion run, params['encoder']
  PANet_weight_E.pth   appearance predictor P^A      -> appearance run, params['predictor']
  EANet_weight_E.pth   appearance encoder E^A        -> appearance run, params['encoder']
  codebook_m_E.pkl     <= 100 x 8 KMeans centres     -> codebook_motion.npz
  codebook_a_E.pkl     list of [frames, 8] per clip  -> codebook_appearance.npz

The published pretrained models ship PMNet, PANet, EANet and both codebooks but no EMNet (the
official generation never encodes a motion field). Without it the motion run's encoder keeps
animgen's random initialisation: generation only uses P^M and the codebook, but E^M codes of
that run (evaluation with ground-truth flows, new codebooks) are meaningless.

Layouts: torch conv weights are [out, in, kh, kw] and flax kernels [kh, kw, in, out]; torch
Linear weights are [out, in] and flax Dense kernels [in, out]. Both sides concatenate z after
the features and skips after the upsampled path, so the input channels keep their order. The
official code read images with OpenCV (BGR) while animgen works in RGB: the colour input
channels of P^M, P^A and E^A are reversed, and so are P^A's scale and bias output channels,
so that the converted networks given RGB compute exactly what the official ones computed given
BGR. Flows keep their (x, y) channel order.

The official encoders ran BatchNorm in training mode at test time (batch statistics of the one
input, also when the appearance codebook was built). The running statistics are converted too,
and config.json records the conversion ('converted_from'): `animgen animate` then runs E^A
with batch statistics as the official test code did (animgen.animate.appearance_model).

Codebooks are Python-2 pickles; unpickling can run code, so they are read only with
`--trust-pickle` (and even then only numpy arrays and lists are accepted).
"""
import glob
import os
import pickle
import re
import shutil
import sys
import tempfile

import numpy as np

from animgen import validate
from animgen.errors import InputError

MOTION_FILES = ('PMNet', 'EMNet')
APPEARANCE_FILES = ('PANet', 'EANet')
ENCODER_SIZE = 128  # the official encoders see 128 x 128 inputs (AvgPool2d(8) on 8 x 8)

# Keys of the official state dicts that animgen has no use for.
_IGNORED = (re.compile(r'^fc1\.(weight|bias)$'),           # P^A's unused Linear(512, 6)
            re.compile(r'.*\.num_batches_tracked$'))     # BatchNorm counter (torch >= 0.4.1)


# ----------------------------------------------------------------------------- reading
def _torch():
  try:
    import torch
  except ImportError:
    raise InputError("reading .pth files needs PyTorch: pip install 'animgen[convert]'") from None
  return torch


def load_state_dict(path: str) -> dict:
  """A .pth state dict -> {name: float32 numpy array} (integer counters kept as they are).

  Loaded with weights_only=True: tensors and plain containers only, no code."""
  torch = _torch()
  if not os.path.isfile(path):
    raise InputError(f'{path} does not exist: pass the folder holding the official '
                     '*_weight_<epoch>.pth files')
  try:
    sd = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pickle, zip and weights-only errors all mean: not a usable file
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise InputError(f'{path} is not a readable PyTorch state dict ({type(e).__name__}: '
                     f'{msg}): pass an official *_weight_<epoch>.pth file') from None
  if not isinstance(sd, dict) or not all(isinstance(k, str) for k in sd):
    raise InputError(f'{path} holds a {type(sd).__name__}, not a state dict of named tensors: '
                     'pass an official *_weight_<epoch>.pth file')
  out = {}
  for k, v in sd.items():
    if not isinstance(v, torch.Tensor):
      raise InputError(f'{path}: entry {k!r} is a {type(v).__name__}, not a tensor: pass an '
                       'official *_weight_<epoch>.pth file')
    a = v.detach().cpu().numpy()
    out[k] = a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a
  return out


_PICKLE_GLOBALS = {
    ('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode'),
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
}


class _ArrayUnpickler(pickle.Unpickler):
  """Python-2 pickles of numpy arrays and lists; any other global is refused."""

  def find_class(self, module, name):
    if (module, name) not in _PICKLE_GLOBALS:
      raise pickle.UnpicklingError(f'refers to {module}.{name}, which a codebook never needs')
    if module == 'numpy.core.multiarray':  # Python 2 / numpy 1 name of numpy._core
      module = 'numpy._core.multiarray' if hasattr(np, '_core') else module
    return super().find_class(module, name)


def load_pickle(path: str, trust_pickle: bool):
  """An official codebook pickle. Refused unless trust_pickle (unpickling can run code)."""
  name = os.path.basename(path)
  if not trust_pickle:
    raise InputError(f'{path} is a Python pickle, which can run code when read: pass '
                     f'--trust-pickle if it comes from a source you trust, or move {name} out '
                     'of MODEL_DIR to convert the weights without it')
  print(f'animgen: warning: reading the Python pickle {path} (--trust-pickle): only numpy '
        'arrays and lists are accepted, but use only files from a source you trust',
        file=sys.stderr, flush=True)
  try:
    with open(path, 'rb') as f:
      return _ArrayUnpickler(f, encoding='latin1').load()
  except Exception as e:
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise InputError(f'{path} is not a readable codebook pickle ({type(e).__name__}: {msg}): '
                     'pass the official codebook_*_<epoch>.pkl') from None


def motion_codebook(obj, latent_dim: int, source: str = 'codebook_m') -> np.ndarray:
  """Official codebook_m ([K, Z] KMeans centres, already sorted) -> float32 [K, Z]."""
  try:
    book = np.asarray(obj, np.float32)
  except (TypeError, ValueError):
    book = None
  if book is None or book.ndim != 2 or book.shape[0] < 1 or book.shape[1] != latent_dim:
    shape = None if book is None else book.shape
    raise InputError(f'{source}: expected a [codes, {latent_dim}] array of motion codes, got '
                     f'{type(obj).__name__} of shape {shape}: pass the official codebook_m pickle')
  if not np.all(np.isfinite(book)):
    raise InputError(f'{source}: the motion codebook holds NaN or Inf: pass a finished model')
  return book


def appearance_codebook(obj, latent_dim: int, source: str = 'codebook_a') -> list:
  """Official codebook_a (one [frames, Z] array per clip) -> list of float32 [T_i, Z]."""
  if not isinstance(obj, (list, tuple)) or not obj:
    raise InputError(f'{source}: expected a non-empty list of [frames, {latent_dim}] arrays, got '
                     f'{type(obj).__name__}: pass the official codebook_a pickle')
  out = []
  for i, s in enumerate(obj):
    try:
      a = np.asarray(s, np.float32)
    except (TypeError, ValueError):
      a = None
    if a is None or a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != latent_dim:
      shape = None if a is None else a.shape
      raise InputError(f'{source}: sequence {i} has shape {shape}, not [frames, {latent_dim}]: '
                       'pass the official codebook_a pickle')
    if not np.all(np.isfinite(a)):
      raise InputError(f'{source}: sequence {i} holds NaN or Inf: pass a finished model')
    out.append(a)
  return out


# ----------------------------------------------------------------------------- mapping
def _conv(w):
  """torch [O, I, kh, kw] -> flax [kh, kw, I, O]."""
  return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)), dtype=np.float32)


def _dense(w):
  """torch Linear [O, I] -> flax Dense [I, O]."""
  return np.ascontiguousarray(np.transpose(w), dtype=np.float32)


def _need(sd, key, source, ndim):
  if key not in sd:
    raise InputError(f'{source}: no {key!r} in the state dict: this is not an official '
                     'Animating Landscape checkpoint of that network (check the file name)')
  a = np.asarray(sd[key])
  if a.ndim != ndim:
    raise InputError(f'{source}: {key!r} has shape {tuple(a.shape)}, expected {ndim} '
                     'dimensions: the file is damaged or of another network')
  return a


def _check_keys(sd, expected: dict, source: str):
  """Exact key set (ignoring _IGNORED) and shapes, else one-line InputError."""
  keys = {k for k in sd if not any(p.match(k) for p in _IGNORED)}
  missing = sorted(set(expected) - keys)
  unexpected = sorted(keys - set(expected))
  if missing or unexpected:
    parts = []
    if missing:
      parts.append(f'missing {len(missing)} key(s) ({", ".join(missing[:4])}'
                   f'{", ..." if len(missing) > 4 else ""})')
    if unexpected:
      parts.append(f'{len(unexpected)} unexpected key(s) ({", ".join(unexpected[:4])}'
                   f'{", ..." if len(unexpected) > 4 else ""})')
    raise InputError(f'{source}: {" and ".join(parts)}: pass the matching official '
                     'checkpoint (PMNet/PANet for predictors, EMNet/EANet for encoders)')
  for k, shape in expected.items():
    got = tuple(np.shape(sd[k]))
    if got != tuple(shape):
      raise InputError(f'{source}: {k!r} has shape {got}, expected {tuple(shape)}: the file '
                       'is damaged or of another network')
    if not np.all(np.isfinite(sd[k])):
      raise InputError(f'{source}: {k!r} holds NaN or Inf: pass a checkpoint that trained '
                       'without diverging')


def predictor_arch(sd: dict, source: str = 'predictor') -> dict:
  """Official ConditionalMotionNet / ConditionalAppearanceNet state dict -> its sizes:
  {'widths', 'num_res_blocks', 'latent_dim', 'out_channels'} (official: 128/256/512, 5, 8,
  2 or 6). Also checks every key and shape."""
  w1, cin1 = _need(sd, 'conv1.conv2d.weight', source, 4).shape[:2]
  w2 = _need(sd, 'conv2.conv2d.weight', source, 4).shape[0]
  w3 = _need(sd, 'conv3.conv2d.weight', source, 4).shape[0]
  out = _need(sd, 'deconv3.conv2d.weight', source, 4).shape[0]
  nz = cin1 - 3
  if nz < 1:
    raise InputError(f'{source}: conv1 takes {cin1} input channels, expected 3 + latent size: '
                     'pass an official PMNet/PANet checkpoint')
  n_res = 0
  while f'res{n_res + 1}.conv1.conv2d.weight' in sd:
    n_res += 1
  exp = {}

  def conv(name, cout, cin, k):
    exp[f'{name}.conv2d.weight'] = (cout, cin, k, k)
    exp[f'{name}.conv2d.bias'] = (cout,)

  def norm(name, c):
    exp[f'{name}.scale'] = (c,)
    exp[f'{name}.shift'] = (c,)

  conv('conv1', w1, 3 + nz, 5)
  conv('conv2', w2, w1 + nz, 3)
  norm('in2', w2)
  conv('conv3', w3, w2 + nz, 3)
  norm('in3', w3)
  for i in range(1, n_res + 1):
    conv(f'res{i}.conv1', w3, w3, 3)
    norm(f'res{i}.in1', w3)
    conv(f'res{i}.conv2', w3, w3, 3)
    norm(f'res{i}.in2', w3)
  conv('deconv1', w2, 2 * w3, 3)
  norm('in4', w2)
  conv('deconv2', w1, 2 * w2, 3)
  norm('in5', w1)
  conv('deconv3', out, 2 * w1, 5)
  _check_keys(sd, exp, source)
  return {'widths': (int(w1), int(w2), int(w3)), 'num_res_blocks': n_res,
          'latent_dim': int(nz), 'out_channels': int(out)}


def predictor_params(sd: dict, kind: str, source: str = 'predictor', bgr: bool = True) -> dict:
  """Official predictor state dict -> flax params of animgen's `Predictor`.

  kind: 'motion' (2 flow channels, x then y) or 'appearance' (6 channels: 3 scale, 3 bias).
  bgr: the official weights expect BGR input (OpenCV); reverse the colour channels (input of
  conv1 and, for appearance, each half of the output) so that animgen's RGB gives the same."""
  arch = predictor_arch(sd, source)
  want = {'motion': 2, 'appearance': 6}[kind]
  if arch['out_channels'] != want:
    other = 'PANet' if arch['out_channels'] == 6 else 'PMNet'
    raise InputError(f'{source}: the predictor has {arch["out_channels"]} output channels, a '
                     f'{kind} predictor has {want}: this looks like a {other} checkpoint')

  def conv(name):
    return {'kernel': _conv(sd[f'{name}.conv2d.weight']),
            'bias': np.asarray(sd[f'{name}.conv2d.bias'], np.float32)}

  def norm(name):
    return {'scale': np.asarray(sd[f'{name}.scale'], np.float32),
            'bias': np.asarray(sd[f'{name}.shift'], np.float32)}

  p = {'conv1': conv('conv1'), 'conv2': conv('conv2'), 'norm2': norm('in2'),
       'conv3': conv('conv3'), 'norm3': norm('in3'),
       'upconv1': conv('deconv1'), 'upnorm1': norm('in4'),
       'upconv2': conv('deconv2'), 'upnorm2': norm('in5'), 'upconv3': conv('deconv3')}
  for i in range(1, arch['num_res_blocks'] + 1):
    p[f'res{i}'] = {'conv1': conv(f'res{i}.conv1'), 'norm1': norm(f'res{i}.in1'),
                    'conv2': conv(f'res{i}.conv2'), 'norm2': norm(f'res{i}.in2')}
  if bgr:
    k = p['conv1']['kernel']
    p['conv1']['kernel'] = np.concatenate([k[:, :, 2::-1], k[:, :, 3:]], axis=2)
    if kind == 'appearance':
      order = np.array([2, 1, 0, 5, 4, 3])
      p['upconv3'] = {'kernel': p['upconv3']['kernel'][..., order],
                      'bias': p['upconv3']['bias'][order]}
  return p


def encoder_arch(sd: dict, source: str = 'encoder') -> dict:
  """Official BicycleGAN E_ResNet (resnet_128, vaeLike) state dict -> {'widths',
  'latent_dim', 'in_channels'} (official: (64, 128, 192, 256), 8, 2 or 3). Checks every key."""
  w0, cin = _need(sd, 'conv.0.weight', source, 4).shape[:2]
  nz = _need(sd, 'fc.0.weight', source, 2).shape[0]
  widths = [int(w0)]
  exp = {'conv.0.weight': (w0, cin, 4, 4), 'conv.0.bias': (w0,)}
  n = 1
  while f'conv.{n}.conv.0.weight' in sd:
    c = widths[-1]
    o = _need(sd, f'conv.{n}.conv.5.0.weight', source, 4).shape[0]
    for bn in ('conv.0', 'conv.3'):
      for leaf in ('weight', 'bias', 'running_mean', 'running_var'):
        exp[f'conv.{n}.{bn}.{leaf}'] = (c,)
    exp[f'conv.{n}.conv.2.weight'] = (c, c, 3, 3)
    exp[f'conv.{n}.conv.2.bias'] = (c,)
    exp[f'conv.{n}.conv.5.0.weight'] = (o, c, 3, 3)
    exp[f'conv.{n}.conv.5.0.bias'] = (o,)
    exp[f'conv.{n}.shortcut.1.weight'] = (o, c, 1, 1)
    exp[f'conv.{n}.shortcut.1.bias'] = (o,)
    widths.append(int(o))
    n += 1
  for head in ('fc', 'fcVar'):
    exp[f'{head}.0.weight'] = (nz, widths[-1])
    exp[f'{head}.0.bias'] = (nz,)
  _check_keys(sd, exp, source)
  return {'widths': tuple(widths), 'latent_dim': int(nz), 'in_channels': int(cin)}


def encoder_variables(sd: dict, kind: str, source: str = 'encoder', bgr: bool = True):
  """Official encoder state dict -> (params, batch_stats) of animgen's `Encoder`.

  kind: 'motion' (2-channel flow input) or 'appearance' (3-channel image; with bgr the colour
  input channels of the first conv are reversed, see predictor_params)."""
  arch = encoder_arch(sd, source)
  want = {'motion': 2, 'appearance': 3}[kind]
  if arch['in_channels'] != want:
    raise InputError(f'{source}: the encoder takes {arch["in_channels"]} input channels, a '
                     f'{kind} encoder takes {want}: pass the {kind} encoder '
                     f'({"EMNet" if kind == "motion" else "EANet"})')
  f32 = lambda k: np.asarray(sd[k], np.float32)
  kernel = _conv(sd['conv.0.weight'])
  if bgr and kind == 'appearance':
    kernel = kernel[:, :, ::-1].copy()
  params = {'conv1': {'kernel': kernel, 'bias': f32('conv.0.bias')},
            'fc_mu': {'kernel': _dense(sd['fc.0.weight']), 'bias': f32('fc.0.bias')},
            'fc_logvar': {'kernel': _dense(sd['fcVar.0.weight']), 'bias': f32('fcVar.0.bias')}}
  stats = {}
  for n in range(1, len(arch['widths'])):
    t = f'conv.{n}'
    bn = lambda m: {'scale': f32(f'{t}.{m}.weight'), 'bias': f32(f'{t}.{m}.bias')}
    rs = lambda m: {'mean': f32(f'{t}.{m}.running_mean'), 'var': f32(f'{t}.{m}.running_var')}
    cv = lambda m: {'kernel': _conv(sd[f'{t}.{m}.weight']), 'bias': f32(f'{t}.{m}.bias')}
    params[f'block{n}'] = {'norm1': bn('conv.0'), 'conv1': cv('conv.2'), 'norm2': bn('conv.3'),
                           'conv2': cv('conv.5.0'), 'shortcut': cv('shortcut.1')}
    stats[f'block{n}'] = {'norm1': rs('conv.0'), 'norm2': rs('conv.3')}
  return params, stats


# ----------------------------------------------------------------------------- runs
def _repo_config(module: str):
  """configs/<module>.py's default config (configs/ lives next to the animgen package)."""
  import importlib.util
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  path = os.path.join(root, 'configs', f'{module}.py')
  if not os.path.isfile(path):
    raise InputError(f'{path} not found: run animgen convert from a source checkout of animgen '
                     '(its configs/ folder sits next to the animgen package)')
  spec = importlib.util.spec_from_file_location(f'_animgen_convert_{module}', path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


def _check_tree(name, got, abstract):
  """Converted variables must have exactly the structure and shapes animgen's init has."""
  import jax
  flat_got = {jax.tree_util.keystr(p): np.shape(v)
              for p, v in jax.tree_util.tree_flatten_with_path(got)[0]}
  flat_want = {jax.tree_util.keystr(p): tuple(v.shape)
               for p, v in jax.tree_util.tree_flatten_with_path(abstract)[0]}
  if flat_got != flat_want:
    diff = sorted(set(flat_got.items()) ^ set(flat_want.items()))[:4]
    raise ValueError(f'converted {name} does not match animgen\'s network: {diff}')


def _state(method, abstract, params, batch_stats, **fields):
  """A full method state: the converted variables, fresh optimiser, zeros elsewhere."""
  import jax
  import jax.numpy as jnp
  _check_tree('params', params, abstract.params)
  _check_tree('batch_stats', batch_stats, abstract.batch_stats)
  params = jax.tree_util.tree_map(jnp.asarray, params)
  batch_stats = jax.tree_util.tree_map(jnp.asarray, batch_stats)
  zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)
  return zeros.replace(params=params, batch_stats=batch_stats,
                       opt_state=method.tx.init(params), **fields)


def _write_run(workdir, config, num_train, method, state, provenance):
  from animgen import checkpoint, media
  media.write_json(os.path.join(workdir, 'config.json'),
                   {'config': config.to_dict(), 'num_train': int(num_train),
                    'converted_from': provenance})
  ckpt = checkpoint.Checkpointer(workdir, keep=1)
  ckpt.save(0, checkpoint.strip_frozen(method, state), None, force=True)
  ckpt.close()


def _set_model(config, pred_arch, enc_arch, image_size):
  config.image_size = int(image_size)
  config.model.widths = pred_arch['widths']
  config.model.num_res_blocks = pred_arch['num_res_blocks']
  config.model.latent_dim = pred_arch['latent_dim']
  config.model.encoder_size = ENCODER_SIZE
  if enc_arch is not None:
    config.model.encoder_widths = enc_arch['widths']


def build_motion_run(workdir, pm_sd, em_sd=None, codebook=None, image_size=256,
                     provenance=None):
  """Writes an animgen landscape_motion run (config.json, checkpoint, codebook_motion.npz)
  into the existing folder workdir. em_sd None: the encoder keeps animgen's initialisation."""
  import jax
  import jax.numpy as jnp
  from animgen.methods.landscape_motion import LandscapeMotion
  pred = predictor_params(pm_sd, 'motion', 'PMNet')
  arch = predictor_arch(pm_sd, 'PMNet')
  enc_arch = encoder_arch(em_sd, 'EMNet') if em_sd is not None else None
  if enc_arch is not None and enc_arch['latent_dim'] != arch['latent_dim']:
    raise InputError(f'EMNet codes have {enc_arch["latent_dim"]} dimensions but PMNet takes '
                     f'{arch["latent_dim"]}: pass the two files of one training run')
  config = _repo_config('landscape')
  _set_model(config, arch, enc_arch, image_size)
  num_train = len(codebook) if codebook is not None else 1
  method = LandscapeMotion(config, num_train=num_train)
  abstract = jax.eval_shape(lambda: method.init(jax.random.key(0), None))
  if em_sd is not None:
    enc, stats = encoder_variables(em_sd, 'motion', 'EMNet')
  else:
    e = config.model.encoder_size
    v = method.encoder.init(jax.random.key(config.seed), jnp.zeros((1, e, e, 2)), train=False)
    enc, stats = v['params'], v['batch_stats']
  state = _state(method, abstract, {'predictor': pred, 'encoder': enc}, stats)
  _write_run(workdir, config, num_train, method, state, provenance or {})
  if codebook is not None:
    from animgen import media
    # The official file keeps only the sorted KMeans centres, not the per-clip codes.
    media.write_npz(os.path.join(workdir, 'codebook_motion.npz'), codes=codebook,
                    clip_codes=codebook)
  return config


def build_appearance_run(workdir, pa_sd, ea_sd, sequences=None, image_size=256,
                         provenance=None):
  """Writes an animgen landscape_appearance run (config.json, checkpoint,
  codebook_appearance.npz) into the existing folder workdir."""
  import jax
  from animgen.methods import landscape_appearance
  arch = predictor_arch(pa_sd, 'PANet')
  enc_arch = encoder_arch(ea_sd, 'EANet')
  if enc_arch['latent_dim'] != arch['latent_dim']:
    raise InputError(f'EANet codes have {enc_arch["latent_dim"]} dimensions but PANet takes '
                     f'{arch["latent_dim"]}: pass the two files of one training run')
  pred = predictor_params(pa_sd, 'appearance', 'PANet')
  enc, stats = encoder_variables(ea_sd, 'appearance', 'EANet')
  config = _repo_config('landscape_appearance')
  _set_model(config, arch, enc_arch, image_size)
  num_train = len(sequences) if sequences is not None else 1
  method = landscape_appearance.LandscapeAppearance(config, num_train=num_train)
  abstract = jax.eval_shape(lambda: method.init(jax.random.key(0), None))
  state = _state(method, abstract, {'predictor': pred, 'encoder': enc}, stats,
                 **method.frozen_values())
  _write_run(workdir, config, num_train, method, state, provenance or {})
  if sequences is not None:
    from animgen import media
    media.write_npz(os.path.join(workdir, 'codebook_appearance.npz'),
                    **landscape_appearance.codebook_artefact(sequences))
  return config


def _check_out(path, flag):
  path = os.path.abspath(path)
  if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
    raise InputError(f'{flag} {path} already exists: pass a new folder or remove it first')
  from animgen import media
  media.check_can_make(path, flag)
  return path


def _epochs_found(model_dir):
  found = set()
  for p in glob.glob(os.path.join(model_dir, '*_weight_*.pth')):
    m = re.search(r'_weight_(\d+)\.pth$', p)
    if m:
      found.add(int(m.group(1)))
  return sorted(found)


class _Official:
  """The official files of one epoch in model_dir."""

  def __init__(self, model_dir: str, epoch: int):
    self.model_dir, self.epoch = model_dir, int(epoch)

  def path(self, stem: str, ext: str = 'pth') -> str:
    name = f'{stem}_weight_{self.epoch}.pth' if ext == 'pth' else f'{stem}_{self.epoch}.pkl'
    return os.path.join(self.model_dir, name)

  def have(self, stem: str, ext: str = 'pth') -> bool:
    return os.path.isfile(self.path(stem, ext))


def _plan(files: _Official, out_motion, out_appearance):
  """-> ({kind: destination folder} of the runs that can be made, notes on the skipped ones)."""
  plan, path, have, epoch = {}, files.path, files.have, files.epoch
  notes = []   # printed once every input is read: an error is the one line convert prints
  if out_motion is not None:
    if have('PMNet'):
      plan['motion'] = _check_out(out_motion, '--motion-out')
    else:
      notes.append(f'animgen: note: no {path("PMNet")}: no motion run written')
  if out_appearance is not None:
    if have('PANet') and have('EANet'):
      plan['appearance'] = _check_out(out_appearance, '--appearance-out')
    elif have('PANet') or have('EANet'):
      missing = 'EANet' if have('PANet') else 'PANet'
      raise InputError(f'{path(missing)} is missing: the appearance run needs both PANet and '
                       f'EANet of epoch {epoch}')
    else:
      notes.append(f'animgen: note: no {path("PANet")}: no appearance run written')
  if not plan:
    epochs = _epochs_found(files.model_dir)
    hint = (f'; it has epochs {", ".join(map(str, epochs))}: pass --epoch'
            if epochs else '')
    raise InputError(f'{files.model_dir} has no official weights of epoch {epoch} '
                     f'(PMNet_weight_{epoch}.pth, PANet_weight_{epoch}.pth){hint}')
  if 'motion' in plan and 'appearance' in plan and plan['motion'] == plan['appearance']:
    raise InputError('--motion-out and --appearance-out are the same folder: pass two folders')
  return plan, notes


def _inputs(plan: dict, files: _Official) -> list:
  """The files that `_read` reads for `plan`, in reading order."""
  out = []
  if 'motion' in plan:
    out += [files.path(s) for s in MOTION_FILES if files.have(s)]
    out += [files.path('codebook_m', 'pkl')] if files.have('codebook_m', 'pkl') else []
  if 'appearance' in plan:
    out += [files.path(s) for s in APPEARANCE_FILES]
    out += [files.path('codebook_a', 'pkl')] if files.have('codebook_a', 'pkl') else []
  return out


def _read(plan: dict, files: _Official, trust_pickle: bool, stage) -> dict:
  """Reads and checks every input of `plan` (nothing is written yet) -> {kind: inputs}."""
  def read(fn, path):
    stage.advance(0, os.path.basename(path))
    value = fn(path)
    stage.advance()
    return value
  unpickle = lambda p: load_pickle(p, trust_pickle)
  path, have, loaded = files.path, files.have, {}
  if 'motion' in plan:
    pm = read(load_state_dict, path('PMNet'))
    em = read(load_state_dict, path('EMNet')) if have('EMNet') else None
    nz = predictor_arch(pm, 'PMNet')['latent_dim']
    pkl = path('codebook_m', 'pkl')
    book = motion_codebook(read(unpickle, pkl), nz, pkl) if have('codebook_m', 'pkl') else None
    predictor_params(pm, 'motion', 'PMNet')
    if em is not None:
      encoder_variables(em, 'motion', 'EMNet')
    loaded['motion'] = (pm, em, book)
  if 'appearance' in plan:
    pa, ea = read(load_state_dict, path('PANet')), read(load_state_dict, path('EANet'))
    nz = predictor_arch(pa, 'PANet')['latent_dim']
    pkl = path('codebook_a', 'pkl')
    seqs = (appearance_codebook(read(unpickle, pkl), nz, pkl) if have('codebook_a', 'pkl')
            else None)
    predictor_params(pa, 'appearance', 'PANet')
    encoder_variables(ea, 'appearance', 'EANet')
    loaded['appearance'] = (pa, ea, seqs)
  return loaded


def _build(kind: str, workdir: str, inputs, files: _Official, image_size: int):
  """Writes the `kind` run from its read inputs into the existing folder workdir."""
  provenance = {'model_dir': os.path.abspath(files.model_dir), 'epoch': files.epoch}
  if kind == 'motion':
    pm, em, book = inputs
    names = [os.path.basename(files.path(s)) for s in MOTION_FILES if files.have(s)]
    build_motion_run(workdir, pm, em, book, image_size, {**provenance, 'files': names})
  else:
    pa, ea, seqs = inputs
    names = [os.path.basename(files.path(s)) for s in APPEARANCE_FILES]
    build_appearance_run(workdir, pa, ea, seqs, image_size, {**provenance, 'files': names})


def _write(plan: dict, loaded: dict, files: _Official, image_size: int, prog) -> dict:
  """Builds each run in a temporary folder next to its destination, then renames them all into
  place; on any failure removes everything it made. -> {kind: destination}."""
  temps, done = {}, {}
  try:
    for kind, dest in plan.items():
      with prog.stage(f'write the {kind} run {dest}'):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        temps[kind] = tempfile.mkdtemp(prefix=f'.{os.path.basename(dest)}.converting-',
                                       dir=os.path.dirname(dest))
        _build(kind, temps[kind], loaded[kind], files, image_size)
    for kind, dest in plan.items():
      if os.path.isdir(dest):  # an empty destination folder (checked in _plan)
        os.rmdir(dest)
      os.rename(temps.pop(kind), dest)
      done[kind] = dest
  except BaseException:
    for t in temps.values():
      shutil.rmtree(t, ignore_errors=True)
    for d in done.values():
      shutil.rmtree(d, ignore_errors=True)
    raise
  return done


def convert(model_dir: str, out_motion: str | None = 'runs/landscape',
            out_appearance: str | None = 'runs/landscape_appearance', epoch: int = 5000,
            trust_pickle: bool = False, image_size: int = 256, progress=None) -> dict:
  """Official model folder -> animgen runs that `animgen.runs.load` restores.

  Reads <model_dir>/{PMNet,EMNet,PANet,EANet}_weight_<epoch>.pth and, with trust_pickle,
  codebook_{m,a}_<epoch>.pkl. The motion run needs PMNet (EMNet optional, see the module
  docstring), the appearance run PANet and EANet; a run whose weights are absent is skipped
  with a note (an out of None skips it too), and it is an error if no run can be made. Every
  input is read and checked before anything is written; each run is written to a temporary
  folder next to its destination and renamed into place at the end, so a failure leaves
  nothing behind. Returns {'motion': path, 'appearance': path} for the runs written.
  progress: an animgen.progress.Progress (a bar for the reading and for each run written), a
  callable that receives one line per finished stage, or None.
  """
  from animgen.progress import Progress
  prog = Progress.wrap(progress)
  if not os.path.isdir(model_dir):
    raise InputError(f'{model_dir} is not a folder: pass the folder holding the official '
                     f'PMNet/PANet/EANet_weight_{epoch}.pth files')
  files = _Official(model_dir, epoch)
  plan, notes = _plan(files, out_motion, out_appearance)
  inputs = _inputs(plan, files)
  if not trust_pickle:   # refused before the weights are read
    for path in inputs:
      if path.endswith('.pkl'):
        load_pickle(path, trust_pickle)
  with prog.stage(f'read {len(inputs)} official file(s)', len(inputs), 'files',
                  os.path.basename(inputs[0])) as stage:
    loaded = _read(plan, files, trust_pickle, stage)
  for note in notes:
    print(note, file=sys.stderr)
  return _write(plan, loaded, files, image_size, prog)


# ----------------------------------------------------------------------------- CLI
def register(subparsers):
  """Adds `animgen convert` to the CLI's subparsers."""
  c = subparsers.add_parser(
      'convert', help='official Animating Landscape PyTorch models -> animgen runs',
      description='Convert the official Animating Landscape PyTorch checkpoints '
      '(PMNet/PANet/EANet[/EMNet]_weight_<epoch>.pth and the codebooks) into animgen training '
      'runs usable by animgen animate. Needs PyTorch: pip install "animgen[convert]".')
  c.add_argument('model_dir', metavar='MODEL_DIR',
                 help='folder with the official *_weight_<epoch>.pth and codebook_*_<epoch>.pkl')
  c.add_argument('--motion-out', default='runs/landscape',
                 help='new folder for the motion run (default runs/landscape, the default '
                 '--workdir of animgen animate)')
  c.add_argument('--appearance-out', default='runs/landscape_appearance',
                 help='new folder for the appearance run (default runs/landscape_appearance)')
  c.add_argument('--epoch', type=validate.option(validate.Int(0)), default=5000,
                 help='epoch in the file names (official 5000)')
  c.add_argument('--trust-pickle', action='store_true',
                 help='read the codebook pickles (unpickling can run code: only for files from '
                 'a source you trust)')
  c.add_argument('-q', '--quiet', action='store_true', help='no progress on stderr')
  c.set_defaults(func=cmd_convert)
  return c


def cmd_convert(args):
  from animgen.progress import Progress
  done = convert(args.model_dir, args.motion_out, args.appearance_out, epoch=args.epoch,
                 trust_pickle=args.trust_pickle,
                 progress=Progress('animgen convert', quiet=args.quiet))
  for kind, dest in done.items():
    print(f'animgen: wrote the {kind} run {dest}')
  if 'motion' in done:
    extra = (f' --appearance-workdir {done["appearance"]}' if 'appearance' in done else '')
    print(f'animgen: try: animgen animate PHOTO -o out.mp4 --workdir {done["motion"]}{extra}')
  return done
