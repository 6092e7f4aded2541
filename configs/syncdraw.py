"""Sync-DRAW (Mittal et al. 2017): R-VAE with per-frame Gaussian attention on bouncing MNIST.

Variants (combine them with commas, e.g. configs/syncdraw.py:cpu,captions):
  configs/syncdraw.py            paper: single-digit bouncing MNIST (generated on first use),
                                 T = 10, K = 8, LSTMs 256, z 100, batch 100, Adam 1e-3 / 0.5,
                                 clip 10; 50,000 steps (the public code's iterations)
  configs/syncdraw.py:captions   Sec. 3.2 caption model (BiLSTM + alignment + Eq. 16 prior);
                                 evaluation adds caption adherence on the unseen test captions
  configs/syncdraw.py:two_digit  two-digit bouncing MNIST (Sec. 4.3; with captions: Fig. 12)
  configs/syncdraw.py:cuboid     the cuboid DRAW baseline of Sec. 4.1 (temporal bank F_Z)
  configs/syncdraw.py:tgif       TGIF-style GIFs at 128 x 128 (Sec. 4.4;
                                 --config.manual_dir=<folder holding tgif/train, tgif/test>)
  configs/syncdraw.py:cpu        the paper network at batch 32 for 600 steps: 10-15 min on 2 busy
                                 cores (the docs/syncdraw.md figures)
  configs/syncdraw.py:smoke      tiny network and data (tests)
"""
import ml_collections

_VARIANTS = ('captions', 'two_digit', 'cuboid', 'tgif', 'cpu', 'smoke')


def get_config(arg: str | None = None):
  variants = [v for v in (arg or '').split(',') if v]
  for v in variants:
    if v not in _VARIANTS:
      raise ValueError(f'unknown variant {v!r} of configs/syncdraw.py: use any of {_VARIANTS} '
                       'joined by commas')
  c = ml_collections.ConfigDict()
  c.method = 'syncdraw'
  c.dataset = 'bouncing_mnist/single_digit'
  c.data_dir = '~/tensorflow_datasets'
  c.manual_dir = ''
  c.seed = 0
  c.dtype = 'float32'
  c.batch_size = 100                 # public code

  c.model = ml_collections.ConfigDict()
  c.model.frames = 10                # N (Sec. 4.2)
  c.model.size = 64                  # A = B
  c.model.steps = 10                 # T (Sec. 4)
  c.model.read_n = 8                 # K (Sec. 4; the public code used 10)
  c.model.write_n = 8
  c.model.enc_size = 256             # public code
  c.model.dec_size = 256
  c.model.z_size = 100
  c.model.cuboid = False             # Sec. 4.1 baseline
  c.model.captions = False           # Sec. 3.2
  c.model.caption_length = 8         # words ('the digit 3 is moving left and right')
  # Caption encoder sizes: the paper gives none; AlignDRAW's (Mansimov 2016) 128 per direction.
  c.model.embed_dim = 128
  c.model.lang_size = 128
  c.model.align_size = 256

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-3       # Sec. 4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.optim.grad_clip = 10.0

  c.data = ml_collections.ConfigDict()
  c.data.threads = 2

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 50_000
  c.train.log_every = 100
  c.train.checkpoint_every = 2000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 5000
  c.train.check_finite_every = 10
  c.train.eval_every = 0

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 100
  c.eval.adherence_samples = 20      # GIFs per unseen test caption
  c.eval.classifier_steps = 600      # digit/motion classifier (ours)
  c.eval.classifier_batch = 64
  c.eval.classifier_test_gifs = 1000

  if 'two_digit' in variants:
    c.dataset = 'bouncing_mnist/two_digit'
    c.model.caption_length = 16
  if 'captions' in variants:
    c.model.captions = True
  if 'cuboid' in variants:
    c.model.cuboid = True
  if 'tgif' in variants:
    c.dataset = 'tgif/default'
    c.model.size = 128
    if c.model.captions:
      raise ValueError('configs/syncdraw.py: tgif has no captions here; drop captions')
  if 'cpu' in variants:
    # Fits ~15 min on a shared 2-core CPU: the paper's network and optimiser, batch 32.
    c.batch_size = 32
    c.train.num_steps = 600
    c.train.log_every = 50
    c.train.checkpoint_every = 500
    c.train.sample_every = 600
  if 'smoke' in variants:
    c.dataset = ('bouncing_mnist/two_digit_tiny' if 'two_digit' in variants
                 else 'bouncing_mnist/single_digit_tiny')
    if 'tgif' in variants:
      c.dataset = 'tgif/tiny'
    c.model.frames = 4
    c.model.size = 32
    c.model.steps = 2
    c.model.read_n = 3
    c.model.write_n = 3
    c.model.enc_size = 16
    c.model.dec_size = 16
    c.model.z_size = 4
    c.model.embed_dim = 8
    c.model.lang_size = 8
    c.model.align_size = 8
    c.batch_size = 8
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.checkpoint_every = 2
    c.train.sample_every = 4
    c.train.check_finite_every = 1
    c.data.threads = 0
    c.eval.batch_size = 8
    c.eval.adherence_samples = 2
    c.eval.classifier_steps = 3
    c.eval.classifier_batch = 8
    c.eval.classifier_test_gifs = 16
  return c
