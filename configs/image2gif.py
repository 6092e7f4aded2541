"""Image2GIF, RNN and RNN+DQN (Zhou et al. 2018, Sec. 3, 5.1-5.2) on the synthetic patterns.

  configs/image2gif.py          the paper's synthetic setting: full-width generator, ConvLSTM
                                bottleneck with z 64, Adam 2e-4, batch 64, lambda_adv 0.005,
                                on image2gif_patterns/all
  configs/image2gif.py:dqn      RNN+DQN (Q-vector of N = 64)
  configs/image2gif.py:dense    the dense-LSTM-on-z variant (z 64)
  configs/image2gif.py:real     z 512, N 512, lambda_adv 0.05 (the real-cinemagraph setting)
  configs/image2gif.py:cpu      1/8-width networks, batch 8, image2gif_patterns/small_all, 240
                                steps: ~20 min on a shared 2-core CPU
  configs/image2gif.py:smoke    tiny networks and data, for tests

Variants combine with commas (e.g. :cpu,dqn or :smoke,dense) and apply left to right, so a
later one wins where two set the same field. No key=value options.

The paper trains one model per pattern for 6K iterations (Sec. 5.2); for pattern O (any of
I, O, L, eight, rotate, scale):

  python -m animgen.main --config=configs/image2gif.py --workdir=runs/image2gif_O \
      --config.dataset=image2gif_patterns/O --config.train.num_steps=6000
"""
import os
import sys

import ml_collections

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # config_flags and `animgen convert` load this file by its path
  sys.path.insert(0, _ROOT)
from configs import common  # noqa: E402

_NAME = 'configs/image2gif.py'


def _default():
  c = common.base(
      'image2gif', 'image2gif_patterns/all',
      batch_size=64,                        # Sec. 5.1
      num_steps=36_000,                     # 6K iterations per pattern (Sec. 5.2) x 6 patterns
      learning_rate=2e-4,                   # Adam (Sec. 5.1)
      b1=0.5)                               # ours: DCGAN's (Radford 2015); the paper omits it

  c.model = ml_collections.ConfigDict()
  c.model.widths = (64, 128, 256, 512)      # encoder and DQN: 4 conv 5x5 stride 2 (Sec. 5.1)
  c.model.decoder_widths = (512, 256, 128, 64)  # 4 deconv 5x5 stride 2, then RGB (Sec. 5.1)
  c.model.discriminator_widths = (64, 128, 256, 512)  # ours: the paper gives no D layout
  c.model.z_dim = 64                        # 64 synthetic / 512 real (Sec. 5.1)
  c.model.recurrent = 'convlstm'            # 'convlstm' (Shi 2015) or 'dense' (LSTM on z)
  c.model.dqn = False                       # RNN+DQN (Sec. 3.2)
  c.model.num_actions = 64                  # Q-vector: 64 synthetic / 512 real (Sec. 5.1)
  # decode / discriminate one time step at a time with activation recomputation: the paper's
  # batch 64 x 26 frames fits in memory (without it > 24 GiB on CPU, measured); same values
  c.model.remat = True

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_adv = 0.005                 # Eq. 3: 0.005 synthetic / 0.05 real (Sec. 5.1)

  c.dqn = ml_collections.ConfigDict()       # Q-learning (the paper gives none of these)
  c.dqn.gamma = 0.99                        # discount (Mnih 2015)
  c.dqn.target_update_every = 100           # target network copy period in steps (ours)
  c.dqn.epsilon_start = 1.0                 # epsilon-greedy, linear annealing (Mnih 2015)
  c.dqn.epsilon_end = 0.1
  c.dqn.epsilon_steps = 2000                # ours: a third of the paper's 6K iterations
  c.evals.tables = {'type': 'image2gif_tables'}   # Tables 1, 3 and 4 per pattern
  return c


# 1/8 of every width, batch 8: ~20 min on a shared 2-core CPU (docs/image2gif.md)
_CPU = {
    'dataset': 'image2gif_patterns/small_all',
    'batch_size': 8,
    'model.widths': (8, 16, 32, 64),
    'model.decoder_widths': (64, 32, 16, 8),
    'model.discriminator_widths': (8, 16, 32, 64),
    'model.remat': False,                   # small networks: memory is no issue (docs/image2gif.md)
    'train.num_steps': 240,                 # 0.2-0.25 steps/s measured with 3 other jobs running
    'train.log_every': 10,
    'train.checkpoint_every': 50,
    'train.sample_every': 100,
    'dqn.epsilon_steps': 400,
    'dqn.target_update_every': 50,
    'eval.batch_size': 24,
}

_SMOKE = {
    **common.smoke(num_steps=2, batch_size=8),
    'dataset': 'image2gif_patterns/tiny_all',
    'model.widths': (4, 4, 4, 8),
    'model.decoder_widths': (8, 4, 4, 4),
    'model.discriminator_widths': (4, 4, 4, 4),
    'model.z_dim': 4,
    'model.num_actions': 3,
    'dqn.epsilon_steps': 4,
    'dqn.target_update_every': 2,
}

VARIANTS = {
    'dqn': {'model.dqn': True},
    'dense': {'model.recurrent': 'dense'},
    'real': {'model.z_dim': 512, 'model.num_actions': 512, 'loss.lambda_adv': 0.05},
    'cpu': _CPU,
    'smoke': _SMOKE,
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, _NAME, VARIANTS, combine=True)
  c = _default()
  for name in a.names:
    common.apply(c, VARIANTS[name])
  return c
