"""Animating Landscape, motion predictor + encoder (Endo et al. 2019, Sec. 4.1, 4.3).

  configs/landscape.py        paper network, losses and optimiser on the embedded synthetic
                              time-lapse data (generated on first use) at its 128 px, batch 8
  configs/landscape.py:sky    the paper's setting: real Sky Timelapse at 256 px, batch 8
                              (--config.manual_dir=<folder holding sky_timelapse/>)
  configs/landscape.py:cpu    64 px, 1,500 steps (restart at 500): ends on a 2-core CPU in ~30 min
  configs/landscape.py:cpu_large  continues a :cpu run (train.init_from, by default that run's
                              default workdir runs/landscape_cpu) on 8x the training clips
                              (synthetic_timelapse/large, the same test clips), 3,500 steps,
                              lr / 10 from step 2,500, no restart
  configs/landscape.py:folder the paper's setting on your own clips at 256 px, batch 8: the
                              official `train.py --indir DIR --mode motion` is
                              --config.manual_dir=DIR (clip_folders: DIR/<clip>/*.jpg|png
                              and/or DIR/*.mp4|avi|mov|gif, split train/test by clip, or
                              DIR/train/ and DIR/test/); data prepared per folder
  configs/landscape.py:smoke  tiny network and data, for tests

Options (after the variant, e.g. configs/landscape.py:cpu,res=96):
  res=<int>   frame size image_size (a multiple of 8: Table 1's three stride-2 convolutions);
              the encoder sees min(res, the variant's model.encoder_size); with :folder the
              clips are also prepared at that size
  smoke=<bool>  true: the :smoke variant's tiny network and 4-step run on this variant's data
              (e.g. configs/landscape.py:folder,smoke=true for a quick check of a folder)

Training on a folder of clips, e.g. at 64 px on a CPU (add --config.train.num_steps=N for a
run shorter than the paper's), then the Sec. 6.2 evaluation (per-frame RMSE and LPIPS of
recurrent predictions, next to the still frame; no flow EPE without ground-truth flow):

  python -m animgen.main --config=configs/landscape.py:folder,res=64 \
      --config.manual_dir=training_data/motion --workdir=runs/landscape_folder
  python -m animgen.main --config=configs/landscape.py:folder,res=64 \
      --config.manual_dir=training_data/motion --workdir=runs/landscape_folder --mode=eval

The CPU run whose flow EPE is at most half the zero-flow EPE (docs/results/landscape.md) is two
commands: :cpu for 4,546 steps with lr / 10 from step 4,000, then :cpu_large from its latest
checkpoint (P^M, E^M and the common motion fields of the 64 clips that synthetic_timelapse/large
shares with synthetic_timelapse/default carry over; Adam, the step and the step size start
afresh):

  python -m animgen.main --config=configs/landscape.py:cpu --workdir=runs/landscape_cpu \
      --config.train.num_steps=4546 '--config.optim.lr_drop_at=(4000,)'
  python -m animgen.main --config=configs/landscape.py:cpu_large \
      --workdir=runs/landscape_cpu_large --config.train.init_from=runs/landscape_cpu
"""
import os
import sys

import ml_collections

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # config_flags and `animgen convert` load this file by its path
  sys.path.insert(0, _ROOT)
from configs import common  # noqa: E402

_NAME = 'configs/landscape.py'
OPTIONS = {'res': int, 'smoke': bool}


def _default():
  c = common.base(
      'landscape_motion', 'synthetic_timelapse/default',
      image_size=128,            # the embedded data's size; Sec. 4.3 uses 256 (see :sky)
      batch_size=8,              # Sec. 4.3 (the official train.py used 1)
      num_steps=40_000,
      learning_rate=1e-4,        # Adam, Sec. 4.3
      b1=0.5,
      sample_frames=16,
      # Warm start (ours): the workdir of another motion run whose latest checkpoint gives P^M,
      # E^M and the common motion fields of the clips both training sets share; Adam and the
      # step start fresh (so with restart_at, set --config.train.restart_at='()' to keep them).
      init_from='')

  c.model = ml_collections.ConfigDict()
  c.model.widths = (128, 256, 512)          # Table 1
  c.model.num_res_blocks = 5
  c.model.beta = 1.0 / 64.0                 # Sec. 4.1, flows restricted to [-1/64, 1/64]
  c.model.latent_dim = 8
  c.model.encoder_size = 128                # encoders see 128x128 (Sec. 4.3)
  c.model.encoder_widths = (64, 128, 192, 256)  # Table 2
  c.model.fast = True                       # exact fast CPU conv kernels (ops/conv.py)
  # Sec. 6.6: 'vae', 'wae' (MMD) or 'wae_gan' (the official code's latent WGAN critic: Linear
  # 8-128-ReLU-1-Sigmoid, weights clipped to 0.01, lr 0.1 x optim.learning_rate) regularise z
  # towards N(0, I) so that codes can be sampled without the codebook (animgen animate
  # --z-normal / --a-normal); the paper's default is none.
  c.model.latent_reg = 'none'

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_p = 1.0                     # Eq. 4
  c.loss.lambda_tv = 1.0
  c.loss.lambda_latent = 1e-3              # KL / MMD / critic weight when latent_reg is set
                                            # (ours: the paper gives none; official wae 0 = off)
  c.loss.sigma = 0.1                        # Eq. 3

  c.optim.lr_drop_at = ()                   # steps where the step size is multiplied by
  c.optim.lr_decay = 0.1                    # lr_decay (ours; the paper keeps 1e-4 throughout)

  c.data.crop = 0                           # 0: no crop (frames already at image_size)
  # Flips are off: a flipped pair would contradict its clip's common motion field (Alg. 2).
  c.data.flip = False

  # Staged schedule (ours, off in the paper setting): at each step in restart_at, P^M, E^M and
  # Adam restart from a fresh initialisation while the common motion fields learned so far are
  # kept, and the fields stay fixed for restart_freeze steps; then Algorithm 2 continues.
  # Measured on the synthetic data: in plain Algorithm 2 the predictor learns each training
  # clip's motion from its image before z carries it, and then ignores z, which does not transfer
  # to new photos; a fresh predictor trained on already informative fields learns to read z.
  c.train.restart_at = ()
  c.train.restart_freeze = 0

  c.eval.pairs_per_clip = 4
  c.eval.codebook_codes = 5                 # Sec. 6.2 evaluates 5 codebook codes
  # Sec. 6.2 / Fig. 10: per-frame RMSE / LPIPS of recurrent predictions of `frames` frames
  c.evals.sequences = {'type': 'landscape_sequences', 'frames': 24}

  c.codebook = ml_collections.ConfigDict()
  c.codebook.max_codes = 100                # KMeans(100), sorted by the first PCA component
  return c


# A run that ends on a 2-core CPU in under an hour (~1.1 s/step). Frames and the encoder's input
# are at 64 px (the encoder at 128 px cost as much as the predictor at 64 px). Adam stays at
# Sec. 4.3's 1e-4: 2e-4 diverges in longer runs and is worse at step 1500 (docs/results). The paper
# network and losses are unchanged.
_CPU = {
    'image_size': 64,
    'model.encoder_size': 64,
    'train.num_steps': 1500,
    'train.restart_at': (500,),
    'train.restart_freeze': 200,
    'train.checkpoint_every': 250,
    'train.eval_every': 250,
    'train.sample_every': 500,
}

# The :cpu model continues on 8x the training clips (the same test clips): its networks and the
# 64 clips' common motion fields carry over (train.init_from); Adam, the step and the step size
# start afresh, without a restart (the module docstring has both commands).
_CPU_LARGE = {
    'dataset': 'synthetic_timelapse/large',
    'train.init_from': common.run_dir('landscape', 'cpu'),
    'train.restart_at': (),
    'train.restart_freeze': 0,
    'train.num_steps': 3500,
    'optim.lr_drop_at': (2500,),
    'train.eval_every': 500,
}

_SMOKE = {
    **common.smoke(num_steps=4, batch_size=8),
    'dataset': 'synthetic_timelapse/tiny',
    'image_size': 32,
    'model.widths': (8, 16, 32),
    'model.num_res_blocks': 1,
    'model.encoder_size': 32,
    'model.encoder_widths': (8, 8, 8, 8),
    'optim.learning_rate': 1e-3,
    'eval.pairs_per_clip': 2,
    'eval.codebook_codes': 2,
    'evals.sequences.frames': 4,
    'sample.num_frames': 4,
    'codebook.max_codes': 3,
}

VARIANTS = {
    'cpu': _CPU,
    'cpu_large': (_CPU, _CPU_LARGE),
    'sky': {'dataset': 'sky_timelapse/default', 'image_size': 256},
    # clip_folders/s<image_size> (set by get_config): frames stored at the size trained on
    'folder': {'dataset': 'clip_folders/s256', 'image_size': 256},
    'smoke': _SMOKE,
}
FOLDER_DATASET = 'clip_folders'


def set_res(c, res: int, name: str) -> None:
  """The res= option of the Animating Landscape configs (P^M and P^A share Table 1's body)."""
  common.check(res >= 16 and res % 8 == 0,
               f'res={res} of {name}: use a multiple of 8, at least 16 (Table 1: three '
               'stride-2 convolutions)')
  c.image_size = res
  c.model.encoder_size = min(res, c.model.encoder_size)


def apply_options(c, a: common.Arg, smoke, name: str) -> None:
  """The options of both Animating Landscape configs: smoke=true applies the :smoke overrides
  except its dataset, res= sets the frame size, and a clip_folders dataset follows the final
  image_size (clip_folders/s<image_size>)."""
  if a.options.get('smoke'):
    common.apply(c, {k: v for k, v in smoke.items() if k != 'dataset'})
  if 'res' in a.options:
    set_res(c, a.options['res'], name)
  if c.dataset.split('/')[0] == FOLDER_DATASET:
    c.dataset = f'{FOLDER_DATASET}/s{c.image_size}'


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, _NAME, VARIANTS, OPTIONS)
  c = _default()
  if a.names:
    common.apply(c, VARIANTS[a.names[0]])
  if a.names == ('cpu_large',) and a.option_tokens:  # the :cpu run with the same options
    c.train.init_from = common.run_dir('landscape', ','.join(('cpu',) + a.option_tokens))
  apply_options(c, a, _SMOKE, _NAME)
  return c
