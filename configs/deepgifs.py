"""DeepGIFs (Malik, Troute & Capoor): VAE-GAN pretraining, then the latent LSTM (Sec. 4).

  configs/deepgifs.py         paper settings on Moving MNIST (moving_mnist/default, generated on
                              first use): latent 95, batch 32, Adam 1e-3, lambda_gan 3e-4,
                              lambda_KL 1e-8; VAE-GAN pretraining Adam 5e-4, 128 frames/step
  configs/deepgifs.py:balls   the same on 2 bouncing balls (bouncing_balls/balls2): latent 20,
                              lambda_gan 1e-4
  configs/deepgifs.py:cpu     Moving MNIST, halved widths, batch 8, LSTM on 8-frame windows,
                              400 + 900 steps: ~20 min on a shared 2-core CPU
  configs/deepgifs.py:cpu_balls  bouncing balls at the :cpu budget
  configs/deepgifs.py:smoke   tiny network on bouncing_balls/tiny, for tests

Full MNIST: --config.dataset=moving_mnist/full --config.manual_dir=<folder with mnist.npz or the
idx files>. DeepGIFs' own Moving MNIST script summed the digits: moving_mnist/additive.
"""
import ml_collections


def get_config(arg: str | None = None):
  c = ml_collections.ConfigDict()
  c.method = 'deepgifs'
  c.dataset = 'moving_mnist/default'
  c.data_dir = '~/tensorflow_datasets'
  c.manual_dir = ''
  c.seed = 0
  c.dtype = 'float32'
  c.image_size = 64                      # Sec. 3.2: 64 x 64, 20 frames
  c.frames = 20
  c.batch_size = 32                      # Sec. 5.1 / 5.2 (clips per step in the LSTM phase)

  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 95                # Sec. 4.1.1 (Moving MNIST; balls 20, public code)
  c.model.widths = (32, 64, 128, 256)    # Sec. 4.1.1
  c.model.lstm_hidden = 200              # Sec. 4.1.2
  c.model.channels = 1

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_gan = 3e-4               # public code, Moving MNIST (1e-4 balls, Sec. 4.2)
  c.loss.lambda_kl = 1e-8                # Sec. 4.2
  c.loss.vaegan_lambda_gan = 1e-4        # VAE-GAN pretraining (public code)

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-3           # Adam, VAE-LSTM and D (Sec. 5.1, 5.2)
  c.optim.vaegan_learning_rate = 5e-4    # Adam, VAE-GAN pretraining (public code)
  c.optim.b1 = 0.9                       # PyTorch Adam defaults (no betas given)
  c.optim.b2 = 0.999

  c.data = ml_collections.ConfigDict()
  c.data.threads = 2
  c.data.train_frames = 0                # 0: train on whole clips; >0: random windows (CPU)

  c.train = ml_collections.ConfigDict()
  # Ours: the paper gives no training lengths. Steps [0, vaegan_steps) pretrain the VAE-GAN.
  c.train.num_steps = 60_000
  c.train.vaegan_steps = 20_000
  c.train.vaegan_frames_per_clip = 4     # x 32 clips = the public code's 128 frames per batch
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

  variants = set((arg or '').split('_')) - {''}
  unknown = variants - {'balls', 'cpu', 'smoke'}
  if unknown:
    raise ValueError(f'unknown variant {arg!r} of configs/deepgifs.py: use balls, cpu, '
                     'cpu_balls or smoke')
  if 'balls' in variants:
    c.dataset = 'bouncing_balls/balls2'
    c.model.latent_dim = 20              # public code, balls
    c.loss.lambda_gan = 1e-4             # Sec. 4.2
  if 'cpu' in variants:
    # ~20 min on a shared 2-core CPU (measured 0.3 s per VAE-GAN step, ~0.9 s per LSTM step):
    # half the widths, 8 clips per step, LSTM trained on random 8-frame windows (rollouts and
    # evaluation still span all 20 frames); 400 VAE-GAN steps (8 clips x 4 frames), then 900
    # LSTM steps. Losses and optimisers as above.
    c.model.widths = (16, 32, 64, 128)
    c.batch_size = 8
    c.data.train_frames = 8
    c.train.num_steps = 1300
    c.train.vaegan_steps = 400
    c.train.checkpoint_every = 325
    c.train.sample_every = 650
    c.eval.rollout_clips = 256
  if 'smoke' in variants:
    c.dataset = 'bouncing_balls/tiny'
    c.image_size = 32
    c.frames = 6
    c.batch_size = 8
    c.model.latent_dim = 8
    c.model.widths = (4, 4, 8, 8)
    c.model.lstm_hidden = 16
    c.train.num_steps = 4
    c.train.vaegan_steps = 2
    c.train.vaegan_frames_per_clip = 2
    c.train.log_every = 2
    c.train.checkpoint_every = 2
    c.train.sample_every = 4
    c.data.threads = 0
    c.eval.batch_size = 8
    c.eval.rollout_clips = 8
    c.sample.num_frames = 6
  return c
