"""Image2GIF, RNN and RNN+DQN (Zhou et al. 2018, Sec. 3, 5.1-5.2) on the synthetic patterns.

  configs/image2gif.py          the paper's synthetic setting: full-width generator, ConvLSTM
                                bottleneck with z 64, Adam 2e-4, batch 64, lambda_adv 0.005,
                                on image2gif_patterns/all (6K iterations per pattern in the paper,
                                which trains one model per pattern: --config.dataset=
                                image2gif_patterns/O and --config.train.num_steps=6000)
  configs/image2gif.py:dqn      RNN+DQN (Q-vector of N = 64)
  configs/image2gif.py:dense    the dense-LSTM-on-z variant (z 64)
  configs/image2gif.py:real     z 512, N 512, lambda_adv 0.05 (the real-cinemagraph setting)
  configs/image2gif.py:cpu      1/8-width networks, batch 8, image2gif_patterns/small_all, 240
                                steps: ~20 min on a shared 2-core CPU; combine: :cpu,dqn
  configs/image2gif.py:smoke    tiny networks and data, for tests (also :smoke,dqn)
"""
import ml_collections


def get_config(arg: str | None = None):
  c = ml_collections.ConfigDict()
  c.method = 'image2gif'
  c.dataset = 'image2gif_patterns/all'
  c.data_dir = '~/tensorflow_datasets'
  c.manual_dir = ''
  c.seed = 0
  c.dtype = 'float32'
  c.batch_size = 64                         # Sec. 5.1

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

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 2e-4              # Adam (Sec. 5.1)
  c.optim.b1 = 0.5                          # ours: DCGAN's (Radford 2015); the paper omits it
  c.optim.b2 = 0.999

  c.data = ml_collections.ConfigDict()
  c.data.threads = 2

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 36_000                # 6K iterations per pattern (Sec. 5.2) x 6 patterns
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 2000
  c.train.check_finite_every = 1
  c.train.eval_every = 0

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 64

  variants = [v for v in (arg or '').split(',') if v]
  for v in variants:
    if v == 'dqn':
      c.model.dqn = True
    elif v == 'dense':
      c.model.recurrent = 'dense'
    elif v == 'real':
      c.model.z_dim = 512
      c.model.num_actions = 512
      c.loss.lambda_adv = 0.05
    elif v == 'cpu':
      # 1/8 of every width, batch 8: ~20 min on a shared 2-core CPU (docs/image2gif.md)
      c.dataset = 'image2gif_patterns/small_all'
      c.batch_size = 8
      c.model.widths = (8, 16, 32, 64)
      c.model.decoder_widths = (64, 32, 16, 8)
      c.model.discriminator_widths = (8, 16, 32, 64)
      c.model.remat = False                   # small networks: memory is no issue (the runs below)
      c.train.num_steps = 240                 # 0.2-0.25 steps/s measured with 3 other jobs running
      c.train.log_every = 10
      c.train.checkpoint_every = 50
      c.train.sample_every = 100
      c.dqn.epsilon_steps = 400
      c.dqn.target_update_every = 50
      c.eval.batch_size = 24
    elif v == 'smoke':
      c.dataset = 'image2gif_patterns/tiny_all'
      c.batch_size = 8
      c.model.widths = (4, 4, 4, 8)
      c.model.decoder_widths = (8, 4, 4, 4)
      c.model.discriminator_widths = (4, 4, 4, 4)
      c.model.z_dim = 4
      c.model.num_actions = 3
      c.train.num_steps = 2
      c.train.log_every = 1
      c.train.checkpoint_every = 2
      c.train.sample_every = 2
      c.dqn.epsilon_steps = 4
      c.dqn.target_update_every = 2
      c.data.threads = 0
      c.eval.batch_size = 8
    else:
      raise ValueError(f'unknown variant {v!r} of configs/image2gif.py: use dqn, dense, real, '
                       'cpu or smoke (comma-separated)')
  return c
