"""DeepGIFs (Malik, Troute & Capoor): VAE-GAN pretraining, then the latent LSTM (Sec. 4).

Two runs, as the public code: first the VAE-GAN (variant `vaegan`), then the LSTM phase, which
starts from the VAE-GAN run's workdir (train.init_from; by default the workdir that
`python -m animgen.main` gives the same variant plus `_vaegan`, e.g. runs/deepgifs_vaegan).

  configs/deepgifs.py:vaegan   VAE-GAN pretraining on Moving MNIST (moving_mnist/default,
                               generated on first use): Adam 5e-4, 128 frames per batch,
                               lambda_gan 1e-4, lambda_KL 1e-8, latent 95
  configs/deepgifs.py          the LSTM phase with the paper's settings: batch 32 clips of 20
                               frames, Adam 1e-3, lambda_gan 3e-4, lambda_KL 1e-8, LSTM 200
  ...:balls / :balls_vaegan    the same on 2 bouncing balls (bouncing_balls/balls2): latent 20,
                               lambda_gan 1e-4
  ...:cpu / :cpu_vaegan        ~20 min each on a shared 2-core CPU: half the widths, batch 8
                               clips (VAE-GAN: 32 frames), LSTM on random 8-frame windows
  ...:cpu_balls / :cpu_balls_vaegan   the same on the balls
  configs/deepgifs.py:smoke    tiny network on bouncing_balls/tiny, LSTM phase from scratch
                               (:smoke_vaegan for the VAE-GAN phase), for tests

Full MNIST: --config.dataset=moving_mnist/full --config.manual_dir=<folder with mnist.npz or the
idx files>. DeepGIFs' own Moving MNIST script summed the digits: moving_mnist/additive.
"""
import ml_collections


def get_config(arg: str | None = None):
  variants = set((arg or '').split('_')) - {''}
  unknown = variants - {'balls', 'cpu', 'smoke', 'vaegan'}
  if unknown:
    raise ValueError(f'unknown variant {arg!r} of configs/deepgifs.py: combine balls, cpu, '
                     'smoke and vaegan with _ (e.g. cpu_balls_vaegan)')
  vaegan = 'vaegan' in variants
  c = ml_collections.ConfigDict()
  c.method = 'deepgifs'
  c.dataset = 'moving_mnist/default'
  c.data_dir = '~/tensorflow_datasets'
  c.manual_dir = ''
  c.seed = 0
  c.dtype = 'float32'
  c.image_size = 64                      # Sec. 3.2: 64 x 64, 20 frames
  c.frames = 20
  c.batch_size = 32                      # Sec. 5.1 / 5.2: clips per step in the LSTM phase

  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 95                # Sec. 4.1.1 (Moving MNIST; balls 20, public code)
  c.model.widths = (32, 64, 128, 256)    # Sec. 4.1.1
  c.model.lstm_hidden = 200              # Sec. 4.1.2
  c.model.channels = 1

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_gan = 3e-4               # public code, Moving MNIST (balls 1e-4, Sec. 4.2)
  c.loss.lambda_kl = 1e-8                # Sec. 4.2

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-3           # Adam, VAE-LSTM and D (Sec. 5.1, 5.2)
  c.optim.b1 = 0.9                       # PyTorch Adam defaults (no betas given)
  c.optim.b2 = 0.999

  c.data = ml_collections.ConfigDict()
  c.data.threads = 2
  c.data.train_frames = 0                # 0: train on whole clips; >0: random windows (CPU)

  c.train = ml_collections.ConfigDict()
  c.train.phase = 'lstm'
  c.train.init_from = 'runs/deepgifs_' + (f'{arg}_vaegan' if arg else 'vaegan')
  c.train.vaegan_frames_per_clip = 1     # VAE-GAN batches: random single frames of clips
  c.train.num_steps = 40_000             # ours: the paper gives no training lengths
  c.train.log_every = 50
  c.train.checkpoint_every = 2000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 2000
  c.train.check_finite_every = 1
  c.train.eval_every = 0

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 32
  c.eval.rollout_clips = 256             # test clips in the rollout table

  c.sample = ml_collections.ConfigDict()
  c.sample.num_frames = 20               # Sec. 4: a 20-frame GIF from one seed frame

  if vaegan:                             # public code's VAE-GAN pretraining
    c.train.phase = 'vaegan'
    c.train.init_from = ''
    c.batch_size = 128
    c.optim.learning_rate = 5e-4
    c.loss.lambda_gan = 1e-4
    c.train.num_steps = 20_000           # ours
  if 'balls' in variants:
    c.dataset = 'bouncing_balls/balls2'
    c.model.latent_dim = 20              # public code, balls
    c.loss.lambda_gan = 1e-4             # Sec. 4.2
  if 'cpu' in variants:
    # Measured on the shared 2-core CPU: 2-4 VAE-GAN steps/s (32 frames), ~1.9 LSTM steps/s
    # (8 clips x 8 frames): ~8 + ~15 min. Half the widths; losses and optimisers as above.
    c.model.widths = (16, 32, 64, 128)
    c.batch_size = 32 if vaegan else 8
    c.data.train_frames = 8              # LSTM on random 8-frame windows; rollouts span 20
    c.train.num_steps = 1500 if vaegan else 1600
    c.train.checkpoint_every = 500
    c.train.sample_every = 500
  if 'smoke' in variants:
    c.dataset = 'bouncing_balls/tiny'
    c.image_size = 32
    c.frames = 6
    c.batch_size = 8
    c.model.latent_dim = 8
    c.model.widths = (4, 8)              # two stride-2 convs: 32 -> 8 (compiles fast)
    c.model.lstm_hidden = 16
    c.train.init_from = ''
    c.train.vaegan_frames_per_clip = 2
    c.train.num_steps = 2
    c.train.log_every = 1
    c.train.checkpoint_every = 2
    c.train.sample_every = 2
    c.data.threads = 0
    c.eval.batch_size = 8
    c.eval.rollout_clips = 8
    c.sample.num_frames = 6
  return c
