"""DeepGIFs (Malik, Troute & Capoor): VAE-GAN pretraining, then the latent LSTM (Sec. 4).

Two runs, as the public code: first the VAE-GAN (variant `vaegan`), then the LSTM phase, which
starts from the VAE-GAN run's workdir (train.init_from; by default the workdir that
`python -m animgen.main` gives the same variant plus `_vaegan`, e.g. runs/deepgifs_vaegan).

  configs/deepgifs.py:vaegan   VAE-GAN pretraining on Moving MNIST (moving_mnist/default:
                               digits added as DeepGIFs' script, generated on first use):
                               Adam 5e-4, 128 frames per batch, lambda_gan 1e-4,
                               lambda_KL 1e-8, latent 95
  configs/deepgifs.py          the LSTM phase with the paper's settings: batch 32 clips of 20
                               frames, Adam 1e-3, lambda_gan 3e-4, lambda_KL 1e-8, LSTM 200
  ...:balls / :balls_vaegan    the same on 2 bouncing balls (bouncing_balls/balls2): latent 20,
                               lambda_gan 1e-4
  ...:cpu / :cpu_vaegan        ~20 min each on a shared 2-core CPU: half the widths, batch 8
                               clips (VAE-GAN: 32 frames), LSTM on random 8-frame windows
  ...:cpu_balls / :cpu_balls_vaegan   the same on the balls
  configs/deepgifs.py:smoke    tiny network on bouncing_balls/tiny, LSTM phase from scratch
                               (:smoke_vaegan for the VAE-GAN phase), for tests

A variant joins any of vaegan, balls, cpu and smoke with _ in any order; they apply in this
order. No key=value options. The two runs of the CPU model on the balls (the second reads the
first one's default workdir, runs/deepgifs_cpu_balls_vaegan):

  python -m animgen.main --config=configs/deepgifs.py:cpu_balls_vaegan
  python -m animgen.main --config=configs/deepgifs.py:cpu_balls

Full MNIST: --config.dataset=moving_mnist/full --config.manual_dir=<folder with mnist.npz or the
idx files>. The original Moving MNIST's max overlap instead of the sum: moving_mnist/max.
"""
import os
import sys

import ml_collections

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # config_flags and `animgen convert` load this file by its path
  sys.path.insert(0, _ROOT)
from configs import common  # noqa: E402

_NAME = 'configs/deepgifs.py'


def _default(variant: str):
  c = common.base(
      'deepgifs', 'moving_mnist/default',  # additive overlap, as DeepGIFs' script
      image_size=64,                     # Sec. 3.2: 64 x 64, 20 frames
      batch_size=32,                     # Sec. 5.1 / 5.2: clips per step in the LSTM phase
      num_steps=40_000,                  # ours: the paper gives no training lengths
      learning_rate=1e-3,                # Adam, VAE-LSTM and D (Sec. 5.1, 5.2)
      b1=0.9,                            # PyTorch Adam defaults (no betas given)
      sample_frames=20,                  # Sec. 4: a 20-frame GIF from one seed frame
      # the LSTM phase starts from the VAE-GAN run of the same variant
      init_from=common.run_dir('deepgifs', f'{variant}_vaegan' if variant else 'vaegan'))
  c.frames = 20

  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 95                # Sec. 4.1.1 (Moving MNIST; balls 20, public code)
  c.model.widths = (32, 64, 128, 256)    # Sec. 4.1.1
  c.model.lstm_hidden = 200              # Sec. 4.1.2
  c.model.channels = 1

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_gan = 3e-4               # public code, Moving MNIST (balls 1e-4, Sec. 4.2)
  c.loss.lambda_kl = 1e-8                # Sec. 4.2

  c.data.train_frames = 0                # 0: train on whole clips; >0: random windows (CPU)

  c.train.phase = 'lstm'
  c.train.vaegan_frames_per_clip = 1     # VAE-GAN batches: random single frames of clips
  c.train.checkpoint_every = 2000

  c.evals.rollout = {'type': 'deepgifs_rollout', 'clips': 256,   # test clips in the table
                     # share of digits recognised in generated frame 10 (ours: the paper
                     # shows samples only; Moving MNIST only)
                     'digit_frame': 10, 'classifier_steps': 1500, 'classifier_batch': 128}
  return c


_VAEGAN = {                              # public code's VAE-GAN pretraining
    'train.phase': 'vaegan',
    'train.init_from': '',
    'batch_size': 128,
    'optim.learning_rate': 5e-4,
    'loss.lambda_gan': 1e-4,
    'train.num_steps': 20_000,           # ours
}

_BALLS = {
    'dataset': 'bouncing_balls/balls2',
    'model.latent_dim': 20,              # public code, balls
    'loss.lambda_gan': 1e-4,             # Sec. 4.2
    'evals.rollout.digit_frame': 0,      # no digits
}


def _cpu(c):
  # Measured on the shared 2-core CPU: 2-4 VAE-GAN steps/s (32 frames), ~1.9 LSTM steps/s
  # (8 clips x 8 frames): ~8 + ~15 min. Half the widths; losses and optimisers as above.
  vaegan = c.train.phase == 'vaegan'
  common.apply(c, {
      'model.widths': (16, 32, 64, 128),
      'batch_size': 32 if vaegan else 8,
      'data.train_frames': 8,            # LSTM on random 8-frame windows; rollouts span 20
      'train.num_steps': 1500 if vaegan else 1600,
      'train.checkpoint_every': 500,
      'train.sample_every': 500,
  })


_SMOKE = {
    **common.smoke(num_steps=2, batch_size=8),
    'dataset': 'bouncing_balls/tiny',
    'image_size': 32,
    'frames': 6,
    'model.latent_dim': 8,
    'model.widths': (4, 8),              # two stride-2 convs: 32 -> 8 (compiles fast)
    'model.lstm_hidden': 16,
    'train.init_from': '',
    'train.vaegan_frames_per_clip': 2,
    'evals.rollout.clips': 8,
    'evals.rollout.digit_frame': 0,      # balls (tests/test_deepgifs.py checks the digits)
    'sample.num_frames': 6,
}

VARIANTS = {'vaegan': _VAEGAN, 'balls': _BALLS, 'cpu': _cpu, 'smoke': _SMOKE}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, _NAME, VARIANTS, separator='_')
  c = _default(a.variant)
  for name in VARIANTS:                  # in this order, whatever the order given
    if name in a.names:
      common.apply(c, VARIANTS[name])
  return c
