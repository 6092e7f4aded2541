"""Image2GIF (Zhou, Song and Berg 2018): a cinemagraph from one still, RNN and RNN+DQN.

The generator encodes the input frame x once and unrolls its LSTM for the sequence, decoding
every step to a frame (Sec. 3.1, Fig. 2). Loss (Eqs. 1-3): MSE to the ground-truth frames +
lambda_adv * (-log D(G(x))); the per-frame discriminator D is trained with its binary
cross-entropy. With `model.dqn` (Sec. 3.2, Fig. 3) a Q-network looks at the previous frame (x at
the first step) and picks one of N actions; its one-hot is concatenated with the LSTM state before
decoding.

Q-learning. The paper cites the DQN of Mnih 2015 and gives no details. Taken from Mnih 2015: the
TD target r + gamma * max_a Q_target(next frame, a) with a periodically copied target network,
the Huber-clipped TD error, epsilon-greedy actions in training (linearly annealed), greedy in
evaluation. Ours: the reward of an action is minus the Eq. 3 loss of the frame it produced (Sec. 2:
actions are chosen "to further lower the generative loss"); the last true frame is terminal.
Departure from Mnih 2015: no experience replay. Its transitions come from a fixed game; ours are
made by the generator and discriminator being trained (the next state is the frame the generator
decodes, the reward its loss under the current D), which change at every step, so a replayed
transition's reward and next state would be stale. The batch's own rollout already gives
B x (T - 1) transitions from B independent sequences (1,664 at the paper's batch 64 and 27
frames), which decorrelates the minibatch as replay does; and a memory of 64x64 frames would sit
in every replicated train state.

Evaluation (Sec. 5.2, 5.4, 5.5; evaluators/tables.py): per pattern, PSNR and SSIM of the generated
frames (Table 1), of the consecutive-frame differences (Table 3) and the distance between the
object centres of ground truth and generated frames (Table 4), for the model and two baselines:
copy the input frame (Sec. 5.4's "Constant") and the mean training frame (ours). Only the true
frames of each sequence count (not the black padding). Where the paper is silent:
- Table 3: it does not say how differences are scaled. A difference d of frames in [0, 1] lies in
  [-1, 1]; we take (d + 1) / 2 in [0, 1] with peak 1, i.e. PSNR with the differences' full range 2
  as the peak; SSIM of the mapped images (its luminance term sees the 0.5 offset), so static
  regions score SSIM 1. Our Constant rows are not on the paper's scale (ours ~0.9 SSIM, the
  paper's ~0.6; its data differ too): compare rows within one table.
- Table 4: "segment out the object from the ground truth data and run a sliding window on the
  generated frames": the true object (its mask and pixels at the same time step) is slid over the
  generated frame to every offset that keeps it inside the image; the offset of least mean squared
  difference (offsets within 1e-4 of the least averaged) is where it was found, and the distance is
  the length of that offset in px (64x64 frames). The paper does not say how a window is scored.
On real cinemagraphs (Sec. 5.3, datasets/cinemagraph_folder.py) there are no object masks: the
figures are those of Tables 2 and 3 (PSNR / SSIM of the frames and of their differences), and
training crops one random window per sequence, the same in every frame, resized back to 64 px
(`data.resized_crop`; the flips are the input pipeline's `data.flip`).
"""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen import runtime
from animgen.methods.base import Method
from animgen.models.image2gif import Discriminator, Generator, QNetwork
from animgen.ops import losses, metrics, warp

SIZE = 64


@flax.struct.dataclass
class Image2GIFState:
  step: jax.Array
  params: dict            # {'generator', 'discriminator'} and {'q'} with the DQN
  target_q: dict          # the DQN's target network (empty without the DQN)
  opt_g: optax.OptState   # generator (and Q-network) Adam state
  opt_d: optax.OptState


def to_signed(frames_uint8):
  """uint8 [0, 255] -> [-1, 1] (the generator's tanh range)."""
  return frames_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_unit(x):
  return jnp.clip((x + 1.0) * 0.5, 0.0, 1.0)


def frame_reward(se, adv, lambda_adv, num_values):
  """The reward of the action that produced a frame: minus the frame's Eq. 3 loss (ours) per
  value of the frame (num_values = 64 * 64 * 3): a positive scale, which leaves the greedy policy
  unchanged and keeps rewards near the [-1, 1] of Mnih 2015's clipping."""
  return -(se + lambda_adv * adv) / num_values


def td_target(reward, next_q_target, done, gamma):
  """y = r + gamma * max_a Q_target(s', a), y = r at the last frame (Mnih 2015, Alg. 1)."""
  return reward + gamma * (1.0 - done) * jnp.max(next_q_target, axis=-1)


def masked_mean(x, mask):
  mask = jnp.broadcast_to(mask, x.shape).astype(x.dtype)
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def object_centre(mask):
  """Centre (x, y) in px of a binary mask [..., H, W] (pixel centres at i + 0.5)."""
  h, w = mask.shape[-2:]
  m = mask.astype(jnp.float32)
  total = jnp.maximum(m.sum((-2, -1)), 1e-6)
  ys = jnp.arange(h, dtype=jnp.float32) + 0.5
  xs = jnp.arange(w, dtype=jnp.float32) + 0.5
  return jnp.stack([(m.sum(-2) * xs).sum(-1) / total, (m.sum(-1) * ys).sum(-1) / total], -1)


def _correlate(f, k):
  """c[s] = sum_p k[p] f[p + s] for every shift s, by FFT: f, k [H, W] -> c [2H, 2W], shift s
  at index s mod (2H, 2W) (zero padding: no wrap-around for |s| < (H, W))."""
  size = (2 * f.shape[0], 2 * f.shape[1])
  return jnp.fft.irfft2(jnp.fft.rfft2(f, size) * jnp.conj(jnp.fft.rfft2(k, size)), size)


def template_offset(frame, truth, mask, tie: float = 1e-4):
  """Sec. 5.5's sliding window: the true object (`truth` [H, W, 3] under `mask` [H, W]) slid over
  the generated `frame` [H, W, 3] (both [0, 1]) to every offset that keeps it inside the image;
  its mean squared difference under the mask at each offset; the mean of the offsets within
  `tie` of the least -> (dx, dy) in px from where the object is to where it was found."""
  m = mask.astype(jnp.float32)
  h, w = m.shape
  area = jnp.maximum(m.sum(), 1.0)
  ssd = (_correlate(jnp.sum(jnp.square(frame), -1), m) + jnp.sum(m[..., None] * truth ** 2)
         - 2.0 * sum(_correlate(frame[..., c], m * truth[..., c]) for c in range(3)))
  inside = _correlate(jnp.ones((h, w)), m) > m.sum() - 0.5
  score = jnp.where(inside, ssd / area, jnp.inf)
  best = (score <= jnp.min(score) + tie).astype(jnp.float32)
  shift = lambda n: jnp.where(jnp.arange(2 * n) < n, jnp.arange(2 * n), jnp.arange(2 * n) - 2 * n)
  count = best.sum()
  return jnp.stack([(best.sum(0) * shift(w)).sum() / count, (best.sum(1) * shift(h)).sum() / count])


def frame_differences(video):
  """Consecutive-frame differences [B, T - 1, ...] of video [B, T, ...] in [0, 1], mapped from
  [-1, 1] to [0, 1] (Table 3; the scaling is ours, see the module docstring)."""
  return (jnp.diff(video, axis=1) + 1.0) * 0.5


def sequence_figures(gen, truth, valid, masks=None):
  """The Tables 1, 3 and 4 figures of each sequence, averaged over its true generated frames.

  gen, truth [B, T, 64, 64, 3] in [0, 1] with the input as frame 0; valid [B, T - 1] marks the
  true frames 1..T-1; masks [B, T, 64, 64] the true object, or None (real cinemagraphs: no
  Table 4) -> {figure: [B]}."""
  g1, t1 = gen[:, 1:], truth[:, 1:]
  dg, dt = frame_differences(gen), frame_differences(truth)
  out = {'psnr': masked_mean_rows(psnr(g1, t1), valid),                 # Tables 1 and 2
         'ssim': masked_mean_rows(metrics.ssim(g1, t1), valid),
         'diff_psnr': masked_mean_rows(psnr(dg, dt), valid),            # Table 3
         'diff_ssim': masked_mean_rows(metrics.ssim(dg, dt), valid)}
  if masks is not None:
    m1 = masks[:, 1:]
    offset = jax.vmap(jax.vmap(template_offset))(g1, t1, m1)              # [B, T - 1, 2]
    has_object = jnp.any(m1 > 0, axis=(2, 3))
    out['centre_distance'] = masked_mean_rows(jnp.linalg.norm(offset, axis=-1),  # Table 4
                                              valid & has_object)
  return out


def random_resized_crop(frames, rng, crop: int):
  """Sec. 5.3's "cropping different regions from frames (random location fixed across time)":
  frames [B, T, H, W, C] -> per sequence one random crop x crop window, the same in every frame,
  resized back to H x W (bilinear; the window size is ours, the paper gives none)."""
  b, t, h, w, c = frames.shape
  ky, kx = jax.random.split(rng)
  ys = jax.random.randint(ky, (b,), 0, h - crop + 1)
  xs = jax.random.randint(kx, (b,), 0, w - crop + 1)
  cut = jax.vmap(lambda f, y, x: jax.lax.dynamic_slice(f, (0, y, x, 0), (t, crop, crop, c)))(
      frames.astype(jnp.float32), ys, xs)
  return warp.resize(cut.reshape((b * t, crop, crop, c)), h, w).reshape((b, t, h, w, c))


def baseline_sequences(truth, mean_frame):
  """The baseline rows of every table, each [B, T, 64, 64, 3] with the input as frame 0: copy the
  input frame ('copy_input', Sec. 5.4's "Constant") and, after the input, the per-pixel mean of
  the training output frames ('mean_frame' [64, 64, 3] in [0, 1]; ours)."""
  x = truth[:, :1]
  rest = jnp.broadcast_to(mean_frame.astype(truth.dtype), (truth.shape[0], truth.shape[1] - 1)
                          + truth.shape[2:])
  return {'copy_input': jnp.broadcast_to(x, truth.shape),
          'mean_frame': jnp.concatenate([x, rest], axis=1)}


class Image2GIF(Method):
  """RNN (Sec. 3.1) or RNN+DQN (Sec. 3.2, `model.dqn=True`) cinemagraph generator."""

  def __init__(self, config, num_train: int = 0):
    super().__init__(config, num_train)
    m = config.model
    dtype = jnp.dtype(config.get('dtype', 'float32'))
    self.dqn = bool(m.dqn)
    self.num_actions = int(m.num_actions) if self.dqn else 0
    self.remat = bool(m.get('remat', False))
    # configs saved before model.rgb_conv existed had the 5x5 RGB conv
    self.generator = Generator(tuple(m.widths), tuple(m.decoder_widths), m.z_dim, m.recurrent,
                               bool(m.get('rgb_conv', True)), dtype=dtype)
    self.discriminator = Discriminator(tuple(m.discriminator_widths), dtype=dtype)
    self.qnet = QNetwork(tuple(m.widths), m.num_actions, dtype=dtype) if self.dqn else None
    o = config.optim
    self.tx_g = optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)
    self.tx_d = optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)

  @property
  def compiler_options(self):
    return runtime.cnn_compiler_options(runtime.DOT_ONLY_YNN_OPTIONS)

  # ---------------------------------------------------------------- data
  def make_example(self, record, rng, train):
    """A synthetic pattern record (frames, length, pattern, masks) or a real cinemagraph's
    (frames only: every frame true, no masks)."""
    del rng
    frames = np.asarray(record['frames'])
    ex = {'frames': frames, 'length': np.int32(record.get('length', len(frames)))}
    if 'pattern' in record:
      ex['pattern'] = np.int32(record['pattern'])
    if not train and 'masks' in record:
      ex['masks'] = np.asarray(record['masks'])
    return ex

  # ---------------------------------------------------------------- networks
  def init(self, rng, batch):
    del batch  # shapes are fixed: 64x64 frames
    kg, kd, kq = jax.random.split(rng, 3)
    x = jnp.zeros((1, SIZE, SIZE, 3))
    params = {
        'generator': self.generator.init(kg, x, jnp.zeros((1, 1, self.num_actions)))['params'],
        'discriminator': self.discriminator.init(kd, x)['params']}
    target_q = {}
    if self.dqn:
      params['q'] = self.qnet.init(kq, x)['params']
      target_q = params['q']
    gq = {k: v for k, v in params.items() if k != 'discriminator'}
    return Image2GIFState(step=jnp.zeros((), jnp.int32), params=params, target_q=target_q,
                          opt_g=self.tx_g.init(gq), opt_d=self.tx_d.init(params['discriminator']))

  def epsilon(self, step):
    """Linearly annealed exploration rate (Mnih 2015: 1 -> 0.1; our schedule length)."""
    d = self.config.dqn
    frac = jnp.clip(step / max(d.epsilon_steps, 1), 0.0, 1.0)
    return d.epsilon_start + frac * (d.epsilon_end - d.epsilon_start)

  def _gen(self, params, method: str, *args):
    """generator.<method>(*args) (by name: tests swap in hand-made networks)."""
    return self.generator.apply({'params': params['generator']}, *args, method=method)

  def states(self, params, x, num_frames):
    """LSTM states h_1..h_T [T, B, ...] from the input's code (the LSTM input at every step)."""
    code = self._gen(params, 'encode', x)
    carry = self._gen(params, 'initial_carry', code)
    _, hs = jax.lax.scan(lambda c, _: self._gen(params, 'step', c, code), carry, None,
                         length=num_frames)
    return hs

  def decode(self, params, hs, onehots=None):
    """Decode every time step (the decoder is shared over time, Sec. 5.1):
    hs [T, B, ...], onehots [T, B, N] -> frames [B, T, 64, 64, 3].

    All T x B frames in one batch, or with `model.remat` one time step at a time under
    jax.checkpoint (the same values; backward keeps one step's activations instead of all T:
    the paper's batch 64 x 27 frames peaks at 11.7 GiB without it, bench/README.md)."""
    t, b = hs.shape[:2]
    if self.remat:
      dec = jax.checkpoint(lambda p, h, o: self._gen(p, 'decode', h, o))
      if onehots is None:
        frames = jax.lax.map(lambda h: dec(params, h, None), hs)
      else:
        frames = jax.lax.map(lambda ho: dec(params, *ho), (hs, onehots))
      return jnp.swapaxes(frames, 0, 1)
    flat = lambda a: a.reshape((t * b,) + a.shape[2:])
    frames = self._gen(params, 'decode', flat(hs),
                       None if onehots is None else flat(onehots))
    return jnp.swapaxes(frames.reshape((t, b) + frames.shape[1:]), 0, 1)

  def act(self, params, x, hs, rng=None, epsilon=0.0):
    """The DQN's sequential decisions (Sec. 3.2, Fig. 3), forward only: at step t the Q-network
    sees the previous generated frame (x at t = 0) and picks an action, epsilon-greedily in
    training (rng given), greedily otherwise. Returns actions [T, B], the states it saw
    [T, B, 64, 64, 3] and the frames [T, B, 64, 64, 3]."""
    b, n = x.shape[0], self.num_actions
    keys = jax.random.split(rng, hs.shape[0]) if rng is not None else jnp.zeros(hs.shape[:1])

    def body(prev, inputs):
      h, key = inputs
      q = self.qnet.apply({'params': params['q']}, prev)
      action = jnp.argmax(q, axis=-1)
      if rng is not None:
        k1, k2 = jax.random.split(key)
        explore = jax.random.uniform(k1, (b,)) < epsilon
        action = jnp.where(explore, jax.random.randint(k2, (b,), 0, n), action)
      frame = self._gen(params, 'decode', h, jax.nn.one_hot(action, n, dtype=h.dtype))
      return frame, (action, prev, frame)

    _, (actions, seen, frames) = jax.lax.scan(body, x, (jax.lax.stop_gradient(hs), keys))
    return actions, seen, frames

  def policy_rollout(self, params, x, num_frames, rng=None, epsilon=0.0):
    """Generate `num_frames` frames after x [B, 64, 64, 3] ([-1, 1]) -> (frames
    [B, T, 64, 64, 3], DQN states [B, T, 64, 64, 3] or None, actions [B, T] or None).

    With the DQN the actions are chosen in a forward-only pass and the frames decoded again,
    all steps at once, with the same actions (identical values; the gradient cannot pass
    through the argmax anyway)."""
    hs = self.states(params, x, num_frames)
    if not self.dqn:
      return self.decode(params, hs), None, None
    actions, seen, _ = self.act(jax.lax.stop_gradient(params), x, hs, rng, epsilon)
    onehots = jax.nn.one_hot(actions, self.num_actions, dtype=hs.dtype)
    sw = lambda a: jnp.swapaxes(a, 0, 1)
    return self.decode(params, hs, onehots), sw(seen), sw(actions)

  def discriminate(self, params, frames):
    """frames [B, T, 64, 64, 3] -> logits [B, T] (per time step under jax.checkpoint with
    `model.remat`, as `decode`)."""
    b, t = frames.shape[:2]
    if self.remat:
      d = jax.checkpoint(lambda p, f: self.discriminator.apply({'params': p}, f))
      logits = jax.lax.map(lambda f: d(params, f), jnp.swapaxes(frames, 0, 1))
      return jnp.swapaxes(logits.reshape(t, b), 0, 1)
    logits = self.discriminator.apply({'params': params}, frames.reshape((b * t,) + frames.shape[2:]))
    return logits.reshape(b, t)

  # ---------------------------------------------------------------- steps
  @staticmethod
  def _split(batch):
    frames = to_signed(batch['frames'])                    # [B, T, H, W, 3]
    t = frames.shape[1]
    valid = jnp.arange(1, t)[None, :] < batch['length'][:, None]  # generated frames 1..T-1
    return frames[:, 0], frames[:, 1:], valid

  def loss(self, gq_params, d_params, target_q, batch, rng, epsilon):
    c = self.config
    x, target, valid = self._split(batch)
    params = dict(gq_params)
    pred, seen, actions = self.policy_rollout(params, x, target.shape[1], rng, epsilon)
    # Eq. 1 |Y - G(x)|^2: the squared norm of each frame's error (summed over its pixels, as
    # the equation writes it; a per-pixel mean would weigh lambda_adv 12,288 times more), its
    # mean over the frames, black padding included (Sec. 5.2 pads short sequences)
    se = jnp.sum(jnp.square(pred - target), axis=(2, 3, 4))        # [B, T-1]
    l_mse = jnp.mean(se)
    adv = losses.bce_with_logits(self.discriminate(d_params, pred), 1.0)  # Eq. 2 per frame
    l_adv = masked_mean(adv, valid)                   # GAN terms on true frames only (ours)
    l_g = l_mse + c.loss.lambda_adv * l_adv           # Eq. 3
    out = {'loss_mse': l_mse, 'loss_adv': l_adv, 'loss_g': l_g}
    total = l_g
    if self.dqn:
      reward = jax.lax.stop_gradient(frame_reward(se, adv, c.loss.lambda_adv, pred[0, 0].size))
      l_td, dqn_out = self.td_loss(params['q'], target_q, seen, pred, actions, reward,
                                   batch['length'])
      total = total + l_td
      out.update(loss_td=l_td, **dqn_out)
    out['loss'] = total
    return total, (pred, valid, target, out)

  def td_loss(self, q_params, target_q, seen, frames, actions, reward, length):
    """The DQN loss of a rollout's B x (T-1) transitions (Mnih 2015, Alg. 1; module docstring):
    state seen [B, T-1, 64, 64, 3] (the frame the Q-network looked at), action [B, T-1], reward
    [B, T-1], next state frames [B, T-1, 64, 64, 3] (the frame the action produced). Target
    y = r + gamma * max_a Q_target(next, a), y = r at the last true frame (frame length - 1);
    Huber error (Mnih 2015's clipping) over the true frames -> (loss, {'q_mean', 'reward'})."""
    b, t = reward.shape
    q = lambda p, s: self.qnet.apply({'params': p}, s.reshape((b * t,) + s.shape[2:])).reshape(
        b, t, -1)
    valid = jnp.arange(t)[None, :] < length[:, None] - 1
    done = (jnp.arange(t)[None, :] >= length[:, None] - 2).astype(jnp.float32)
    next_q = q(target_q, jax.lax.stop_gradient(frames))
    y = jax.lax.stop_gradient(td_target(reward, next_q, done, self.config.dqn.gamma))
    q_sa = jnp.take_along_axis(q(q_params, seen), actions[..., None], axis=-1)[..., 0]
    l_td = masked_mean(optax.huber_loss(q_sa, y, delta=1.0), valid)
    return l_td, {'q_mean': masked_mean(q_sa, valid), 'reward': masked_mean(reward, valid)}

  def train_step(self, state, batch, rng):
    params = state.params
    crop = int(self.config.data.get('resized_crop', 0) or 0)
    if crop:   # Sec. 5.3's random crops (module docstring)
      rng, crop_rng = jax.random.split(rng)
      batch = dict(batch, frames=random_resized_crop(batch['frames'], crop_rng, crop))
    gq = {k: v for k, v in params.items() if k != 'discriminator'}
    eps = self.epsilon(state.step)
    (_, (pred, valid, target, metrics_)), grads = jax.value_and_grad(self.loss, has_aux=True)(
        gq, params['discriminator'], state.target_q, batch, rng, eps)
    updates, opt_g = self.tx_g.update(grads, state.opt_g, gq)
    gq = optax.apply_updates(gq, updates)
    fake = jax.lax.stop_gradient(pred)

    def d_loss(dp):  # D's binary cross-entropy on true and generated frames
      real = losses.bce_with_logits(self.discriminate(dp, target), 1.0)
      gen = losses.bce_with_logits(self.discriminate(dp, fake), 0.0)
      return masked_mean(real, valid) + masked_mean(gen, valid)

    l_d, d_grads = jax.value_and_grad(d_loss)(params['discriminator'])
    d_updates, opt_d = self.tx_d.update(d_grads, state.opt_d, params['discriminator'])
    new_params = dict(gq, discriminator=optax.apply_updates(params['discriminator'], d_updates))
    step = state.step + 1
    target_q = state.target_q
    if self.dqn:  # copy the online network every target_update_every steps (Mnih 2015)
      copy = step % self.config.dqn.target_update_every == 0
      target_q = jax.tree.map(lambda o, t: jnp.where(copy, o, t), new_params['q'], target_q)
      metrics_['epsilon'] = eps
    metrics_['loss_d'] = l_d
    metrics_['grad_norm_g'] = optax.tree.norm(grads)
    return state.replace(step=step, params=new_params, target_q=target_q, opt_g=opt_g,
                         opt_d=opt_d), metrics_

  # ---------------------------------------------------------------- evaluation
  def greedy_frames(self, params, x, num_frames: int):
    """The frames generated after x [B, 64, 64, 3] in [-1, 1], the DQN acting greedily ->
    [B, num_frames, 64, 64, 3] in [-1, 1]."""
    hs = self.states(params, x, num_frames)
    if self.dqn:
      return jnp.swapaxes(self.act(params, x, hs)[2], 0, 1)
    return self.decode(params, hs)

  def generate(self, params, batch):
    """Greedy rollout from the first frame -> (generated, ground truth) [B, T, H, W, 3] in
    [0, 1] with the input as frame 0, and the valid-frame mask [B, T - 1]."""
    x, target, valid = self._split(batch)
    pred = self.greedy_frames(params, x, target.shape[1])
    gen = jnp.concatenate([x[:, None], pred], axis=1)
    truth = jnp.concatenate([x[:, None], target], axis=1)
    return to_unit(gen), to_unit(truth), valid

  def cinemagraph(self, params, image, num_frames: int):
    """A cinemagraph of one still (Sec. 3): image uint8 [64, 64, 3] -> frames
    [num_frames, 64, 64, 3] in [0, 1], the image then num_frames - 1 generated frames (greedy).
    Pure; jit it with num_frames static (`animgen animate --method image2gif`)."""
    x = to_signed(image)[None]
    frames = jnp.concatenate([x[:, None], self.greedy_frames(params, x, num_frames - 1)], 1)
    return to_unit(frames)[0]

  def sequence_metrics(self, params, batch):
    """The model's per-sequence figures [B] (sequence_figures), greedy rollout."""
    gen, truth, valid = self.generate(params, batch)
    return sequence_figures(gen, truth, valid, batch.get('masks'))

  def table_metrics(self, params, batch, mean_frame):
    """{'model', 'copy_input', 'mean_frame': per-sequence figures [B]}: the rows of every table
    (baseline_sequences), computed in one batch of 3 B sequences."""
    gen, truth, valid = self.generate(params, batch)
    rows = {'model': gen, **baseline_sequences(truth, mean_frame)}
    k = len(rows)
    tile = lambda a: jnp.concatenate([a] * k, axis=0)
    figs = sequence_figures(jnp.concatenate(list(rows.values()), axis=0), tile(truth),
                            tile(valid), tile(batch['masks']))
    b = truth.shape[0]
    return {name: {f: v[i * b:(i + 1) * b] for f, v in figs.items()}
            for i, name in enumerate(rows)}

  def eval_step(self, state, batch, inputs=None):
    return self.sequence_metrics(state.params, batch)

  def rollout(self, state, batch, num_frames=None):
    """The greedy generation from each sequence's input frame, [B, T, 64, 64, 3] in [0, 1]
    (the sequence length of the data; num_frames is fixed by it)."""
    del num_frames
    return self.generate(state.params, batch)[0]

  def sample(self, state, batch, rng):
    del rng
    gen, truth, _ = self.generate(state.params, batch)
    return {'generated': gen, 'ground_truth': truth}


def psnr(a, b):
  """metrics.psnr capped at 100 dB (identical frames would give +inf and spoil the means)."""
  return metrics.psnr(a, b, cap=100.0)


def masked_mean_rows(x, mask):
  """Mean of x [B, T] over the True entries of mask [B, T], per row -> [B]."""
  m = mask.astype(jnp.float32)
  return jnp.sum(x * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)
