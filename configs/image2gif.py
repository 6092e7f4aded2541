"""Image2GIF, RNN and RNN+DQN (Zhou et al. 2018, Sec. 3, 5.1-5.2) on the synthetic patterns.

  configs/image2gif.py          the paper's synthetic setting: one model per pattern (pattern I
                                unless pattern=<str> names another) on its 95K / 5K sequences
                                at its own length, 6K iterations, batch 64, Adam 2e-4,
                                lambda_adv 0.005; generator 4 conv -> z 64 -> LSTM -> 4 deconv
                                to RGB (Sec. 5.1)
  configs/image2gif.py:dqn      RNN+DQN (Q-vector of N = 64)
  configs/image2gif.py:convlstm animgen's own generator: a ConvLSTM on the 4x4 code map and a
                                5x5 conv to RGB after the 4 deconvs (the default before the
                                paper's layout)
  configs/image2gif.py:dense    the default's LSTM on z (kept for older command lines)
  configs/image2gif.py:real     the paper's real setting (Sec. 5.1, 5.3): your cinemagraphs
                                (cinemagraph_folder; refuses to run without
                                --config.manual_dir=DIR holding DIR/*.gif|mp4 and/or
                                DIR/<name>/*.jpg|png), 1 input + 5 output frames, random crops
                                and flips, z 512, N 512, lambda_adv 0.05, 13,500 iterations
  configs/image2gif.py:cpu      1/8-width networks, batch 8, 1,500 steps, one model on all six
                                patterns (image2gif_patterns/small_all, padded to 27 frames;
                                ours, to fit a CPU); with pattern=<p> one model per pattern on
                                its 2,000 / 100 sequences (the CPU results of docs/image2gif.md):
                                ~6 min (RNN), ~11 min (RNN+DQN) on a shared 2-core CPU
  configs/image2gif.py:smoke    tiny networks, all six patterns of image2gif_patterns/tiny_all,
                                for tests

Option pattern=<str> (I, O, L, eight, rotate or scale): train on that pattern alone at its own
length (Sec. 5.2: I 27, O 21, L 26, eight 21, rotate 21, scale 17 frames), with the data of the
run's size: image2gif_patterns/paper_<pattern> (95K / 5K), with :cpu <pattern> (2,000 / 100),
with :smoke tiny_<pattern>. Variants combine with commas (e.g. :cpu,dqn or :smoke,convlstm) and
apply left to right, so a later one wins where two set the same field; the option applies last.

One model per pattern as in the paper, e.g. pattern O with the DQN:

  python -m animgen.main --config=configs/image2gif.py:dqn,pattern=O --workdir=runs/image2gif_dqn_O

On real cinemagraphs, then a cinemagraph of a photo from the trained run:

  python -m animgen.main --config=configs/image2gif.py:real,dqn --config.manual_dir=cinemagraphs \
      --workdir=runs/image2gif_real
  animgen animate photo.jpg -o photo.gif --method image2gif --workdir runs/image2gif_real
"""
import os
import sys

import ml_collections

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # config_flags and `animgen convert` load this file by its path
  sys.path.insert(0, _ROOT)
from configs import common  # noqa: E402

_NAME = 'configs/image2gif.py'
PATTERNS = ('I', 'O', 'L', 'eight', 'rotate', 'scale')   # image2gif_patterns.PATTERNS
OPTIONS = {'pattern': str}
# run size -> the image2gif_patterns config of one pattern
_PER_PATTERN = {'paper': 'paper_{}', 'cpu': '{}', 'smoke': 'tiny_{}'}
LENGTHS = dict(zip(PATTERNS, (27, 21, 26, 21, 21, 17)))   # frames per pattern (Sec. 5.2)


def _default():
  c = common.base(
      'image2gif', 'image2gif_patterns/paper_I',  # one model per pattern, 95K / 5K (Sec. 5.2)
      batch_size=64,                        # Sec. 5.1
      num_steps=6000,                       # 6K iterations per pattern (Sec. 5.2)
      learning_rate=2e-4,                   # Adam (Sec. 5.1)
      b1=0.5,                               # ours: DCGAN's (Radford 2015); the paper omits it
      # frames (input included) of `animgen animate --method image2gif`: the data's length
      sample_frames=LENGTHS['I'])
  c.data.flip = False                       # the input pipeline's random left-right flips
  c.data.resized_crop = 0                   # >0: train_step's random crop (methods/image2gif.py)

  c.model = ml_collections.ConfigDict()
  c.model.widths = (64, 128, 256, 512)      # encoder and DQN: 4 conv 5x5 stride 2 (Sec. 5.1)
  # decoder feature maps 512, 256, 128, 64 (Sec. 5.1): z's 4x4x512 projection, then 4 deconvs
  # 5x5 stride 2 to 256, 128, 64 and RGB (tanh last, Sec. 5.1)
  c.model.decoder_widths = (512, 256, 128, 64)
  c.model.discriminator_widths = (64, 128, 256, 512)  # ours: the paper gives no D layout
  c.model.z_dim = 64                        # 64 synthetic / 512 real (Sec. 5.1)
  c.model.recurrent = 'dense'               # an LSTM on the z vector (Sec. 3.1, Fig. 2)
  c.model.rgb_conv = False                  # the 4th deconv outputs RGB (Sec. 5.1)
  c.model.dqn = False                       # RNN+DQN (Sec. 3.2)
  c.model.num_actions = 64                  # Q-vector: 64 synthetic / 512 real (Sec. 5.1)
  # True: decode / discriminate one time step at a time with activation recomputation (same
  # values, ~1/8 of the memory, ~17x slower on XLA:CPU); off, the paper's batch 64 x 27 frames
  # peaks at 11.7 GiB (bench/README.md)
  c.model.remat = False

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_adv = 0.005                 # Eq. 3: 0.005 synthetic / 0.05 real (Sec. 5.1)

  # Q-learning: the paper cites the DQN of Mnih 2015 and gives none of these. No experience
  # replay (Mnih 2015 has one): the transitions are the batch's own B x (T - 1) steps
  # (methods/image2gif.py says why)
  c.dqn = ml_collections.ConfigDict()
  c.dqn.gamma = 0.99                        # discount (Mnih 2015)
  c.dqn.target_update_every = 100           # target network copy period in steps (Mnih 2015;
  #                                           its 10K updates scaled down to our 6K: ours)
  c.dqn.epsilon_start = 1.0                 # epsilon-greedy, linear annealing (Mnih 2015)
  c.dqn.epsilon_end = 0.1
  c.dqn.epsilon_steps = 2000                # ours: a third of the paper's 6K iterations
  # Tables 1, 3, 4 with two baseline rows, in place of the generic eval_step means (which it
  # also gives): one rollout of the test split instead of two
  c.evals.metrics = {'type': 'image2gif_tables', 'on_train': True}
  return c


# 1/8 of every width, batch 8; all six patterns in one model unless pattern=<p> names one
_CPU = {
    'dataset': 'image2gif_patterns/small_all',
    'batch_size': 8,
    'model.widths': (8, 16, 32, 64),
    'model.decoder_widths': (64, 32, 16, 8),
    'model.discriminator_widths': (8, 16, 32, 64),
    'train.num_steps': 1500,                # RNN 4.6-4.8, RNN+DQN 2-2.8 steps/s, shared 2-core CPU
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
    # ours (no paper section): ConvLSTM (Shi 2015) on the code map, 5x5 conv to RGB at the end
    'convlstm': {'model.recurrent': 'convlstm', 'model.rgb_conv': True},
    'dense': {'model.recurrent': 'dense', 'model.rgb_conv': False},
    'real': {
        # refuses to run without --config.manual_dir (datasets/cinemagraph_folder.py)
        'dataset': 'cinemagraph_folder/default',
        'model.z_dim': 512,                 # Sec. 5.1: z 512 for real data
        'model.num_actions': 512,           # Sec. 5.1: Q-vector of 512
        'loss.lambda_adv': 0.05,            # Sec. 5.1: 0.05 for real data
        'train.num_steps': 13_500,          # Sec. 5.3: 13,500 iterations
        'sample.num_frames': 6,             # Sec. 5.3: 1 input and 5 generation outputs
        'data.flip': True,                  # Sec. 5.3: "flipping frames left-right across time"
        'data.resized_crop': 56,            # Sec. 5.3: crops at a random location fixed across
        #                                     time; the 56 px window (of 64) is ours
        # no object masks or patterns: Tables 2 and 3's figures through eval_step
        'evals.metrics': {'type': 'metrics', 'on_train': True},
    },
    'cpu': _CPU,
    'smoke': _SMOKE,
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, _NAME, VARIANTS, OPTIONS, combine=True)
  c = _default()
  for name in a.names:
    common.apply(c, VARIANTS[name])
  if 'pattern' in a.options:
    p = a.options['pattern']
    common.check(p in PATTERNS, f'option pattern={p} of {_NAME}: use one of {", ".join(PATTERNS)}')
    size = ([n for n in a.names if n in ('cpu', 'smoke')] or ['paper'])[-1]
    c.dataset = 'image2gif_patterns/' + _PER_PATTERN[size].format(p)
    c.sample.num_frames = LENGTHS[p]
  return c
