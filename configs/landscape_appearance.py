"""Animating Landscape, appearance predictor + encoder (Endo et al. 2019, Sec. 4.2, 4.3).

  configs/landscape_appearance.py        paper network, losses (Eq. 11 weights of the official
                                         code) and optimiser on the embedded synthetic day-cycle
                                         clips
  configs/landscape_appearance.py:cpu    64 px, batch 4, 2,000 steps: a run that ends on a CPU
  configs/landscape_appearance.py:oneday the paper's setting: real one-day clips at 256 px
                                         (--config.manual_dir=<folder holding oneday_timelapse/>)
  configs/landscape_appearance.py:folder the paper's setting on your own clips at 256 px: the
                                         official `train.py --indir DIR --mode appearance` is
                                         --config.manual_dir=DIR (the clip_folders layout of
                                         configs/landscape.py:folder)
  configs/landscape_appearance.py:smoke  tiny network and data, for tests

Options (after the variant, e.g. configs/landscape_appearance.py:cpu,res=96):
  res=<int>   frame size image_size (a multiple of 8: Table 1's three stride-2 convolutions);
              the encoder sees min(res, the variant's model.encoder_size); with :folder the
              clips are also prepared at that size
  smoke=<bool>  true: the :smoke variant's tiny network and 4-step run on this variant's data
              (e.g. configs/landscape_appearance.py:folder,smoke=true)
"""
import os
import sys

import ml_collections

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # config_flags and `animgen convert` load this file by its path
  sys.path.insert(0, _ROOT)
from configs import common  # noqa: E402
from configs import landscape  # noqa: E402

_NAME = 'configs/landscape_appearance.py'
OPTIONS = landscape.OPTIONS


def _default():
  c = common.base(
      'landscape_appearance',
      # clips that run part of the way day -> dusk -> night: colour change to learn (Sec. 6.1's
      # one-day clips); the default clips' drift is a few % and motion dominates their change
      'synthetic_timelapse/daycycle',
      image_size=128,            # the embedded data's size; Sec. 4.3 uses 256
      batch_size=8,
      num_steps=40_000,
      learning_rate=1e-4,        # Adam, Sec. 4.3
      b1=0.5,
      sample_frames=8)

  c.model = ml_collections.ConfigDict()
  c.model.widths = (128, 256, 512)          # Table 1 (same body as P^M, 6 output channels)
  c.model.num_res_blocks = 5
  c.model.latent_dim = 8
  c.model.encoder_size = 128                # encoders see 128x128 (Sec. 4.3)
  c.model.encoder_widths = (64, 128, 192, 256)  # Table 2
  c.model.fast = True
  # Sec. 6.6: 'vae', 'wae' (MMD) or 'wae_gan' (the official code's latent WGAN critic: Linear
  # 8-128-ReLU-1-Sigmoid, weights clipped to 0.01, lr 0.1 x optim.learning_rate) regularise z
  # towards N(0, I) so that codes can be sampled without the codebook (animgen animate
  # --z-normal / --a-normal); the paper's default is none.
  c.model.latent_reg = 'none'

  c.loss = ml_collections.ConfigDict()      # Eq. 11, weights of the official train.py
  c.loss.lambda_s = 1.0
  c.loss.lambda_sp = 1e-2
  c.loss.lambda_c = 1e-5
  c.loss.lambda_tv = 0.1
  c.loss.lambda_latent = 1e-3              # KL / MMD / critic weight when latent_reg is set
                                            # (ours: the paper gives none; official wae 0 = off)
  c.loss.sigma = 0.1                        # Eq. 3's edge weight, reused by Eq. 10
  c.loss.pyramid_cells = 32                 # Eq. 8: one level, 32x32 grid

  c.data.crop = 0
  c.data.flip = True                        # colours do not depend on orientation

  c.eval.targets_per_clip = 4

  c.lstm = ml_collections.ConfigDict()      # Appendix B latent LSTM, fitted at the end of training
  c.lstm.num_steps = 2000                   # (Adam, full batch of codebook sequences; ours)
  c.lstm.learning_rate = 1e-3
  return c


_CPU = {
    'image_size': 64,
    'model.encoder_size': 64,
    'batch_size': 4,
    'train.num_steps': 2000,
    'train.checkpoint_every': 250,
    'train.sample_every': 500,
}

_SMOKE = {
    **common.smoke(num_steps=4, batch_size=4),
    'dataset': 'synthetic_timelapse/daycycle_tiny',
    'image_size': 32,
    'model.widths': (8, 16, 32),
    'model.num_res_blocks': 1,
    'model.encoder_size': 32,
    'model.encoder_widths': (8, 8, 8, 8),
    'loss.pyramid_cells': 8,
    'optim.learning_rate': 1e-3,
    'eval.targets_per_clip': 2,
    'sample.num_frames': 3,
    'lstm.num_steps': 50,
}

VARIANTS = {
    'cpu': _CPU,
    'oneday': {'dataset': 'oneday_timelapse/default', 'image_size': 256},
    'folder': {'dataset': 'clip_folders/s256', 'image_size': 256},   # s<image_size>
    'smoke': _SMOKE,
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, _NAME, VARIANTS, OPTIONS)
  c = _default()
  if a.names:
    common.apply(c, VARIANTS[a.names[0]])
  landscape.apply_options(c, a, _SMOKE, _NAME)
  return c
