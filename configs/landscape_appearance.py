"""Animating Landscape, appearance predictor + encoder (Endo et al. 2019, Sec. 4.2, 4.3).

  configs/landscape_appearance.py        paper network, losses (Eq. 11 weights of the official
                                         code) and optimiser on the embedded synthetic day-cycle
                                         clips
  configs/landscape_appearance.py:cpu    64 px, batch 4, 2,000 steps: a run that ends on a CPU
  configs/landscape_appearance.py:oneday the paper's setting: real one-day clips at 256 px
                                         (--config.manual_dir=<folder holding oneday_timelapse/>)
  configs/landscape_appearance.py:smoke  tiny network and data, for tests
"""
import ml_collections


def get_config(arg: str | None = None):
  c = ml_collections.ConfigDict()
  c.method = 'landscape_appearance'
  # clips that run part of the way day -> dusk -> night: colour change to learn (Sec. 6.1's
  # one-day clips); the default clips' drift is a few % and motion dominates their change
  c.dataset = 'synthetic_timelapse/daycycle'
  c.data_dir = '~/tensorflow_datasets'
  c.manual_dir = ''
  c.seed = 0
  c.dtype = 'float32'
  c.image_size = 128             # the embedded data's size; Sec. 4.3 uses 256
  c.batch_size = 8

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

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4              # Adam, Sec. 4.3
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999

  c.data = ml_collections.ConfigDict()
  c.data.crop = 0
  c.data.flip = True                        # colours do not depend on orientation
  c.data.threads = 2

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 40_000
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 2000
  c.train.check_finite_every = 1
  c.train.eval_every = 0                    # >0: evaluate (eval_<step>.json) during training

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 8
  c.eval.targets_per_clip = 4

  c.sample = ml_collections.ConfigDict()
  c.sample.num_frames = 8

  c.lstm = ml_collections.ConfigDict()      # Appendix B latent LSTM, fitted at the end of training
  c.lstm.num_steps = 2000                   # (Adam, full batch of codebook sequences; ours)
  c.lstm.learning_rate = 1e-3

  if arg == 'cpu':
    c.image_size = 64
    c.model.encoder_size = 64
    c.batch_size = 4
    c.train.num_steps = 2000
    c.train.checkpoint_every = 250
    c.train.sample_every = 500
  elif arg == 'smoke':
    c.dataset = 'synthetic_timelapse/daycycle_tiny'
    c.image_size = 32
    c.batch_size = 4
    c.model.widths = (8, 16, 32)
    c.model.num_res_blocks = 1
    c.model.encoder_size = 32
    c.model.encoder_widths = (8, 8, 8, 8)
    c.loss.pyramid_cells = 8
    c.optim.learning_rate = 1e-3
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.checkpoint_every = 2
    c.train.sample_every = 4
    c.data.threads = 0
    c.eval.batch_size = 4
    c.eval.targets_per_clip = 2
    c.sample.num_frames = 3
    c.lstm.num_steps = 50
  elif arg == 'oneday':
    c.dataset = 'oneday_timelapse/default'
    c.image_size = 256
  elif arg:
    raise ValueError(f'unknown variant {arg!r} of configs/landscape_appearance.py: use cpu, '
                     'oneday or smoke')
  return c
