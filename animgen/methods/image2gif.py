"""Image2GIF (Zhou, Song and Berg 2018): a cinemagraph from one still, RNN and RNN+DQN.

The generator encodes the input frame x once and unrolls its LSTM for the sequence, decoding
every step to a frame (Sec. 3.1, Fig. 2). Loss (Eqs. 1-3): MSE to the ground-truth frames +
lambda_adv * (-log D(G(x))); the per-frame discriminator D is trained with its binary
cross-entropy. With `model.dqn` (Sec. 3.2, Fig. 3) a Q-network looks at the previous frame (x at
the first step) and picks one of N actions; its one-hot is concatenated with the LSTM state before
decoding. The paper gives no details of the Q-learning; ours is a DQN (Mnih 2015): the reward of
an action is minus the Eq. 3 loss of the frame it produced, the TD target is
r + gamma * max_a Q_target(next frame, a) with a periodically copied target network, the TD error
is Huber-clipped, and actions are epsilon-greedy in training (linearly annealed), greedy in
evaluation. Transitions are the B x (T - 1) steps of the current batch's rollout (no replay
memory: one jitted step, and the batch already mixes many sequences).

Evaluation (Sec. 5.2, 5.4, 5.5): per pattern, PSNR and SSIM of the generated frames (Table 1);
PSNR/SSIM of the consecutive-frame differences, next to the constant (copy-the-first-frame)
baseline (Table 3); the distance between the object centres of ground truth and generated frames
(Table 4). Only the true frames of each sequence count (not the black padding).
"""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen.methods.base import Method
from animgen.models.image2gif import Discriminator, Generator, QNetwork
from animgen.ops import losses, metrics

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


def sliding_window_centre(frame, colour, window: int = 5, sigma: float = 0.1, keep: float = 0.9):
  """Sec. 5.5's sliding window: where in `frame` [H, W, 3] ([0, 1]) does an object of `colour`
  [3] sit? Per-pixel colour similarity exp(-|f - c|^2 / 2 sigma^2) summed over a window x window
  box at every position; the centre is the mean position of the windows scoring >= keep * the
  best (a plateau of equal windows inside a large object averages to its centre) -> (x, y)."""
  sim = jnp.exp(-jnp.sum(jnp.square(frame - colour), -1) / (2 * sigma ** 2))
  box = jax.lax.reduce_window(sim, 0.0, jax.lax.add, (window, window), (1, 1), 'SAME')
  best = box >= keep * jnp.max(box)
  return object_centre(best)


class Image2GIF(Method):
  """RNN (Sec. 3.1) or RNN+DQN (Sec. 3.2, `model.dqn=True`) cinemagraph generator."""

  def __init__(self, config, num_train: int = 0):
    super().__init__(config, num_train)
    m = config.model
    dtype = jnp.dtype(config.get('dtype', 'float32'))
    self.dqn = bool(m.dqn)
    self.num_actions = int(m.num_actions) if self.dqn else 0
    self.remat = bool(m.get('remat', False))
    self.generator = Generator(tuple(m.widths), tuple(m.decoder_widths), m.z_dim, m.recurrent,
                               dtype=dtype)
    self.discriminator = Discriminator(tuple(m.discriminator_widths), dtype=dtype)
    self.qnet = QNetwork(tuple(m.widths), m.num_actions, dtype=dtype) if self.dqn else None
    o = config.optim
    self.tx_g = optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)
    self.tx_d = optax.adam(o.learning_rate, b1=o.b1, b2=o.b2)

  # ---------------------------------------------------------------- data
  def make_example(self, record, rng, train):
    del rng
    ex = {'frames': np.asarray(record['frames']), 'length': np.int32(record['length']),
          'pattern': np.int32(record['pattern'])}
    if not train:
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

  def _gen(self, params, method, *args):
    return self.generator.apply({'params': params['generator']}, *args, method=method)

  def states(self, params, x, num_frames):
    """LSTM states h_1..h_T [T, B, ...] from the input's code (the LSTM input at every step)."""
    code = self._gen(params, Generator.encode, x)
    carry = self._gen(params, Generator.initial_carry, code)
    _, hs = jax.lax.scan(lambda c, _: self._gen(params, Generator.step, c, code), carry, None,
                         length=num_frames)
    return hs

  def decode(self, params, hs, onehots=None):
    """Decode every time step (the decoder is shared over time, Sec. 5.1):
    hs [T, B, ...], onehots [T, B, N] -> frames [B, T, 64, 64, 3].

    All T x B frames in one batch, or with `model.remat` one time step at a time under
    jax.checkpoint (the same values; backward keeps one step's activations instead of all T:
    the paper's batch 64 x 26 frames otherwise needs more than 24 GiB on CPU, measured)."""
    t, b = hs.shape[:2]
    if self.remat:
      dec = jax.checkpoint(lambda p, h, o: self._gen(p, Generator.decode, h, o))
      if onehots is None:
        frames = jax.lax.map(lambda h: dec(params, h, None), hs)
      else:
        frames = jax.lax.map(lambda ho: dec(params, *ho), (hs, onehots))
      return jnp.swapaxes(frames, 0, 1)
    flat = lambda a: a.reshape((t * b,) + a.shape[2:])
    frames = self._gen(params, Generator.decode, flat(hs),
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
      frame = self._gen(params, Generator.decode, h, jax.nn.one_hot(action, n, dtype=h.dtype))
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
    # Eq. 1 over every frame, black padding included (Sec. 5.2 pads short sequences)
    se = jnp.mean(jnp.square(pred - target), axis=(2, 3, 4))       # [B, T-1]
    l_mse = jnp.mean(se)
    adv = losses.bce_with_logits(self.discriminate(d_params, pred), 1.0)  # Eq. 2 per frame
    l_adv = masked_mean(adv, valid)                   # GAN terms on true frames only (ours)
    l_g = l_mse + c.loss.lambda_adv * l_adv           # Eq. 3
    out = {'loss_mse': l_mse, 'loss_adv': l_adv, 'loss_g': l_g}
    total = l_g
    if self.dqn:
      d = c.dqn
      # reward: minus the Eq. 3 loss of the frame the action produced (ours, Sec. 3.2 is silent)
      reward = jax.lax.stop_gradient(-(se + c.loss.lambda_adv * adv))  # [B, T-1]
      b, t = se.shape
      nxt = jax.lax.stop_gradient(pred).reshape((b * t,) + pred.shape[2:])
      next_q = self.qnet.apply({'params': target_q}, nxt).reshape(b, t, -1)
      done = (jnp.arange(t)[None, :] >= batch['length'][:, None] - 2).astype(jnp.float32)
      y = jax.lax.stop_gradient(td_target(reward, next_q, done, d.gamma))
      qs = self.qnet.apply({'params': params['q']}, seen.reshape(nxt.shape)).reshape(b, t, -1)
      q_sa = jnp.take_along_axis(qs, actions[..., None], axis=-1)[..., 0]
      l_td = masked_mean(optax.huber_loss(q_sa, y, delta=1.0), valid)  # Mnih 2015 error clip
      total = total + l_td
      out.update(loss_td=l_td, q_mean=masked_mean(q_sa, valid), reward=masked_mean(reward, valid))
    out['loss'] = total
    return total, (pred, valid, target, out)

  def train_step(self, state, batch, rng):
    params = state.params
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
  def generate(self, params, batch):
    """Greedy rollout from the first frame -> (generated, ground truth) [B, T, H, W, 3] in
    [0, 1] with the input as frame 0, and the valid-frame mask [B, T - 1]."""
    x, target, valid = self._split(batch)
    hs = self.states(params, x, target.shape[1])
    if self.dqn:
      pred = jnp.swapaxes(self.act(params, x, hs)[2], 0, 1)
    else:
      pred = self.decode(params, hs)
    gen = jnp.concatenate([x[:, None], pred], axis=1)
    truth = jnp.concatenate([x[:, None], target], axis=1)
    return to_unit(gen), to_unit(truth), valid

  def sequence_metrics(self, params, batch):
    """Per-sequence figures [B], averaged over its true generated frames."""
    gen, truth, valid = self.generate(params, batch)
    g1, t1 = gen[:, 1:], truth[:, 1:]
    out = {'psnr': masked_mean_rows(psnr(g1, t1), valid),          # Table 1
           'ssim': masked_mean_rows(metrics.ssim(g1, t1), valid)}
    # Table 3: consecutive-frame differences mapped from [-1, 1] to [0, 1] (ours: the paper
    # does not say how it scales them); the constant baseline's differences are all zero
    dg = (jnp.diff(gen, axis=1) + 1.0) * 0.5
    dt = (jnp.diff(truth, axis=1) + 1.0) * 0.5
    zero = jnp.full_like(dt, 0.5)
    out.update(diff_psnr=masked_mean_rows(psnr(dg, dt), valid),
               diff_ssim=masked_mean_rows(metrics.ssim(dg, dt), valid),
               const_diff_psnr=masked_mean_rows(psnr(zero, dt), valid),
               const_diff_ssim=masked_mean_rows(metrics.ssim(zero, dt), valid))
    # Table 4: object centre of the true mask vs the sliding-window centre in the generated frame
    masks = batch['masks'][:, 1:].astype(jnp.float32)                    # [B, T-1, H, W]
    area = masks.sum((2, 3))
    colour = jnp.einsum('bthw,bthwc->btc', masks, t1) / jnp.maximum(area, 1.0)[..., None]
    found = jax.vmap(jax.vmap(sliding_window_centre))(g1, colour)
    dist = jnp.linalg.norm(found - object_centre(masks), axis=-1)
    out['centre_distance'] = masked_mean_rows(dist, valid & (area > 0))
    return out

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
